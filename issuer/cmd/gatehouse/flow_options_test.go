package main

import (
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

// TestFlowOptionsCookies: the cookie attributes the flow gets from the
// configuration.
func TestFlowOptionsCookies(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		issuer   string
		dev      bool
		secure   *bool
		sameSite string
		want     bool
		wantSS   http.SameSite
	}{
		{"https", "https://idp.example", false, nil, "Lax", true, http.SameSiteLaxMode},
		{"plain http outside --dev", "http://idp.example", false, nil, "Lax", true, http.SameSiteLaxMode},
		{"--dev on http", "http://127.0.0.1:4444", true, nil, "Lax", false, http.SameSiteLaxMode},
		{"--dev on https", "https://idp.example", true, nil, "Lax", true, http.SameSiteLaxMode},
		{"set on", "http://127.0.0.1:4444", true, &yes, "Strict", true, http.SameSiteStrictMode},
		{"set off", "https://idp.example", false, &no, "None", false, http.SameSiteNoneMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.URLs.Self.Issuer, cfg.Dev = tc.issuer, tc.dev
			cfg.Serve.Cookies.Secure, cfg.Serve.Cookies.SameSiteMode = tc.secure, tc.sameSite
			got := flowOptions(&cfg).Cookies
			if got.Secure != tc.want || got.SameSite != tc.wantSS {
				t.Fatalf("Secure %v SameSite %v, want %v %v", got.Secure, got.SameSite, tc.want, tc.wantSS)
			}
		})
	}
}
