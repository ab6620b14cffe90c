package keys

import (
	"context"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
)

var _ discovery.Contributor = (*Handler)(nil)

// Discovery advertises jwks_uri and the algorithm of the ID token set,
// which signs ID tokens and the userinfo responses of clients registered
// with userinfo_signed_response_alg (userinfo is plain JSON, "none",
// otherwise). Hydra's id_token_signed_response_alg and
// userinfo_signed_response_alg members carry the same algorithm.
func (h *Handler) Discovery(ctx context.Context) (discovery.Metadata, error) {
	alg, err := h.m.SigningAlg(ctx, SetIDToken)
	if err != nil {
		return discovery.Metadata{}, fmt.Errorf("ID token signing key: %w", err)
	}
	return discovery.Metadata{
		JWKSURI:                           h.publicURL + JWKSPath,
		IDTokenSigningAlgValuesSupported:  []string{alg},
		UserinfoSigningAlgValuesSupported: []string{"none", alg},
		IDTokenSignedResponseAlg:          []string{alg},
		UserinfoSignedResponseAlg:         []string{alg},
	}, nil
}
