package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

func seedTokens(t *testing.T, m storage.TokenStore, n int, exp time.Time, prefix string) {
	t.Helper()
	for i := range n {
		if err := m.Create(context.Background(), storage.Token{Kind: storage.KindAccessToken,
			Signature: fmt.Sprintf("%s-%d", prefix, i), ClientID: "c", Active: true, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
}

// Flush deletes in bounded batches until a batch comes back short, and
// leaves live tokens alone.
func TestFlushBatches(t *testing.T) {
	now := newClock().Now()
	for _, tc := range []struct {
		expired, batch, wantCalls int
	}{
		{0, 1000, 1},
		{2500, 1000, 3},
		{2000, 1000, 3}, // the last, empty batch proves there is no more
		{7, 0, 1},       // default batch
		{10, 3, 4},
	} {
		t.Run(fmt.Sprint(tc.expired, "/", tc.batch), func(t *testing.T) {
			st := memory.New(memory.Options{})
			seedTokens(t, st.Tokens(), tc.expired, now.Add(-time.Minute), "old")
			seedTokens(t, st.Tokens(), 10, now.Add(time.Minute), "live")
			m := &countingFlusher{Flusher: st.Tokens()}
			n, err := Flush(context.Background(), m, now, tc.batch)
			if err != nil || n != int64(tc.expired) || m.flushCalls != tc.wantCalls {
				t.Fatalf("deleted %d (%v) in %d calls", n, err, m.flushCalls)
			}
			rows := st.Dump().Tokens
			if len(rows) != 10 {
				t.Fatalf("%d rows left", len(rows))
			}
			for _, r := range rows {
				if !r.ExpiresAt.After(now) {
					t.Fatalf("expired row left: %+v", r)
				}
			}
		})
	}
}

// countingFlusher counts the FlushExpired calls Flush makes.
type countingFlusher struct {
	Flusher
	flushCalls int
}

func (c *countingFlusher) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	c.flushCalls++
	return c.Flusher.FlushExpired(ctx, before, limit)
}

type failingFlusher struct{ calls int }

func (f *failingFlusher) FlushExpired(context.Context, time.Time, int) (int64, error) {
	f.calls++
	if f.calls == 3 {
		return 5, errors.New("lock timeout")
	}
	return 10, nil
}

func TestFlushStopsOnErrorAndCancel(t *testing.T) {
	f := &failingFlusher{}
	n, err := Flush(context.Background(), f, time.Now(), 10)
	if err == nil || n != 25 {
		t.Fatalf("%d %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f = &failingFlusher{}
	if n, err := Flush(ctx, f, time.Now(), 10); !errors.Is(err, context.Canceled) || n != 0 || f.calls != 0 {
		t.Fatalf("%d %v %d", n, err, f.calls)
	}
}

// POST /admin/oauth2/flush: notAfter defaults to now and is never later
// than now, so a live token is never flushed.
func TestFlushEndpoint(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	seedTokens(t, e.tokens, 5, now.Add(-2*time.Hour), "old")
	seedTokens(t, e.tokens, 3, now.Add(-30*time.Minute), "recent")
	seedTokens(t, e.tokens, 4, now.Add(time.Hour), "live")

	r := e.adminJSON(http.MethodPost, "/admin/oauth2/flush", map[string]any{"notAfter": now.Add(-time.Hour).Format(time.RFC3339)})
	if r.status != http.StatusNoContent || len(e.store.Dump().Tokens) != 7 {
		t.Fatalf("%d %s, %d rows", r.status, r.body, len(e.store.Dump().Tokens))
	}
	r = e.adminJSON(http.MethodPost, "/admin/oauth2/flush", map[string]any{"notAfter": now.Add(48 * time.Hour).Format(time.RFC3339)})
	if r.status != http.StatusNoContent || len(e.store.Dump().Tokens) != 4 {
		t.Fatalf("future notAfter: %d %s, %d rows", r.status, r.body, len(e.store.Dump().Tokens))
	}
	seedTokens(t, e.tokens, 2, now.Add(-time.Second), "again")
	req, _ := http.NewRequest(http.MethodPost, e.adm.URL+"/admin/oauth2/flush", nil)
	if r := e.do(req); r.status != http.StatusNoContent || len(e.store.Dump().Tokens) != 4 {
		t.Fatalf("no body: %d %s, %d rows", r.status, r.body, len(e.store.Dump().Tokens))
	}
	wantError(t, e.adminJSON(http.MethodPost, "/admin/oauth2/flush", `{"notAfter":`), http.StatusBadRequest, "invalid_request")
	wantError(t, e.adminJSON(http.MethodPost, "/admin/oauth2/flush", `{"notAfter":"yesterday"}`), http.StatusBadRequest, "invalid_request")
	wantError(t, e.adminJSON(http.MethodGet, "/admin/oauth2/flush", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}
