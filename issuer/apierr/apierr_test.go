package apierr_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

func TestFrom(t *testing.T) {
	down := fmt.Errorf("%w: dial tcp: connection refused", storage.ErrUnavailable)
	for _, tc := range []struct {
		name       string
		err        error
		code       string
		status     int
		retryAfter bool
	}{
		{"unreachable database", down, "temporarily_unavailable", 503, true},
		{"wrapped unreachable database", fmt.Errorf("loading the client: %w", down), "temporarily_unavailable", 503, true},
		{"server error caused by an unreachable database", apierr.ServerError(down), "temporarily_unavailable", 503, true},
		{"other server error", apierr.ServerError(errors.New("boom")), "server_error", 500, false},
		{"plain error", errors.New("boom"), "server_error", 500, false},
		{"not found", storage.ErrNotFound, "not_found", 404, false},
		{"an API error passes", apierr.InvalidGrant("no"), "invalid_grant", 400, false},
		{"unavailable constructor", apierr.Unavailable("later"), "temporarily_unavailable", 503, true},
	} {
		e := apierr.From(tc.err)
		if e.Code != tc.code || e.StatusCode() != tc.status || (e.Header.Get("Retry-After") != "") != tc.retryAfter {
			t.Errorf("%s: %s %d Retry-After=%q, want %s %d", tc.name, e.Code, e.StatusCode(), e.Header.Get("Retry-After"), tc.code, tc.status)
		}
		if errors.Is(e, storage.ErrUnavailable) != errors.Is(tc.err, storage.ErrUnavailable) {
			t.Errorf("%s: the cause for the log is lost", tc.name)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for code, want := range map[string]int{
		"invalid_request": 400, "invalid_client": 401, "access_denied": 403, "server_error": 500,
		"temporarily_unavailable": 503, "not_found": 404, "made_up": 400, "": 400,
	} {
		if got := apierr.StatusOf(code); got != want {
			t.Errorf("StatusOf(%q) = %d, want %d", code, got, want)
		}
	}
	if got := apierr.InvalidClient("x").StatusCode(); got != http.StatusUnauthorized {
		t.Errorf("InvalidClient status %d", got)
	}
}
