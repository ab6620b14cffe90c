package config

import (
	"slices"
	"time"
)

// FAPI2 is the oauth2.fapi.profile value of the FAPI 2.0 Security Profile.
const FAPI2 = "2.0"

// fapiSigningAlgs are the JWS algorithms FAPI 2.0 allows (Security Profile
// §5.4.1): the generated keys must use one of them.
var fapiSigningAlgs = []string{"PS256", "ES256", "EdDSA"}

// fapiMaxClockSkew: FAPI 2.0 Security Profile §5.3.2.1, JWTs at most 10 s
// in the future.
const fapiMaxClockSkew = 10 * time.Second

// validateFAPI checks oauth2.fapi and, when the profile is on for every
// client, the settings it constrains.
func (c *Config) validateFAPI(add func(*Error)) {
	switch c.OAuth2.FAPI.Profile {
	case "":
		return
	case FAPI2:
	default:
		add(keyErr("oauth2.fapi.profile", "must be empty or %q, got %q", FAPI2, c.OAuth2.FAPI.Profile))
		return
	}
	if !slices.Contains(fapiSigningAlgs, c.Keys.Algorithm) {
		add(keyErr("keys.algorithm", "must be PS256, ES256 or EdDSA under oauth2.fapi.profile %q (FAPI 2.0 §5.4.1), got %q", FAPI2, c.Keys.Algorithm))
	}
	if c.OAuth2.DPoP.ClockSkew > fapiMaxClockSkew {
		add(keyErr("oauth2.dpop.clock_skew", "must be at most 10s under oauth2.fapi.profile %q (FAPI 2.0 §5.3.2.1)", FAPI2))
	}
}
