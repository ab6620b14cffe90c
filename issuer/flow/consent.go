package flow

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// prepareConsent builds the consent challenge once the End-User is
// authenticated (its flow and CSRF token; the caller records it). err is
// the client-facing error when the consent cannot start.
func (h *Handler) prepareConsent(ctx context.Context, a *authz, lf *storage.Flow, lst *state, login *AcceptLogin, sid string, authTime time.Time) (next *storage.Flow, csrf string, err error) {
	req := a.req
	now := h.now().UTC()
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
	// §5.5.1: "If the sub (subject) Claim is requested with a specific
	// value for the ID Token, the Authorization Server MUST NOT reply with
	// an ID Token for a different user".
	if sub := req.Claims.requestedSub(); sub != "" && sub != idSub {
		return nil, "", apierr.LoginRequired("The End-User who logged in is not the one the claims parameter requests (id_token sub)")
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
		IDTokenSubject: idSub, AuthTime: authTime, ACR: login.ACR, AMR: login.AMR, LoginContext: login.Context,
		Device: lst.Device}
	f := storage.Flow{Kind: storage.FlowConsent, ID: challenge, ClientID: a.client.ID, Subject: login.Subject,
		SessionID: sid, Status: statusPending, CreatedAt: now, ExpiresAt: now.Add(h.opts.ChallengeLifespan)}
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
	list, err := h.consentSessions.List(ctx, storage.ConsentFilter{Subject: subject, ClientID: clientID})
	if err != nil {
		return false, err
	}
	now := h.now()
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
	v, a, err := h.loadAndUseRejected(r, w, storage.FlowConsent, verifier, h.opts.Cookies.ConsentCSRF)
	if err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	f, st := v.f, v.st
	acc := st.Consent
	now := h.now().UTC()
	handled := st.loginHandledAt(now)
	cs := storage.ConsentSession{ID: f.ID, Subject: f.Subject, ClientID: f.ClientID, LoginSessionID: f.SessionID,
		Remember: acc.Remember, GrantedScope: nonNil(acc.GrantScope), GrantedAudience: nonNil(acc.GrantAccessTokenAudience),
		HandledAt: handled}
	switch {
	case acc.Remember && acc.RememberFor > 0:
		cs.ExpiresAt = handled.Add(time.Duration(acc.RememberFor) * time.Second)
	case !acc.Remember:
		// Kept for listing and logout as long as its tokens may live.
		cs.ExpiresAt = handled.Add(h.opts.UnrememberedLifespan)
	}
	data, err := json.Marshal(consentData{Session: acc.Session, RememberFor: acc.RememberFor, Context: acc.Context,
		IDTokenSubject: st.IDTokenSubject, Request: h.consentRequest(f, st)})
	if err != nil {
		h.redirectError(w, r, a, apierr.ServerError(err))
		return
	}
	cs.Data = data
	httpx.Info(ctx).Subject = f.Subject
	var claims *ClaimsRequest
	if a.req != nil {
		claims = a.req.Claims
	}
	idOmit, uiOmit := claims.omissions()
	grant := oauth2.GrantSession{Subject: f.Subject, IDTokenSubject: st.IDTokenSubject, SessionID: f.SessionID,
		AuthTime: st.AuthTime, RequestedAt: st.RequestedAt, ACR: st.ACR, AMR: st.AMR,
		GrantedScope: nonNil(acc.GrantScope), GrantedAudience: nonNil(acc.GrantAccessTokenAudience),
		AccessTokenClaims: acc.Session.AccessToken, IDTokenClaims: acc.Session.IDToken,
		IDTokenOmit: idOmit, UserinfoOmit: uiOmit}
	if a.device != nil {
		h.deviceGranted(w, r, a, v, &cs, grant)
		return
	}
	// The consent challenge is used, the consent recorded and the code
	// (and implicit/hybrid access token) stored at once, in one commit.
	var stepErr error
	params, err := h.tokens.Authorize(ctx, &oauth2.Authorization{
		Client: a.client, ResponseTypes: a.req.ResponseTypes,
		RedirectURI: a.redirectURI, RedirectURISent: a.req.RedirectURI != "", Nonce: a.req.Nonce,
		CodeChallenge: a.req.CodeChallenge, CodeChallengeMethod: a.req.CodeChallengeMethod,
		DPoPJKT:   a.req.DPoPJKT,
		RequestID: f.ID,
		Grant:     grant,
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

// consentRequest renders a consent flow in Hydra's shape, without its client.
func (h *Handler) consentRequest(f *storage.Flow, st *state) *ConsentRequest {
	cr := &ConsentRequest{Challenge: f.ID, ConsentRequestID: f.ID, RequestedScope: nonNil(st.Request.Scope),
		RequestedAccessTokenAudience: nonNil(st.Request.Audience), Skip: st.Skip, Subject: f.Subject,
		OIDCContext: st.OIDCContext, RequestURL: st.RequestURL, LoginChallenge: st.LoginChallenge,
		LoginSessionID: f.SessionID, ACR: st.ACR, AMR: nonNil(st.AMR), Context: st.LoginContext}
	return cr
}

// describeConsent is Hydra's answer to GET .../requests/consent.
func (h *Handler) describeConsent(ctx context.Context, f *storage.Flow, st *state) (any, error) {
	c, err := h.clients.Get(ctx, f.ClientID)
	if err != nil {
		return nil, err
	}
	cr := h.consentRequest(f, st)
	cr.Client = c
	return cr, nil
}

// readAcceptConsent reads PUT .../consent/accept: what is granted must be
// something the client may have.
func (h *Handler) readAcceptConsent(r *http.Request, challenge string) (*storage.Flow, flowChange, error) {
	ctx := r.Context()
	var body AcceptConsent
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, nil, err
	}
	if body.RememberFor < 0 {
		return nil, nil, apierr.InvalidRequest("Field 'remember_for' must not be negative")
	}
	f, st, err := h.loadFlow(ctx, storage.FlowConsent, challenge, true)
	if err != nil {
		return nil, nil, err
	}
	c, err := h.clients.Get(ctx, f.ClientID)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range body.GrantScope {
		if !h.opts.Scopes(c.Scopes(), s) {
			return nil, nil, apierr.InvalidRequest("The client is not allowed the scope %q, it cannot be granted", truncate(s))
		}
	}
	// The consent app grants a subset of the requested targets (resource
	// and audience, RFC 8707 §2.1): the user consented to what was shown.
	var requested []string
	if st.Request != nil {
		requested = st.Request.Audience
	}
	for _, a := range body.GrantAccessTokenAudience {
		if !slices.Contains(requested, a) {
			return nil, nil, apierr.InvalidRequest("The audience %q was not requested, it cannot be granted", truncate(a))
		}
	}
	return f, func(f *storage.Flow, st *state) error {
		body.GrantScope, body.GrantAccessTokenAudience = nonNil(body.GrantScope), nonNil(body.GrantAccessTokenAudience)
		f.Status, st.Consent, st.Reject = statusAccepted, &body, nil
		return nil
	}, nil
}
