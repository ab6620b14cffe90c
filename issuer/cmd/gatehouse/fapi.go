package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/keys"
)

// fapiEverywhere reports whether oauth2.fapi.profile puts every client
// under the FAPI 2.0 profile.
func fapiEverywhere(cfg *config.Config) bool {
	return cfg.OAuth2.FAPI.Profile == config.FAPI2
}

// checkFAPIKeys refuses to start under the global FAPI 2.0 profile unless
// ID tokens and JWT access tokens are signed with PS256, ES256 or EdDSA
// (FAPI 2.0 Security Profile §5.4.1). keys.algorithm only governs
// generated keys; a key set imported or generated earlier may hold
// another algorithm, so the newest signing key of each set is checked.
func checkFAPIKeys(ctx context.Context, cfg *config.Config, m *keys.Manager) error {
	if !fapiEverywhere(cfg) {
		return nil
	}
	for _, set := range []string{keys.SetIDToken, keys.SetAccessToken} {
		alg, err := m.SigningAlg(ctx, set)
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		if !slices.Contains(client.FAPISigningAlgs, alg) {
			return fmt.Errorf("oauth2.fapi.profile %q: the key set %s signs with %s; FAPI 2.0 allows %v only (generate a new key in the set with one of them)",
				config.FAPI2, set, alg, client.FAPISigningAlgs)
		}
	}
	return nil
}
