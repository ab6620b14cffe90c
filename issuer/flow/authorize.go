package flow

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// authz is an authorization request whose client and redirect URI are
// known to be valid: from here on errors go back to the client.
type authz struct {
	client      *client.Client
	req         *AuthorizeRequest
	redirectURI string
}

// authorize is the authorization endpoint (RFC 6749 §3.1; OpenID Connect
// Core §3.1.2.1: GET and POST with form serialisation). The same endpoint
// receives the browser back from the login and consent apps with a
// login_verifier or consent_verifier, as in Hydra.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		h.errorPage(w, r, err)
		return
	}
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	if v := form.Get("login_verifier"); v != "" {
		h.loginVerified(w, r, v)
		return
	}
	if v := form.Get("consent_verifier"); v != "" {
		h.consentVerified(w, r, v)
		return
	}
	h.startAuthorize(w, r, form)
}

// resolve parses the request and checks the client and redirect URI.
func (h *Handler) resolve(ctx context.Context, form url.Values) (*authz, error) {
	req, err := ParseAuthorizeRequest(form)
	if err != nil {
		return nil, err
	}
	c, err := h.Clients.Get(ctx, req.ClientID)
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
			req = inner
		}
	}
	redirect, ok := MatchRedirectURI(req.RedirectURI, c.RedirectURIs)
	if !ok {
		if req.RedirectURI == "" {
			return nil, pageError{apierr.InvalidRequest("The redirect_uri parameter is required: the client has not exactly one registered redirect URI")}
		}
		return nil, pageError{apierr.InvalidRequest("The redirect_uri %q is not registered for this client", truncate(req.RedirectURI))}
	}
	return &authz{client: c, req: req, redirectURI: redirect}, nil
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

// validate checks everything else about the request; its errors are
// redirected to the client (RFC 6749 §4.1.2.1, §4.2.2.1).
func (h *Handler) validate(a *authz) error {
	req, c := a.req, a.client
	if err := req.Err(); err != nil {
		return err
	}
	switch req.ResponseMode {
	case "", "query", "fragment", "form_post":
	default:
		return apierr.InvalidRequest("The response_mode %q is not supported (query, fragment, form_post)", truncate(req.ResponseMode))
	}
	// OAuth 2.0 Multiple Response Type Encoding Practices §5: tokens
	// must never be returned in the query.
	if req.ResponseMode == "query" && req.DefaultResponseMode() == "fragment" {
		return apierr.InvalidRequest("The response_mode query cannot be used with a response_type that returns tokens")
	}
	if !slices.ContainsFunc(c.ResponseTypes, func(rt string) bool { return sameResponseType(rt, req.ResponseTypes) }) {
		return apierr.UnsupportedResponseType("The client is not allowed to request response_type %q", req.ResponseTypeString())
	}
	if req.Has("code") && !c.HasGrantType(client.GrantAuthorizationCode) {
		return apierr.UnauthorizedClient("The client is not allowed to use the authorization_code grant")
	}
	if (req.Has("token") || req.Has("id_token")) && !c.HasGrantType(client.GrantImplicit) {
		return apierr.UnauthorizedClient("The client is not allowed to use the implicit grant (needed for response_type %q)", req.ResponseTypeString())
	}
	for _, s := range req.Scope {
		if !h.scopes(c.Scopes(), s) {
			return apierr.InvalidScope("The client is not allowed to request scope %q", truncate(s))
		}
	}
	for _, aud := range req.Audience {
		if !slices.Contains(c.Audience, aud) {
			return apierr.InvalidRequest("The requested audience %q has not been whitelisted by the OAuth 2.0 Client", truncate(aud))
		}
	}
	if req.Has("id_token") && !req.HasScope("openid") {
		return apierr.InvalidScope("The response_type id_token requires the openid scope")
	}
	// OpenID Connect Core §3.2.2.1 and §3.3.2.11: nonce is REQUIRED in
	// the implicit and hybrid flows.
	if req.HasScope("openid") && (req.Has("id_token") || req.Has("token")) && req.Nonce == "" {
		return apierr.InvalidRequest("The nonce parameter is required for the implicit and hybrid flows (OpenID Connect Core §3.2.2.1)")
	}
	return h.validatePKCE(a)
}

// validatePKCE is RFC 7636 §4.3/§4.4.1 with Hydra's enforcement options.
func (h *Handler) validatePKCE(a *authz) error {
	req, pk := a.req, h.Config.OAuth2.PKCE
	if req.CodeChallenge == "" {
		if req.CodeChallengeMethod != "" {
			return apierr.InvalidRequest("The code_challenge_method was sent without a code_challenge")
		}
		if req.Has("code") && (pk.Enforced || (pk.EnforcedForPublicClients && a.client.IsPublic())) {
			return apierr.InvalidRequest("Clients must include a code_challenge when performing the authorize code flow (PKCE, RFC 7636)")
		}
		return nil
	}
	if !req.Has("code") {
		return nil // no code, nothing to bind the challenge to
	}
	// §4.3: "defaults to plain if not present in the request".
	if req.CodeChallengeMethod == "" {
		req.CodeChallengeMethod = "plain"
	}
	switch req.CodeChallengeMethod {
	case "S256":
	case "plain":
		if !pk.AllowPlain {
			return apierr.InvalidRequest("The code_challenge_method plain is disabled; use S256")
		}
	default:
		return apierr.InvalidRequest("The code_challenge_method %q is not supported (S256, plain)", truncate(req.CodeChallengeMethod))
	}
	// §4.2: the challenge has the verifier's alphabet and length (a S256
	// challenge is 43 characters).
	if l := len(req.CodeChallenge); l < 43 || l > 128 || !oauth2.IsPKCEChars(req.CodeChallenge) {
		return apierr.InvalidRequest("The code_challenge must be 43 to 128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.2)")
	}
	return nil
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
	return h.public + "/oauth2/auth?" + q.Encode()
}

// startAuthorize handles a new authorization request: validation, then
// the login challenge (OpenID Connect Core §3.1.2.3: authenticate the
// End-User, or reuse a remembered session when allowed).
func (h *Handler) startAuthorize(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	a, err := h.resolve(ctx, form)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	httpx.Info(ctx).ClientID = a.client.ID
	if err := h.validate(a); err != nil {
		h.redirectError(w, r, a, err)
		return
	}
	req := a.req
	now := h.Now().UTC()
	oidc := OIDCContext{ACRValues: nonNil(req.ACRValues), Display: req.Display, LoginHint: req.LoginHint, UILocales: nonNil(req.UILocales)}
	var hintSub string
	if req.IDTokenHint != "" {
		claims, err := h.verifyIDTokenHint(ctx, req.IDTokenHint)
		if err != nil {
			h.redirectError(w, r, a, err)
			return
		}
		oidc.IDTokenHintClaims = claims
		hintSub, _ = claims["sub"].(string)
	}
	sess, err := h.currentSession(r)
	if err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	skip := sess != nil && !req.HasPrompt("login") && !req.HasPrompt("select_account")
	// OpenID Connect Core §3.1.2.1 max_age: "If the elapsed time is greater
	// than this value, the OP MUST attempt to actively re-authenticate".
	if skip && req.MaxAge >= 0 && now.Sub(sess.AuthenticatedAt) > time.Duration(req.MaxAge)*time.Second {
		skip = false
	}
	if skip && hintSub != "" {
		if sub, err := h.idTokenSubject(a.client, sess.Subject, ""); hintSub != sess.Subject && (err != nil || sub != hintSub) {
			skip = false
		}
	}
	// §3.1.2.6: prompt=none and no usable session: login_required.
	if req.HasPrompt("none") && !skip {
		if hintSub != "" && sess != nil {
			h.redirectError(w, r, a, apierr.LoginRequired("The id_token_hint does not match the authenticated End-User"))
			return
		}
		h.redirectError(w, r, a, apierr.LoginRequired("Prompt none was requested, but no previous login session was found"))
		return
	}
	challenge, csrf := newChallenge(), randomToken(24)
	st := state{Request: req, RedirectURI: a.redirectURI, RequestURL: h.requestURL(form), RequestedAt: now,
		OIDCContext: oidc, Skip: skip, CSRF: hashOf(csrf)}
	f := storage.Flow{Kind: storage.FlowLogin, ID: challenge, ClientID: a.client.ID, Status: statusPending,
		CreatedAt: now, ExpiresAt: now.Add(h.Config.TTL.LoginConsentRequest)}
	if sess != nil {
		f.SessionID = sess.ID
		st.SessionSubject, st.SessionAuth = sess.Subject, sess.AuthenticatedAt
	} else {
		f.SessionID = newChallenge()
	}
	if skip {
		f.Subject = sess.Subject
	}
	if err := h.createFlow(ctx, f, &st); err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	if err := h.jar.addCSRF(w, r, csrfCookieName(h.Config.Serve.Cookies.Names.LoginCSRF, a.client.ID), csrf, h.Config.TTL.LoginConsentRequest); err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	http.Redirect(w, r, withQuery(h.loginURL(), url.Values{"login_challenge": {challenge}}), http.StatusFound)
}

func (h *Handler) createFlow(ctx context.Context, f storage.Flow, st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f.Data = data
	if err := h.Flows.Create(ctx, f); err != nil {
		return err
	}
	h.recent.put(f, h.Now())
	return nil
}

// sessionCookie is the login session cookie's content.
type sessionCookie struct {
	SID string `json:"sid"`
}

// currentSession returns the browser's remembered, unexpired login
// session, or nil.
func (h *Handler) currentSession(r *http.Request) (*storage.LoginSession, error) {
	raw, ok := h.jar.get(r, h.Config.Serve.Cookies.Names.Session)
	if !ok {
		return nil, nil
	}
	var c sessionCookie
	if json.Unmarshal(raw, &c) != nil || c.SID == "" {
		return nil, nil
	}
	s, err := h.LoginSessions.Get(r.Context(), c.SID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.Remember || s.Subject == "" || (!s.ExpiresAt.IsZero() && !h.Now().Before(s.ExpiresAt)) {
		return nil, nil
	}
	return &s, nil
}

// verified is a flow whose verifier checked out, not used yet.
type verified struct {
	kind     storage.FlowKind
	f        *storage.Flow
	st       *state
	csrfName string
	restCSRF []string
}

// loadVerified finds the flow of a verifier and checks it without
// writing anything: the secret must match, the browser must carry the
// flow's CSRF cookie, and the flow must have been accepted or rejected and
// not used before. use then consumes it. a is nil when the flow's request
// can no longer be trusted.
func (h *Handler) loadVerified(r *http.Request, kind storage.FlowKind, verifier, csrfBase string) (*verified, *authz, error) {
	challenge, secret, ok := splitVerifier(verifier)
	if !ok {
		return nil, nil, pageError{apierr.InvalidRequest("The %s verifier is malformed", kind)}
	}
	if f, ok := h.recent.get(kind, challenge, h.Now()); ok {
		if v, a, err := h.checkVerifier(r, kind, f, secret, csrfBase); err == nil {
			return v, a, nil
		}
		// Refused by the process's own copy of the flow: the database
		// decides (the app may have decided again on another instance).
	}
	f, err := h.Flows.Get(r.Context(), kind, challenge)
	if isNotFound(err) {
		return nil, nil, pageError{apierr.InvalidRequest("The %s verifier is unknown or has expired; start again", kind)}
	}
	if err != nil {
		return nil, nil, pageError{apierr.ServerError(err)}
	}
	return h.checkVerifier(r, kind, f, secret, csrfBase)
}

// checkVerifier is loadVerified's checks of the verifier's secret against
// flow f.
func (h *Handler) checkVerifier(r *http.Request, kind storage.FlowKind, f storage.Flow, secret, csrfBase string) (*verified, *authz, error) {
	ctx := r.Context()
	var st state
	if err := json.Unmarshal(f.Data, &st); err != nil || st.Request == nil {
		return nil, nil, pageError{apierr.ServerError(fmt.Errorf("flow: unreadable %s flow: %v", kind, err))}
	}
	if st.Verifier == "" || hashOf(secret) != st.Verifier {
		return nil, nil, pageError{apierr.InvalidRequest("The %s verifier is invalid", kind)}
	}
	csrfName := csrfCookieName(csrfBase, f.ClientID)
	restCSRF, ok := h.jar.checkCSRF(r, csrfName, st.CSRF)
	if !ok {
		return nil, nil, pageError{apierr.Forbidden("The %s request was not started by this browser (CSRF cookie missing or wrong); start again", kind)}
	}
	c, err := h.Clients.Get(ctx, f.ClientID)
	if err != nil {
		return nil, nil, pageError{apierr.InvalidClient("The OAuth 2.0 Client of this request no longer exists")}
	}
	a := &authz{client: c, req: st.Request, redirectURI: st.RedirectURI}
	if !h.Now().Before(f.ExpiresAt) {
		return nil, a, apierr.InvalidRequest("The %s request has expired; start again", kind)
	}
	// A replayed verifier fails here without a write; use checks again
	// inside its transaction for concurrent requests.
	switch f.Status {
	case statusAccepted, statusRejected:
	case statusUsed:
		return nil, a, apierr.InvalidRequest("The %s verifier has already been used", kind)
	default:
		return nil, a, apierr.InvalidRequest("The %s request has already been used or was not handled", kind)
	}
	return &verified{kind: kind, f: &f, st: &st, csrfName: csrfName, restCSRF: restCSRF}, a, nil
}

// use consumes a verified flow together with the writes of step, in one
// transaction: a challenge is used once (of two requests with one
// verifier only the first gets past here), and nothing of the step is
// recorded unless the flow is consumed. The flow must still be exactly as
// loadVerified read it (FlowStore.Step compares it; a new decision of the
// app replaces the verifier).
// Then the flow's CSRF token is spent; a rejected flow returns the app's
// rejection (its step must be empty).
func (h *Handler) use(ctx context.Context, w http.ResponseWriter, v *verified, step storage.FlowStep) error {
	kind := v.kind
	step.Flow, step.Status = *v.f, statusUsed
	err := h.Flows.Step(ctx, step)
	if errors.Is(err, storage.ErrConflict) {
		h.recent.drop(kind, v.f.ID)
		// Another request used the verifier first, or the app decided
		// again (which replaces the verifier).
		cur, gerr := h.Flows.Get(ctx, kind, v.f.ID)
		switch {
		case isNotFound(gerr):
			return apierr.InvalidRequest("The %s verifier is unknown or has expired; start again", kind)
		case gerr != nil:
			return apierr.ServerError(gerr)
		case cur.Status == statusPending:
			return apierr.InvalidRequest("The %s request has already been used or was not handled", kind)
		case cur.Status != statusUsed && verifierHash(cur) != v.st.Verifier:
			// The app decided again (at another instance, after this
			// one's copy of the flow): the verifier was replaced, as
			// loadVerified says when it reads the database.
			return pageError{apierr.InvalidRequest("The %s verifier is invalid", kind)}
		}
		return apierr.InvalidRequest("The %s verifier has already been used", kind)
	}
	if err != nil {
		return apierr.ServerError(err)
	}
	h.recent.drop(kind, v.f.ID)
	if step.Next != nil {
		h.recent.put(*step.Next, h.Now())
	}
	// The token is spent; other tabs' flows keep theirs.
	if len(v.restCSRF) == 0 {
		h.jar.clear(w, v.csrfName)
	} else if err := h.jar.set(w, v.csrfName, []byte(strings.Join(v.restCSRF, " ")), h.Config.TTL.LoginConsentRequest); err != nil {
		return apierr.ServerError(err)
	}
	if v.f.Status == statusRejected {
		return rejectError(v.st.Reject)
	}
	return nil
}

// verifierHash is the hash of the verifier the flow's last decision gave out.
func verifierHash(f storage.Flow) string {
	var st state
	_ = json.Unmarshal(f.Data, &st)
	return st.Verifier
}

// loadAndUseRejected is loadVerified, and for a rejected flow use with
// nothing else written (returning the rejection).
func (h *Handler) loadAndUseRejected(r *http.Request, w http.ResponseWriter, kind storage.FlowKind, verifier, csrfBase string) (*verified, *authz, error) {
	v, a, err := h.loadVerified(r, kind, verifier, csrfBase)
	if err == nil && v.f.Status == statusRejected {
		err = h.use(r.Context(), w, v, storage.FlowStep{})
	}
	return v, a, err
}

// rejectError turns the login or consent app's rejection into the error
// the client receives.
func rejectError(rj *Reject) error {
	e := &apierr.Error{Code: "access_denied", Status: http.StatusForbidden,
		Description: "The resource owner or authorization server denied the request."}
	if rj != nil {
		if rj.Error != "" {
			e.Code = rj.Error
		}
		if rj.ErrorDescription != "" {
			e.Description = rj.ErrorDescription
		}
		if rj.ErrorHint != "" {
			e.Description += " " + rj.ErrorHint
		}
	}
	return e
}

// loginVerified continues after the login app accepted or rejected: one
// transaction consumes the login challenge, records the login session and
// creates the consent challenge.
func (h *Handler) loginVerified(w http.ResponseWriter, r *http.Request, verifier string) {
	ctx := r.Context()
	v, a, err := h.loadAndUseRejected(r, w, storage.FlowLogin, verifier, h.Config.Serve.Cookies.Names.LoginCSRF)
	if err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	f, st := v.f, v.st
	login := st.Login
	now := h.Now().UTC()
	sid := f.SessionID
	var authTime time.Time
	var step storage.FlowStep
	if st.Skip {
		// The remembered session authenticated the End-User.
		authTime = st.SessionAuth
	} else {
		authTime = st.loginHandledAt(now)
		if st.SessionSubject != "" && st.SessionSubject != login.Subject {
			sid = newChallenge() // another user logged in: a new session
		}
		step.LoginSession = &storage.LoginSession{ID: sid, Subject: login.Subject, AuthenticatedAt: authTime,
			Remember: login.Remember, ExpiresAt: authTime.Add(h.sessionLifespan(login))}
		// Re-authentication in the browser's session refreshes it; any
		// other sid was minted for this flow and is new.
		step.ReplaceLoginSession = st.SessionSubject != "" && sid == f.SessionID
	}
	// A consent that cannot start (max_age, id_token_hint, prompt=none)
	// still uses the login challenge and records the session.
	next, csrf, consentErr := h.prepareConsent(ctx, a, f, st, login, sid, authTime)
	step.Next = next
	if err := h.use(ctx, w, v, step); err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	if st.Skip {
		if login.ExtendSessionLifespan && login.RememberFor > 0 {
			_, err := h.LoginSessions.Update(ctx, sid, func(s *storage.LoginSession) error {
				s.ExpiresAt = now.Add(time.Duration(login.RememberFor) * time.Second)
				return nil
			})
			if err != nil && !isNotFound(err) {
				h.redirectError(w, r, a, apierr.ServerError(err))
				return
			}
		}
	} else {
		name := h.Config.Serve.Cookies.Names.Session
		if login.Remember {
			raw, _ := json.Marshal(sessionCookie{SID: sid})
			// remember_for 0: a browser-session cookie (Hydra's meaning).
			if err := h.jar.set(w, name, raw, time.Duration(login.RememberFor)*time.Second); err != nil {
				h.redirectError(w, r, a, apierr.ServerError(err))
				return
			}
		} else {
			h.jar.clear(w, name)
		}
	}
	if consentErr != nil {
		h.redirectError(w, r, a, consentErr)
		return
	}
	if err := h.jar.addCSRF(w, r, csrfCookieName(h.Config.Serve.Cookies.Names.ConsentCSRF, a.client.ID), csrf, h.Config.TTL.LoginConsentRequest); err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	http.Redirect(w, r, withQuery(h.consentURL(), url.Values{"consent_challenge": {next.ID}}), http.StatusFound)
}

// loginHandledAt is when the login was accepted (now for older flows).
func (st *state) loginHandledAt(now time.Time) time.Time {
	if st.HandledAt.IsZero() {
		return now
	}
	return st.HandledAt
}

// sessionLifespan: remember_for seconds, else the refresh token lifetime
// (a browser-session cookie or a session that is not remembered still
// needs its row for logout and sid).
func (h *Handler) sessionLifespan(login *AcceptLogin) time.Duration {
	if login.Remember && login.RememberFor > 0 {
		return time.Duration(login.RememberFor) * time.Second
	}
	return h.Config.TTL.RefreshToken
}

// idTokenSubject returns the sub of ID tokens for subject at client:
// force_subject_identifier, else the pairwise identifier for pairwise
// clients (OpenID Connect Core §8.1), else subject.
func (h *Handler) idTokenSubject(c *client.Client, subject, forced string) (string, error) {
	if forced != "" {
		return forced, nil
	}
	if c.SubjectType != "pairwise" {
		return subject, nil
	}
	return pairwiseSubject(c, subject, h.Config.OIDC.SubjectIdentifiers.Pairwise.Salt)
}

// pairwiseSubject is OpenID Connect Core §8.1's example calculation, as
// Hydra does it: sub = hex(SHA-256(sector_identifier || local_account_id
// || salt)), where the sector identifier is the host of
// sector_identifier_uri, or of the only redirect URI.
func pairwiseSubject(c *client.Client, subject, salt string) (string, error) {
	var sector string
	switch {
	case c.SectorIdentifierURI != "":
		u, err := url.Parse(c.SectorIdentifierURI)
		if err != nil {
			return "", err
		}
		sector = u.Host
	case len(c.RedirectURIs) == 1:
		u, err := url.Parse(c.RedirectURIs[0])
		if err != nil {
			return "", err
		}
		sector = u.Host
	default:
		// §8.1: with several redirect URI hosts a sector_identifier_uri
		// is required (client validation enforces it).
		return "", fmt.Errorf("flow: pairwise client %q needs a sector_identifier_uri", c.ID)
	}
	sum := sha256.Sum256([]byte(sector + subject + salt))
	return fmt.Sprintf("%x", sum), nil
}

// prepareConsent builds the consent challenge once the End-User is
// authenticated (its flow and CSRF token; the caller records it). err is
// the client-facing error when the consent cannot start.
func (h *Handler) prepareConsent(ctx context.Context, a *authz, lf *storage.Flow, lst *state, login *AcceptLogin, sid string, authTime time.Time) (next *storage.Flow, csrf string, err error) {
	req := a.req
	now := h.Now().UTC()
	// OpenID Connect Core §3.1.2.1: after re-authentication max_age must
	// hold; a login app that "accepted" from an old session did not
	// re-authenticate.
	if req.MaxAge >= 0 && now.Sub(authTime) > time.Duration(req.MaxAge)*time.Second+5*time.Second {
		return nil, "", apierr.LoginRequired("The authentication is older than max_age")
	}
	idSub, err := h.idTokenSubject(a.client, login.Subject, login.ForceSubjectIdentifier)
	if err != nil {
		return nil, "", apierr.ServerError(err)
	}
	// §3.1.2.1 id_token_hint: "If the End-User identified by the ID Token
	// is logged in or is logged in by the request, then the Authorization
	// Server returns a positive response; otherwise, it SHOULD return an
	// error, such as login_required."
	if hintSub, _ := lst.OIDCContext.IDTokenHintClaims["sub"].(string); hintSub != "" && hintSub != idSub && hintSub != login.Subject {
		return nil, "", apierr.LoginRequired("The End-User who logged in is not the one identified by the id_token_hint")
	}
	remembered, err := h.rememberedConsent(ctx, login.Subject, a.client.ID, req)
	if err != nil {
		return nil, "", apierr.ServerError(err)
	}
	// RFC 6749 §10.2: a remembered consent is not reused for a public
	// client whose identity the redirect URI cannot assure (neither https
	// nor loopback http, e.g. a custom scheme anyone can claim), as Hydra.
	if remembered && a.client.IsPublic() && !assuredRedirect(a.redirectURI) {
		remembered = false
	}
	skip := (a.client.SkipConsent || remembered) && !req.HasPrompt("consent")
	if req.HasPrompt("none") && !skip {
		// §3.1.2.6 consent_required.
		return nil, "", apierr.ConsentRequired("Prompt none was requested, but the End-User has not consented to this request before")
	}
	challenge := newChallenge()
	csrf = randomToken(24)
	st := state{Request: req, RedirectURI: a.redirectURI, RequestURL: lst.RequestURL, RequestedAt: lst.RequestedAt,
		OIDCContext: lst.OIDCContext, Skip: skip, CSRF: hashOf(csrf), LoginChallenge: lf.ID,
		IDTokenSubject: idSub, AuthTime: authTime, ACR: login.ACR, AMR: login.AMR, LoginContext: login.Context}
	f := storage.Flow{Kind: storage.FlowConsent, ID: challenge, ClientID: a.client.ID, Subject: login.Subject,
		SessionID: sid, Status: statusPending, CreatedAt: now, ExpiresAt: now.Add(h.Config.TTL.LoginConsentRequest)}
	if f.Data, err = json.Marshal(&st); err != nil {
		return nil, "", apierr.ServerError(err)
	}
	return &f, csrf, nil
}

// assuredRedirect reports whether a redirect URI identifies its client:
// https, or http on a loopback host.
func assuredRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return u.Scheme == "https" || (u.Scheme == "http" && (h == "localhost" || isLoopbackIP(h)))
}

// rememberedConsent reports whether the subject remembered a consent for
// the client that covers every requested scope and audience.
func (h *Handler) rememberedConsent(ctx context.Context, subject, clientID string, req *AuthorizeRequest) (bool, error) {
	list, err := h.ConsentSessions.List(ctx, storage.ConsentFilter{Subject: subject, ClientID: clientID})
	if err != nil {
		return false, err
	}
	now := h.Now()
	for _, c := range list {
		if !c.Remember || (!c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)) {
			continue
		}
		if subset(req.Scope, c.GrantedScope) && subset(req.Audience, c.GrantedAudience) {
			return true, nil
		}
	}
	return false, nil
}

func subset(want, have []string) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// consentVerified finishes the flow: the consent is recorded and the
// authorization response sent to the client.
func (h *Handler) consentVerified(w http.ResponseWriter, r *http.Request, verifier string) {
	ctx := r.Context()
	v, a, err := h.loadAndUseRejected(r, w, storage.FlowConsent, verifier, h.Config.Serve.Cookies.Names.ConsentCSRF)
	if err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	f, st := v.f, v.st
	acc := st.Consent
	now := h.Now().UTC()
	handled := st.loginHandledAt(now)
	cs := storage.ConsentSession{ID: f.ID, Subject: f.Subject, ClientID: f.ClientID, LoginSessionID: f.SessionID,
		Remember: acc.Remember, GrantedScope: nonNil(acc.GrantScope), GrantedAudience: nonNil(acc.GrantAccessTokenAudience),
		HandledAt: handled}
	switch {
	case acc.Remember && acc.RememberFor > 0:
		cs.ExpiresAt = handled.Add(time.Duration(acc.RememberFor) * time.Second)
	case !acc.Remember:
		// Kept for listing and logout as long as its tokens may live.
		cs.ExpiresAt = handled.Add(h.Config.TTL.RefreshToken)
	}
	data, err := json.Marshal(consentData{Session: acc.Session, RememberFor: acc.RememberFor, Context: acc.Context,
		IDTokenSubject: st.IDTokenSubject, Request: h.consentRequest(f, st)})
	if err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	cs.Data = data
	// The consent challenge is used, the consent recorded and the code
	// (and implicit/hybrid access token) stored at once, in one commit.
	var stepErr error
	httpx.Info(ctx).Subject = f.Subject
	params, err := h.Tokens.Authorize(ctx, &oauth2.Authorization{
		Client: a.client, ResponseTypes: a.req.ResponseTypes,
		RedirectURI: a.redirectURI, RedirectURISent: a.req.RedirectURI != "", Nonce: a.req.Nonce,
		CodeChallenge: a.req.CodeChallenge, CodeChallengeMethod: a.req.CodeChallengeMethod,
		RequestID: f.ID,
		Grant: oauth2.GrantSession{Subject: f.Subject, IDTokenSubject: st.IDTokenSubject, SessionID: f.SessionID,
			AuthTime: st.AuthTime, RequestedAt: st.RequestedAt, ACR: st.ACR, AMR: st.AMR,
			GrantedScope: nonNil(acc.GrantScope), GrantedAudience: nonNil(acc.GrantAccessTokenAudience),
			AccessTokenClaims: acc.Session.AccessToken, IDTokenClaims: acc.Session.IDToken},
		Record: func(ctx context.Context, toks []storage.Token) error {
			stepErr = h.use(ctx, w, v, storage.FlowStep{ConsentSession: &cs, Tokens: toks})
			return stepErr
		},
	})
	if stepErr != nil {
		h.failAfterVerifier(w, r, a, stepErr)
		return
	}
	if err != nil {
		h.redirectError(w, r, a, err)
		return
	}
	h.respond(w, r, a, params)
}

// failAfterVerifier reports an error of a verifier request: to the client
// when its request is still trusted, else on the error page.
func (h *Handler) failAfterVerifier(w http.ResponseWriter, r *http.Request, a *authz, err error) {
	var pe pageError
	if a == nil || errors.As(err, &pe) {
		h.errorPage(w, r, err)
		return
	}
	h.redirectError(w, r, a, err)
}

// verifyIDTokenHint checks an id_token_hint: signed by this issuer with
// the ID token key set and issued by it. An expired hint is fine (OpenID
// Connect Core §3.1.2.1: the hint is about the End-User, not a credential).
func (h *Handler) verifyIDTokenHint(ctx context.Context, hint string) (map[string]any, error) {
	set, err := h.Keys.PublicKeys(ctx, oauth2.IDTokenKeySet)
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	if len(hint) > maxParamLength {
		return nil, apierr.InvalidRequest("The id_token_hint is too long")
	}
	payload, err := jws.Verify([]byte(hint), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		return nil, apierr.InvalidRequest("The id_token_hint was not issued by this server or its signature is invalid").WithCause(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, apierr.InvalidRequest("The id_token_hint has unreadable claims")
	}
	if iss, _ := claims["iss"].(string); iss != h.issuer {
		return nil, apierr.InvalidRequest("The id_token_hint was issued by another issuer")
	}
	return claims, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// logFlowError logs a failure that only the operator can fix.
func (h *Handler) logFlowError(msg string, err error) {
	h.Logger.Warn(msg, zap.Error(err))
}
