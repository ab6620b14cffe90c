package flow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

// noTokens is an Issuer for tests that never reach the authorization
// response.
type noTokens struct{}

func (noTokens) Authorize(context.Context, *oauth2.Authorization) (url.Values, error) {
	return nil, nil
}

// noClients has no client registered.
type noClients struct{}

func (noClients) Get(context.Context, string) (*client.Client, error) {
	return nil, storage.ErrNotFound
}

func TestNewRefusesMissingDeps(t *testing.T) {
	_, err := New(Deps{}, Options{})
	want := "[Clients ConsentSessions CookieCipher Flows Keys LoginSessions Tokens]"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("New without deps: %v, want the missing %s", err, want)
	}
}

// TestChallengeAdminRoutes: every kind of challenge is served under both
// admin prefixes, with its methods.
func TestChallengeAdminRoutes(t *testing.T) {
	st := memory.New(memory.Options{})
	cookies, err := secrets.NewKeyring([]string{"cookie-secret-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Deps{Clients: noClients{}, Flows: st.Flows(), LoginSessions: st.LoginSessions(),
		ConsentSessions: st.ConsentSessions(), Tokens: noTokens{}, Keys: unsignedKeys{}, CookieCipher: cookies,
	}, Options{IssuerURL: "https://issuer.example", PublicURL: "https://issuer.example"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.MountPublic(mux)
	h.MountAdmin(mux)
	unknown := strings.Repeat("0", 32)
	for _, base := range []string{"/admin/oauth2/auth/requests", "/admin/oauth2/requests"} {
		for _, kind := range []string{"login", "consent", "logout"} {
			accept := "{}"
			if kind == "login" {
				accept = `{"subject":"alice"}`
			}
			for _, tc := range []struct {
				method, path string
				status       int
				body         string
			}{
				{http.MethodGet, "/" + kind, http.StatusBadRequest, ""},
				{http.MethodGet, "/" + kind + "?" + kind + "_challenge=" + unknown, http.StatusNotFound, ""},
				{http.MethodPut, "/" + kind + "/accept?challenge=" + unknown, http.StatusNotFound, accept},
				{http.MethodPut, "/" + kind + "/reject?" + kind + "_challenge=" + unknown, http.StatusNotFound, "{}"},
				{http.MethodPost, "/" + kind, http.StatusMethodNotAllowed, ""},
				{http.MethodGet, "/" + kind + "/accept", http.StatusMethodNotAllowed, ""},
				{http.MethodDelete, "/" + kind + "/reject", http.StatusMethodNotAllowed, ""},
			} {
				r := httptest.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, r)
				if w.Code != tc.status {
					t.Errorf("%s %s: %d, want %d: %s", tc.method, base+tc.path, w.Code, tc.status, w.Body)
				}
			}
		}
	}
}
