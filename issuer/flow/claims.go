package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"sort"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// maxRequestedClaims bounds the claims one member of a claims request may
// name.
const maxRequestedClaims = 100

// ClaimsRequest is the OpenID Connect Core §5.5 claims request parameter:
// the claims the client asks for in userinfo and in the ID token. It
// reaches the login and consent apps as oidc_context.claims (Hydra has no
// such member; the name is the parameter's).
type ClaimsRequest struct {
	UserInfo map[string]*ClaimRequest `json:"userinfo,omitempty"`
	IDToken  map[string]*ClaimRequest `json:"id_token,omitempty"`
}

// ClaimRequest is one requested claim (§5.5.1): null, or an object with
// essential, value or values. Other members are ignored (§5.5.1: "Other
// members MAY be defined ...").
type ClaimRequest struct {
	Essential bool  `json:"essential,omitempty"`
	Value     any   `json:"value,omitempty"`
	Values    []any `json:"values,omitempty"`
}

// ParseClaimsRequest reads a claims parameter. It must be a JSON object;
// its userinfo and id_token members, when present, objects whose members
// are null or objects with a boolean essential and an array values (§5.5,
// §5.5.1). Other top-level members are ignored (§5.5: "Any members used
// that are not understood MUST be ignored"). Anything else is
// invalid_request. It never panics on hostile input.
func ParseClaimsRequest(s string) (*ClaimsRequest, *apierr.Error) {
	bad := func(why string) (*ClaimsRequest, *apierr.Error) {
		return nil, apierr.InvalidRequest("The claims parameter is not a valid claims request (OpenID Connect Core §5.5): %s", why)
	}
	var top map[string]json.RawMessage
	if err := strictObject([]byte(s), &top); err != nil {
		return bad("it must be a JSON object")
	}
	cr := &ClaimsRequest{}
	for name, dst := range map[string]*map[string]*ClaimRequest{"userinfo": &cr.UserInfo, "id_token": &cr.IDToken} {
		raw, ok := top[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var members map[string]json.RawMessage
		if err := strictObject(raw, &members); err != nil {
			return bad("its " + name + " member must be a JSON object")
		}
		if len(members) > maxRequestedClaims {
			return bad("its " + name + " member names too many claims")
		}
		out := make(map[string]*ClaimRequest, len(members))
		for claim, m := range members {
			if string(m) == "null" {
				out[claim] = nil
				continue
			}
			var fields map[string]json.RawMessage
			if err := strictObject(m, &fields); err != nil {
				return bad("the request for " + truncate(claim) + " must be null or a JSON object")
			}
			var c ClaimRequest
			if e, ok := fields["essential"]; ok && json.Unmarshal(e, &c.Essential) != nil {
				return bad("essential of " + truncate(claim) + " must be a boolean")
			}
			if v, ok := fields["value"]; ok && json.Unmarshal(v, &c.Value) != nil {
				return bad("value of " + truncate(claim) + " is not JSON")
			}
			if v, ok := fields["values"]; ok && (json.Unmarshal(v, &c.Values) != nil || c.Values == nil) {
				return bad("values of " + truncate(claim) + " must be an array")
			}
			out[claim] = &c
		}
		*dst = out
	}
	return cr, nil
}

// strictObject decodes a JSON object (not null, not another type) into v.
func strictObject(raw []byte, v *map[string]json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errNotObject
	}
	return json.Unmarshal(raw, v)
}

var errNotObject = errors.New("not a JSON object")

// requestedSub is the sub the request asks the ID token to have
// (claims.id_token.sub.value), or "".
func (cr *ClaimsRequest) requestedSub() string {
	if cr == nil || cr.IDToken["sub"] == nil {
		return ""
	}
	s, _ := cr.IDToken["sub"].Value.(string)
	return s
}

// omissions places the consent's session.id_token claims as requested
// (§5.5): a claim the request names under userinfo only is left out of
// the ID token, one named under id_token only is left out of userinfo.
// Claims it does not name go to both, as in Hydra.
func (cr *ClaimsRequest) omissions() (idToken, userinfo []string) {
	if cr == nil {
		return nil, nil
	}
	only := func(in, notIn map[string]*ClaimRequest) []string {
		var out []string
		for k := range in {
			if _, ok := notIn[k]; !ok {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return slices.Clip(out)
	}
	return only(cr.UserInfo, cr.IDToken), only(cr.IDToken, cr.UserInfo)
}
