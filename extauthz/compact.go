package extauthz

import (
	"encoding/base64"
	"strings"
	"sync"
	"unsafe"

	"github.com/valyala/fastjson"
)

// A JWT on a cache miss is parsed once: splitJWS splits the compact JWS
// and decodes its header with a pooled parser and buffers, and verifyJWT
// hands the signing input, a slice of the token itself, to jwsbb.Verify.
// jwx's own entry points (jwsbb's header helpers, jws.VerifyCompactFast)
// would each split and decode the token again, with a fresh JSON parser
// and a copy of the signing input.

// jwsHeader is what a decision reads of a JWS protected header.
type jwsHeader struct {
	alg, kid, typ string
	// critical: crit or b64 is present (RFC 7515 §4.1.11, RFC 7797):
	// no extension is understood, so the token is refused.
	critical bool
}

// jwsParts is a compact JWS split and its protected header decoded.
type jwsParts struct {
	hdr          jwsHeader
	signingInput string // BASE64URL(header) "." BASE64URL(payload), of the token
	payload      string // still encoded
	sig          string // still encoded
}

// jwsScratch is the per-call state of splitJWS and verifyJWT, pooled: a
// JSON parser for the header and then the claims, buffers for the
// decoded header and signature, the claims read in place (none outlives
// the call).
type jwsScratch struct {
	p      fastjson.Parser
	hdr    []byte
	sig    []byte
	claims fastClaims
}

var jwsScratchPool = sync.Pool{New: func() any { return new(jwsScratch) }}

// splitJWS splits a compact JWS (RFC 7515 §7.1) and reads its protected
// header: a base64url (unpadded) JSON object whose alg is a string and
// whose kid and typ, when present, are strings. ok is false for anything
// else.
func splitJWS(s *jwsScratch, tok string) (jp jwsParts, ok bool) {
	i := strings.IndexByte(tok, '.')
	if i <= 0 {
		return jp, false
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j <= 0 {
		return jp, false
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return jp, false
	}
	jp.signingInput, jp.payload, jp.sig = tok[:j], tok[i+1:j], tok[j+1:]

	hdr, ok := decodeInto(&s.hdr, tok[:i])
	if !ok {
		return jp, false
	}
	v, err := s.p.ParseBytes(hdr)
	if err != nil {
		return jp, false
	}
	o, err := v.Object()
	if err != nil {
		return jp, false
	}
	// One pass over the members. RFC 7515 §4: a header must not repeat a
	// name, and a recipient either rejects it or takes the last one; the
	// members read here are refused when repeated (a JSON parser that
	// takes the first would otherwise disagree with one that takes the
	// last about the algorithm or key).
	var alg, kid, typ *fastjson.Value
	dup := false
	o.Visit(func(k []byte, v *fastjson.Value) {
		var dst **fastjson.Value
		switch string(k) {
		case "alg":
			dst = &alg
		case "kid":
			dst = &kid
		case "typ":
			dst = &typ
		case "crit", "b64":
			jp.hdr.critical = true // refused anyway, repeated or not
			return
		default:
			return
		}
		if *dst != nil {
			dup = true
		}
		*dst = v
	})
	if dup || alg == nil || alg.Type() != fastjson.TypeString {
		return jp, false
	}
	jp.hdr.alg = string(alg.GetStringBytes())
	for _, f := range [...]struct {
		v   *fastjson.Value
		dst *string
	}{{kid, &jp.hdr.kid}, {typ, &jp.hdr.typ}} {
		if f.v != nil {
			if f.v.Type() != fastjson.TypeString {
				return jp, false
			}
			*f.dst = string(f.v.GetStringBytes())
		}
	}
	return jp, true
}

// decodeSignature decodes a base64url (unpadded) signature into s.sig.
func (s *jwsScratch) decodeSignature(enc string) ([]byte, bool) { return decodeInto(&s.sig, enc) }

// decodeInto decodes base64url (unpadded) into *buf, grown as needed.
func decodeInto(buf *[]byte, enc string) ([]byte, bool) {
	n := base64.RawURLEncoding.DecodedLen(len(enc))
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode((*buf)[:n], bytesOf(enc))
	if err != nil {
		return nil, false
	}
	return (*buf)[:n], true
}

// bytesOf is s's bytes, not a copy, for reading only.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
