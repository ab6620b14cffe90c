package flow

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// startLogin starts the login step of a valid authorization request: the
// login challenge (OpenID Connect Core §3.1.2.3: authenticate the
// End-User, or reuse a remembered session when allowed). form is the
// request's parameters, for the request URL.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, a *authz, form url.Values) {
	ctx := r.Context()
	req := a.req
	now := h.now().UTC()
	oidc := OIDCContext{ACRValues: nonNil(req.ACRValues), Display: req.Display, LoginHint: req.LoginHint, UILocales: nonNil(req.UILocales),
		Claims: req.Claims}
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
	// prompt=registration (Hydra's) asks for a new account: like login,
	// it never reuses the remembered session.
	skip := sess != nil && !req.HasPrompt("login") && !req.HasPrompt("select_account") && !req.HasPrompt("registration")
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
	reqURL := a.requestURL
	if reqURL == "" {
		reqURL = h.requestURL(form)
	}
	st := state{Request: req, RedirectURI: a.redirectURI, RequestURL: reqURL, RequestedAt: now,
		OIDCContext: oidc, Skip: skip, CSRF: hashOf(csrf), Device: a.device}
	f := storage.Flow{Kind: storage.FlowLogin, ID: challenge, ClientID: a.client.ID, Status: statusPending,
		CreatedAt: now, ExpiresAt: now.Add(h.opts.ChallengeLifespan)}
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
	if err := h.jar.addCSRF(w, r, csrfCookieName(h.opts.Cookies.LoginCSRF, a.client.ID), csrf, h.opts.ChallengeLifespan); err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	target := h.loginURL()
	if req.HasPrompt("registration") {
		// Hydra: the login challenge as usual, at the registration app.
		target = h.registrationURL()
	}
	http.Redirect(w, r, withQuery(target, url.Values{"login_challenge": {challenge}}), http.StatusFound)
}

// sessionCookie is the login session cookie's content.
type sessionCookie struct {
	SID string `json:"sid"`
}

// currentSession returns the browser's remembered, unexpired login
// session, or nil.
func (h *Handler) currentSession(r *http.Request) (*storage.LoginSession, error) {
	raw, ok := h.jar.get(r, h.opts.Cookies.Session)
	if !ok {
		return nil, nil
	}
	var c sessionCookie
	if json.Unmarshal(raw, &c) != nil || c.SID == "" {
		return nil, nil
	}
	s, err := h.loginSessions.Get(r.Context(), c.SID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.Remember || s.Subject == "" || (!s.ExpiresAt.IsZero() && !h.now().Before(s.ExpiresAt)) {
		return nil, nil
	}
	return &s, nil
}

// loginVerified continues after the login app accepted or rejected: one
// transaction consumes the login challenge, records the login session and
// creates the consent challenge.
func (h *Handler) loginVerified(w http.ResponseWriter, r *http.Request, verifier string) {
	ctx := r.Context()
	v, a, err := h.loadAndUseRejected(r, w, storage.FlowLogin, verifier, h.opts.Cookies.LoginCSRF)
	if err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	f, st := v.f, v.st
	login := st.Login
	now := h.now().UTC()
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
			_, err := h.loginSessions.Update(ctx, sid, func(s *storage.LoginSession) error {
				s.ExpiresAt = now.Add(time.Duration(login.RememberFor) * time.Second)
				return nil
			})
			if err != nil && !isNotFound(err) {
				h.redirectError(w, r, a, apierr.ServerError(err))
				return
			}
		}
	} else {
		name := h.opts.Cookies.Session
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
	if err := h.jar.addCSRF(w, r, csrfCookieName(h.opts.Cookies.ConsentCSRF, a.client.ID), csrf, h.opts.ChallengeLifespan); err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	http.Redirect(w, r, withQuery(h.consentURL(), url.Values{"consent_challenge": {next.ID}}), http.StatusFound)
}

// loginHandledAt is when the login was accepted, or now for a flow stored
// without that time.
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
	return h.opts.UnrememberedLifespan
}

// describeLogin is Hydra's answer to GET .../requests/login.
func (h *Handler) describeLogin(ctx context.Context, f *storage.Flow, st *state) (any, error) {
	c, err := h.clients.Get(ctx, f.ClientID)
	if err != nil {
		return nil, err
	}
	return LoginRequest{
		Challenge: f.ID, RequestedScope: nonNil(st.Request.Scope), RequestedAccessTokenAudience: nonNil(st.Request.Audience),
		Skip: st.Skip, Subject: f.Subject, OIDCContext: st.OIDCContext, Client: c, RequestURL: st.RequestURL,
		SessionID: f.SessionID,
	}, nil
}

// readAcceptLogin reads PUT .../login/accept: the End-User is
// authenticated as body.Subject.
func (h *Handler) readAcceptLogin(r *http.Request, _ string) (*storage.Flow, flowChange, error) {
	var body AcceptLogin
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, nil, err
	}
	if body.Subject == "" {
		return nil, nil, apierr.InvalidRequest("Field 'subject' must not be empty")
	}
	if body.RememberFor < 0 {
		return nil, nil, apierr.InvalidRequest("Field 'remember_for' must not be negative")
	}
	if len(body.Subject) > 255 || len(body.ForceSubjectIdentifier) > 255 {
		return nil, nil, apierr.InvalidRequest("Fields 'subject' and 'force_subject_identifier' are limited to 255 characters")
	}
	return nil, func(f *storage.Flow, st *state) error {
		// Hydra: with skip, the app must confirm the session's subject.
		if st.Skip && body.Subject != st.SessionSubject {
			return apierr.InvalidRequest("Field 'subject' does not match subject from previous authentication")
		}
		if body.AMR == nil {
			body.AMR = []string{}
		}
		f.Status, f.Subject = statusAccepted, body.Subject
		st.Login, st.Reject = &body, nil
		return nil
	}, nil
}
