package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestDiscoveryDocument: the binary's discovery document, byte for byte
// (members, their order, the order of every list), with the defaults and
// with every configuration switch that changes it flipped. The public URL
// is written {public} in testdata.
func TestDiscoveryDocument(t *testing.T) {
	for _, tc := range []struct {
		golden string
		env    map[string]string
	}{
		{"discovery-defaults.json", nil},
		{"discovery-switches.json", map[string]string{
			"OIDC_DYNAMIC_CLIENT_REGISTRATION_ENABLED": "true",
			"URLS_INTROSPECTION":                       "http://127.0.0.1:9/introspect",
			"OAUTH2_PKCE_ALLOW_PLAIN":                  "false",
			"OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES": "public,pairwise",
			"OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT":   "some-pairwise-salt",
			"KEYS_ALGORITHM":                           "ES256",
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			is := testbin.StartIssuer(t, flowEnv(tc.env))
			for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
				code, _, raw := get(t, is.PublicURL+p)
				got := []byte(strings.ReplaceAll(string(raw), is.PublicURL, "{public}"))
				if code != 200 || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
					t.Fatalf("%s: %d\n got %s\nwant %s", p, code, got, want)
				}
			}
		})
	}
}
