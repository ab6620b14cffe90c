package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

const endpoint = "https://issuer.example/oauth2/token"

var now = time.Unix(1_700_000_000, 0)

// signer makes proofs with one key.
type signer struct {
	priv any
	alg  string
	jwk  map[string]any // the public JWK
}

func newSigner(t testing.TB, alg string) *signer {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signer{priv: priv, alg: alg, jwk: publicJWK(t, priv)}
}

func publicJWK(t testing.TB, priv any) map[string]any {
	t.Helper()
	k, err := jwk.Import(priv.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(k)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

func (s *signer) headerMap() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": s.alg, "jwk": s.jwk}
}

func claimsMap() map[string]any {
	return map[string]any{"jti": "id-" + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String())),
		"htm": "POST", "htu": endpoint, "iat": now.Unix()}
}

// sign signs hdr and claims with s's key as s.alg (whatever hdr says).
func (s *signer) sign(t testing.TB, hdr, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sig, err := jwsbb.Sign(s.priv, s.alg, []byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (s *signer) proof(t testing.TB, edit func(hdr, claims map[string]any)) string {
	hdr, cl := s.headerMap(), claimsMap()
	if edit != nil {
		edit(hdr, cl)
	}
	return s.sign(t, hdr, cl)
}

func opts() Options {
	return Options{Method: "POST", URL: endpoint, Now: now, MaxAge: time.Minute, Leeway: 10 * time.Second}
}

func TestVerifyAcceptsEveryAlgorithm(t *testing.T) {
	for _, alg := range Algs {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, alg)
			p, err := VerifyProof(s.proof(t, nil), opts())
			if err != nil {
				t.Fatal(err)
			}
			k, _ := jwk.Import(s.priv.(crypto.Signer).Public())
			want, _ := Thumbprint(k)
			if p.JKT != want || p.Alg != alg || !p.IssuedAt.Equal(now) || p.JTI == "" {
				t.Fatalf("%+v, want jkt %s", p, want)
			}
		})
	}
}

// TestThumbprintRFC7638 is the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	k, err := jwk.ParseKey([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Thumbprint(k); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatal(got)
	}
}

// TestVerifyRefusals: each rule of RFC 9449 §4.3 refuses what breaks it,
// with invalid_dpop_proof.
func TestVerifyRefusals(t *testing.T) {
	es := newSigner(t, "ES256")
	rs := newSigner(t, "RS256")
	ed := newSigner(t, "EdDSA")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallSigner := &signer{priv: small, alg: "RS256", jwk: map[string]any{"kty": "RSA",
		"n": base64.RawURLEncoding.EncodeToString(small.N.Bytes()), "e": "AQAB"}}
	p384 := newSigner(t, "ES384")
	hmacProof := func() string {
		h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}})
		c, _ := json.Marshal(claimsMap())
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
		sig, _ := jwsbb.Sign([]byte("secret"), "HS256", []byte(in), nil)
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	noneProof := func() string {
		h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": es.jwk})
		c, _ := json.Marshal(claimsMap())
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
	}
	privJWK := func() map[string]any {
		k, _ := jwk.Import(es.priv)
		raw, _ := json.Marshal(k)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	withClaim := func(k string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
	}
	withHeader := func(k string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
	}
	for _, tc := range []struct {
		name  string
		proof string
		o     func(*Options)
	}{
		{"empty", "", nil},
		{"not a JWT", "not-a-jwt", nil},
		{"four parts", es.proof(t, nil) + ".x", nil},
		{"bad base64", "###.###.###", nil},
		{"too long", strings.Repeat("a", MaxProofLength+1), nil},
		{"header not JSON", "bm90LWpzb24." + strings.Split(es.proof(t, nil), ".")[1] + ".c2ln", nil},
		{"typ missing", es.proof(t, withHeader("typ", nil)), nil},
		{"typ JWT", es.proof(t, withHeader("typ", "JWT")), nil},
		{"typ at+jwt", es.proof(t, withHeader("typ", "at+jwt")), nil},
		{"alg none", noneProof(), nil},
		{"alg HS256", hmacProof(), nil},
		{"alg not allowed", es.proof(t, nil), func(o *Options) { o.Algs = []string{"RS256"} }},
		{"alg unknown", es.proof(t, withHeader("alg", "ES257")), nil},
		{"alg for another key type", es.proof(t, withHeader("alg", "RS256")), nil},
		{"alg for another curve", p384.proof(t, withHeader("alg", "ES256")), nil},
		{"crit", es.proof(t, withHeader("crit", []string{"exp"})), nil},
		{"b64", es.proof(t, withHeader("b64", false)), nil},
		{"jwk missing", es.proof(t, withHeader("jwk", nil)), nil},
		{"jwk null", es.proof(t, withHeader("jwk", json.RawMessage("null"))), nil},
		{"jwk a string", es.proof(t, withHeader("jwk", "key")), nil},
		{"jwk private", es.proof(t, withHeader("jwk", privJWK())), nil},
		{"jwk of another key", es.proof(t, withHeader("jwk", newSigner(t, "ES256").jwk)), nil},
		{"jwk not a key", es.proof(t, withHeader("jwk", map[string]any{"kty": "EC"})), nil},
		{"RSA key too short", smallSigner.proof(t, nil), nil},
		{"signature altered", func() string { p := ed.proof(t, nil); return p[:len(p)-4] + "AAAA" }(), nil},
		{"payload swapped", func() string {
			a, b := strings.Split(rs.proof(t, nil), "."), strings.Split(rs.proof(t, withClaim("htm", "GET")), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}(), nil},
		{"claims not JSON", func() string {
			h, _ := json.Marshal(es.headerMap())
			in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString([]byte("[1]"))
			sig, _ := jwsbb.Sign(es.priv, "ES256", []byte(in), nil)
			return in + "." + base64.RawURLEncoding.EncodeToString(sig)
		}(), nil},
		{"jti missing", es.proof(t, withClaim("jti", nil)), nil},
		{"jti empty", es.proof(t, withClaim("jti", "")), nil},
		{"jti a number", es.proof(t, withClaim("jti", 7)), nil},
		{"jti too long", es.proof(t, withClaim("jti", strings.Repeat("j", MaxJTILength+1))), nil},
		{"htm missing", es.proof(t, withClaim("htm", nil)), nil},
		{"htm GET", es.proof(t, withClaim("htm", "GET")), nil},
		{"htm lower case", es.proof(t, withClaim("htm", "post")), nil},
		{"htu missing", es.proof(t, withClaim("htu", nil)), nil},
		{"htu another path", es.proof(t, withClaim("htu", "https://issuer.example/oauth2/revoke")), nil},
		{"htu another host", es.proof(t, withClaim("htu", "https://evil.example/oauth2/token")), nil},
		{"htu another scheme", es.proof(t, withClaim("htu", "http://issuer.example/oauth2/token")), nil},
		{"htu another port", es.proof(t, withClaim("htu", "https://issuer.example:8443/oauth2/token")), nil},
		{"htu relative", es.proof(t, withClaim("htu", "/oauth2/token")), nil},
		{"htu not a URL", es.proof(t, withClaim("htu", "%zz")), nil},
		{"iat missing", es.proof(t, withClaim("iat", nil)), nil},
		{"iat a string", es.proof(t, withClaim("iat", "1700000000")), nil},
		{"iat too old", es.proof(t, withClaim("iat", now.Add(-61*time.Second).Unix())), nil},
		{"iat in the future", es.proof(t, withClaim("iat", now.Add(11*time.Second).Unix())), nil},
		{"iat negative", es.proof(t, withClaim("iat", -5)), nil},
		{"iat huge", es.proof(t, withClaim("iat", 1e300)), nil},
		{"ath missing", es.proof(t, nil), func(o *Options) { o.AccessToken = "tok" }},
		{"ath of another token", es.proof(t, withClaim("ath", AccessTokenHash("other"))), func(o *Options) { o.AccessToken = "tok" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.o != nil {
				tc.o(&o)
			}
			p, err := VerifyProof(tc.proof, o)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidProof || e.Description == "" {
				t.Fatalf("got %+v, %v; want invalid_dpop_proof", p, err)
			}
		})
	}
}

// TestVerifyAccepts: what §4.3 leaves to normalisation or tolerance.
func TestVerifyAccepts(t *testing.T) {
	es := newSigner(t, "ES256")
	for _, tc := range []struct {
		name string
		edit func(h, c map[string]any)
		o    func(*Options)
	}{
		{"htu with query and fragment", func(h, c map[string]any) { c["htu"] = endpoint + "?a=b#frag" }, nil},
		{"htu scheme and host in upper case", func(h, c map[string]any) { c["htu"] = "HTTPS://ISSUER.Example/oauth2/token" }, nil},
		{"htu with the default port", func(h, c map[string]any) { c["htu"] = "https://issuer.example:443/oauth2/token" }, nil},
		{"htu with percent-encoded unreserved characters", func(h, c map[string]any) { c["htu"] = "https://issuer.example/oauth2/%74oken" }, nil},
		{"htu with dot segments", func(h, c map[string]any) { c["htu"] = "https://issuer.example/a/../oauth2/./token" }, nil},
		{"typ with media type prefix and case", func(h, c map[string]any) { h["typ"] = "application/DPoP+JWT" }, nil},
		{"iat within the leeway", func(h, c map[string]any) { c["iat"] = now.Add(10 * time.Second).Unix() }, nil},
		{"iat at the oldest", func(h, c map[string]any) { c["iat"] = now.Add(-time.Minute).Unix() }, nil},
		{"fractional iat", func(h, c map[string]any) { c["iat"] = float64(now.Unix()) + 0.5 }, nil},
		{"ath", func(h, c map[string]any) { c["ath"] = AccessTokenHash("tok") }, func(o *Options) { o.AccessToken = "tok" }},
		{"nonce ignored when not required", func(h, c map[string]any) { c["nonce"] = "whatever" }, nil},
		{"extra claims and headers", func(h, c map[string]any) { h["kid"] = "k"; c["extra"] = 1 }, nil},
		{"request URL with default port", nil, func(o *Options) { o.URL = "https://issuer.example:443/oauth2/token" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.o != nil {
				tc.o(&o)
			}
			if _, err := VerifyProof(es.proof(t, tc.edit), o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyNonce(t *testing.T) {
	es := newSigner(t, "ES256")
	o := opts()
	o.Nonce = func(n string) bool { return n == "good" }
	for _, tc := range []struct {
		nonce any
		code  string
	}{{nil, CodeUseNonce}, {"", CodeUseNonce}, {"stale", CodeUseNonce}, {7, CodeInvalidProof}, {"good", ""}} {
		_, err := VerifyProof(es.proof(t, func(h, c map[string]any) {
			if tc.nonce != nil {
				c["nonce"] = tc.nonce
			}
		}), o)
		var e *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("nonce %v: %v", tc.nonce, err)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code):
			t.Errorf("nonce %v: %v, want %s", tc.nonce, err, tc.code)
		}
	}
}

func TestVerifyHeaders(t *testing.T) {
	es := newSigner(t, "ES256")
	r, _ := http.NewRequest("POST", endpoint, nil)
	if _, err := Verify(r, opts()); !errors.Is(err, ErrNoProof) {
		t.Fatalf("no header: %v", err)
	}
	r.Header.Add("dpop", es.proof(t, nil))
	if _, err := Verify(r, opts()); err != nil {
		t.Fatalf("one header (any case): %v", err)
	}
	r.Header.Add("DPoP", es.proof(t, nil))
	var e *Error
	if _, err := Verify(r, opts()); !errors.As(err, &e) || e.Code != CodeInvalidProof {
		t.Fatalf("two headers: %v", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://A.example":                   "https://a.example/",
		"HTTP://a.example:80/x":               "http://a.example/x",
		"http://a.example:443/x":              "http://a.example:443/x",
		"https://a.example/%7euser/%2f":       "https://a.example/~user/%2F",
		"https://a.example/a/b/../../c/./d/.": "https://a.example/c/d/",
		"https://u:p@a.example/x?q#f":         "https://a.example/x",
		"https://[::1]:443/x":                 "https://[::1]/x",
		"https://a.example/..":                "https://a.example/",
	} {
		got, err := NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/x", "ftp://a/x", "https://a.example/%zz", "mailto:a@b", "https://"} {
		if got, err := NormalizeURL(bad); err == nil {
			t.Errorf("%s: %q accepted", bad, got)
		}
	}
}

func TestValidJKT(t *testing.T) {
	for s, want := range map[string]bool{
		"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs": true,
		"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X":  false,
		"NzbLsXh8uDCcd+6MNwXF4W_7noWXFZAfHkxZsRGC9Xs": false,
		"": false,
	} {
		if ValidJKT(s) != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
}

// FuzzVerifyProof: no input panics, and whatever is accepted verified.
func FuzzVerifyProof(f *testing.F) {
	es := newSigner(f, "ES256")
	f.Add(es.proof(f, nil))
	f.Add(es.proof(f, func(h, c map[string]any) { h["typ"] = "JWT" }))
	f.Add(es.proof(f, func(h, c map[string]any) { h["jwk"] = map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"} }))
	f.Add(es.proof(f, func(h, c map[string]any) { c["htu"] = "https://issuer.example:443/a/../oauth2/token?x" }))
	f.Add(es.proof(f, func(h, c map[string]any) { c["iat"] = "x"; c["nonce"] = 5 }))
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.")
	f.Fuzz(func(t *testing.T, proof string) {
		o := opts()
		o.AccessToken = "tok"
		o.Nonce = func(n string) bool { return len(n) < 10 }
		p, err := VerifyProof(proof, o)
		if err == nil && (p == nil || !ValidJKT(p.JKT) || p.JTI == "") {
			t.Fatalf("accepted without a proof: %+v", p)
		}
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("not an *Error: %v", err)
		}
	})
}

// BenchmarkVerifyProof: the CPU one ES256 proof costs the token endpoint,
// replay store aside.
func BenchmarkVerifyProof(b *testing.B) {
	es := newSigner(b, "ES256")
	p := es.proof(b, nil)
	o := opts()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyProof(p, o); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHeaderCache: a cached header gives the same answers as a parsed
// one, for one key's proofs and for another key's and algorithm's.
func TestHeaderCache(t *testing.T) {
	c := NewHeaderCache(4)
	o := opts()
	o.Headers = c
	for _, alg := range []string{"ES256", "EdDSA", "ES256"} {
		s := newSigner(t, alg)
		for range 3 {
			want, err := VerifyProof(s.proof(t, nil), opts())
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyProof(s.proof(t, nil), o)
			if err != nil || got.JKT != want.JKT || got.Alg != want.Alg {
				t.Fatalf("%s cached: %+v %v, want %+v", alg, got, err, want)
			}
		}
		// The configured list still applies to a cached header.
		narrow := o
		narrow.Algs = []string{"PS256"}
		if _, err := VerifyProof(s.proof(t, nil), narrow); err == nil {
			t.Fatalf("%s: a cached header must still meet Options.Algs", alg)
		}
		// A bad signature under a cached header is still refused.
		p := s.proof(t, nil)
		if _, err := VerifyProof(p[:len(p)-4]+"AAAA", o); err == nil {
			t.Fatal("a cached header must not skip the signature")
		}
	}
}

// BenchmarkVerifyProofCachedHeader: the same with the header cache, as
// the sidecar checks one client's proofs.
func BenchmarkVerifyProofCachedHeader(b *testing.B) {
	es := newSigner(b, "ES256")
	p := es.proof(b, nil)
	o := opts()
	o.Headers = NewHeaderCache(16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyProof(p, o); err != nil {
			b.Fatal(err)
		}
	}
}
