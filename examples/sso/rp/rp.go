// Package rp is the relying party behind the SSO demo apps "wiki" and
// "tickets": an OpenID Connect client using github.com/coreos/go-oidc/v3
// and golang.org/x/oauth2 (authorization code with PKCE, nonce-checked ID
// tokens), RP-initiated logout through the issuer's end_session_endpoint
// and OpenID Connect Back-Channel Logout 1.0.
package rp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Config describes one relying-party app.
type Config struct {
	// Name is the app's short name ("wiki"); it prefixes its cookie,
	// because browsers share cookies between the ports of one host.
	Name string
	// Title is shown on its pages ("Team Wiki").
	Title string
	// BaseURL is where the browser reaches the app, e.g.
	// http://127.0.0.1:5001; the redirect URI is BaseURL/callback.
	BaseURL string
	// Issuer is the OpenID provider (its discovery is fetched).
	Issuer                 string
	ClientID, ClientSecret string
	// Scopes requested (default openid offline_access profile email).
	Scopes []string
	// Others are links to the other apps of the demo, by title.
	Others map[string]string
	// SessionTTL bounds a local session (default 8h).
	SessionTTL time.Duration
}

// session is one browser's state in the app.
type session struct {
	// pending login
	state, nonce, verifier string
	started                time.Time
	// signed in
	Subject, SID, Name, Email string
	IDToken                   string
	Claims                    map[string]any
	signedIn                  time.Time
}

// App is a relying-party web app.
type App struct {
	cfg      Config
	log      *zap.Logger
	now      func() time.Time
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	logoutV  *oidc.IDTokenVerifier
	endSess  string
	key      []byte

	mu       sync.Mutex
	sessions map[string]*session
	seenJTI  map[string]time.Time
}

// New discovers the issuer and returns the app. ctx bounds discovery.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	if cfg.Name == "" || cfg.BaseURL == "" || cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("rp: Name, BaseURL, Issuer and ClientID are required")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "profile", "email"}
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Title == "" {
		cfg.Title = cfg.Name
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession  string `json:"end_session_endpoint"`
		Backchannel bool   `json:"backchannel_logout_supported"`
	}
	_ = p.Claims(&meta)
	a := &App{
		cfg: cfg, log: log, now: time.Now,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.BaseURL + "/callback", Scopes: cfg.Scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		// Back-Channel Logout 1.0 §2.6: validated like an ID token; the
		// expiry is checked by hand below because exp was optional in
		// drafts that providers still follow.
		logoutV:  p.Verifier(&oidc.Config{ClientID: cfg.ClientID, SkipExpiryCheck: true}),
		endSess:  meta.EndSession,
		key:      make([]byte, 32),
		sessions: map[string]*session{},
		seenJTI:  map[string]time.Time{},
	}
	_, _ = rand.Read(a.key)
	return a, nil
}

func (a *App) cookieName() string { return a.cfg.Name + "_session" }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Handler returns the app's routes.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /logged-out", a.loggedOut)
	mux.HandleFunc("POST /backchannel-logout", a.backchannelLogout)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	cop := http.NewCrossOriginProtection()
	// The issuer posts back-channel logout tokens server to server.
	cop.AddInsecureBypassPattern("POST /backchannel-logout")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		cop.Handler(http.MaxBytesHandler(mux, 64<<10)).ServeHTTP(w, r)
	})
}

// current returns the browser's session id and session (nil if none).
func (a *App) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(a.cookieName())
	if err != nil {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s != nil && !s.signedIn.IsZero() && a.now().Sub(s.signedIn) > a.cfg.SessionTTL {
		delete(a.sessions, c.Value)
		return "", nil
	}
	if s == nil {
		return "", nil
	}
	return c.Value, s
}

func (a *App) setCookie(w http.ResponseWriter, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: a.cookieName(), Value: id, Path: "/", HttpOnly: true,
		Secure: strings.HasPrefix(a.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

func (a *App) csrf(id string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("logout\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;color:#1d2330}
header{display:flex;justify-content:space-between;align-items:center;border-bottom:2px solid #2f5bd3;padding-bottom:.5rem}
button{padding:.4rem .9rem;border:1px solid #2f5bd3;background:#fff;color:#2f5bd3;border-radius:.3rem;cursor:pointer}
.err{background:#fdecec;color:#8a1c1c;padding:.6rem}</style></head><body>
<header><h1 id="app">{{.Title}}</h1>{{if .User}}<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button id="logout" type="submit">Sign out</button></form>{{end}}</header>{{end}}
{{define "home"}}{{template "top" .}}
<p>Signed in as <strong id="user-name">{{.User.Name}}</strong> (subject <code id="subject">{{.User.Subject}}</code>{{if .User.Email}}, <span id="email">{{.User.Email}}</span>{{end}}).</p>
{{if .Others}}<p>Other apps: {{range $t, $u := .Others}}<a href="{{$u}}" id="link-{{$t}}">{{$t}}</a> {{end}}</p>{{end}}
<details><summary>ID token claims</summary><pre id="claims">{{.ClaimsJSON}}</pre></details>
</body></html>{{end}}
{{define "loggedout"}}{{template "top" .}}
<p id="signed-out">You are signed out of {{.Title}}.</p><p><a href="/login" id="login">Sign in again</a></p></body></html>{{end}}
{{define "error"}}{{template "top" .}}
<p class="err" id="error">{{.Error}}</p><p><a href="/login">Try again</a></p></body></html>{{end}}
`))

type pageData struct {
	Title, CSRF, Error, ClaimsJSON string
	User                           *session
	Others                         map[string]string
}

func (a *App) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Title = a.cfg.Title
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		a.log.Error("render", zap.Error(err))
	}
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	id, s := a.current(r)
	if s == nil || s.signedIn.IsZero() {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	cj, _ := json.MarshalIndent(s.Claims, "", "  ")
	a.render(w, http.StatusOK, "home", pageData{User: s, CSRF: a.csrf(id), Others: a.cfg.Others, ClaimsJSON: string(cj)})
}

// login starts the authorization code flow with state, nonce and PKCE.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	id := randomString(32)
	s := &session{state: randomString(24), nonce: randomString(24), verifier: oauth2.GenerateVerifier(), started: a.now()}
	a.mu.Lock()
	a.gc()
	a.sessions[id] = s
	a.mu.Unlock()
	a.setCookie(w, id, 0)
	u := a.oauth.AuthCodeURL(s.state, oidc.Nonce(s.nonce), oauth2.S256ChallengeOption(s.verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// gc drops pending logins older than 10 minutes and expired sessions.
// Callers hold a.mu.
func (a *App) gc() {
	now := a.now()
	for id, s := range a.sessions {
		if (s.signedIn.IsZero() && now.Sub(s.started) > 10*time.Minute) || (!s.signedIn.IsZero() && now.Sub(s.signedIn) > a.cfg.SessionTTL) {
			delete(a.sessions, id)
		}
	}
	for j, t := range a.seenJTI {
		if now.Sub(t) > time.Hour {
			delete(a.seenJTI, j)
		}
	}
}

func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	id, s := a.current(r)
	q := r.URL.Query()
	if s == nil || s.state == "" || !hmac.Equal([]byte(q.Get("state")), []byte(s.state)) {
		a.render(w, http.StatusBadRequest, "error", pageData{Error: "This sign-in was not started here or has expired."})
		return
	}
	if e := q.Get("error"); e != "" {
		a.render(w, http.StatusOK, "error", pageData{Error: "The sign-in failed: " + e + ": " + q.Get("error_description")})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(s.verifier))
	if err != nil {
		a.log.Warn("code exchange failed", zap.Error(err))
		a.render(w, http.StatusBadGateway, "error", pageData{Error: "The sign-in could not be completed (code exchange failed)."})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil || idt.Nonce != s.nonce {
		a.log.Warn("ID token rejected", zap.Error(err))
		a.render(w, http.StatusBadGateway, "error", pageData{Error: "The identity provider's ID token was not valid."})
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	str := func(k string) string { v, _ := claims[k].(string); return v }
	signed := &session{Subject: idt.Subject, SID: str("sid"), Name: str("name"), Email: str("email"), IDToken: raw,
		Claims: claims, signedIn: a.now()}
	if signed.Name == "" {
		signed.Name = idt.Subject
	}
	// A new session id after sign-in (no session fixation).
	nid := randomString(32)
	a.mu.Lock()
	delete(a.sessions, id)
	a.sessions[nid] = signed
	a.mu.Unlock()
	a.setCookie(w, nid, int(a.cfg.SessionTTL/time.Second))
	a.log.Info("signed in", zap.String("sub", idt.Subject))
	http.Redirect(w, r, "/", http.StatusFound)
}

// logout ends the local session and sends the browser to the issuer's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0 §2).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	id, s := a.current(r)
	if s == nil || !hmac.Equal([]byte(r.PostFormValue("csrf_token")), []byte(a.csrf(id))) {
		http.Redirect(w, r, "/logged-out", http.StatusFound)
		return
	}
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
	a.setCookie(w, "", -1)
	if a.endSess == "" {
		http.Redirect(w, r, "/logged-out", http.StatusFound)
		return
	}
	v := url.Values{"id_token_hint": {s.IDToken}, "post_logout_redirect_uri": {a.cfg.BaseURL + "/logged-out"},
		"client_id": {a.cfg.ClientID}, "state": {randomString(16)}}
	sep := "?"
	if strings.Contains(a.endSess, "?") {
		sep = "&"
	}
	http.Redirect(w, r, a.endSess+sep+v.Encode(), http.StatusFound)
}

func (a *App) loggedOut(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "loggedout", pageData{})
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backchannelLogout implements OpenID Connect Back-Channel Logout 1.0
// §2.5-2.8: validate the logout_token and end every local session of its
// sid (or of its sub when it has no sid).
func (a *App) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	fail := func(desc string) {
		a.log.Warn("back-channel logout rejected", zap.String("reason", desc))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": desc})
	}
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		fail("logout_token is missing")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	// §2.6 steps 3-4: signature, iss, aud (go-oidc), then iat.
	tok, err := a.logoutV.Verify(ctx, raw)
	if err != nil {
		fail("logout_token is not valid: " + err.Error())
		return
	}
	var c struct {
		SID    string                     `json:"sid"`
		JTI    string                     `json:"jti"`
		Exp    *int64                     `json:"exp"`
		Nonce  *string                    `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := tok.Claims(&c); err != nil {
		fail("logout_token claims are malformed")
		return
	}
	now := a.now()
	switch {
	case tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(2*time.Minute)) || now.Sub(tok.IssuedAt) > 10*time.Minute:
		fail("logout_token iat is missing or not recent")
		return
	case c.Exp != nil && now.After(time.Unix(*c.Exp, 0).Add(time.Minute)):
		fail("logout_token has expired")
		return
	case c.Events == nil || c.Events[backchannelEvent] == nil: // §2.6 step 6
		fail("logout_token lacks the back-channel logout event")
		return
	case c.Nonce != nil: // §2.6 step 7: a nonce means it is an ID token
		fail("logout_token must not contain a nonce")
		return
	case c.SID == "" && tok.Subject == "": // §2.6 step 5
		fail("logout_token has neither sid nor sub")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.JTI != "" {
		if _, seen := a.seenJTI[c.JTI]; seen {
			fail("logout_token was already used")
			return
		}
		a.seenJTI[c.JTI] = now
	}
	n := 0
	for id, s := range a.sessions {
		if s.signedIn.IsZero() {
			continue
		}
		// §2.7: the session with that sid; by sub when the token has no
		// sid, or when this session's ID token carried none.
		bySID := c.SID != "" && s.SID == c.SID
		bySub := tok.Subject != "" && s.Subject == tok.Subject && (c.SID == "" || s.SID == "")
		if bySID || bySub {
			delete(a.sessions, id)
			n++
		}
	}
	a.log.Info("back-channel logout", zap.Int("sessions_ended", n))
	w.WriteHeader(http.StatusOK)
}

// SessionCount is the number of signed-in sessions.
func (a *App) SessionCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.sessions {
		if !s.signedIn.IsZero() {
			n++
		}
	}
	return n
}
