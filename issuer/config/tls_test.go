package config

import (
	"maps"
	"strings"
	"testing"
)

// TestTLSAndMTLSValues: each bad serve.*.tls or oauth2.mtls value names
// its key; good ones pass.
func TestTLSAndMTLSValues(t *testing.T) {
	base := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
	header := map[string]string{"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER": "x-forwarded-client-cert",
		"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT": "envoy", "OAUTH2_MTLS_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.1"}
	cases := []struct {
		name string
		env  map[string]string
		want string // "" = valid
	}{
		{"client_auth", map[string]string{"SERVE_PUBLIC_TLS_CLIENT_AUTH": "require"}, "SERVE_PUBLIC_TLS_CLIENT_AUTH"},
		{"admin client_auth", map[string]string{"SERVE_ADMIN_TLS_CLIENT_AUTH": "request"}, "SERVE_ADMIN_TLS_CLIENT_AUTH"},
		{"cert without key", map[string]string{"SERVE_PUBLIC_TLS_CERT_PATH": "/x.crt"}, "SERVE_PUBLIC_TLS"},
		{"shared key without cert", map[string]string{"SERVE_TLS_KEY_PATH": "/x.key"}, "SERVE_ADMIN_TLS"},
		{"path and base64", map[string]string{"SERVE_PUBLIC_TLS_CERT_PATH": "/x.crt", "SERVE_PUBLIC_TLS_CERT_BASE64": "eA==", "SERVE_PUBLIC_TLS_KEY_PATH": "/x.key"}, "SERVE_PUBLIC_TLS_CERT"},
		{"pair", map[string]string{"SERVE_PUBLIC_TLS_CERT_PATH": "/x.crt", "SERVE_PUBLIC_TLS_KEY_BASE64": "eA=="}, ""},
		{"header", header, ""},
		{"header format", merge(header, map[string]string{"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT": "haproxy"}), "OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT"},
		{"header without proxies", merge(header, map[string]string{"OAUTH2_MTLS_TRUSTED_PROXIES": ""}), "OAUTH2_MTLS_TRUSTED_PROXIES"},
		{"bad proxy", merge(header, map[string]string{"OAUTH2_MTLS_TRUSTED_PROXIES": "10.0.0.0/33"}), "OAUTH2_MTLS_TRUSTED_PROXIES"},
		{"alias url", map[string]string{"OAUTH2_MTLS_ALIAS_URL": "mtls.example.com"}, "OAUTH2_MTLS_ALIAS_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := merge(base, tc.env)
			for k, v := range m {
				if v == "" {
					delete(m, k)
				}
			}
			c, _, err := Load(nil, env(m))
			if err == nil {
				err = c.Validate()
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}
