package oauth2

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// DefaultFlushBatch is the number of rows Flush deletes per transaction.
const DefaultFlushBatch = 1000

// Flusher deletes at most limit rows that expired before `before`, in one
// short transaction, and says how many. storage.TokenStore, NonceStore,
// FlowStore, LoginSessionStore and ConsentSessionStore all are.
type Flusher interface {
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Flush deletes every row of store that expired before `before`, batch rows
// at a time (DefaultFlushBatch when batch <= 0), until a batch comes back
// short; each batch is its own short transaction, so the tables are never
// locked for long and live rows are untouched. It returns the number of
// rows deleted, also when it stops on an error or a cancelled ctx. The
// janitor command and POST /admin/oauth2/flush use it.
func Flush(ctx context.Context, store Flusher, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = DefaultFlushBatch
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := store.FlushExpired(ctx, before, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(batch) {
			return total, nil
		}
	}
}

// flushRequest is the body of POST /admin/oauth2/flush (Hydra v1's
// flushInactiveOAuth2TokensRequest).
type flushRequest struct {
	NotAfter *time.Time `json:"notAfter"`
}

// flush is POST /admin/oauth2/flush: deletes tokens that expired (or were
// revoked) before notAfter, default now. A notAfter in the future is
// clamped to now, so the call can never delete a token that is still
// valid. Answers 204 like Hydra.
func (h *Handler) flush(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	before := now
	var body flushRequest
	// The body is optional: none (or only whitespace) means "now".
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBodyBytes))
	if err != nil {
		httpx.WriteError(w, r, apierr.RequestTooLarge("The request body exceeds %d bytes", httpx.MaxBodyBytes))
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if err := httpx.DecodeJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	if body.NotAfter != nil && !body.NotAfter.IsZero() && body.NotAfter.Before(now) {
		before = *body.NotAfter
	}
	n, err := Flush(r.Context(), h.tokens, before, DefaultFlushBatch)
	if err != nil {
		h.log.Error("flushing tokens", zap.Int64("deleted", n), zap.Error(err))
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	h.log.Info("flushed expired tokens", zap.Int64("deleted", n), zap.Time("before", before))
	w.WriteHeader(http.StatusNoContent)
}
