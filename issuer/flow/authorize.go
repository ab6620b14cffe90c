package flow

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// authz is an authorization request whose client and redirect URI are
// known to be valid: from here on errors go back to the client.
type authz struct {
	client      *client.Client
	req         *AuthorizeRequest
	redirectURI string
	// params are the request's parameters in effect: with a request
	// object's members in place (what a pushed request stores).
	params url.Values
	// pushed is set for a request that came through the PAR endpoint.
	pushed bool
	// device is set in a device flow (device.go): the flow ends at the
	// device success page, never at the client. requestURL is then the
	// verification URI, as the request URL of its challenges.
	device     *deviceFlow
	requestURL string
}

// authorize is the authorization endpoint (RFC 6749 §3.1; OpenID Connect
// Core §3.1.2.1: GET and POST with form serialisation). The same endpoint
// receives the browser back from the login and consent apps with a
// login_verifier or consent_verifier, as in Hydra.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	form, ok := h.browserForm(w, r)
	if !ok {
		return
	}
	if v := form.Get("login_verifier"); v != "" {
		h.loginVerified(w, r, v)
		return
	}
	if v := form.Get("consent_verifier"); v != "" {
		h.consentVerified(w, r, v)
		return
	}
	ctx := r.Context()
	// requestForm makes Hydra's request_url, the base of the verifiers'
	// redirects: for a pushed request the query the browser brought, so
	// that the pushed parameters never travel through the browser.
	requestForm := form
	pushed := isPushedRequestURI(form)
	if pushed {
		params, err := h.usePushed(ctx, form)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		requestForm = url.Values{"client_id": form["client_id"], "request_uri": form["request_uri"]}
		form = params
	}
	a, err := h.resolve(ctx, form)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	a.pushed = pushed
	httpx.Info(ctx).ClientID = a.client.ID
	if err := h.validate(a); err != nil {
		h.redirectError(w, r, a, err)
		return
	}
	h.startLogin(w, r, a, requestForm)
}

// browserForm returns the parameters of a browser's GET (the query) or
// POST (the form body); on an error it sends the browser to the error
// page and returns ok false.
func (h *Handler) browserForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if err := httpx.ParseForm(w, r); err != nil {
		h.errorPage(w, r, err)
		return nil, false
	}
	if r.Method == http.MethodPost {
		return r.PostForm, true
	}
	return r.URL.Query(), true
}

// resolve parses the request and checks the client and redirect URI.
func (h *Handler) resolve(ctx context.Context, form url.Values) (*authz, error) {
	req, err := ParseAuthorizeRequest(form)
	if err != nil {
		return nil, err
	}
	c, err := h.clients.Get(ctx, req.ClientID)
	if isNotFound(err) {
		return nil, pageError{apierr.InvalidClient("The requested OAuth 2.0 Client does not exist")}
	}
	if err != nil {
		return nil, pageError{apierr.ServerError(err)}
	}
	if req.Request != "" && req.RequestURI != "" {
		req.err, req.Request, req.RequestURI = apierr.InvalidRequest("The request and request_uri parameters must not both be used"), "", ""
	}
	if req.RequestURI != "" {
		obj, err := h.fetchRequestURI(ctx, c, req.RequestURI)
		if err != nil {
			req.err, req.RequestURI = apierr.From(err), ""
		} else {
			req.Request, req.RequestURI = obj, ""
			form = withoutParam(form, "request_uri")
		}
	}
	if req.Request != "" {
		merged, jerr := h.requestObject(ctx, c, req.Request, form)
		if jerr != nil {
			// Reported to the client if the query's redirect_uri is good.
			req.err, req.Request = apierr.From(jerr), ""
		} else {
			inner, err := ParseAuthorizeRequest(merged)
			if err != nil {
				return nil, err
			}
			if inner.ClientID != c.ID {
				return nil, pageError{apierr.InvalidRequestObject("The request object names another client")}
			}
			inner.Request = ""
			req, form = inner, merged
		}
	}
	redirect, ok := MatchRedirectURI(req.RedirectURI, c.RedirectURIs)
	if !ok {
		if req.RedirectURI == "" {
			return nil, pageError{apierr.InvalidRequest("The redirect_uri parameter is required: the client has not exactly one registered redirect URI")}
		}
		return nil, pageError{apierr.InvalidRequest("The redirect_uri %q is not registered for this client", truncate(req.RedirectURI))}
	}
	return &authz{client: c, req: req, redirectURI: redirect, params: form}, nil
}

// withoutParam returns a copy of form without name.
func withoutParam(form url.Values, name string) url.Values {
	out := url.Values{}
	for k, vs := range form {
		if k != name {
			out[k] = vs
		}
	}
	return out
}

// requestURL is the authorization request as a URL (Hydra's request_url),
// also the base of the verifier redirects.
func (h *Handler) requestURL(form url.Values) string {
	q := url.Values{}
	for k, vs := range form {
		if k != "login_verifier" && k != "consent_verifier" {
			q[k] = vs
		}
	}
	return h.opts.PublicURL + "/oauth2/auth?" + q.Encode()
}
