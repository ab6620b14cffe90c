package main

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// App is the login, consent and logout web app.
type App struct {
	Admin *Admin
	Users *Users
	Log   *zap.Logger
	// CSRFKey signs the form tokens (32 random bytes per process if empty:
	// forms rendered before a restart then need a reload).
	CSRFKey []byte
	// CookieName is the CSRF cookie's name. Browsers do not separate
	// cookies by port, so it must differ from the issuer's cookie names.
	CookieName string
	// CookieSecure marks the cookie Secure (serve the app over HTTPS).
	CookieSecure bool
	// RememberFor is how long "remember me" keeps the login and the
	// consent, sent as remember_for.
	RememberFor time.Duration
	// Timeout bounds each admin API call.
	Timeout time.Duration

	csrf *csrf
}

// scopeText describes well-known scopes on the consent screen.
var scopeText = map[string]string{
	"openid":         "Sign you in with your account ID",
	"offline_access": "Keep access while you are away (refresh token)",
	"offline":        "Keep access while you are away (refresh token)",
	"email":          "Your email address",
	"profile":        "Your name and username",
}

// Handler returns the app's routes behind CSRF and security headers.
func (a *App) Handler() http.Handler {
	if a.Log == nil {
		a.Log = zap.NewNop()
	}
	if a.CookieName == "" {
		a.CookieName = "gatehouse_login_consent_csrf"
	}
	if a.Timeout == 0 {
		a.Timeout = 10 * time.Second
	}
	a.csrf = &csrf{key: a.CSRFKey, name: a.CookieName, secure: a.CookieSecure}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /health/alive", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /login", a.loginGet)
	mux.HandleFunc("POST /login", a.loginPost)
	mux.HandleFunc("GET /consent", a.consentGet)
	mux.HandleFunc("POST /consent", a.consentPost)
	mux.HandleFunc("GET /logout", a.logoutGet)
	mux.HandleFunc("POST /logout", a.logoutPost)
	mux.HandleFunc("GET /device", a.deviceGet)
	mux.HandleFunc("POST /device", a.devicePost)
	mux.HandleFunc("GET /device/done", a.deviceDone)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, http.StatusForbidden, "This form was submitted from another site and was refused.")
	}))
	return headers(http.MaxBytesHandler(cop.Handler(mux), 64<<10))
}

func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		// No form-action: Chromium applies it to the redirects that follow
		// a form POST, and those go to the issuer and on to the client.
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		// Challenges are in the URL: never leak them through Referer.
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func (a *App) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.Timeout)
}

func (a *App) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		a.Log.Error("rendering a page", zap.String("template", name), zap.Error(err))
	}
}

func (a *App) fail(w http.ResponseWriter, status int, msg string) {
	a.render(w, status, "error.html", map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// adminFailed turns an admin API error into what the browser sees: a
// handled (410) request continues at its redirect_to, an unknown one is a
// 404, anything else a 502.
func (a *App) adminFailed(w http.ResponseWriter, r *http.Request, kind string, err error) {
	var ae *AdminError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusGone && ae.RedirectTo != "":
			http.Redirect(w, r, ae.RedirectTo, http.StatusFound)
			return
		case ae.Status == http.StatusNotFound || ae.Status == http.StatusGone:
			a.fail(w, http.StatusNotFound, "This "+kind+" request is unknown, was already used or has expired. Go back to the application and start again.")
			return
		case ae.Status == http.StatusBadRequest:
			a.fail(w, http.StatusBadRequest, "The identity provider refused this "+kind+" request.")
			return
		}
	}
	a.Log.Warn("admin API call failed", zap.String("kind", kind), zap.Error(err))
	a.fail(w, http.StatusBadGateway, "The identity provider could not be reached. Try again in a moment.")
}

func (a *App) index(w http.ResponseWriter, _ *http.Request) {
	a.render(w, http.StatusOK, "index.html", nil)
}

// challenge reads the <kind>_challenge query or form parameter.
func challenge(w http.ResponseWriter, r *http.Request, a *App, kind string) (string, bool) {
	c := r.FormValue(kind + "_challenge")
	if c == "" {
		a.fail(w, http.StatusBadRequest, "The "+kind+"_challenge parameter is missing: open this page from an application's sign-in link.")
		return "", false
	}
	return c, true
}

// checkCSRF validates the form token; on failure it answers 403.
func (a *App) checkCSRF(w http.ResponseWriter, r *http.Request, chal string) bool {
	if a.csrf.valid(r, chal, r.PostFormValue(csrfField)) {
		return true
	}
	a.fail(w, http.StatusForbidden, "The form expired or was not sent by this site. Go back, reload the page and try again.")
	return false
}

type loginPage struct {
	Challenge, CSRF, Client, Username, Error string
}

func (a *App) loginGet(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "login")
	if !ok {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var lr LoginRequest
	if err := a.Admin.Get(ctx, "login", chal, &lr); err != nil {
		a.adminFailed(w, r, "login", err)
		return
	}
	// skip: the issuer already knows the user (remembered session); the
	// login must be accepted with the same subject, without a form.
	if lr.Skip {
		a.acceptLogin(w, r, ctx, chal, AcceptLogin{Subject: lr.Subject})
		return
	}
	a.render(w, http.StatusOK, "login.html", loginPage{Challenge: chal, CSRF: a.csrf.token(w, r, chal),
		Client: lr.Client.DisplayName(), Username: lr.OIDCContext.LoginHint})
}

func (a *App) loginPost(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "login")
	if !ok || !a.checkCSRF(w, r, chal) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if r.PostFormValue("action") == "deny" {
		to, err := a.Admin.Put(ctx, "login", "reject", chal, Reject{Error: "access_denied", ErrorDescription: "The resource owner denied the request"})
		if err != nil {
			a.adminFailed(w, r, "login", err)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	username := r.PostFormValue("username")
	u := a.Users.Authenticate(username, r.PostFormValue("password"))
	if u == nil {
		// Re-fetch for the client's name (and to notice a dead challenge).
		var lr LoginRequest
		if err := a.Admin.Get(ctx, "login", chal, &lr); err != nil {
			a.adminFailed(w, r, "login", err)
			return
		}
		a.Log.Info("login failed: wrong username or password")
		a.render(w, http.StatusOK, "login.html", loginPage{Challenge: chal, CSRF: a.csrf.token(w, r, chal),
			Client: lr.Client.DisplayName(), Username: username, Error: "The username or password is wrong."})
		return
	}
	acc := AcceptLogin{Subject: u.Subject, AMR: []string{"pwd"}}
	if r.PostFormValue("remember") != "" {
		acc.Remember, acc.RememberFor = true, int64(a.RememberFor/time.Second)
	}
	a.acceptLogin(w, r, ctx, chal, acc)
}

func (a *App) acceptLogin(w http.ResponseWriter, r *http.Request, ctx context.Context, chal string, acc AcceptLogin) {
	to, err := a.Admin.Put(ctx, "login", "accept", chal, acc)
	if err != nil {
		a.adminFailed(w, r, "login", err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

type scopeItem struct {
	Name, Description string
}

type consentPage struct {
	Challenge, CSRF, Client, Subject string
	Scopes                           []scopeItem
	Audience                         []string
}

func (a *App) consentGet(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "consent")
	if !ok {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var cr ConsentRequest
	if err := a.Admin.Get(ctx, "consent", chal, &cr); err != nil {
		a.adminFailed(w, r, "consent", err)
		return
	}
	// skip: consent was remembered (or the client is trusted) and nothing
	// new is asked: grant what was requested without a screen.
	if cr.Skip || cr.Client.SkipConsent {
		a.acceptConsent(w, r, ctx, chal, &cr, cr.RequestedScope, false)
		return
	}
	p := consentPage{Challenge: chal, CSRF: a.csrf.token(w, r, chal), Client: cr.Client.DisplayName(),
		Subject: cr.Subject, Audience: cr.RequestedAccessTokenAudience}
	if u := a.Users.BySubject(cr.Subject); u != nil && u.Name != "" {
		p.Subject = u.Name
	}
	for _, s := range cr.RequestedScope {
		p.Scopes = append(p.Scopes, scopeItem{Name: s, Description: scopeText[s]})
	}
	a.render(w, http.StatusOK, "consent.html", p)
}

func (a *App) consentPost(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "consent")
	if !ok || !a.checkCSRF(w, r, chal) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if r.PostFormValue("action") == "deny" {
		to, err := a.Admin.Put(ctx, "consent", "reject", chal, Reject{Error: "access_denied", ErrorDescription: "The resource owner denied the request"})
		if err != nil {
			a.adminFailed(w, r, "consent", err)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	// The request is fetched again: only scopes it asked for can be
	// granted, whatever the form says.
	var cr ConsentRequest
	if err := a.Admin.Get(ctx, "consent", chal, &cr); err != nil {
		a.adminFailed(w, r, "consent", err)
		return
	}
	var grant []string
	for _, s := range r.PostForm["grant_scope"] {
		if slices.Contains(cr.RequestedScope, s) && !slices.Contains(grant, s) {
			grant = append(grant, s)
		}
	}
	a.acceptConsent(w, r, ctx, chal, &cr, grant, r.PostFormValue("remember") != "")
}

func (a *App) acceptConsent(w http.ResponseWriter, r *http.Request, ctx context.Context, chal string, cr *ConsentRequest, grant []string, remember bool) {
	if grant == nil {
		grant = []string{}
	}
	aud := cr.RequestedAccessTokenAudience
	if aud == nil {
		aud = []string{}
	}
	acc := AcceptConsent{
		GrantScope: grant, GrantAccessTokenAudience: aud,
		Session: ConsentSession{AccessToken: map[string]any{}, IDToken: a.Users.BySubject(cr.Subject).Claims(grant)},
	}
	if remember {
		acc.Remember, acc.RememberFor = true, int64(a.RememberFor/time.Second)
	}
	to, err := a.Admin.Put(ctx, "consent", "accept", chal, acc)
	if err != nil {
		a.adminFailed(w, r, "consent", err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

type logoutPage struct {
	Challenge, CSRF, Client, Subject string
}

func (a *App) logoutGet(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "logout")
	if !ok {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	var lr LogoutRequest
	if err := a.Admin.Get(ctx, "logout", chal, &lr); err != nil {
		a.adminFailed(w, r, "logout", err)
		return
	}
	p := logoutPage{Challenge: chal, CSRF: a.csrf.token(w, r, chal), Subject: lr.Subject}
	if lr.Client != nil {
		p.Client = lr.Client.DisplayName()
	}
	if u := a.Users.BySubject(lr.Subject); u != nil && u.Name != "" {
		p.Subject = u.Name
	}
	a.render(w, http.StatusOK, "logout.html", p)
}

func (a *App) logoutPost(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "logout")
	if !ok || !a.checkCSRF(w, r, chal) {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if r.PostFormValue("action") != "accept" {
		if _, err := a.Admin.Put(ctx, "logout", "reject", chal, nil); err != nil {
			a.adminFailed(w, r, "logout", err)
			return
		}
		a.render(w, http.StatusOK, "stayed.html", nil)
		return
	}
	to, err := a.Admin.Put(ctx, "logout", "accept", chal, nil)
	if err != nil {
		a.adminFailed(w, r, "logout", err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}
