package flow

import (
	"context"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The challenge admin API (Hydra v2): for each kind of challenge,
//
//	GET .../requests/{kind}?{kind}_challenge=  the challenge (getChallenge)
//	PUT .../requests/{kind}/accept             the app accepts (decideChallenge)
//	PUT .../requests/{kind}/reject             the app rejects (decideChallenge)
//
// What differs between kinds is in their challengeKind.

// challengeKind is one kind of challenge as the admin API serves it.
type challengeKind struct {
	kind storage.FlowKind
	// describe renders a pending or handled flow for GET.
	describe func(h *Handler, ctx context.Context, f *storage.Flow, st *state) (any, error)
	// usedRedirect is where the 410 answer for a used challenge sends the
	// browser.
	usedRedirect func(h *Handler, st *state) string
	// resume is the URL the browser continues at once the app decided,
	// with the {kind}_verifier added to its query.
	resume         func(h *Handler, st *state) string
	accept, reject decision
}

// decision is the app's accept or reject of a challenge.
type decision struct {
	// read reads and checks the request body and returns the change to
	// make to the flow, and the flow if it had to read it (else nil).
	read func(h *Handler, r *http.Request, challenge string) (loaded *storage.Flow, change flowChange, err error)
	// noContent answers 204 instead of the redirect.
	noContent bool
}

// flowChange records a decision in a flow and its state.
type flowChange func(f *storage.Flow, st *state) error

var challengeKinds = map[storage.FlowKind]*challengeKind{
	storage.FlowLogin: {
		kind: storage.FlowLogin, describe: (*Handler).describeLogin,
		usedRedirect: requestURLOf, resume: requestURLOf,
		accept: decision{read: (*Handler).readAcceptLogin}, reject: decision{read: readReject},
	},
	storage.FlowConsent: {
		kind: storage.FlowConsent, describe: (*Handler).describeConsent,
		usedRedirect: requestURLOf, resume: requestURLOf,
		accept: decision{read: (*Handler).readAcceptConsent}, reject: decision{read: readReject},
	},
	storage.FlowLogout: {
		kind: storage.FlowLogout, describe: (*Handler).describeLogout,
		usedRedirect: (*Handler).logoutDoneURL, resume: (*Handler).logoutEndpointURL,
		accept: decision{read: setStatus(statusAccepted)},
		// Hydra's: the End-User stays logged in, the answer is 204 and the
		// app sends the browser wherever it likes.
		reject: decision{read: setStatus(statusRejected), noContent: true},
	},
	storage.FlowDevice: {
		kind: storage.FlowDevice, describe: (*Handler).describeDevice,
		usedRedirect: requestURLOf, resume: requestURLOf,
		accept: decision{read: (*Handler).readAcceptDevice},
	},
}

// requestURLOf is the authorization request a login or consent flow
// belongs to: a used challenge's browser goes back there (and proceeds
// from the session), a decided one continues there with its verifier.
func requestURLOf(_ *Handler, st *state) string { return st.RequestURL }

// getChallenge is GET .../requests/{kind}.
func (h *Handler) getChallenge(k *challengeKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		challenge, err := challengeParam(r, k.kind)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		f, st, err := h.loadFlow(r.Context(), k.kind, challenge, false)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if f.Status == statusUsed {
			gone(w, k.usedRedirect(h, st))
			return
		}
		body, err := k.describe(h, r.Context(), f, st)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, body)
	}
}

// decideChallenge is PUT .../requests/{kind}/{accept,reject}: the decision
// is recorded and the app told where the browser continues.
func (h *Handler) decideChallenge(k *challengeKind, d decision) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		challenge, err := challengeParam(r, k.kind)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		loaded, change, err := d.read(h, r, challenge)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		to, err := h.handle(r.Context(), k, challenge, loaded, change)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if d.noContent {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, Redirect{RedirectTo: to})
	}
}

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
// app sends the browser to redirect_to.
func gone(w http.ResponseWriter, redirectTo string) {
	httpx.WriteJSON(w, http.StatusGone, Redirect{RedirectTo: redirectTo})
}

// readReject reads a login or consent rejection (Hydra's
// rejectOAuth2Request body), which the client receives as its error.
func readReject(_ *Handler, r *http.Request, _ string) (*storage.Flow, flowChange, error) {
	var body Reject
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, nil, err
	}
	return nil, func(f *storage.Flow, st *state) error {
		f.Status, st.Reject = statusRejected, &body
		return nil
	}, nil
}

// setStatus is a decision without a body.
func setStatus(status string) func(*Handler, *http.Request, string) (*storage.Flow, flowChange, error) {
	return func(*Handler, *http.Request, string) (*storage.Flow, flowChange, error) {
		return nil, func(f *storage.Flow, _ *state) error {
			f.Status = status
			return nil
		}, nil
	}
}
