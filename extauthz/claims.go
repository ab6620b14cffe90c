package extauthz

import (
	"encoding/json"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Claims sets are decoded on every cache miss, and encoding/json's
// reflection would be the largest cost of a JWT validation after the
// signature. parseClaims (and fastClaims for a JWT) therefore decode the
// common case, a plain ASCII object without \u escapes, with fastjson
// (already in the build through jwx), and leave everything else to
// encoding/json: any input fastjson or the plainness check refuses goes
// through encoding/json, whose answer stands, so only accepted plain
// objects take the fast path and they decode to the same values
// (FuzzParseClaims holds the two equal).

var claimsParsers fastjson.ParserPool

// parseClaims decodes a JSON object keeping numbers exact (json.Number).
func parseClaims(raw []byte) (map[string]any, error) {
	if plainJSON(raw) && fastjson.ValidateBytes(raw) == nil {
		p := claimsParsers.Get()
		v, err := p.ParseBytes(raw)
		if err == nil && v.Type() == fastjson.TypeObject {
			m := fastValue(v).(map[string]any)
			claimsParsers.Put(p)
			return m, nil
		}
		claimsParsers.Put(p)
	}
	return parseClaimsStd(raw)
}

// claimSet is a decoded claims set as a decision reads it: the methods
// answer as stringClaim, numericDate, stringsClaim and scopesOf do on
// the map encoding/json decodes (mapClaims); value is a top-level member
// as that map holds it.
type claimSet interface {
	str(name string) (v string, present bool, err error)
	date(name string) (t time.Time, present bool, err error)
	strs(name string) ([]string, error)
	scopes() ([]string, error)
	value(name string) (any, bool)
	// has reports whether a claim is present and not null.
	has(name string) bool
}

// mapClaims is a claims set decoded into a map (encoding/json, or an
// introspection answer).
type mapClaims map[string]any

func (m mapClaims) str(name string) (string, bool, error)     { return stringClaim(m, name) }
func (m mapClaims) date(name string) (time.Time, bool, error) { return numericDate(m, name) }
func (m mapClaims) strs(name string) ([]string, error)        { return stringsClaim(m, name) }
func (m mapClaims) scopes() ([]string, error)                 { return scopesOf(m) }
func (m mapClaims) value(name string) (any, bool)             { v, ok := m[name]; return v, ok }
func (m mapClaims) has(name string) bool                      { return m[name] != nil }

// The registered claims a JWT decision checks, by index into
// fastClaims.reg: the access token's, the ID token's that
// accessTokenClaims looks for, and jti and sid, which the revocation
// deny-set matches (revocationKeys).
var registeredClaims = [...]string{"iss", "sub", "client_id", "aud", "exp", "nbf", "iat", "scope", "scp",
	"nonce", "at_hash", "c_hash", "s_hash", "jti", "sid"}

func registeredIndex(name string) int {
	switch string(name) {
	case "iss":
		return 0
	case "sub":
		return 1
	case "client_id":
		return 2
	case "aud":
		return 3
	case "exp":
		return 4
	case "nbf":
		return 5
	case "iat":
		return 6
	case "scope":
		return 7
	case "scp":
		return 8
	case "nonce":
		return 9
	case "at_hash":
		return 10
	case "c_hash":
		return 11
	case "s_hash":
		return 12
	case "jti":
		return 13
	case "sid":
		return 14
	}
	return -1
}

// fastClaims is a JWT's claims set parsed by fastjson, read in place: a
// decision reads a handful of claims, and turning every member into Go
// values (a map, boxed strings and numbers) would be most of the claims'
// cost on a cache miss. The registered claims are read from the parsed
// values directly; the other members a rule or identity header may read
// (extra) are converted as parseClaims would. Valid until its parser
// parses again; pooled with the JWS scratch.
type fastClaims struct {
	reg   [len(registeredClaims)]*fastjson.Value // the last occurrence, as encoding/json keeps
	extra map[string]any
	num   []byte
}

// parse reads raw with p, keeping the members named in extra; false
// when raw is not plain JSON (or not an object), which encoding/json
// must decode instead.
func (c *fastClaims) parse(p *fastjson.Parser, raw []byte, extra map[string]bool) bool {
	c.reg = [len(registeredClaims)]*fastjson.Value{}
	clear(c.extra)
	if !plainJSON(raw) || fastjson.ValidateBytes(raw) != nil {
		return false
	}
	v, err := p.ParseBytes(raw)
	if err != nil || v.Type() != fastjson.TypeObject {
		return false
	}
	o, _ := v.Object()
	o.Visit(func(k []byte, v *fastjson.Value) {
		if i := registeredIndex(unsafe.String(unsafe.SliceData(k), len(k))); i >= 0 {
			c.reg[i] = v
		} else if extra[string(k)] {
			if c.extra == nil {
				c.extra = make(map[string]any, len(extra))
			}
			c.extra[string(k)] = fastValue(v)
		}
	})
	return true
}

// get is a registered claim's value, nil when absent or null (both
// "absent" to stringClaim, numericDate, stringsClaim and scopesOf). str,
// date, strs and has read registered claims only (nothing else calls
// them).
func (c *fastClaims) get(name string) *fastjson.Value {
	i := registeredIndex(name)
	if i < 0 {
		return nil
	}
	v := c.reg[i]
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil
	}
	return v
}

func (c *fastClaims) str(name string) (string, bool, error) {
	v := c.get(name)
	if v == nil {
		return "", false, nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", true, errInvalidClaims
	}
	return string(b), true, nil
}

func (c *fastClaims) date(name string) (time.Time, bool, error) {
	v := c.get(name)
	if v == nil {
		return time.Time{}, false, nil
	}
	if v.Type() != fastjson.TypeNumber {
		return time.Time{}, true, errInvalidClaims
	}
	c.num = v.MarshalTo(c.num[:0]) // the number's JSON text, as json.Number holds it
	t, err := dateOf(unsafe.String(unsafe.SliceData(c.num), len(c.num)))
	return t, true, err
}

func (c *fastClaims) strs(name string) ([]string, error) {
	v := c.get(name)
	if v == nil {
		return nil, nil
	}
	switch v.Type() {
	case fastjson.TypeString:
		return []string{string(v.GetStringBytes())}, nil
	case fastjson.TypeArray:
		return stringArray(v)
	}
	return nil, errInvalidClaims
}

// stringArray is an array of strings, else errInvalidClaims.
func stringArray(v *fastjson.Value) ([]string, error) {
	a, _ := v.Array()
	out := make([]string, 0, len(a))
	for _, e := range a {
		b, err := e.StringBytes()
		if err != nil {
			return nil, errInvalidClaims
		}
		out = append(out, string(b))
	}
	return out, nil
}

func (c *fastClaims) scopes() ([]string, error) {
	var scope []string
	if v := c.get("scope"); v != nil {
		b, err := v.StringBytes()
		if err != nil {
			return nil, errInvalidClaims
		}
		scope = strings.Fields(string(b))
	}
	var scp []string
	if v := c.get("scp"); v != nil {
		var err error
		switch v.Type() {
		case fastjson.TypeArray:
			scp, err = stringArray(v)
		case fastjson.TypeString:
			scp = strings.Fields(string(v.GetStringBytes()))
		default:
			err = errInvalidClaims
		}
		if err != nil {
			return nil, err
		}
	}
	return mergeScopes(scope, scp), nil
}

func (c *fastClaims) has(name string) bool { return c.get(name) != nil }

func (c *fastClaims) value(name string) (any, bool) {
	if i := registeredIndex(name); i >= 0 {
		if v := c.reg[i]; v != nil {
			return fastValue(v), true
		}
		return nil, false
	}
	v, ok := c.extra[name]
	return v, ok
}

// plainJSON reports whether b is ASCII without \u escapes and without
// control characters inside strings: the inputs where fastjson and
// encoding/json cannot differ (encoding/json replaces invalid UTF-8 and
// lone surrogates with U+FFFD and refuses raw control characters in
// strings; fastjson does neither).
func plainJSON(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return false
		}
		if !inString {
			if c == '"' {
				inString = true
			} else if c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			continue
		}
		switch {
		case c < 0x20:
			return false
		case c == '"':
			inString = false
		case c == '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				return false
			}
			i++ // the escaped character
		}
	}
	return true
}

// fastValue converts a parsed value to what encoding/json decodes into
// an any with UseNumber: map[string]any (a repeated key: the last one
// wins), []any, string, json.Number, bool or nil.
func fastValue(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		o.Visit(func(k []byte, v *fastjson.Value) { m[string(k)] = fastValue(v) })
		return m
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = fastValue(e)
		}
		return out
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return string(s)
	case fastjson.TypeNumber:
		return json.Number(v.MarshalTo(nil))
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	}
	return nil
}
