package flow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
)

// unsignedKeys "signs" by base64-encoding the payload: enough to read the
// claims back in a test.
type unsignedKeys struct{}

func (unsignedKeys) Sign(_ context.Context, _, typ string, payload []byte) (string, error) {
	return base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"`+typ+`"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + ".sig", nil
}
func (unsignedKeys) PublicKeys(context.Context, ...string) (jwk.Set, error) { return jwk.NewSet(), nil }

// TestBackchannelDelivery: retries on 5xx and network errors, none on 4xx,
// every attempt bounded, and the claims of Back-Channel Logout §2.4.
func TestBackchannelDelivery(t *testing.T) {
	outbound, err := safehttp.New(safehttp.Options{Timeout: time.Second, MaxRedirects: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{keys: unsignedKeys{}, outbound: outbound, logger: zap.NewNop(), now: time.Now,
		opts: Options{IssuerURL: "https://issuer.example", BackchannelAttempts: 3, BackchannelTimeout: 150 * time.Millisecond}}
	for _, tc := range []struct {
		name     string
		handler  func(n int32, w http.ResponseWriter)
		attempts int32
		ok       bool
	}{
		{"ok", func(int32, http.ResponseWriter) {}, 1, true},
		{"503 then ok", func(n int32, w http.ResponseWriter) {
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}, 2, true},
		{"always 500", func(_ int32, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, 3, false},
		{"400 is final", func(_ int32, w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }, 1, false},
		{"hangs", func(int32, http.ResponseWriter) { time.Sleep(time.Second) }, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			var mu sync.Mutex // a hung attempt's handler still runs beside the retry
			var claims map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cur := n.Add(1)
				_ = r.ParseForm()
				parts := strings.Split(r.PostForm.Get("logout_token"), ".")
				if len(parts) == 3 {
					b, _ := base64.RawURLEncoding.DecodeString(parts[1])
					var got map[string]any
					_ = json.Unmarshal(b, &got)
					mu.Lock()
					claims = got
					mu.Unlock()
				}
				tc.handler(cur, w)
			}))
			defer srv.Close()
			c := &client.Client{ID: "rp", BackchannelLogoutURI: srv.URL}
			start := time.Now()
			err := h.sendLogoutToken(context.Background(), sessionClient{client: c, subject: "pairwise-sub"}, "sid-1")
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("took %s", took)
			}
			if (err == nil) != tc.ok || n.Load() != tc.attempts {
				t.Fatalf("err %v after %d attempts, want ok=%v after %d", err, n.Load(), tc.ok, tc.attempts)
			}
			if tc.ok {
				mu.Lock()
				defer mu.Unlock()
				ev, _ := claims["events"].(map[string]any)
				if claims["iss"] != "https://issuer.example" || claims["sub"] != "pairwise-sub" || claims["sid"] != "sid-1" ||
					ev[backchannelEvent] == nil || claims["jti"] == nil || claims["nonce"] != nil {
					t.Fatalf("logout token claims: %v", claims)
				}
			}
		})
	}
}
