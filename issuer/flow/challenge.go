package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// createFlow stores a new challenge with its state.
func (h *Handler) createFlow(ctx context.Context, f storage.Flow, st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	f.Data = data
	if err := h.flows.Create(ctx, f); err != nil {
		return err
	}
	h.recent.put(f, h.now())
	return nil
}

// loadFlow reads a pending or handled flow for the admin API; recent
// allows the process's own last write of it, for a read that only feeds
// a compare-and-set (recent.go).
func (h *Handler) loadFlow(ctx context.Context, kind storage.FlowKind, challenge string, recent bool) (*storage.Flow, *state, error) {
	var f storage.Flow
	var ok bool
	if recent {
		f, ok = h.recent.get(kind, challenge, h.now())
	}
	var err error
	if !ok {
		f, err = h.flows.Get(ctx, kind, challenge)
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
	if !h.now().Before(f.ExpiresAt) {
		return nil, nil, apierr.NotFound("The %s request %q has expired (after %s); the End-User must start again",
			kind, truncate(challenge), h.opts.ChallengeLifespan)
	}
	return &f, &st, nil
}

// handle records the app's decision on a flow and returns the verifier
// URL the browser continues at. A used challenge is refused; a handled
// but unused one may be handled again (the last decision counts, as in
// Hydra). loaded is the flow as the caller just read it with loadFlow, or
// nil. The decision is stored only if the flow did not change since it was
// read (FlowStore.Swap, one statement), else it is read and decided again.
func (h *Handler) handle(ctx context.Context, k *challengeKind, challenge string, loaded *storage.Flow, change flowChange) (string, error) {
	kind := k.kind
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
		if err := change(&next, &st); err != nil {
			return "", err
		}
		st.Verifier, st.HandledAt = vhash, h.now().UTC()
		data, err := json.Marshal(&st)
		if err != nil {
			return "", apierr.ServerError(err)
		}
		next.Data = data
		err = h.flows.Swap(ctx, *loaded, next)
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
		h.recent.put(next, h.now())
		return withQuery(k.resume(h, &st), url.Values{string(kind) + "_verifier": {verifier}}), nil
	}
}
