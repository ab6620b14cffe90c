package flow

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

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
	list, err := h.consentSessions.List(ctx, storage.ConsentFilter{Subject: subject, LoginSessionID: q.Get("login_session_id")})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	now := h.now()
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
		d.Request.ConsentRequestID = cs.ID
		if c, err := h.clients.Get(ctx, cs.ClientID); err == nil {
			d.Request.Client = c
		} else if isNotFound(err) {
			continue // consents die with their client
		}
		p := PreviousConsentSession{ConsentRequestID: cs.ID, ConsentRequest: d.Request, GrantScope: nonNil(cs.GrantedScope),
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
// ?subject=&client= (or &all=true), or ?consent_request_id= alone (Hydra
// v25): the consents are forgotten and every token issued on them is
// revoked.
func (h *Handler) revokeConsentSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	subject, clientID, all := q.Get("subject"), q.Get("client"), q.Get("all") == "true"
	if q.Get("consent_request_id") != "" {
		h.revokeConsentRequest(w, r, q)
		return
	}
	if subject == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The subject query parameter is required"))
		return
	}
	if clientID == "" && !all {
		httpx.WriteError(w, r, apierr.InvalidRequest("Either the client query parameter or all=true is required"))
		return
	}
	// The consents and their tokens go in one transaction, with one event
	// that has the gateways deny the subject's tokens (for this client)
	// issued before now (issuer/revocation).
	f := storage.ConsentFilter{Subject: subject, ClientID: clientID}
	now := h.now()
	_, err := h.consentSessions.Revoke(ctx, f, func([]storage.ConsentSession, []storage.Token) (*storage.RevocationEvent, error) {
		return revocation.NewEvent(revocation.KindConsent, now, time.Time{},
			revocation.Selectors{Sub: subject, ClientID: clientID, IssuedBefore: revocation.Before(now)}), nil
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sessionEnded is the revocation event of the end of the login session
// sid of sub: the gateways deny the tokens issued on it before now.
func (h *Handler) sessionEnded(sid, sub string) *storage.RevocationEvent {
	now := h.now()
	return revocation.NewEvent(revocation.KindSession, now, time.Time{},
		revocation.Selectors{SID: sid, Sub: sub, IssuedBefore: revocation.Before(now)})
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
		s, err := h.loginSessions.Get(ctx, sid)
		if err != nil && !isNotFound(err) {
			httpx.WriteError(w, r, err)
			return
		}
		if err == nil {
			sessions = append(sessions, s)
		}
	case subject != "":
		list, err := h.loginSessions.ListBySubject(ctx, subject)
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
		if err := h.loginSessions.Delete(ctx, s.ID, h.sessionEnded(s.ID, s.Subject)); err != nil && !isNotFound(err) {
			httpx.WriteError(w, r, err)
			return
		}
		h.backchannelLogout(ctx, s.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeConsentRequest is DELETE /admin/oauth2/auth/sessions/consent
// ?consent_request_id=: that one consent is forgotten and the tokens issued
// on it (its refresh chain included) are revoked; the subject's other
// consents, for the same client too, stay. As in Hydra v25.4 the id comes
// alone: with subject or client it is invalid_request, and an unknown id
// is not an error (the consent is gone either way).
func (h *Handler) revokeConsentRequest(w http.ResponseWriter, r *http.Request, q url.Values) {
	ctx := r.Context()
	id := q.Get("consent_request_id")
	if q.Get("subject") != "" || q.Get("client") != "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The consent_request_id query parameter must be given alone, without subject or client"))
		return
	}
	if err := httpx.CheckIdentifier("consent_request_id", id); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// One consent: the event lists the jtis of the access tokens it
	// revoked (with its subject and client), so the subject's other
	// consents keep working at the gateways too.
	now := h.now()
	_, err := h.consentSessions.Revoke(ctx, storage.ConsentFilter{ID: id}, func(removed []storage.ConsentSession, revoked []storage.Token) (*storage.RevocationEvent, error) {
		jtis, until := oauth2.RevokedAccessTokens(revoked)
		if len(jtis) == 0 {
			return nil, nil
		}
		cs := removed[0]
		return revocation.NewEvent(revocation.KindConsent, now, until,
			revocation.Selectors{JTI: jtis, Sub: cs.Subject, ClientID: cs.ClientID, IssuedBefore: revocation.Before(now)}), nil
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
