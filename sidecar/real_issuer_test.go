package sidecar_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// realProvider is the real gatehouse issuer binary: tokens from its
// client_credentials grant (a JWT client and an opaque one) and from its
// authorization code flow (userTokens), key rotation through its admin
// keys API, revocation through RFC 7009, introspection at its admin API
// (which needs no client credentials).
type realProvider struct {
	is          *testbin.Issuer
	jwt, opaque testbin.Client
}

var _ provider = (*realProvider)(nil)

func newRealProvider(t *testing.T) *realProvider {
	t.Helper()
	// The login and consent apps are never contacted: userTokens plays
	// them through the admin API.
	p := &realProvider{is: testbin.StartIssuer(t, map[string]string{
		"URLS_LOGIN": appBase + "/login", "URLS_CONSENT": appBase + "/consent"})}
	p.jwt = p.client(t, "jwt")
	p.opaque = p.client(t, "opaque")
	return p
}

func (p *realProvider) admin(t *testing.T, method, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, p.is.AdminURL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func (p *realProvider) client(t *testing.T, strategy string) testbin.Client {
	return p.is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"},
		"scope": "read write admin", "access_token_strategy": strategy})
}

func (p *realProvider) token(t *testing.T, c testbin.Client, scopes []string) (string, identity) {
	t.Helper()
	sc := scopeOrDefault(scopes)
	tok := p.is.Token(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {sc}})
	// client_credentials: the subject is the client.
	return tok.AccessToken, identity{Subject: c.ID, ClientID: c.ID, Scopes: sc}
}

// appBase is where the login and consent apps and the client's callback
// would live; userTokens stops at every redirect there.
const appBase = "http://127.0.0.1:9"

// userTokens runs an authorization code flow (openid read) for a JWT
// client as a browser, the login and consent apps and the client would,
// and returns the access token and the ID token the issuer sends back.
func (p *realProvider) userTokens(t *testing.T, subject string) (access, idToken string) {
	t.Helper()
	c := p.is.RegisterClient(t, map[string]any{"grant_types": []string{"authorization_code"},
		"response_types": []string{"code"}, "scope": "openid read", "redirect_uris": []string{appBase + "/callback"},
		"access_token_strategy": "jwt"})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// visit follows the issuer's redirects and returns the first URL
	// outside it.
	visit := func(u string) *url.URL {
		t.Helper()
		for range 10 {
			resp, err := browser.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if resp.StatusCode/100 != 3 || err != nil {
				t.Fatalf("GET %s: %d, want a redirect", u, resp.StatusCode)
			}
			if !strings.HasPrefix(next.String(), p.is.PublicURL+"/") {
				return next
			}
			u = next.String()
		}
		t.Fatalf("too many redirects from %s", u)
		return nil
	}
	// accept plays the login or consent app at the URL the issuer sent the
	// browser to, and returns where the app sends it back.
	accept := func(at *url.URL, kind string, body map[string]any) string {
		t.Helper()
		ch := at.Query().Get(kind + "_challenge")
		if at.Path != "/"+kind || ch == "" {
			t.Fatalf("expected the %s app, got %v", kind, at)
		}
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		p.admin(t, http.MethodPut, "/admin/oauth2/auth/requests/"+kind+"/accept?"+kind+"_challenge="+url.QueryEscape(ch), body, &out)
		return out.RedirectTo
	}
	auth := p.is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {c.ID}, "response_type": {"code"},
		"scope": {"openid read"}, "redirect_uri": {appBase + "/callback"}, "state": {"state-0123456789"},
		"nonce": {"nonce-0123456789"}}.Encode()
	at := visit(accept(visit(auth), "login", map[string]any{"subject": subject}))
	cb := visit(accept(at, "consent", map[string]any{"grant_scope": []string{"openid", "read"}}))
	code := cb.Query().Get("code")
	if cb.Path != "/callback" || code == "" {
		t.Fatalf("expected the callback with a code, got %v", cb)
	}
	tok := p.is.Token(t, c, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appBase + "/callback"}})
	if tok.IDToken == "" {
		t.Fatal("the code exchange sent no ID token")
	}
	return tok.AccessToken, tok.IDToken
}

func (p *realProvider) Issuer() string           { return p.is.PublicURL }
func (p *realProvider) IntrospectionURL() string { return p.is.AdminURL + "/admin/oauth2/introspect" }
func (p *realProvider) IntrospectionCredentials() (string, string) {
	return "", ""
}
func (p *realProvider) JWT(t *testing.T, scopes ...string) (string, identity) {
	return p.token(t, p.jwt, scopes)
}
func (p *realProvider) Opaque(t *testing.T, scopes ...string) (string, identity) {
	return p.token(t, p.opaque, scopes)
}

func (p *realProvider) Revoke(t *testing.T, tok string) {
	req, _ := http.NewRequest(http.MethodPost, p.is.PublicURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.opaque.ID, p.opaque.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
}

// RotateKey generates a new key in the access token set: it signs at once.
func (p *realProvider) RotateKey(t *testing.T) {
	p.admin(t, http.MethodPost, "/admin/keys/hydra.jwt.access-token", map[string]string{"alg": "ES256", "use": "sig"}, nil)
}

func (p *realProvider) Stop(t *testing.T) {
	if err := p.is.Stop(10 * time.Second); err != nil {
		t.Logf("issuer exit: %v", err)
	}
}

// TestAgainstTheRealIssuer runs the sidecar binary against the gatehouse
// binary, as deployed: JWT and opaque client_credentials tokens through
// Envoy's Check, /auth and /introspect; a key rotated at the issuer picked
// up live; a revoked opaque token denied once the introspection cache TTL
// has passed; the issuer stopped and JWTs still validated from cached keys.
func TestAgainstTheRealIssuer(t *testing.T) {
	p := newRealProvider(t)
	s := startSidecar(t, p, "introspection:\n  cache_ttl: 1s\n")
	jwt, jwtWant := p.JWT(t, "read")
	op, opWant := p.Opaque(t, "read", "write")

	for _, tc := range []struct {
		name, tok string
		want      identity
	}{{"jwt", jwt, jwtWant}, {"opaque", op, opWant}} {
		t.Run("check "+tc.name, func(t *testing.T) {
			set, _ := okSet(t, s.check(t, "GET", "api.example.com", "/orders", map[string]string{"authorization": "Bearer " + tc.tok, "x-user-id": "spoofed"}))
			if set["x-user-id"] != tc.want.Subject || set["x-client-id"] != tc.want.ClientID || set["x-user-scopes"] != tc.want.Scopes {
				t.Errorf("identity %v, want %+v", set, tc.want)
			}
			denied(t, s.check(t, "POST", "api.example.com", "/admin/x", bearer(tc.tok)), codes.PermissionDenied, 403, `Bearer error="insufficient_scope"`)
		})
		t.Run("forward-auth "+tc.name, func(t *testing.T) {
			resp := forwardAuth(t, s, "GET", "api.example.com", "/orders", map[string]string{"Authorization": "Bearer " + tc.tok})
			if resp.StatusCode != 200 || resp.Header.Get("X-User-Id") != tc.want.Subject {
				t.Errorf("/auth: %d %v", resp.StatusCode, resp.Header)
			}
		})
		t.Run("introspect "+tc.name, func(t *testing.T) {
			code, m := introspect(t, s, "apisix", "apisix-secret-0123456789", tc.tok)
			if code != 200 || m["active"] != true || m["client_id"] != tc.want.ClientID || m["scope"] != tc.want.Scopes {
				t.Errorf("introspect: %d %v", code, m)
			}
		})
	}
	denied(t, s.check(t, "GET", "a", "/", bearer(jwt[:len(jwt)-4]+"AAAA")), codes.Unauthenticated, 401, `Bearer error="invalid_token"`)

	t.Run("key rotation", func(t *testing.T) {
		p.RotateKey(t)
		fresh, want := p.JWT(t)
		set, _ := okSet(t, s.check(t, "GET", "a", "/", bearer(fresh)))
		if set["x-user-id"] != want.Subject {
			t.Errorf("x-user-id %q", set["x-user-id"])
		}
		okSet(t, s.check(t, "GET", "a", "/", bearer(jwt))) // the old key is still published
	})

	t.Run("revoked opaque token", func(t *testing.T) {
		tok, _ := p.Opaque(t)
		okSet(t, s.check(t, "GET", "a", "/", bearer(tok)))
		p.Revoke(t, tok)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := s.check(t, "GET", "a", "/", bearer(tok))
			if r.GetStatus().GetCode() != 0 {
				denied(t, r, codes.Unauthenticated, 401, `Bearer error="invalid_token"`)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("revoked token still accepted 10 s later (cache TTL 1 s)")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("issuer stopped", func(t *testing.T) {
		notYetSeen, want := p.JWT(t)
		p.Stop(t)
		set, _ := okSet(t, s.check(t, "GET", "a", "/", bearer(notYetSeen)))
		if set["x-user-id"] != want.Subject {
			t.Errorf("x-user-id %q", set["x-user-id"])
		}
	})
	s.assertNoTokenLogged(t, jwt, op)
}
