package config

import (
	"strings"
	"testing"
	"time"
)

// TestTokenHookForms: oauth2.token_hook and oauth2.refresh_token_hook take
// Hydra's two forms, a URL or {url, auth}, from YAML and the environment
// (OAUTH2_TOKEN_HOOK for the plain URL, OAUTH2_TOKEN_HOOK_URL and the auth
// keys for the object); a field's variable wins over the plain form.
func TestTokenHookForms(t *testing.T) {
	base := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    Hook
		refresh string
	}{
		{name: "yaml plain", yaml: "oauth2:\n  token_hook: https://h.example/t\n",
			want: Hook{URL: "https://h.example/t", Timeout: 5 * time.Second}},
		{name: "yaml object", yaml: "oauth2:\n  token_hook:\n    url: https://h.example/t\n    timeout: 2s\n    auth:\n      type: api_key\n      config: {in: cookie, name: k, value: v}\n  refresh_token_hook: http://127.0.0.1:1/r\n",
			want:    Hook{URL: "https://h.example/t", Timeout: 2 * time.Second, Auth: HookAuth{Type: "api_key", Config: HookAuthConfig{In: "cookie", Name: "k", Value: "v"}}},
			refresh: "http://127.0.0.1:1/r"},
		{name: "env plain", env: map[string]string{"OAUTH2_TOKEN_HOOK": "https://h.example/plain", "OAUTH2_REFRESH_TOKEN_HOOK": "https://h.example/r"},
			want: Hook{URL: "https://h.example/plain", Timeout: 5 * time.Second}, refresh: "https://h.example/r"},
		{name: "env object", env: map[string]string{"OAUTH2_TOKEN_HOOK_URL": "https://h.example/url", "OAUTH2_TOKEN_HOOK_AUTH_TYPE": "api_key",
			"OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN": "header", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME": "X-Key", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_VALUE": "s",
			"OAUTH2_TOKEN_HOOK_TIMEOUT": "300ms"},
			want: Hook{URL: "https://h.example/url", Timeout: 300 * time.Millisecond, Auth: HookAuth{Type: "api_key", Config: HookAuthConfig{In: "header", Name: "X-Key", Value: "s"}}}},
		{name: "env url over env plain", env: map[string]string{"OAUTH2_TOKEN_HOOK": "https://h.example/plain", "OAUTH2_TOKEN_HOOK_URL": "https://h.example/url"},
			want: Hook{URL: "https://h.example/url", Timeout: 5 * time.Second}},
		{name: "env over yaml", yaml: "oauth2:\n  token_hook: https://h.example/yaml\n", env: map[string]string{"OAUTH2_TOKEN_HOOK": "https://h.example/env"},
			want: Hook{URL: "https://h.example/env", Timeout: 5 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, warnings, err := Load([]byte(tc.yaml), env(with(tc.env)))
			if err != nil || len(warnings) > 0 {
				t.Fatalf("load: %v %v", err, warnings)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.OAuth2.TokenHook != tc.want || c.OAuth2.RefreshTokenHook.URL != tc.refresh {
				t.Errorf("token_hook %+v refresh %+v", c.OAuth2.TokenHook, c.OAuth2.RefreshTokenHook)
			}
		})
	}
}

// TestTokenHookRefusals: a bad hook stops start-up naming the variable.
func TestTokenHookRefusals(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"relative url", map[string]string{"OAUTH2_TOKEN_HOOK": "/hook"}, "OAUTH2_TOKEN_HOOK_URL"},
		{"ftp url", map[string]string{"OAUTH2_REFRESH_TOKEN_HOOK": "ftp://h.example/"}, "OAUTH2_REFRESH_TOKEN_HOOK_URL"},
		{"auth type", map[string]string{"OAUTH2_TOKEN_HOOK": "https://h/", "OAUTH2_TOKEN_HOOK_AUTH_TYPE": "basic"}, "OAUTH2_TOKEN_HOOK_AUTH_TYPE"},
		{"config without type", map[string]string{"OAUTH2_TOKEN_HOOK": "https://h/", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME": "k"}, "OAUTH2_TOKEN_HOOK_AUTH_TYPE"},
		{"in", map[string]string{"OAUTH2_TOKEN_HOOK": "https://h/", "OAUTH2_TOKEN_HOOK_AUTH_TYPE": "api_key", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN": "query", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME": "k"}, "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN"},
		{"name", map[string]string{"OAUTH2_TOKEN_HOOK": "https://h/", "OAUTH2_TOKEN_HOOK_AUTH_TYPE": "api_key", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN": "header"}, "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME"},
		{"timeout", map[string]string{"OAUTH2_TOKEN_HOOK": "https://h/", "OAUTH2_TOKEN_HOOK_TIMEOUT": "-1s"}, "OAUTH2_TOKEN_HOOK_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
			for k, v := range tc.env {
				m[k] = v
			}
			c, _, err := Load(nil, env(m))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
