package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// DPoPOptions are the RFC 9449 proof rules of the token and userinfo
// endpoints.
type DPoPOptions struct {
	// ProofMaxAge bounds now minus a proof's iat, and is how long its jti
	// is remembered (§11.1); default 1 minute. ClockSkew is how far in
	// the future iat may be.
	ProofMaxAge time.Duration
	ClockSkew   time.Duration
	// RequireNonce turns on server nonces (§8): stateless MACs of a
	// NonceLifespan window (default 5 minutes); the current and the
	// previous window's nonce are accepted.
	RequireNonce  bool
	NonceLifespan time.Duration
}

const (
	defaultDPoPProofMaxAge   = time.Minute
	defaultDPoPNonceLifespan = 5 * time.Minute
	dpopNoncePurpose         = "oauth2/dpop_nonce"
)

// dpopError is an error of RFC 9449 §5 and §8 at the token endpoint: a 400
// in the RFC 6749 §5.2 format.
func dpopError(code, desc string) *apierr.Error {
	return &apierr.Error{Code: code, Description: desc, Status: http.StatusBadRequest}
}

// checkProof verifies the DPoP proof of r for the endpoint at path (htu
// is the public URL of that path, as discovery names it) and records its
// jti in the nonce store shared by every instance, so that no instance
// accepts it again (§11.1). accessToken, for protected resources, is the
// token the proof must hash in ath. It returns nil, nil when r has no
// proof; a refused proof is a *dpop.Error.
func (h *Handler) checkProof(ctx context.Context, r *http.Request, path, accessToken string) (*dpop.Proof, error) {
	o := dpop.Options{
		Method: r.Method, URL: h.opts.PublicURL + path, Now: h.now(),
		MaxAge: h.opts.DPoP.ProofMaxAge, Leeway: h.opts.DPoP.ClockSkew, AccessToken: accessToken,
	}
	if h.opts.DPoP.RequireNonce {
		o.Nonce = h.validDPoPNonce
	}
	p, err := dpop.Verify(r, o)
	if errors.Is(err, dpop.ErrNoProof) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// §11.1: the jti (hashed: "store only a hash thereof") is kept as long
	// as the proof would be accepted. Keyed with the key's thumbprint:
	// proofs of different keys never collide.
	sum := sha256.Sum256([]byte(p.JKT + "\x00" + p.JTI))
	until := p.IssuedAt.Add(o.MaxAge)
	if min := h.now().Add(time.Second); until.Before(min) {
		until = min
	}
	if err := h.nonces.Use(ctx, "dpop:"+hex.EncodeToString(sum[:]), until); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, &dpop.Error{Code: dpop.CodeInvalidProof, Description: "The DPoP proof was already used (its jti was seen before)"}
		}
		return nil, apierr.ServerError(err)
	}
	return p, nil
}

// tokenProof is the proof of a token request (§5): nil without one,
// refused with invalid_dpop_proof (400) or use_dpop_nonce when the
// client registered dpop_bound_access_tokens (§5.2: "the authorization
// server MUST reject token requests from the client that do not contain
// the DPoP header").
func (h *Handler) tokenProof(ctx context.Context, r *http.Request, boundOnly bool) (*dpop.Proof, error) {
	p, err := h.checkProof(ctx, r, "/oauth2/token", "")
	var de *dpop.Error
	if errors.As(err, &de) {
		return nil, dpopError(de.Code, de.Description)
	}
	if err != nil {
		return nil, err
	}
	if p == nil && boundOnly {
		return nil, dpopError(dpop.CodeInvalidProof, "The OAuth 2.0 Client requires DPoP (dpop_bound_access_tokens): the token request must carry a DPoP proof")
	}
	return p, nil
}

// dpopNonce is the server nonce of the window holding t: the window's
// number and its MAC under the system secret, base64url. Any instance
// with the same secrets computes and checks it; nothing is stored.
func (h *Handler) dpopNonce(t time.Time) string {
	w := uint64(t.UnixNano() / int64(h.opts.DPoP.NonceLifespan))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], w)
	return b64.EncodeToString(append(n[:], h.mac.MAC(dpopNoncePurpose, n[:])...))
}

// validDPoPNonce accepts the nonce of the current and the previous window
// (a nonce handed out just before a window ends stays usable for at least
// one NonceLifespan).
func (h *Handler) validDPoPNonce(nonce string) bool {
	raw, err := b64.DecodeString(nonce)
	if err != nil || len(raw) < 8+minMACBytes || len(raw) > 8+maxMACBytes {
		return false
	}
	w := binary.BigEndian.Uint64(raw[:8])
	cur := uint64(h.now().UnixNano() / int64(h.opts.DPoP.NonceLifespan))
	if w != cur && w+1 != cur {
		return false
	}
	return h.mac.VerifyMAC(dpopNoncePurpose, raw[:8], raw[8:])
}

// setDPoPNonce adds the current nonce to a response when nonces are on
// (§8.2: a 200 may carry the next nonce; the errors carry the one to
// retry with). It is set once: "there MUST NOT be more than one DPoP-Nonce
// header".
func (h *Handler) setDPoPNonce(w http.ResponseWriter) {
	if h.opts.DPoP.RequireNonce {
		w.Header().Set(dpop.NonceHeader, h.dpopNonce(h.now()))
	}
}

// dpopAlgs is the algs parameter of DPoP challenges (§7.1).
var dpopAlgs = `algs="` + strings.Join(dpop.Algs, " ") + `"`

// resourceError is an error of a protected resource (userinfo) in the
// challenge of the scheme the token was presented with: RFC 6750 §3 for
// Bearer, RFC 9449 §7.1 for DPoP (with algs).
func resourceError(scheme, code, desc string) *apierr.Error {
	e := &apierr.Error{Code: code, Description: desc, Status: apierr.StatusOf(code)}
	switch code {
	case dpop.CodeInvalidProof, dpop.CodeUseNonce:
		// §7.1, §9: a resource answers 401 with the DPoP challenge.
		e.Status = http.StatusUnauthorized
	}
	params := `error="` + code + `", error_description="` + strings.ReplaceAll(desc, `"`, `'`) + `"`
	if code == "insufficient_scope" {
		params = `error="insufficient_scope", scope="openid"`
	}
	if scheme == dpop.Scheme {
		return e.WithHeader("WWW-Authenticate", dpop.Scheme+" "+params+", "+dpopAlgs)
	}
	return e.WithHeader("WWW-Authenticate", "Bearer "+params)
}
