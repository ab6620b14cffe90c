package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const goodSecret = "0123456789abcdef-secret"

func TestLoadEnvOverridesYAML(t *testing.T) {
	doc := []byte("dsn: sqlite:///tmp/x.sqlite\nttl:\n  access_token: 2h\nserve:\n  public:\n    port: 9000\nwebfinger:\n  jwks: {}\n")
	c, warnings, err := Load(doc, env(map[string]string{
		"TTL_ACCESS_TOKEN": "15m", "SECRETS_SYSTEM": goodSecret + ", " + goodSecret + "2",
		"URLS_SELF_ISSUER": "https://auth.example.com", "SERVE_ADMIN_SOCKET_MODE": "0660",
		"SERVE_PUBLIC_CORS_ALLOWED_ORIGINS": `["https://a.example","https://b.example"]`,
		"OAUTH2_PKCE_ENFORCED":              "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "webfinger") {
		t.Errorf("warnings = %v", warnings)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TTL.AccessToken != 15*time.Minute || c.Serve.Public.Port != 9000 || c.DSN != "sqlite:///tmp/x.sqlite" {
		t.Errorf("got %+v", c)
	}
	if len(c.Secrets.System) != 2 || c.Secrets.System[1] != goodSecret+"2" || len(c.Secrets.Cookie) != 2 {
		t.Errorf("secrets %v / %v", c.Secrets.System, c.Secrets.Cookie)
	}
	if c.Serve.Admin.Socket.Mode != 0o660 || len(c.Serve.Public.CORS.AllowedOrigins) != 2 || !c.OAuth2.PKCE.Enforced {
		t.Errorf("got %+v", c.Serve)
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	base := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
	cases := []struct {
		name, key, value, want string
		dev                    bool
	}{
		{"banana ttl", "TTL_ACCESS_TOKEN", "banana", "TTL_ACCESS_TOKEN", false},
		{"negative ttl", "TTL_AUTH_CODE", "-1s", "TTL_AUTH_CODE", false},
		{"bad bool", "OAUTH2_PKCE_ENFORCED", "maybe", "OAUTH2_PKCE_ENFORCED", false},
		{"bad port", "SERVE_PUBLIC_PORT", "70000", "SERVE_PUBLIC_PORT", false},
		{"port not a number", "SERVE_ADMIN_PORT", "http", "SERVE_ADMIN_PORT", false},
		{"strategy", "STRATEGIES_ACCESS_TOKEN", "macaroon", "STRATEGIES_ACCESS_TOKEN", false},
		{"scope strategy", "STRATEGIES_SCOPE", "regex", "STRATEGIES_SCOPE", false},
		{"hasher", "OAUTH2_HASHERS_ALGORITHM", "md5", "OAUTH2_HASHERS_ALGORITHM", false},
		{"short secret", "SECRETS_SYSTEM", "short", "SECRETS_SYSTEM", false},
		{"http issuer", "URLS_SELF_ISSUER", "http://auth.example.com", "URLS_SELF_ISSUER", false},
		{"relative issuer", "URLS_SELF_ISSUER", "/auth", "URLS_SELF_ISSUER", false},
		{"log level", "LOG_LEVEL", "loud", "LOG_LEVEL", false},
		{"log format", "LOG_FORMAT", "xml", "LOG_FORMAT", false},
		{"same site", "SERVE_COOKIES_SAME_SITE_MODE", "Sometimes", "SERVE_COOKIES_SAME_SITE_MODE", false},
		{"login url", "URLS_LOGIN", "login", "URLS_LOGIN", false},
		{"cidr", "CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST", "10.0.0.0", "CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST", false},
		{"rsa bits", "KEYS_RSA_BITS", "1024", "KEYS_RSA_BITS", false},
		{"bcrypt cost", "OAUTH2_HASHERS_BCRYPT_COST", "99", "OAUTH2_HASHERS_BCRYPT_COST", false},
		{"pairwise without salt", "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES", "public,pairwise", "OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT", false},
		{"no secret in production", "SECRETS_SYSTEM", "", "SECRETS_SYSTEM", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := loadValidate(base, tc.key, tc.value, tc.dev); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

// loadValidate loads the environment base with key set to value (removed
// when value is empty) and validates it.
func loadValidate(base map[string]string, key, value string, dev bool) error {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	m[key] = value
	if value == "" {
		delete(m, key)
	}
	c, _, err := Load(nil, env(m))
	if err == nil {
		c.Dev = dev
		err = c.Validate()
	}
	return err
}

func TestDevDefaults(t *testing.T) {
	c, _, err := Load(nil, env(map[string]string{"DSN": "memory"}))
	if err != nil {
		t.Fatal(err)
	}
	c.Dev = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.URLs.Self.Issuer != "http://127.0.0.1:4444" || c.Log.Format != "text" {
		t.Errorf("issuer %q format %q", c.URLs.Self.Issuer, c.Log.Format)
	}
}

// TestListenHostDefaults: an unset host is every interface in production
// (Hydra's default) and loopback with --dev; a host that is set is kept.
func TestListenHostDefaults(t *testing.T) {
	for _, tc := range []struct {
		dev              bool
		env              map[string]string
		wantPub, wantAdm string
	}{
		{false, nil, "", ""},
		{true, nil, "127.0.0.1", "127.0.0.1"},
		{true, map[string]string{"SERVE_PUBLIC_HOST": "0.0.0.0"}, "0.0.0.0", "127.0.0.1"},
		{true, map[string]string{"SERVE_ADMIN_HOST": "unix:/run/gatehouse/admin.sock"}, "127.0.0.1", "unix:/run/gatehouse/admin.sock"},
		{false, map[string]string{"SERVE_ADMIN_HOST": "10.0.0.5"}, "", "10.0.0.5"},
	} {
		vars := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
		for k, v := range tc.env {
			vars[k] = v
		}
		c, _, err := Load(nil, env(vars))
		if err != nil {
			t.Fatal(err)
		}
		c.Dev = tc.dev
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.Serve.Public.Host != tc.wantPub || c.Serve.Admin.Host != tc.wantAdm {
			t.Errorf("dev=%v %v: public host %q admin host %q, want %q %q", tc.dev, tc.env,
				c.Serve.Public.Host, c.Serve.Admin.Host, tc.wantPub, tc.wantAdm)
		}
	}
}

func TestHTTPIssuerAllowedOnLoopbackOrForced(t *testing.T) {
	for _, iss := range []string{"http://127.0.0.1:4444", "http://localhost:4444/", "http://[::1]:4444"} {
		c := Default()
		c.DSN, c.Secrets.System, c.URLs.Self.Issuer = "memory", []string{goodSecret}, iss
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
	c := Default()
	c.DSN, c.Secrets.System, c.URLs.Self.Issuer, c.DangerousForceHTTP = "memory", []string{goodSecret}, "http://auth.internal", true
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// The configuration reference is generated from the struct; this keeps the
// committed docs/configuration.md in sync.
func TestConfigurationDocsInSync(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), MarkdownTable()) {
		t.Fatal("docs/configuration.md is out of date: run `go run ./issuer/cmd/gatehouse config docs` and paste the table")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("dsn: memory\nttl:\n  access_token: 1h\n"), "TTL_ACCESS_TOKEN", "1h")
	f.Add([]byte("serve: {public: {port: 1}}"), "SERVE_PUBLIC_PORT", "0x10")
	f.Add([]byte("secrets:\n  system: [a, b]\n"), "SECRETS_SYSTEM", `["x"]`)
	f.Add([]byte("- a\n- b"), "LOG_LEVEL", "debug")
	f.Add([]byte(":\n\t- :"), "SERVE_COOKIES_SECURE", "true")
	f.Add([]byte("tracing: {provider: otel, providers: {otlp: {server_url: \"c:4318\", sampling: {sampling_ratio: 0.5}}}}"), "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO", "1e-3")
	f.Fuzz(func(t *testing.T, doc []byte, key, value string) {
		c, _, err := Load(doc, env(map[string]string{key: value}))
		if err != nil {
			return
		}
		_ = c.Validate()
	})
}
