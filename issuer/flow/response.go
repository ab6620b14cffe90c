package flow

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// respond sends the authorization response (or error) params to the
// client's redirect URI in the request's response mode: the query (RFC
// 6749 §4.1.2, keeping the registered URI's own query, §3.1.2), the
// fragment (§4.2.2), or an auto-submitted form (OAuth 2.0 Form Post
// Response Mode §2). state is echoed whenever the request carried it.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, a *authz, params url.Values) {
	if a.req.State != "" {
		params.Set("state", a.req.State)
	}
	// RFC 9207 §2: the issuer identifier, exactly as in discovery, in
	// every authorization response, success or error, in every response
	// mode, so that a client talking to several issuers can tell which one
	// answered (mix-up attacks, §1).
	params.Set("iss", h.opts.IssuerURL)
	mode := a.req.EffectiveResponseMode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	switch mode {
	case "form_post":
		writeFormPost(w, a.redirectURI, params)
	case "fragment":
		u, err := url.Parse(a.redirectURI)
		if err != nil {
			h.errorPage(w, r, apierr.InvalidRequest("The redirect_uri is not a valid URI"))
			return
		}
		u.Fragment, u.RawFragment = "", ""
		http.Redirect(w, r, u.String()+"#"+params.Encode(), http.StatusFound)
	default:
		http.Redirect(w, r, withQuery(a.redirectURI, params), http.StatusFound)
	}
}

// redirectError sends an OAuth error to the client (RFC 6749 §4.1.2.1,
// §4.2.2.1; OpenID Connect Core §3.1.2.6).
func (h *Handler) redirectError(w http.ResponseWriter, r *http.Request, a *authz, err error) {
	if a.device != nil {
		h.deviceFailed(w, r, a, err)
		return
	}
	var pe pageError
	if errors.As(err, &pe) {
		h.errorPage(w, r, pe.e)
		return
	}
	h.respond(w, r, a, h.errorParams(r, err))
}

// errorPage sends the browser to the error page (urls.error, else the
// fallback) for errors that must not be redirected to the client.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	var pe pageError
	if errors.As(err, &pe) {
		err = pe.e
	}
	params := h.errorParams(r, err)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withQuery(h.errorURL(), params), http.StatusFound)
}

// errorParams are the error and error_description of an error response.
// A server error is logged with its cause; the browser only sees the code
// and description.
func (h *Handler) errorParams(r *http.Request, err error) url.Values {
	e := apierr.From(err)
	httpx.Info(r.Context()).Err = e
	if e.Code == "server_error" {
		h.logger.Error("authorization request failed", zap.Error(e))
	}
	params := url.Values{"error": {e.Code}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	return params
}

var formPostTmpl = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Submit This Form</title></head>
<body onload="javascript:document.forms[0].submit()">
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}"/>
{{end}}{{end}}<noscript><p>JavaScript is disabled: press the button to continue.</p><button type="submit">Continue</button></noscript>
</form></body></html>
`))

// writeFormPost is the OAuth 2.0 Form Post Response Mode (§2): an HTML
// page that POSTs the parameters to the redirect URI.
func writeFormPost(w http.ResponseWriter, action string, params url.Values) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_ = formPostTmpl.Execute(w, struct {
		Action template.URL
		Params url.Values
	}{template.URL(action), params})
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}code{background:#eee;padding:0 .2em}</style>
</head><body><h1>{{.Title}}</h1>{{range .Lines}}<p>{{.}}</p>{{end}}{{if .Code}}<p>Error: <code>{{.Code}}</code></p>{{end}}</body></html>
`))

func writePage(w http.ResponseWriter, status int, title, code string, lines ...string) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		Title, Code string
		Lines       []string
	}{title, code, lines})
}

// fallbackError is the built-in error page (/oauth2/fallbacks/error),
// used when urls.error is not set.
func (h *Handler) fallbackError(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, desc := truncate(q.Get("error")), q.Get("error_description")
	if len(desc) > 500 {
		desc = desc[:500] + "..."
	}
	if code == "" {
		code = "unknown_error"
	}
	lines := []string{desc}
	if hint := q.Get("error_hint"); hint != "" && len(hint) < 500 {
		lines = append(lines, hint)
	}
	lines = append(lines, "Set URLS_ERROR to show your own error page instead of this one.")
	writePage(w, pageStatus(w, code), "An error occurred", code, lines...)
}

// pageStatus is the status of the built-in error page for an error code:
// the code's own (400 for codes it does not know), so that the browser,
// monitoring and tests see a failure. A 401 must carry a challenge (RFC
// 9110 §15.5.2) that a page about a client's error cannot make, so the
// page answers 400 instead; a 503 tells when to retry.
func pageStatus(w http.ResponseWriter, code string) int {
	status := apierr.StatusOf(code)
	switch status {
	case http.StatusUnauthorized:
		return http.StatusBadRequest
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(apierr.RetryAfterSeconds))
	}
	return status
}

// fallbackPage explains an unconfigured login, consent or logout app.
func (h *Handler) fallbackPage(what, key string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writePage(w, http.StatusOK, "The "+what+" app is not configured", "",
			"Gatehouse is headless: it does not render "+what+" screens itself.",
			"Set "+key+" to the URL of your "+what+" app; it receives the challenge and accepts or rejects it through the admin API.")
	}
}

// fallbackLoggedOut is the default post-logout page (urls.post_logout_redirect).
func (h *Handler) fallbackLoggedOut(w http.ResponseWriter, r *http.Request) {
	writePage(w, http.StatusOK, "You have been signed out", "",
		"Your session at this identity provider has ended. You can close this window.")
}
