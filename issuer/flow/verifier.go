package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

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
	if f, ok := h.recent.get(kind, challenge, h.now()); ok {
		if v, a, err := h.checkVerifier(r, kind, f, secret, csrfBase); err == nil {
			return v, a, nil
		}
		// Refused by the process's own copy of the flow: the database
		// decides (the app may have decided again on another instance).
	}
	f, err := h.flows.Get(r.Context(), kind, challenge)
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
	if kind == storage.FlowDevice {
		// Set before the client was known (Hydra's has no suffix either).
		csrfName = csrfBase
	}
	restCSRF, ok := h.jar.checkCSRF(r, csrfName, st.CSRF)
	if !ok {
		return nil, nil, pageError{apierr.Forbidden("The %s request was not started by this browser (CSRF cookie missing or wrong); start again", kind)}
	}
	c, err := h.clients.Get(ctx, f.ClientID)
	if err != nil {
		return nil, nil, pageError{apierr.InvalidClient("The OAuth 2.0 Client of this request no longer exists")}
	}
	a := &authz{client: c, req: st.Request, redirectURI: st.RedirectURI, device: st.Device}
	if st.Device != nil {
		a.requestURL = st.RequestURL
	}
	if !h.now().Before(f.ExpiresAt) {
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
	err := h.flows.Step(ctx, step)
	if errors.Is(err, storage.ErrConflict) {
		h.recent.drop(kind, v.f.ID)
		// Another request used the verifier first, or the app decided
		// again (which replaces the verifier).
		cur, gerr := h.flows.Get(ctx, kind, v.f.ID)
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
		h.recent.put(*step.Next, h.now())
	}
	// The token is spent; other tabs' flows keep theirs.
	if len(v.restCSRF) == 0 {
		h.jar.clear(w, v.csrfName)
	} else if err := h.jar.set(w, v.csrfName, []byte(strings.Join(v.restCSRF, " ")), h.opts.ChallengeLifespan); err != nil {
		return apierr.ServerError(err)
	}
	if v.f.Status == statusRejected {
		return rejectError(v.st.Reject, v.st.Request != nil && v.st.Request.HasPrompt("none"))
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
// the client receives. An app that rejects a prompt=none request without
// naming an error could not finish it without showing a page: OpenID
// Connect Core §3.1.2.6 interaction_required ("the Authentication Request
// cannot be completed without displaying a user interface"), the error
// for prompt=none when neither login_required nor consent_required fits.
func rejectError(rj *Reject, promptNone bool) error {
	e := &apierr.Error{Code: "access_denied", Status: http.StatusForbidden,
		Description: "The resource owner or authorization server denied the request."}
	if promptNone {
		e = apierr.InteractionRequired("Prompt none was requested, but the request cannot be completed without user interaction")
	}
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
	return rejection{e}
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
