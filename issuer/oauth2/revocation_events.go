package oauth2

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// OpaqueJTIPrefix starts the token identifier of an opaque access token.
const OpaqueJTIPrefix = "ot."

// AccessTokenID is the jti of a stored access token, as its JWT carries
// it and introspection answers it (docs/revocation-events.md): for a JWT
// the jti its storage signature starts with (jwtSignature), for an opaque
// token "ot." and the unpadded base64url of the first 16 bytes of the
// SHA-256 of its storage signature, stable and unique but not the stored
// key. "" for other kinds.
func AccessTokenID(t *storage.Token) string {
	if t.Kind != storage.KindAccessToken {
		return ""
	}
	if jti, _, ok := strings.Cut(t.Signature, "."); ok {
		return jti
	}
	return opaqueJTI(t.Signature)
}

func opaqueJTI(signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return OpaqueJTIPrefix + b64.EncodeToString(sum[:16])
}

// RevokedAccessTokens returns the jtis of the access tokens among revoked
// and the latest of their expiries.
func RevokedAccessTokens(revoked []storage.Token) (jtis []string, until time.Time) {
	for i := range revoked {
		if jti := AccessTokenID(&revoked[i]); jti != "" {
			jtis = append(jtis, jti)
			if revoked[i].ExpiresAt.After(until) {
				until = revoked[i].ExpiresAt
			}
		}
	}
	return jtis, until
}

// tokenRevocation builds the token event of a revocation of clientID's
// tokens from the rows it deactivated: the access tokens' jtis, until
// the last of them expires. No access token, no event: gateways never
// see the other kinds.
func (h *Handler) tokenRevocation(clientID string) storage.RevocationFunc {
	return func(revoked []storage.Token) (*storage.RevocationEvent, error) {
		jtis, until := RevokedAccessTokens(revoked)
		if len(jtis) == 0 {
			return nil, nil
		}
		return revocation.NewEvent(revocation.KindToken, h.now(), until, revocation.Selectors{JTI: jtis, ClientID: clientID}), nil
	}
}
