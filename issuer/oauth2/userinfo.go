package oauth2

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// invalidToken is RFC 6750 §3.1's invalid_token with its challenge.
func invalidToken(desc string) *apierr.Error {
	return resourceError("Bearer", "invalid_token", desc)
}

// userinfo is OpenID Connect Core §5.3 (GET and POST). The access token is
// read from the Authorization header (RFC 6750 §2.1, or RFC 9449 §7.1's
// DPoP scheme with a proof) or, on POST, from a form-encoded access_token
// (§2.2), never both. The answer is the claims the consent put in
// session.id_token, with sub as in the ID token; a client registered with
// userinfo_signed_response_alg gets them as a JWT signed with the ID token
// key set (§5.3.2).
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, scheme, err := bearerToken(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	fail := func(code, desc string) { httpx.WriteError(w, r, resourceError(scheme, code, desc)) }
	var proof *dpop.Proof
	if scheme == dpop.Scheme {
		// RFC 9449 §7.1: "a resource server MUST check that a DPoP proof
		// was also received", per §4.3, with ath.
		h.setDPoPNonce(w)
		var de *dpop.Error
		proof, err = h.checkProof(ctx, r, "/userinfo", token)
		switch {
		case errors.As(err, &de):
			fail(de.Code, de.Description)
			return
		case err != nil:
			httpx.WriteError(w, r, err)
			return
		case proof == nil:
			fail(dpop.CodeInvalidProof, "A DPoP-bound access token must come with a DPoP proof")
			return
		}
	}
	t, found, err := h.lookupToken(ctx, token)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	if !found || !t.Active || !h.now().Before(t.ExpiresAt) || t.Kind != storage.KindAccessToken {
		fail("invalid_token", "The access token is unknown, expired or revoked")
		return
	}
	s, err := decodeSession(t.Data)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	if s.TokenUse != useAccess {
		fail("invalid_token", "The token is not an access token")
		return
	}
	switch {
	case proof != nil && s.JKT == "":
		fail("invalid_token", "The access token is not DPoP-bound; send it with the Bearer scheme")
		return
	case proof != nil && subtle.ConstantTimeCompare([]byte(proof.JKT), []byte(s.JKT)) != 1:
		// RFC 9449 §6, §7.1: the proof's key is the one the token is bound to.
		fail("invalid_token", "Invalid DPoP key binding")
		return
	case proof == nil && s.JKT != "":
		// RFC 9449 §7.2: a DPoP-bound token "received as a bearer token"
		// is rejected.
		fail("invalid_token", "The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof")
		return
	}
	if err := h.checkCertBinding(r, s.X5T); err != nil {
		fail("invalid_token", err.Error())
		return
	}
	// §5.3: the access token must come from an OpenID Connect request.
	if s.Grant == nil || !slices.Contains(s.Scope, "openid") {
		fail("insufficient_scope", "The access token was not granted the openid scope")
		return
	}
	c, err := h.clients.Get(ctx, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		fail("invalid_token", "The client of the access token no longer exists")
		return
	}
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	httpx.Info(ctx).ClientID, httpx.Info(ctx).Subject = c.ID, t.Subject
	claims := map[string]any{}
	for k, v := range s.Grant.IDTokenClaims {
		if !idTokenReserved[k] && !slices.Contains(s.Grant.UserinfoOmit, k) {
			claims[k] = v
		}
	}
	claims["sub"] = s.Grant.idSubject()
	if alg := c.UserinfoSignedResponseAlg; alg != "" && alg != "none" {
		claims["iss"] = h.opts.IssuerURL
		claims["aud"] = []string{c.ID}
		claims["iat"] = h.now().Unix()
		claims["jti"] = uuid.NewString()
		payload, err := json.Marshal(claims)
		if err != nil {
			httpx.WriteError(w, r, apierr.ServerError(err))
			return
		}
		jwt, err := h.signer.Sign(ctx, IDTokenKeySet, "JWT", payload)
		if err != nil {
			httpx.WriteError(w, r, apierr.ServerError(err))
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(jwt))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, claims)
}

// bearerToken reads the access token of a protected resource request
// and the scheme it came with: "Bearer" (RFC 6750, header or form) or
// "DPoP" (RFC 9449 §7.1).
func bearerToken(w http.ResponseWriter, r *http.Request) (token, scheme string, err error) {
	var fromHeader, fromBody string
	scheme = "Bearer"
	if auths := r.Header.Values("Authorization"); len(auths) > 0 {
		s, tok, ok := strings.Cut(auths[0], " ")
		switch {
		case len(auths) > 1:
			return "", scheme, apierr.InvalidRequest("More than one Authorization header was sent")
		case ok && strings.EqualFold(s, dpop.Scheme):
			scheme = dpop.Scheme
		case !ok || !strings.EqualFold(s, "Bearer"):
			return "", scheme, invalidToken("The Authorization header must be Bearer <token> or DPoP <token>")
		}
		if fromHeader = strings.TrimSpace(tok); fromHeader == "" {
			return "", scheme, resourceError(scheme, "invalid_token", "The Authorization header carries no token")
		}
	}
	if r.Method == http.MethodPost {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			if err := httpx.ParseForm(w, r); err != nil {
				return "", scheme, err
			}
			v, err := httpx.SingleValue(r.PostForm, "access_token")
			if err != nil {
				return "", scheme, err
			}
			fromBody = v
		}
	}
	switch {
	case fromHeader != "" && fromBody != "":
		// RFC 6750 §2: "Clients MUST NOT use more than one method".
		return "", scheme, apierr.InvalidRequest("The access token was sent both in the Authorization header and in the body")
	case fromHeader != "":
		return fromHeader, scheme, nil
	case fromBody != "":
		return fromBody, scheme, nil
	}
	// RFC 6750 §3.1, RFC 9449 §7.2: a request without any token gets the
	// bare challenges of both schemes.
	return "", scheme, apierr.Unauthorized("An access token is required").WithHeader("WWW-Authenticate", "Bearer, DPoP "+dpopAlgs)
}
