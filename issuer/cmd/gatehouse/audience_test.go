package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestAccessTokenAudience: RFC 9068 §2.2 requires aud. A token granted no
// audience gets the default audience (oauth2.default_access_token_audience,
// by default the issuer exactly as configured), never an empty array; a
// requested audience is used as it is; introspection gives the same aud,
// for JWT and opaque tokens alike.
func TestAccessTokenAudience(t *testing.T) {
	is := testbin.StartIssuer(t, nil)
	issuer := is.Env["URLS_SELF_ISSUER"]
	checkAudience(t, is, []string{issuer})

	custom := []string{"https://api.example.com", "https://other.example.com"}
	is = testbin.StartIssuer(t, map[string]string{"OAUTH2_DEFAULT_ACCESS_TOKEN_AUDIENCE": strings.Join(custom, ",")})
	checkAudience(t, is, custom)
}

func checkAudience(t *testing.T, is *testbin.Issuer, defaultAud []string) {
	t.Helper()
	for _, strategy := range []string{"jwt", "opaque"} {
		c := createClient(t, is, "--access-token-strategy", strategy)
		for _, tc := range []struct {
			name     string
			audience string
			want     []string
		}{
			{"no audience", "", defaultAud},
			{"requested audience", "https://api.example.com", []string{"https://api.example.com"}},
		} {
			cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: is.PublicURL + "/oauth2/token", Scopes: []string{"read"}}
			if tc.audience != "" {
				cc.EndpointParams = url.Values{"audience": {tc.audience}}
			}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatalf("%s %s: %v", strategy, tc.name, err)
			}
			if strategy == "jwt" {
				if got := jwtAudience(t, tok.AccessToken); !slices.Equal(got, tc.want) {
					t.Errorf("%s %s: JWT aud %q, want %q", strategy, tc.name, got, tc.want)
				}
			}
			in := introspect(t, is, tok.AccessToken)
			var got []string
			auds, _ := in["aud"].([]any)
			for _, a := range auds {
				s, _ := a.(string)
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s %s: introspection aud %q, want %q", strategy, tc.name, got, tc.want)
			}
		}
	}
}

// jwtAudience returns the aud claim of a compact JWT, which must be an
// array (as Hydra writes it).
func jwtAudience(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Aud *[]string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Aud == nil {
		t.Fatalf("aud is missing or not an array: %s (%v)", payload, err)
	}
	return *claims.Aud
}
