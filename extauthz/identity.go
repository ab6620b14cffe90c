package extauthz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Identity is a validated token: what upstreams learn about the caller.
// Identities are cached and shared read-only between requests.
type Identity struct {
	TokenType string // TokenTypeJWT or TokenTypeOpaque
	Issuer    string
	Subject   string
	ClientID  string
	Scopes    []string
	Audience  []string
	Expiry    time.Time // zero when the token has no exp (opaque only)

	// Claims is the validated claim set as a JSON object (the JWT payload
	// or the issuer's introspection response).
	Claims json.RawMessage

	// bind is the token's confirmation (cnf, RFC 7800): the key or
	// certificate it is bound to, checked on every request (binding.go).
	bind binding

	// rev holds what revocation events match besides Subject and
	// ClientID (revocation.go), whatever claims the rules read.
	rev revocationKeys

	claimValues [][]string // values of the claim paths rules refer to
	headers     []Header   // identity headers this identity sets, by name
	unset       []string   // configured identity headers it does not set

	celCache      atomic.Pointer[celValue] // claims for CEL (cel.go)
	celClaims     bool                     // CEL may read the claims: celCache may be filled
	envoyOK       atomic.Pointer[encodedResponse]
	introspection atomic.Pointer[[]byte]
}

// Header is a header name and value.
type Header struct{ Name, Value string }

// Headers returns the identity headers to set upstream, sorted by name.
func (id *Identity) Headers() []Header { return id.headers }

// UnsetHeaders returns the configured identity headers this identity does
// not set; they must be removed from the upstream request.
func (id *Identity) UnsetHeaders() []string { return id.unset }

// cost estimates the identity's memory in bytes for the cache bound.
func (id *Identity) cost() int64 {
	n := 512 + 2*len(id.Claims) + len(id.Issuer) + len(id.Subject) + len(id.ClientID) +
		len(id.rev.jti) + len(id.rev.sid) + len(id.rev.kid)
	for _, s := range id.Scopes {
		n += 16 + len(s)
	}
	for _, s := range id.Audience {
		n += 16 + len(s)
	}
	for _, h := range id.headers {
		n += 96 + len(h.Name) + 2*len(h.Value)
	}
	// The Envoy response rendered once and kept with the identity
	// (CheckServer.render): protobuf messages of about 250 bytes per
	// header set or removed, plus the envelope.
	n += 256 + 256*(len(id.headers)+len(id.unset))
	if id.celClaims {
		// The claims converted for CEL: Go maps, strings and values
		// (measured: ~2.2 KB for a typical 264-byte claims set).
		n += 512 + 7*len(id.Claims)
	}
	for _, vs := range id.claimValues {
		for _, v := range vs {
			n += 16 + len(v)
		}
	}
	return int64(n)
}

var errInvalidClaims = errors.New("invalid claims")

// parseClaimsStd decodes a JSON object keeping numbers exact, with
// encoding/json (see parseClaims).
func parseClaimsStd(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errInvalidClaims
	}
	if dec.More() {
		return nil, errInvalidClaims
	}
	return m, nil
}

// stringClaim returns a string claim; present reports whether it exists.
func stringClaim(m map[string]any, name string) (v string, present bool, err error) {
	x, ok := m[name]
	if !ok || x == nil {
		return "", false, nil
	}
	s, ok := x.(string)
	if !ok {
		return "", true, errInvalidClaims
	}
	return s, true, nil
}

// stringsClaim returns a claim that is a string or an array of strings
// (RFC 7519 §4.1.3 aud).
func stringsClaim(m map[string]any, name string) ([]string, error) {
	switch x := m[name].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errInvalidClaims
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errInvalidClaims
}

// numericDate reads an RFC 7519 §2 NumericDate (seconds, possibly
// fractional).
func numericDate(m map[string]any, name string) (t time.Time, present bool, err error) {
	x, ok := m[name]
	if !ok || x == nil {
		return time.Time{}, false, nil
	}
	n, ok := x.(json.Number)
	if !ok {
		return time.Time{}, true, errInvalidClaims
	}
	t, err = dateOf(string(n))
	return t, true, err
}

// dateOf is the time of a NumericDate's JSON number text.
func dateOf(n string) (time.Time, error) {
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, errInvalidClaims
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// scopesOf merges the space-separated "scope" claim (RFC 8693 §4.2, RFC
// 9068 §2.2.3) and the "scp" array some issuers (Hydra) add.
func scopesOf(m map[string]any) ([]string, error) {
	var scope, scp []string
	switch x := m["scope"].(type) {
	case nil:
	case string:
		scope = strings.Fields(x)
	default:
		return nil, errInvalidClaims
	}
	switch x := m["scp"].(type) {
	case nil:
	case []any:
		scp = make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errInvalidClaims
			}
			scp = append(scp, s)
		}
	case string:
		scp = strings.Fields(x)
	default:
		return nil, errInvalidClaims
	}
	return mergeScopes(scope, scp), nil
}

// mergeScopes is a's then b's scopes, each once and never "", in order;
// it reuses a's array.
func mergeScopes(a, b []string) []string {
	out := a[:0]
	var seen map[string]bool // beyond a few scopes, instead of a linear search
	add := func(s string) {
		if s == "" {
			return
		}
		if seen != nil {
			if seen[s] {
				return
			}
			seen[s] = true
		} else if slices.Contains(out, s) {
			return
		}
		out = append(out, s)
		if seen == nil && len(out) > 16 {
			seen = make(map[string]bool, len(a)+len(b))
			for _, s := range out {
				seen[s] = true
			}
		}
	}
	for _, s := range a {
		add(s)
	}
	for _, s := range b {
		add(s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// lookupClaim walks a dot-separated path into nested objects. A claim
// whose own name contains dots (e.g. "https://example.com/roles") is
// found too: at each level the longest literal name is tried first.
func lookupClaim(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if v, ok := lookupClaim(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// lookupIn is lookupClaim on a claims set: the path itself, then each
// prefix ending before a dot (the longest first) holding an object.
func lookupIn(c claimSet, path string) (any, bool) {
	if m, ok := c.(mapClaims); ok {
		return lookupClaim(m, path)
	}
	if v, ok := c.value(path); ok {
		return v, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		if sub, ok := c.value(path[:i]); ok {
			if m, ok := sub.(map[string]any); ok {
				if v, ok := lookupClaim(m, path[i+1:]); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

// claimText renders a claim value for a header or a comparison: strings
// as they are, numbers and booleans as JSON, arrays joined by ",",
// objects as compact JSON. ok is false for null and empty values.
func claimText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, x != ""
	case json.Number:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := claimText(e); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), len(parts) > 0
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
}

// claimElements returns the values a rule compares: each element of an
// array claim, or the scalar itself.
func claimElements(v any) []string {
	if arr, ok := v.([]any); ok {
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			if s, ok := claimText(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := claimText(v); ok {
		return []string{s}
	}
	return nil
}

// headerValueOK reports whether v can be sent as a header value: visible
// ASCII, spaces and tabs, and obs-text, without leading or trailing
// whitespace (RFC 9110 §5.5), at most 8 KiB.
func headerValueOK(v string) bool {
	if len(v) == 0 || len(v) > 8192 || v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// headerPlan is the configured identity-header mapping.
type headerPlan struct {
	identity     []headerSpec // sorted by name
	claimsHeader string
	names        []string // every configured header name, sorted
}

type headerSpec struct{ name, path string }

// buildIdentity assembles an Identity from validated claims.
func (a *Authorizer) buildIdentity(tokenType, issuer string, claims claimSet, raw []byte, exp time.Time) (*Identity, error) {
	sub, _, err := claims.str("sub")
	if err != nil {
		return nil, err
	}
	clientID, _, err := claims.str("client_id")
	if err != nil {
		return nil, err
	}
	aud, err := claims.strs("aud")
	if err != nil {
		return nil, err
	}
	scopes, err := claims.scopes()
	if err != nil {
		return nil, err
	}
	bind, err := bindingOf(claims)
	if err != nil {
		return nil, err
	}
	id := &Identity{TokenType: tokenType, Issuer: issuer, Subject: sub, ClientID: clientID,
		Scopes: scopes, Audience: aud, Expiry: exp, Claims: json.RawMessage(raw), bind: bind}
	// A jti or sid that is not a string cannot be named by an event; the
	// token is judged as before. A bad iat was refused by the caller.
	id.rev.jti, _, _ = claims.str("jti")
	id.rev.sid, _, _ = claims.str("sid")
	if iat, present, err := claims.date("iat"); err == nil && present {
		id.rev.iat, id.rev.hasIAT = iat, true
	}
	if len(a.claimPaths) > 0 {
		id.claimValues = make([][]string, len(a.claimPaths))
		for i, p := range a.claimPaths {
			if v, ok := lookupIn(claims, p); ok {
				id.claimValues[i] = claimElements(v)
			}
		}
	}
	if n := len(a.headers.identity); n > 0 || a.headers.claimsHeader != "" {
		id.headers = make([]Header, 0, n+1) // usually all of them are set
	}
	for _, h := range a.headers.identity {
		var v string
		var ok bool
		switch h.path {
		case "scope":
			v, ok = strings.Join(scopes, " "), len(scopes) > 0
		case "sub":
			// What lookupClaim and claimText give for a string, null
			// or absent claim, the only kinds str lets through.
			v, ok = sub, sub != ""
		case "client_id":
			v, ok = clientID, clientID != ""
		default:
			if x, found := lookupIn(claims, h.path); found {
				v, ok = claimText(x)
			}
		}
		if ok && headerValueOK(v) {
			id.headers = append(id.headers, Header{h.name, v})
		} else {
			id.unset = append(id.unset, h.name)
		}
	}
	if a.cel != nil {
		id.celClaims = true
		if len(a.cel.headers) > 0 {
			a.celHeaderValues(id)
		}
	}
	if a.headers.claimsHeader != "" {
		id.headers = append(id.headers, Header{a.headers.claimsHeader, base64.RawURLEncoding.EncodeToString(raw)})
		sortHeaders(id.headers)
	}
	return id, nil
}

func sortHeaders(h []Header) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].Name < h[j-1].Name; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

// IntrospectionResponse renders the identity as an RFC 7662 §2.2 active
// response: the validated claims plus "active": true, with token_type
// and a space-separated scope filled in when the token lacks them.
func (id *Identity) IntrospectionResponse() []byte {
	if p := id.introspection.Load(); p != nil {
		return *p
	}
	m, err := parseClaims(id.Claims)
	if err != nil {
		m = map[string]any{}
	}
	m["active"] = true
	if _, ok := m["token_type"]; !ok {
		m["token_type"] = "Bearer"
	}
	if _, ok := m["scope"]; !ok && len(id.Scopes) > 0 {
		m["scope"] = strings.Join(id.Scopes, " ")
	}
	b, _ := json.Marshal(m)
	id.introspection.Store(&b)
	return b
}
