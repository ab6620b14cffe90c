package extauthz

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/valyala/fastjson"
)

func TestExtractToken(t *testing.T) {
	tests := []struct {
		name, authz, cookie, cookieName string
		want                            string
		err                             error
	}{
		{"bearer", "Bearer abc.def-_~+/=", "", "", "abc.def-_~+/=", nil},
		{"scheme case-insensitive", "bearer abc", "", "", "abc", nil},
		{"scheme upper", "BEARER abc", "", "", "abc", nil},
		{"extra spaces", "  Bearer   abc  ", "", "", "abc", nil},
		{"tab", "Bearer\tabc", "", "", "abc", nil},
		{"no header", "", "", "", "", nil},
		{"basic", "Basic dXNlcjpwYXNz", "", "", "", nil},
		{"scheme prefix only", "Bearerabc", "", "", "", nil},
		{"empty bearer", "Bearer", "", "", "", errMalformedAuthorization},
		{"bearer space", "Bearer   ", "", "", "", errMalformedAuthorization},
		{"two tokens", "Bearer a b", "", "", "", errMalformedAuthorization},
		{"repeated header", "Bearer a,Bearer b", "", "", "", errMalformedAuthorization},
		{"padding only", "Bearer ==", "", "", "", errMalformedAuthorization},
		{"padding in the middle", "Bearer a=b", "", "", "", errMalformedAuthorization},
		{"non-ascii", "Bearer abc\u00e9", "", "", "", errMalformedAuthorization},
		{"too long", "Bearer " + strings.Repeat("a", 65), "", "", "", errTokenTooLong},
		{"cookie", "", "a=1; tok=xyz; b=2", "tok", "xyz", nil},
		{"cookie quoted", "", `tok="xyz"`, "tok", "xyz", nil},
		{"cookie ignored without a name", "", "tok=xyz", "", "", nil},
		{"header wins over cookie", "Bearer hdr", "tok=xyz", "tok", "hdr", nil},
		{"basic header, cookie used", "Basic x", "tok=xyz", "tok", "xyz", nil},
		{"bad cookie value", "", "tok=a b", "tok", "", errMalformedAuthorization},
		{"cookie too long", "", "tok=" + strings.Repeat("a", 65), "tok", "", errTokenTooLong},
		{"cookie name prefix", "", "xtok=1; tok=2", "tok", "2", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExtractToken(tc.authz, tc.cookie, tc.cookieName, 64)
			if got != tc.want || err != tc.err {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct {
		header, name, want string
		ok                 bool
	}{
		{"a=1", "a", "1", true},
		{"a=1;b=2", "b", "2", true},
		{"a=1, b=2", "b", "2", true},
		{" a = 1 ", "a", "1", true},
		{"a", "a", "", false},
		{"a=", "a", "", true},
		{"b=1; a=2; a=3", "a", "2", true},
		{"", "a", "", false},
	} {
		if got, ok := CookieValue(tc.header, tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("CookieValue(%q, %q) = %q, %v; want %q, %v", tc.header, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "/",
		"/":                 "/",
		"/a/b":              "/a/b",
		"/a/b/":             "/a/b/",
		"/a/b?x=/c":         "/a/b",
		"/a#frag":           "/a",
		"/a//b":             "/a/b",
		"/a/./b":            "/a/b",
		"/a/../b":           "/b",
		"/a/b/..":           "/a/",
		"/../../etc":        "/etc",
		"/%61%62":           "/ab",
		"/a/%2e%2e/b":       "/b",
		"/a%2Fb":            "/a%2Fb",
		"/a%2f..%2fb":       "/a%2F..%2Fb",
		"/a%5c..":           "/a%5C..",
		"/%zz":              "/%zz",
		"/%":                "/%",
		"*":                 "*",
		"http://x/y":        "http://x/y",
		"/a/.hidden/b":      "/a/.hidden/b",
		"/a/..b":            "/a/..b",
		"/public/%2E%2E/x/": "/x/",
	} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM": "example.com", "example.com:443": "example.com", "[::1]:80": "::1", "example.com.": "example.com", "": "",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFreshnessLifetime(t *testing.T) {
	for _, tc := range []struct {
		in  string
		age time.Duration
		ok  bool
	}{
		{"max-age=300", 300 * time.Second, true},
		{"public, max-age=60, must-revalidate", time.Minute, true},
		{"MAX-AGE=\"10\"", 10 * time.Second, true},
		{"max-age=60, s-maxage=5", 5 * time.Second, true},
		{"no-store", 0, true},
		{"max-age=600, no-cache", 0, true},
		{"max-age=-1", 0, false},
		{"max-age=abc", 0, false},
		{"", 0, false},
		{"private", 0, false},
		{"max-age=99999999999999999999", 0, false},
	} {
		age, ok := FreshnessLifetime(tc.in)
		if age != tc.age || ok != tc.ok {
			t.Errorf("FreshnessLifetime(%q) = %s, %v; want %s, %v", tc.in, age, ok, tc.age, tc.ok)
		}
	}
}

func TestWWWAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		realm, code, desc, scope, want string
	}{
		{"", "", "", "", "Bearer"},
		{"api", "", "ignored", "", `Bearer realm="api"`},
		{"", "invalid_token", "The access token expired.", "", `Bearer error="invalid_token", error_description="The access token expired."`},
		{"r", "insufficient_scope", "d", "a b", `Bearer realm="r", error="insufficient_scope", error_description="d", scope="a b"`},
		{"", "invalid_token", "bad \"quote\" \\ \n", "", `Bearer error="invalid_token", error_description="bad quote  "`},
	} {
		if got := wwwAuthenticate(tc.realm, tc.code, tc.desc, tc.scope); got != tc.want {
			t.Errorf("got %s\nwant %s", got, tc.want)
		}
	}
}

func TestForwardedRequest(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://sidecar/auth", nil)
	r.Host = "sidecar:4456"
	r.Header.Set("X-Original-URL", "https://App.example.com/a/b?q=1")
	r.Header.Set("X-Original-Method", "post")
	got := ForwardedRequest(r)
	if got.Host != "App.example.com" || got.Path != "/a/b" || got.Method != "POST" {
		t.Fatalf("%+v", got)
	}
	r.Header.Set("X-Forwarded-Uri", "/x?y")
	r.Header.Set("X-Forwarded-Host", "f.example.com")
	r.Header.Set("X-Forwarded-Method", "PUT")
	got = ForwardedRequest(r)
	if got.Host != "f.example.com" || got.Path != "/x?y" || got.Method != "PUT" {
		t.Fatalf("%+v", got)
	}
}

// Fuzz targets: go test runs the seeds; `go test -fuzz FuzzX` explores.

func FuzzExtractToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Basic x", "Bearer", "Bearer a,Bearer b", "Bearer ===", "Bearer \x00"} {
		f.Add(s, "tok=abc; x=y", "tok")
	}
	f.Add("", `tok="q"`, "tok")
	f.Fuzz(func(t *testing.T, authz, cookie, name string) {
		tok, err := ExtractToken(authz, cookie, name, 128)
		if err != nil && tok != "" {
			t.Fatal("token returned with an error")
		}
		if tok != "" && (len(tok) > 128 || !isB64Token(tok)) {
			t.Fatalf("invalid token %q accepted", tok)
		}
	})
}

func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"a=1; b=2", "a=1, b=\"2\"", ";;=;", "a", "=", " a = b "} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := CookieValue(header, name)
		if !ok && v != "" {
			t.Fatal("value without ok")
		}
		if strings.ContainsAny(v, ";,") {
			t.Fatalf("value %q spans pairs", v)
		}
	})
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "//a//b/", "/a%2fb", "/%", "/a?b#c", "x", "/./.././"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := NormalizePath(p)
		if !strings.HasPrefix(n, "/") {
			return // not origin-form: matches no path rule
		}
		if strings.Contains(n, "//") || strings.Contains(n, "/../") || strings.HasSuffix(n, "/..") || strings.Contains(n, "/./") {
			t.Fatalf("NormalizePath(%q) = %q is not normalized", p, n)
		}
		if NormalizePath(n) != n && !strings.Contains(n, "%") {
			t.Fatalf("NormalizePath is not idempotent on %q: %q", n, NormalizePath(n))
		}
	})
}

func FuzzFreshnessLifetime(f *testing.F) {
	for _, s := range []string{"max-age=300", "no-store", "s-maxage=1, max-age=2", `max-age="3"`, "max-age=", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if age, _ := FreshnessLifetime(s); age < 0 {
			t.Fatalf("negative lifetime for %q", s)
		}
	})
}

// FuzzAuthenticate feeds arbitrary tokens through the whole validation
// path (JWT parsing and opaque introspection against the fake issuer):
// never a panic, never an identity.
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f, func(c *Config) { c.Issuers[0].AcceptTypJWT = true })
	valid := e.is.Token(e.key, nil)
	parts := strings.Split(valid, ".")
	// An ID token signed by the issuer's access token key: never accepted.
	idToken := e.is.Sign(e.key, e.is.IDTokenClaims("web"), map[string]any{"typ": "JWT"})
	for _, s := range []string{valid, idToken, parts[0] + "." + parts[1] + ".", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.", "a.b.c", "ory_at_x.y", "...", "a.b.c.d.e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, deny, err := e.a.Authenticate(context.Background(), tok)
		if tok == valid {
			return
		}
		if id != nil {
			t.Fatalf("fuzzed token %q accepted", tok)
		}
		if deny == nil && err == nil {
			t.Fatal("neither identity, denial nor error")
		}
	})
}

// The fast claims decoder must answer exactly as encoding/json does:
// the same error or no error, and the same values.
func FuzzParseClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://i","sub":"u","exp":1700000000,"nbf":1.5e9,"aud":["a","b"],"scope":"read write","ext":{"email":"a@b","n":[1,{"x":null}]},"ok":true,"no":false}`,
		`{"a":1,"a":{"b":2}}`, `{"a":"\"\\\/\b\f\n\r\t"}`, `{"a":"\u00e9"}`, `{"a":"\ud800"}`, "{\"a\":\"\t\"}", `{"a":"é"}`,
		"{\"a\":\"\xff\"}", `{"a":01}`, `{"a":-0.0e+1}`, `{"a":1}x`, `[1]`, `null`, `{}`, ` {"a" : [ ] } `, `{"a":inf}`, `{"a":NaN}`,
		`{"a":1,}`, `{"a"}`, "{\"a\":1}\x00", `{"":""}`, `{"a":[[[[[[[[[[1]]]]]]]]]]}`,
		`{"sub":1,"client_id":null,"aud":"x","exp":"1","nbf":-1,"iat":1e12,"scope":" a  b a ","scp":["b","","c"]}`,
		`{"sub":"a","sub":null,"aud":[1],"exp":null,"scope":["a"],"scp":"x y x"}`, `{"aud":{},"scp":1,"iat":1.7e9,"nbf":0.5}`,
		`{"scope":"a b c d e f g h i j k l m n o p q r s a","scp":["t","u","b"]}`, `{"ext":1,"ext.email":"x","sub":{"x":1}}`,
		// ID tokens (OpenID Connect Core §2), as Hydra and Gatehouse write them.
		`{"iss":"https://i","sub":"alice","aud":["web"],"azp":"web","exp":1700003600,"iat":1700000000,"jti":"j","auth_time":1699999940,"rat":1699999940,"nonce":"n","at_hash":"mbvxSPQmEvhXBW3TkHVNZg","sid":"s","acr":"0","amr":["pwd"]}`,
		`{"sub":"alice","aud":"web","c_hash":null,"s_hash":1,"nonce":"","at_hash":"h","at_hash":null,"scope":"openid"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := parseClaims(b)
		want, werr := parseClaimsStd(b)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %#v, %v; encoding/json %#v, %v", b, got, gerr, want, werr)
		}
		// A JWT's claims read in place: what a decision reads is the same
		// as from encoding/json's map, whenever the fast path takes it.
		var p fastjson.Parser
		var fc fastClaims
		if !fc.parse(&p, b, map[string]bool{"a": true, "ext": true, "ext.email": true, "": true}) {
			return
		}
		if werr != nil {
			t.Fatalf("%q: fastClaims took what encoding/json refuses: %v", b, werr)
		}
		sameClaims(t, b, &fc, mapClaims(want))
	})
}

// sameClaims fails unless a claims set reads as encoding/json's map does.
func sameClaims(t *testing.T, b []byte, got claimSet, want mapClaims) {
	t.Helper()
	same := func(what string, g, w any, gerr, werr error) {
		t.Helper()
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(g, w) {
			t.Fatalf("%q: %s: fast %#v, %v; encoding/json %#v, %v", b, what, g, gerr, w, werr)
		}
	}
	for _, name := range []string{"a", "ext", "", "ext.email"} {
		gv, gok := got.value(name)
		wv, wok := want.value(name)
		same("value "+name, [2]any{gv, gok}, [2]any{wv, wok}, nil, nil)
	}
	for _, name := range registeredClaims {
		gs, gp, gerr := got.str(name)
		ws, wp, werr := want.str(name)
		same("str "+name, [2]any{gs, gp}, [2]any{ws, wp}, gerr, werr)
		gt, gp, gerr := got.date(name)
		wt, wp, werr := want.date(name)
		same("date "+name, [2]any{gt, gp}, [2]any{wt, wp}, gerr, werr)
		gl, gerr := got.strs(name)
		wl, werr := want.strs(name)
		same("strs "+name, gl, wl, gerr, werr)
		gv, gok := got.value(name)
		wv, wok := want.value(name)
		same("value "+name, [2]any{gv, gok}, [2]any{wv, wok}, nil, nil)
		same("has "+name, got.has(name), want.has(name), nil, nil)
	}
	gl, gerr := got.scopes()
	wl, werr := want.scopes()
	same("scopes", gl, wl, gerr, werr)
	same("accessTokenClaims", accessTokenClaims(got), accessTokenClaims(want), nil, nil)
	for _, path := range []string{"a", "ext.email", "ext.n", "a.b", "iss", "sub.x", ""} {
		gv, gok := lookupIn(got, path)
		wv, wok := lookupClaim(want, path)
		same("lookup "+path, [2]any{gv, gok}, [2]any{wv, wok}, nil, nil)
	}
}

// go test -bench ParseClaims ./extauthz/: a typical access token's claims.
func BenchmarkParseClaims(b *testing.B) {
	raw := []byte(`{"iss":"https://auth.example.com","sub":"user-42","aud":["api"],"client_id":"client-1","exp":1790000000,"iat":1789996400,"nbf":1789996400,"jti":"bench-42","scope":"read write","ext":{"tenant":"acme"}}`)
	for _, bc := range []struct {
		name  string
		parse func([]byte) (map[string]any, error)
	}{{"fastjson", parseClaims}, {"encoding_json", parseClaimsStd}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzSplitJWS: the compact JWS parser never panics, and whatever it
// accepts jwx's own header helpers read the same way (the same three
// parts, alg, kid, typ, crit/b64 presence).
func FuzzSplitJWS(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.e30.c2ln", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.", "a.b.c", "..", "a.b.c.d",
		b64.EncodeToString([]byte(`{"alg":"RS256","alg":"none"}`)) + ".e30.x", b64.EncodeToString([]byte(`{"alg":"ES256","crit":["x"],"kid":1}`)) + ".e30.x",
		b64.EncodeToString([]byte(`{"alg":"\u0052S256","kid":"a\"b","typ":null}`)) + ".e30.x", b64.EncodeToString([]byte(`{"alg":"RS256","b64":false}`)) + ".e30.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		sc := new(jwsScratch)
		jp, ok := splitJWS(sc, tok)
		sig, sigOK := sc.decodeSignature(jp.sig)
		if !ok {
			return
		}
		h, p, s, err := jwsbb.SplitCompact([]byte(tok))
		if err != nil || jp.signingInput != string(h)+"."+string(p) || jp.payload != string(p) || jp.sig != string(s) {
			t.Fatalf("%q: split %q %q %q, jwsbb %q %q %q %v", tok, jp.signingInput, jp.payload, jp.sig, h, p, s, err)
		}
		hdr := jwsbb.HeaderParseCompact(h)
		if alg, err := jwsbb.HeaderGetString(hdr, "alg"); err != nil || alg != jp.hdr.alg {
			t.Fatalf("%q: alg %q, jwsbb %q %v", tok, jp.hdr.alg, alg, err)
		}
		if kid, _ := jwsbb.HeaderGetString(hdr, "kid"); kid != jp.hdr.kid {
			t.Fatalf("%q: kid %q, jwsbb %q", tok, jp.hdr.kid, kid)
		}
		if typ, _ := jwsbb.HeaderGetString(hdr, "typ"); typ != jp.hdr.typ {
			t.Fatalf("%q: typ %q, jwsbb %q", tok, jp.hdr.typ, typ)
		}
		if crit := jwsbb.HeaderHas(hdr, "crit") || jwsbb.HeaderHas(hdr, "b64"); crit != jp.hdr.critical {
			t.Fatalf("%q: critical %v, jwsbb %v", tok, jp.hdr.critical, crit)
		}
		if want, err := base64.RawURLEncoding.DecodeString(jp.sig); (err == nil) != sigOK || (err == nil && !bytes.Equal(want, sig)) {
			t.Fatalf("%q: signature %x %v, want %x %v", tok, sig, sigOK, want, err)
		}
	})
}
