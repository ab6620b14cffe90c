package oauth2

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// IDTokenKeySet is the key set ID tokens (and signed userinfo responses and
// logout tokens) are signed with (Hydra's name).
const IDTokenKeySet = "hydra.openid.id-token"

// AlgSigner is a Signer that also tells which algorithm it signs a set
// with (issuer/keys.Manager), needed for at_hash and c_hash.
type AlgSigner interface {
	Signer
	SigningAlg(ctx context.Context, set string) (string, error)
}

// idTokenReserved are the claims session.id_token extras cannot replace
// (OpenID Connect Core §2 and the claims this issuer computes).
var idTokenReserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"auth_time": true, "nonce": true, "acr": true, "amr": true, "azp": true, "sid": true,
	"at_hash": true, "c_hash": true, "rat": true,
}

// signingAlg returns the algorithm of the ID token key set, RS256 when
// the signer does not say.
func (h *Handler) signingAlg(ctx context.Context) string {
	if s, ok := h.signer.(AlgSigner); ok {
		if alg, err := s.SigningAlg(ctx, IDTokenKeySet); err == nil && alg != "" {
			return alg
		}
	}
	return "RS256"
}

// halfHash is OpenID Connect Core §3.1.3.6 (at_hash) and §3.3.2.11
// (c_hash): the base64url encoding of the left-most half of the hash of
// the ASCII octets of the value, with the hash function of the ID token's
// alg (SHA-256 for RS256/PS256/ES256, ...; SHA-512 for EdDSA, as the
// OpenID Foundation registered for Ed25519).
func halfHash(alg, value string) string {
	var d hash.Hash
	switch alg {
	case "RS384", "PS384", "ES384":
		d = sha512.New384()
	case "RS512", "PS512", "ES512", "EdDSA", "Ed25519":
		d = sha512.New()
	default:
		d = sha256.New()
	}
	d.Write([]byte(value))
	sum := d.Sum(nil)
	return b64.EncodeToString(sum[:len(sum)/2])
}

// signIDToken builds and signs an ID token (OpenID Connect Core §2) for
// the grant g. nonce, accessToken and code are optional.
func (h *Handler) signIDToken(ctx context.Context, c *client.Client, g *GrantSession, nonce, accessToken, code string, lifespan time.Duration) (string, error) {
	now := h.now().UTC().Truncate(time.Second)
	claims := map[string]any{}
	// Extras first, so that no computed claim can be replaced.
	for k, v := range g.IDTokenClaims {
		if !idTokenReserved[k] && !slices.Contains(g.IDTokenOmit, k) {
			claims[k] = v
		}
	}
	maps.Copy(claims, map[string]any{
		"iss": h.opts.IssuerURL,
		"sub": g.idSubject(),
		// aud is an array, as Hydra writes it; azp names the client the
		// token was issued to (§2).
		"aud": []string{c.ID},
		"azp": c.ID,
		"exp": now.Add(lifespan).Unix(),
		"iat": now.Unix(),
		"jti": uuid.NewString(),
	})
	if !g.RequestedAt.IsZero() {
		claims["rat"] = g.RequestedAt.Unix()
	}
	// §2: auth_time is the time of the End-User's authentication, not of
	// this token; it stays the same across refreshes (§12.2).
	if !g.AuthTime.IsZero() {
		claims["auth_time"] = g.AuthTime.Unix()
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if g.ACR != "" {
		claims["acr"] = g.ACR
	}
	if len(g.AMR) > 0 {
		claims["amr"] = g.AMR
	}
	if g.SessionID != "" {
		// Front-/Back-Channel Logout §2.1/§2.4: sid identifies the OP
		// session the RP's session is tied to.
		claims["sid"] = g.SessionID
	}
	alg := h.signingAlg(ctx)
	if accessToken != "" {
		claims["at_hash"] = halfHash(alg, accessToken)
	}
	if code != "" {
		claims["c_hash"] = halfHash(alg, code)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", apierr.ServerError(err)
	}
	tok, err := h.signer.Sign(ctx, IDTokenKeySet, "JWT", payload)
	if err != nil {
		return "", apierr.ServerError(fmt.Errorf("oauth2: signing the ID token: %w", err))
	}
	return tok, nil
}
