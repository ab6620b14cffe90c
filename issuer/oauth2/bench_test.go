package oauth2

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// In-process benchmarks of the handlers (no network): what one request
// costs on the token side, store and signer being in-memory fakes. The
// client secret check is paid once and then served from the
// Authenticator's verification cache, as in production.
func benchPost(b *testing.B, mux http.Handler, path, body, user, pass string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkClientCredentialsOpaque(b *testing.B) {
	e := newEnv(b)
	benchPost(b, e.pubMux, "/oauth2/token", "grant_type=client_credentials&scope=read", "svc", "svc-secret")
}

func BenchmarkClientCredentialsJWTRS256(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.AccessTokenStrategy = "jwt" })
	benchPost(b, e.pubMux, "/oauth2/token", "grant_type=client_credentials&scope=read", "svc", "svc-secret")
}

func BenchmarkIntrospectOpaque(b *testing.B) {
	e := newEnv(b)
	tok := e.ccToken("svc:svc-secret", url.Values{"scope": {"read"}})
	benchPost(b, e.admMux, "/admin/oauth2/introspect", url.Values{"token": {tok}}.Encode(), "", "")
}
