package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// challengeParam reads the challenge of an admin request: Hydra v2's
// {kind}_challenge, or challenge.
func challengeParam(r *http.Request, kind storage.FlowKind) (string, error) {
	q := r.URL.Query()
	for _, name := range []string{string(kind) + "_challenge", "challenge"} {
		v, err := httpx.SingleValue(q, name)
		if err != nil {
			return "", err
		}
		if v != "" {
			if err := httpx.CheckIdentifier(name+" parameter", v); err != nil {
				return "", err
			}
			return v, nil
		}
	}
	return "", apierr.InvalidRequest("The %s_challenge query parameter is required", kind)
}

// gone is Hydra's 410 answer for a challenge that was already used: the
// app sends the browser to redirect_to (the original request, which then
// proceeds from the session).
func gone(w http.ResponseWriter, redirectTo string) {
	httpx.WriteJSON(w, http.StatusGone, Redirect{RedirectTo: redirectTo})
}

// loadFlow reads a pending or handled flow for the admin API; recent
// allows the process's own last write of it, for a read that only feeds
// a compare-and-set (recent.go).
func (h *Handler) loadFlow(ctx context.Context, kind storage.FlowKind, challenge string, recent bool) (*storage.Flow, *state, error) {
	var f storage.Flow
	var ok bool
	if recent {
		f, ok = h.recent.get(kind, challenge, h.Now())
	}
	var err error
	if !ok {
		f, err = h.Flows.Get(ctx, kind, challenge)
	}
	if isNotFound(err) {
		return nil, nil, apierr.NotFound("The %s request %q does not exist (unknown challenge, or expired and removed)", kind, truncate(challenge))
	}
	if err != nil {
		return nil, nil, err
	}
	var st state
	if err := json.Unmarshal(f.Data, &st); err != nil {
		return nil, nil, apierr.ServerError(err)
	}
	if !h.Now().Before(f.ExpiresAt) {
		return nil, nil, apierr.NotFound("The %s request %q has expired (after %s); the End-User must start again",
			kind, truncate(challenge), h.Config.TTL.LoginConsentRequest)
	}
	return &f, &st, nil
}

// openFlow reads the flow a GET .../requests/{kind} names; on an error it
// answers the request itself and returns ok false.
func (h *Handler) openFlow(w http.ResponseWriter, r *http.Request, kind storage.FlowKind) (f *storage.Flow, st *state, ok bool) {
	challenge, err := challengeParam(r, kind)
	if err == nil {
		f, st, err = h.loadFlow(r.Context(), kind, challenge, false)
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return nil, nil, false
	}
	return f, st, true
}

func (h *Handler) getLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, st, ok := h.openFlow(w, r, storage.FlowLogin)
	if !ok {
		return
	}
	if f.Status == statusUsed {
		gone(w, st.RequestURL)
		return
	}
	c, err := h.Clients.Get(ctx, f.ClientID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LoginRequest{
		Challenge: f.ID, RequestedScope: nonNil(st.Request.Scope), RequestedAccessTokenAudience: nonNil(st.Request.Audience),
		Skip: st.Skip, Subject: f.Subject, OIDCContext: st.OIDCContext, Client: c, RequestURL: st.RequestURL,
		SessionID: f.SessionID,
	})
}

// handle records the app's decision on a flow and returns the verifier
// URL the browser continues at. A used challenge is refused; a handled
// but unused one may be handled again (the last decision counts, as in
// Hydra). loaded is the flow as the caller just read it with loadFlow, or
// nil. The decision is stored only if the flow did not change since it was
// read (FlowStore.Swap, one statement), else it is read and decided again.
func (h *Handler) handle(ctx context.Context, kind storage.FlowKind, challenge string, loaded *storage.Flow, fn func(*storage.Flow, *state) error) (string, error) {
	verifier, vhash := newVerifier(challenge)
	for attempt := 0; ; attempt++ {
		if loaded == nil {
			f, _, err := h.loadFlow(ctx, kind, challenge, attempt == 0)
			if err != nil {
				return "", err
			}
			loaded = f
		}
		if loaded.Status == statusUsed {
			return "", apierr.Conflict("The %s request has already been used; the End-User must start again", kind)
		}
		next := *loaded
		var st state
		if err := json.Unmarshal(next.Data, &st); err != nil {
			return "", apierr.ServerError(err)
		}
		if err := fn(&next, &st); err != nil {
			return "", err
		}
		st.Verifier, st.HandledAt = vhash, h.Now().UTC()
		data, err := json.Marshal(&st)
		if err != nil {
			return "", apierr.ServerError(err)
		}
		next.Data = data
		err = h.Flows.Swap(ctx, *loaded, next)
		if errors.Is(err, storage.ErrConflict) && attempt < 3 {
			// Changed meanwhile (or read from an outdated copy): decide
			// on the current flow.
			h.recent.drop(kind, challenge)
			loaded = nil
			continue
		}
		if err != nil {
			return "", err
		}
		h.recent.put(next, h.Now())
		if kind == storage.FlowLogout {
			return withQuery(h.public+"/oauth2/sessions/logout", url.Values{"logout_verifier": {verifier}}), nil
		}
		return withQuery(st.RequestURL, url.Values{string(kind) + "_verifier": {verifier}}), nil
	}
}

func (h *Handler) acceptLogin(w http.ResponseWriter, r *http.Request) {
	challenge, err := challengeParam(r, storage.FlowLogin)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body AcceptLogin
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if body.Subject == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("Field 'subject' must not be empty"))
		return
	}
	if body.RememberFor < 0 {
		httpx.WriteError(w, r, apierr.InvalidRequest("Field 'remember_for' must not be negative"))
		return
	}
	if len(body.Subject) > 255 || len(body.ForceSubjectIdentifier) > 255 {
		httpx.WriteError(w, r, apierr.InvalidRequest("Fields 'subject' and 'force_subject_identifier' are limited to 255 characters"))
		return
	}
	to, err := h.handle(r.Context(), storage.FlowLogin, challenge, nil, func(f *storage.Flow, st *state) error {
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
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, Redirect{RedirectTo: to})
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, kind storage.FlowKind) {
	challenge, err := challengeParam(r, kind)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body Reject
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	to, err := h.handle(r.Context(), kind, challenge, nil, func(f *storage.Flow, st *state) error {
		f.Status, st.Reject = statusRejected, &body
		return nil
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, Redirect{RedirectTo: to})
}

func (h *Handler) rejectLogin(w http.ResponseWriter, r *http.Request) {
	h.reject(w, r, storage.FlowLogin)
}
func (h *Handler) rejectConsent(w http.ResponseWriter, r *http.Request) {
	h.reject(w, r, storage.FlowConsent)
}

// consentRequest renders a consent flow in Hydra's shape, without its client.
func (h *Handler) consentRequest(f *storage.Flow, st *state) *ConsentRequest {
	cr := &ConsentRequest{Challenge: f.ID, RequestedScope: nonNil(st.Request.Scope),
		RequestedAccessTokenAudience: nonNil(st.Request.Audience), Skip: st.Skip, Subject: f.Subject,
		OIDCContext: st.OIDCContext, RequestURL: st.RequestURL, LoginChallenge: st.LoginChallenge,
		LoginSessionID: f.SessionID, ACR: st.ACR, AMR: nonNil(st.AMR), Context: st.LoginContext}
	return cr
}

func (h *Handler) getConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, st, ok := h.openFlow(w, r, storage.FlowConsent)
	if !ok {
		return
	}
	if f.Status == statusUsed {
		gone(w, st.RequestURL)
		return
	}
	c, err := h.Clients.Get(ctx, f.ClientID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	cr := h.consentRequest(f, st)
	cr.Client = c
	httpx.WriteJSON(w, http.StatusOK, cr)
}

func (h *Handler) acceptConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	challenge, err := challengeParam(r, storage.FlowConsent)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body AcceptConsent
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if body.RememberFor < 0 {
		httpx.WriteError(w, r, apierr.InvalidRequest("Field 'remember_for' must not be negative"))
		return
	}
	f, _, err := h.loadFlow(ctx, storage.FlowConsent, challenge, true)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := h.Clients.Get(ctx, f.ClientID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// What is granted must be something the client may have.
	for _, s := range body.GrantScope {
		if !h.scopes(c.Scopes(), s) {
			httpx.WriteError(w, r, apierr.InvalidRequest("The client is not allowed the scope %q, it cannot be granted", truncate(s)))
			return
		}
	}
	for _, a := range body.GrantAccessTokenAudience {
		if !slices.Contains(c.Audience, a) {
			httpx.WriteError(w, r, apierr.InvalidRequest("The audience %q is not allowed for the client, it cannot be granted", truncate(a)))
			return
		}
	}
	to, err := h.handle(ctx, storage.FlowConsent, challenge, f, func(f *storage.Flow, st *state) error {
		body.GrantScope, body.GrantAccessTokenAudience = nonNil(body.GrantScope), nonNil(body.GrantAccessTokenAudience)
		f.Status, st.Consent, st.Reject = statusAccepted, &body, nil
		return nil
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, Redirect{RedirectTo: to})
}

// ---------------------------------------------------------------- sessions

// listConsentSessions is GET /admin/oauth2/auth/sessions/consent?subject=
// (optionally &login_session_id=): the subject's unexpired consents.
func (h *Handler) listConsentSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	subject := q.Get("subject")
	if subject == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The subject query parameter is required"))
		return
	}
	list, err := h.ConsentSessions.List(ctx, storage.ConsentFilter{Subject: subject, LoginSessionID: q.Get("login_session_id")})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	now := h.Now()
	out := []PreviousConsentSession{}
	for _, cs := range list {
		if !cs.ExpiresAt.IsZero() && !now.Before(cs.ExpiresAt) {
			continue
		}
		var d consentData
		_ = json.Unmarshal(cs.Data, &d)
		if d.Request == nil {
			d.Request = &ConsentRequest{Challenge: cs.ID, Subject: cs.Subject, LoginSessionID: cs.LoginSessionID}
		}
		if c, err := h.Clients.Get(ctx, cs.ClientID); err == nil {
			d.Request.Client = c
		} else if isNotFound(err) {
			continue // consents die with their client
		}
		p := PreviousConsentSession{ConsentRequest: d.Request, GrantScope: nonNil(cs.GrantedScope),
			GrantAccessTokenAudience: nonNil(cs.GrantedAudience), Session: d.Session, Remember: cs.Remember,
			RememberFor: d.RememberFor, HandledAt: cs.HandledAt, Context: d.Context}
		if p.Session.AccessToken == nil {
			p.Session.AccessToken = map[string]any{}
		}
		if p.Session.IDToken == nil {
			p.Session.IDToken = map[string]any{}
		}
		out = append(out, p)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// revokeConsentSessions is DELETE /admin/oauth2/auth/sessions/consent
// ?subject=&client= (or &all=true): the consents are forgotten and every
// token issued on them is revoked.
func (h *Handler) revokeConsentSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	subject, clientID, all := q.Get("subject"), q.Get("client"), q.Get("all") == "true"
	if subject == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The subject query parameter is required"))
		return
	}
	if clientID == "" && !all {
		httpx.WriteError(w, r, apierr.InvalidRequest("Either the client query parameter or all=true is required"))
		return
	}
	f := storage.ConsentFilter{Subject: subject, ClientID: clientID}
	list, err := h.ConsentSessions.List(ctx, f)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for _, cs := range list {
		if err := h.Tokens.RevokeRequest(ctx, cs.ClientID, cs.ID); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	if _, err := h.ConsentSessions.Delete(ctx, f); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeLoginSessions is DELETE /admin/oauth2/auth/sessions/login
// ?subject= or ?sid=: the sessions end (the browser must log in again)
// and, as in Hydra v2, the clients of each are notified by back-channel
// logout.
func (h *Handler) revokeLoginSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	subject, sid := q.Get("subject"), q.Get("sid")
	var sessions []storage.LoginSession
	switch {
	case sid != "":
		s, err := h.LoginSessions.Get(ctx, sid)
		if err != nil && !isNotFound(err) {
			httpx.WriteError(w, r, err)
			return
		}
		if err == nil {
			sessions = append(sessions, s)
		}
	case subject != "":
		list, err := h.LoginSessions.ListBySubject(ctx, subject)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		sessions = list
	default:
		httpx.WriteError(w, r, apierr.InvalidRequest("Either the subject or the sid query parameter is required"))
		return
	}
	for _, s := range sessions {
		if err := h.LoginSessions.Delete(ctx, s.ID); err != nil && !isNotFound(err) {
			httpx.WriteError(w, r, err)
			return
		}
		h.backchannelLogout(ctx, s.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}
