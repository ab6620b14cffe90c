package extauthz

import (
	"encoding/json"

	"github.com/valyala/fastjson"
)

// Claims sets are decoded on every cache miss, and encoding/json's
// reflection was the largest cost of a JWT validation after the
// signature. parseClaims therefore decodes the common case, a plain
// ASCII object without \u escapes, with fastjson (already in the build
// through jwx), and leaves everything else to encoding/json: any input
// fastjson or the plainness check refuses goes through encoding/json,
// whose answer stands, so only accepted plain objects take the fast path
// and they decode to the same values (FuzzParseClaims holds the two
// equal).

var claimsParsers fastjson.ParserPool

// parseClaims decodes a JSON object keeping numbers exact (json.Number).
func parseClaims(raw []byte) (map[string]any, error) { return parseSomeClaims(raw, nil) }

// parseSomeClaims is parseClaims where only the members named in keep
// need to be in the map (nil: all): a decision reads a handful of claims,
// and converting the others (jti, nested objects, ...) to Go values was
// garbage on every cache miss. Other members may still be there.
func parseSomeClaims(raw []byte, keep map[string]bool) (map[string]any, error) {
	if plainJSON(raw) && fastjson.ValidateBytes(raw) == nil {
		p := claimsParsers.Get()
		v, err := p.ParseBytes(raw)
		if err == nil && v.Type() == fastjson.TypeObject {
			o, _ := v.Object()
			n := o.Len()
			if keep != nil {
				n = min(n, len(keep))
			}
			m := make(map[string]any, n)
			o.Visit(func(k []byte, v *fastjson.Value) {
				if keep == nil || keep[string(k)] {
					m[string(k)] = fastValue(v) // a repeated key: the last one wins
				}
			})
			claimsParsers.Put(p)
			return m, nil
		}
		claimsParsers.Put(p)
	}
	return parseClaimsStd(raw)
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
