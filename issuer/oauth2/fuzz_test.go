package oauth2

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// FuzzParseTokenRequest: any body parses into a request or an API error,
// never a panic, and a parsed request respects the limits and RFC 6749
// §3.3's scope-token syntax.
func FuzzParseTokenRequest(f *testing.F) {
	for _, s := range []string{
		"grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c",
		"grant_type=a&grant_type=b", "scope=%22&grant_type=x", "grant_type=x&audience=a+b&audience=c",
		"grant_type=x&scope=++a++", "grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fx&code_verifier=v",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=ory_dc_a.b", "device_code=a&device_code=b&grant_type=x",
		"", "%zz", "grant_type",
		"grant_type=client_credentials&resource=https%3A%2F%2Fapi%2Fv1%3Fq%3D1&resource=urn%3Ax%3Ay",
		"grant_type=x&resource=%2Frel", "grant_type=x&resource=https%3A%2F%2Fa%23f", "grant_type=x&resource=https%3A",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // httpx.ParseForm answers invalid_request before parsing
		}
		req, err := parseTokenRequest(form)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.StatusCode() != 400 {
				t.Fatalf("not a 400 API error: %v", err)
			}
			return
		}
		if req.GrantType == "" || len(req.Scope) > maxScopes || len(req.Audience) > maxAudiences || len(req.Assertion) > maxAssertion {
			t.Fatalf("limits: %+v", req)
		}
		for _, s := range req.Scope {
			if !ValidScopeToken(s) || strings.Contains(s, " ") {
				t.Fatalf("invalid scope token %q accepted", s)
			}
		}
		for _, a := range req.Audience {
			if a == "" || strings.Contains(a, " ") {
				t.Fatalf("audience %q", a)
			}
		}
		if len(req.Resource) > maxAudiences {
			t.Fatalf("%d resources", len(req.Resource))
		}
		for _, r := range req.Resource {
			if CheckResource(r) != nil || strings.Contains(r, "#") {
				t.Fatalf("resource %q", r)
			}
		}
	})
}

// FuzzOpaqueToken: the opaque token parser never panics, accepts only
// canonical tokens, and only a token carrying a valid MAC verifies.
func FuzzOpaqueToken(f *testing.F) {
	k := newKeyring("first-system-secret-0123456789")
	good, _, _ := newOpaque(k, opaqueAccessToken, time.Now())
	for _, s := range []string{good, "ory_at_", "ory_at_.", "ory_at_a.b", "ory_at_" + strings.Repeat("A", 43) + "." + strings.Repeat("B", 43),
		good + "=", good[:len(good)-1], "ory_rt_x.y", "x.y.z", strings.Repeat(".", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		key, mac, ok := splitOpaque(opaqueAccessToken.prefix, token)
		if ok {
			if len(key) != opaqueKeyBytes || len(mac) < minMACBytes || len(mac) > maxMACBytes {
				t.Fatalf("accepted lengths %d/%d", len(key), len(mac))
			}
			// Canonical: re-encoding gives the token back.
			if opaqueAccessToken.prefix+b64.EncodeToString(key)+"."+b64.EncodeToString(mac) != token {
				t.Fatalf("non-canonical token accepted: %q", token)
			}
		}
		sig, verified := opaqueSignature(k, opaqueAccessToken, token)
		if verified {
			if !ok || token != good && !k.VerifyMAC(opaqueAccessToken.purpose, key, mac) || sig != storageSignature(key, mac) {
				t.Fatalf("verified %q", token)
			}
		}
		// The handler's dispatcher never panics either.
		h := &Handler{mac: k}
		_, _, _ = h.tokenSignature(token)
	})
}
