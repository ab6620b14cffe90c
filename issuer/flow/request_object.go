package flow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// RequestObjectAlgs are the request object algorithms accepted (for
// discovery's request_object_signing_alg_values_supported).
var RequestObjectAlgs = []string{"none", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// maxRequestObject bounds a request object.
const maxRequestObject = 16 << 10

func invalidRequestObject(format string, args ...any) *apierr.Error {
	return apierr.InvalidRequestObject(format, args...)
}

// requestObject verifies the request parameter (OpenID Connect Core §6.1,
// RFC 9101) of client c and returns the authorization request parameters
// with the object's members in place of the query's (§6.3.3: "the
// Authorization Server MUST only use the parameters in the Request
// Object" where both are present).
//
//   - Unsigned objects (alg "none") are accepted when the client registered
//     no request_object_signing_alg or "none" (fosite's rule: an unsigned
//     object carries no more trust than the query).
//   - Signed objects must verify with one of the client's keys (jwks or
//     jwks_uri) and use its request_object_signing_alg when registered.
//   - iss, when present, must be the client id; aud, when present, must name
//     this issuer; an expired or not yet valid object is refused.
//   - client_id and response_type inside must match the query's (§6.1).
func (h *Handler) requestObject(ctx context.Context, c *client.Client, raw string, form url.Values) (url.Values, error) {
	if len(raw) > maxRequestObject {
		return nil, invalidRequestObject("The request object is larger than %d bytes", maxRequestObject)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, invalidRequestObject("The request object must be a compact JWT (encrypted request objects are not supported)")
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(hdrJSON, &hdr) != nil || hdr.Alg == "" {
		return nil, invalidRequestObject("The request object has an unreadable header")
	}
	var payload []byte
	if reg := c.RequestObjectSigningAlg; reg != "" && reg != hdr.Alg {
		return nil, invalidRequestObject("The request object must be signed with %s, the client's request_object_signing_alg", reg)
	}
	if hdr.Alg == "none" {
		if parts[2] != "" {
			return nil, invalidRequestObject("An unsigned request object must have an empty signature")
		}
		payload, err = base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, invalidRequestObject("The request object has an unreadable payload")
		}
	} else {
		if !slices.Contains(RequestObjectAlgs, hdr.Alg) {
			return nil, invalidRequestObject("The request object algorithm %q is not supported", truncate(hdr.Alg))
		}
		set, err := h.clientKeys(ctx, c)
		if err != nil {
			return nil, err
		}
		payload, err = jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)))
		if err != nil {
			return nil, invalidRequestObject("The request object signature does not verify with the client's keys").WithCause(err)
		}
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, invalidRequestObject("The request object's claims are not a JSON object")
	}
	if iss, ok := claims["iss"]; ok && iss != c.ID {
		return nil, invalidRequestObject("The request object's iss must be the client id")
	}
	if aud, ok := claims["aud"]; ok {
		okAud := false
		for _, a := range audiences(aud) {
			if strings.TrimRight(a, "/") == strings.TrimRight(h.opts.IssuerURL, "/") || a == h.opts.PublicURL+"/oauth2/auth" {
				okAud = true
			}
		}
		if !okAud {
			return nil, invalidRequestObject("The request object's aud must be this issuer")
		}
	}
	now := h.now().Unix()
	if exp, ok := claims["exp"].(float64); ok && int64(exp)+30 < now {
		return nil, invalidRequestObject("The request object has expired")
	}
	skew := int64(30)
	if c.FAPI(h.opts.FAPI) {
		skew = int64(client.FAPIMaxClockSkew / time.Second)
	}
	if nbf, ok := claims["nbf"].(float64); ok && int64(nbf)-skew > now {
		return nil, invalidRequestObject("The request object is not valid yet")
	}
	out := url.Values{}
	for k, vs := range form {
		if k != "request" {
			out[k] = vs
		}
	}
	for k, v := range claims {
		switch k {
		case "iss", "aud", "exp", "nbf", "iat", "jti", "request", "request_uri":
			continue
		}
		// RFC 8707 §2.1: in a request object "a single resource parameter
		// value is represented as a JSON string while multiple values are
		// represented as an array of strings".
		if list, ok := v.([]any); ok && k == "resource" {
			out.Del(k)
			for _, e := range list {
				s, _ := e.(string)
				out.Add(k, s)
			}
			continue
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case float64:
			s = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(t)
		default:
			b, _ := json.Marshal(t)
			s = string(b)
		}
		if (k == "client_id" || k == "response_type") && form.Get(k) != "" && form.Get(k) != s {
			return nil, invalidRequestObject("The %s inside the request object does not match the request's", k)
		}
		out.Set(k, s)
	}
	return out, nil
}

// fetchRequestURI dereferences a request_uri (OpenID Connect Core §6.2):
// through the SSRF guard, bounded in time and size, and, when the client
// registered request_uris, only one of those (compared without fragment,
// §6.2: the fragment may be used to bust caches).
func (h *Handler) fetchRequestURI(ctx context.Context, c *client.Client, raw string) (string, error) {
	if h.outbound == nil {
		return "", &apierr.Error{Code: "request_uri_not_supported", Status: 400, Description: "The request_uri parameter is not supported"}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", apierr.InvalidRequest("The request_uri must be an absolute http(s) URL")
	}
	if len(c.RequestURIs) > 0 {
		bare := *u
		bare.Fragment, bare.RawFragment = "", ""
		if !slices.ContainsFunc(c.RequestURIs, func(r string) bool {
			ru, err := url.Parse(r)
			if err != nil {
				return false
			}
			ru.Fragment, ru.RawFragment = "", ""
			return ru.String() == bare.String()
		}) {
			return "", apierr.InvalidRequest("The request_uri is not one of the client's registered request_uris")
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u.Fragment, u.RawFragment = "", ""
	body, err := h.outbound.GetBody(fctx, u.String(), "application/oauth-authz-req+jwt, application/jwt")
	if err != nil {
		return "", &apierr.Error{Code: "invalid_request_uri", Status: 400,
			Description: "The request_uri could not be fetched", Cause: err}
	}
	if len(body) > maxRequestObject {
		return "", invalidRequestObject("The request object is larger than %d bytes", maxRequestObject)
	}
	return strings.TrimSpace(string(body)), nil
}

// clientKeys returns the client's public keys: jwks, else jwks_uri.
func (h *Handler) clientKeys(ctx context.Context, c *client.Client) (jwk.Set, error) {
	if len(c.JWKS) > 0 {
		set, err := client.ParsePublicJWKS(c.JWKS)
		if err != nil {
			return nil, invalidRequestObject("The client's jwks cannot be used: %v", err)
		}
		return set, nil
	}
	if c.JWKSURI != "" && h.outbound != nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, err := h.outbound.GetBody(fctx, c.JWKSURI, "application/json")
		if err != nil {
			return nil, invalidRequestObject("The client's jwks_uri could not be fetched").WithCause(err)
		}
		set, err := client.ParsePublicJWKS(body)
		if err != nil {
			return nil, invalidRequestObject("The client's jwks_uri holds no usable keys: %v", err)
		}
		return set, nil
	}
	return nil, invalidRequestObject("The client has no keys (jwks or jwks_uri) to verify a signed request object with")
}
