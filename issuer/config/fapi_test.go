package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateFAPI(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(c *Config)
		want string // "" = valid
	}{
		{"off", func(c *Config) {}, ""},
		{"on with ES256", func(c *Config) { c.OAuth2.FAPI.Profile, c.Keys.Algorithm = FAPI2, "ES256" }, ""},
		{"on with PS256", func(c *Config) { c.OAuth2.FAPI.Profile, c.Keys.Algorithm = FAPI2, "PS256" }, ""},
		{"on with EdDSA", func(c *Config) { c.OAuth2.FAPI.Profile, c.Keys.Algorithm = FAPI2, "EdDSA" }, ""},
		{"PS256 without FAPI", func(c *Config) { c.Keys.Algorithm = "PS256" }, ""},
		{"on with RS256", func(c *Config) { c.OAuth2.FAPI.Profile = FAPI2 }, "keys.algorithm"},
		{"skew over 10s", func(c *Config) {
			c.OAuth2.FAPI.Profile, c.Keys.Algorithm, c.OAuth2.DPoP.ClockSkew = FAPI2, "ES256", 11*time.Second
		}, "oauth2.dpop.clock_skew"},
		{"unknown profile", func(c *Config) { c.OAuth2.FAPI.Profile = "1.0" }, "oauth2.fapi.profile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			var errs []*Error
			c.validateFAPI(func(e *Error) { errs = append(errs, e) })
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Fatalf("want valid, got %v", errs[0])
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Path, tt.want)):
				t.Fatalf("want an error on %s, got %v", tt.want, errs)
			}
		})
	}
}
