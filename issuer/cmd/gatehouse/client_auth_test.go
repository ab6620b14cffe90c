package main_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestClientAuthenticationFailuresLookAlike: at the token and revocation
// endpoints an unknown client, a wrong secret and the wrong
// authentication method give the very same invalid_client answer (RFC
// 6749 §5.2), so the endpoint does not tell who exists or how a client
// authenticates; the reason is in the log only.
func TestClientAuthenticationFailuresLookAlike(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"LOG_LEVEL": "info"})
	basic := createClient(t, is)
	post := createClient(t, is, "--token-endpoint-auth-method", "client_secret_post")

	call := func(path, body, user, pass string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, is.PublicURL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	creds := func(id, secret string) string {
		v := url.Values{"client_id": {id}}
		if secret != "" {
			v.Set("client_secret", secret)
		}
		return "&" + v.Encode()
	}
	for _, ep := range []struct{ path, body string }{
		{"/oauth2/token", "grant_type=client_credentials"},
		{"/oauth2/revoke", "token=ory_at_whatever"},
	} {
		t.Run(ep.path, func(t *testing.T) {
			cases := []struct {
				name, user, pass, body string
			}{
				{"basic: unknown client", "nobody", basic.Secret, ep.body},
				{"basic: wrong secret", basic.ID, "wrong-secret", ep.body},
				{"basic: client registered for client_secret_post", post.ID, post.Secret, ep.body},
				{"post: unknown client", "", "", ep.body + creds("nobody", post.Secret)},
				{"post: wrong secret", "", "", ep.body + creds(post.ID, "wrong-secret")},
				{"post: client registered for client_secret_basic", "", "", ep.body + creds(basic.ID, basic.Secret)},
				{"none: unknown client", "", "", ep.body + creds("nobody", "")},
				{"none: confidential client", "", "", ep.body + creds(basic.ID, "")},
			}
			var first string
			for _, c := range cases {
				status, h, body := call(ep.path, c.body, c.user, c.pass)
				if status != http.StatusUnauthorized || !strings.Contains(body, `"invalid_client"`) {
					t.Fatalf("%s: %d %s", c.name, status, body)
				}
				// RFC 6749 §5.2: 401 with WWW-Authenticate when Basic was used.
				if got := h.Get("WWW-Authenticate"); (c.user != "") != strings.HasPrefix(got, "Basic") {
					t.Fatalf("%s: WWW-Authenticate %q", c.name, got)
				}
				if first == "" {
					first = body
				}
				if body != first {
					t.Fatalf("%s answers differently:\n%s\nfirst case:\n%s", c.name, body, first)
				}
			}
		})
	}
	// The distinction is kept for the operator, in the request log.
	out := is.Output.String()
	for _, cause := range []string{"unknown client", "wrong client secret", "token_endpoint_auth_method"} {
		if !strings.Contains(out, cause) {
			t.Errorf("the log does not give the cause %q", cause)
		}
	}
}
