package rp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

var (
	keysOnce sync.Once
	rsaKeys  []*rsa.PrivateKey
)

// fakeOP is an OpenID provider that signs in "alice" at once.
type fakeOP struct {
	srv        *httptest.Server
	key, other jwk.Key
	pub        jwk.Set

	mu          sync.Mutex
	challenge   string
	nonce       string
	badNonce    bool
	tokenClient string
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	op := &fakeOP{}
	mk := func(kid string) jwk.Key {
		keysOnce.Do(func() {
			for range 2 {
				priv, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				rsaKeys = append(rsaKeys, priv)
			}
		})
		priv := rsaKeys[0]
		if kid == "k2" {
			priv = rsaKeys[1]
		}
		k, _ := jwk.Import(priv)
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.RS256())
		return k
	}
	op.key, op.other = mk("k1"), mk("k2")
	pk, _ := op.key.PublicKey()
	op.pub = jwk.NewSet()
	_ = op.pub.AddKey(pk)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := op.srv.URL
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": u, "authorization_endpoint": u + "/oauth2/auth", "token_endpoint": u + "/oauth2/token",
			"jwks_uri": u + "/.well-known/jwks.json", "end_session_endpoint": u + "/oauth2/sessions/logout",
			"backchannel_logout_supported": true, "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(op.pub)
	})
	mux.HandleFunc("GET /oauth2/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		op.mu.Lock()
		op.challenge, op.nonce = q.Get("code_challenge"), q.Get("nonce")
		op.mu.Unlock()
		if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad request", 400)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=c0de&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		op.mu.Lock()
		defer op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != "wiki" || secret != "s" || r.PostForm.Get("code") != "c0de" || base64.RawURLEncoding.EncodeToString(sum[:]) != op.challenge {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		op.tokenClient = id
		nonce := op.nonce
		if op.badNonce {
			nonce = "other"
		}
		idt := op.sign(t, op.key, map[string]any{"iss": op.srv.URL, "sub": "alice", "aud": []string{"wiki"}, "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": nonce, "sid": "sid-1", "name": "Alice Liddell", "email": "alice@example.com"})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "bearer", "expires_in": 3600, "id_token": idt})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOP) sign(t *testing.T, k jwk.Key, claims map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(claims)
	tok, err := jws.Sign(b, jws.WithKey(jwa.RS256(), k))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func (op *fakeOP) logoutClaims() map[string]any {
	return map[string]any{"iss": op.srv.URL, "aud": []string{"wiki"}, "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
		"jti": "jti-" + randomString(8), "sid": "sid-1", "sub": "alice",
		"events": map[string]any{backchannelEvent: map[string]any{}}}
}

type rig struct {
	op  *fakeOP
	app *App
	srv *httptest.Server
	c   *http.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	op := newFakeOP(t)
	r := &rig{op: op}
	// The app's base URL is only known once its server exists.
	var h http.Handler
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { h.ServeHTTP(w, req) }))
	t.Cleanup(r.srv.Close)
	app, err := New(context.Background(), Config{Name: "wiki", Title: "Team Wiki", BaseURL: r.srv.URL, Issuer: op.srv.URL,
		ClientID: "wiki", ClientSecret: "s", Others: map[string]string{"tickets": "http://127.0.0.1:1/"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.app, h = app, app.Handler()
	jar, _ := cookiejar.New(nil)
	r.c = &http.Client{Jar: jar}
	return r
}

func (r *rig) signIn(t *testing.T) string {
	t.Helper()
	resp, err := r.c.Get(r.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `<strong id="user-name">Alice Liddell</strong>`) {
		t.Fatalf("sign-in ended at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, b)
	}
	return string(b)
}

func TestSignInAndRPInitiatedLogout(t *testing.T) {
	r := newRig(t)
	page := r.signIn(t)
	if !strings.Contains(page, "alice@example.com") || !strings.Contains(page, `id="link-tickets"`) || r.app.SessionCount() != 1 {
		t.Fatalf("home page:\n%s", page)
	}
	tok := page[strings.Index(page, `name="csrf_token" value="`)+len(`name="csrf_token" value="`):]
	tok = tok[:strings.Index(tok, `"`)]
	noFollow := &http.Client{Jar: r.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", r.srv.URL+"/logout", strings.NewReader(url.Values{"csrf_token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Path != "/oauth2/sessions/logout" || loc.Query().Get("id_token_hint") == "" ||
		loc.Query().Get("post_logout_redirect_uri") != r.srv.URL+"/logged-out" {
		t.Fatalf("logout redirect %d %s", resp.StatusCode, loc)
	}
	if r.app.SessionCount() != 0 {
		t.Fatal("local session survived logout")
	}
	// Opening the app again starts a new sign-in.
	resp, _ = noFollow.Get(r.srv.URL + "/")
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("after logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestCallbackRefusals(t *testing.T) {
	r := newRig(t)
	// A callback that this browser did not start.
	resp, _ := r.c.Get(r.srv.URL + "/callback?code=c0de&state=forged")
	resp.Body.Close()
	if resp.StatusCode != 400 || r.app.SessionCount() != 0 {
		t.Fatalf("forged callback: %d", resp.StatusCode)
	}
	// An ID token whose nonce is not ours.
	r.op.badNonce = true
	resp, _ = r.c.Get(r.srv.URL + "/")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || r.app.SessionCount() != 0 {
		t.Fatalf("wrong nonce: %d\n%s", resp.StatusCode, b)
	}
}

func TestBackchannelLogout(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(op *fakeOP, c map[string]any)
		key    func(op *fakeOP) jwk.Key
		status int
	}{
		{"valid by sid", nil, nil, 200},
		{"valid by sub only", func(_ *fakeOP, c map[string]any) { delete(c, "sid") }, nil, 200},
		{"valid without exp", func(_ *fakeOP, c map[string]any) { delete(c, "exp") }, nil, 200},
		{"other audience", func(_ *fakeOP, c map[string]any) { c["aud"] = []string{"tickets"} }, nil, 400},
		{"other issuer", func(_ *fakeOP, c map[string]any) { c["iss"] = "http://127.0.0.1:1" }, nil, 400},
		{"carries a nonce", func(_ *fakeOP, c map[string]any) { c["nonce"] = "n" }, nil, 400},
		{"no logout event", func(_ *fakeOP, c map[string]any) { c["events"] = map[string]any{"x": map[string]any{}} }, nil, 400},
		{"neither sid nor sub", func(_ *fakeOP, c map[string]any) { delete(c, "sid"); delete(c, "sub") }, nil, 400},
		{"old iat", func(_ *fakeOP, c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }, nil, 400},
		{"expired", func(_ *fakeOP, c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, nil, 400},
		{"unknown key", nil, func(op *fakeOP) jwk.Key { return op.other }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.signIn(t)
			c := r.op.logoutClaims()
			if tt.mutate != nil {
				tt.mutate(r.op, c)
			}
			k := r.op.key
			if tt.key != nil {
				k = tt.key(r.op)
			}
			lt := r.op.sign(t, k, c)
			post := func() int {
				resp, err := http.PostForm(r.srv.URL+"/backchannel-logout", url.Values{"logout_token": {lt}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := post(); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			want := 1
			if tt.status == 200 {
				want = 0
				// A replayed token is refused.
				if got := post(); got != 400 {
					t.Fatalf("replay answered %d", got)
				}
			}
			if n := r.app.SessionCount(); n != want {
				t.Fatalf("%d sessions left, want %d", n, want)
			}
		})
	}
	r := newRig(t)
	resp, _ := http.PostForm(r.srv.URL+"/backchannel-logout", url.Values{})
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
