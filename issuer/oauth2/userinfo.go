package oauth2

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// invalidToken is RFC 6750 §3.1's invalid_token with its challenge.
func invalidToken(desc string) *apierr.Error {
	return apierr.InvalidToken("%s", desc).WithHeader("WWW-Authenticate",
		`Bearer error="invalid_token", error_description="`+strings.ReplaceAll(desc, `"`, `'`)+`"`)
}

// userinfo is OpenID Connect Core §5.3 (GET and POST). The access token is
// read from the Authorization header (RFC 6750 §2.1) or, on POST, from a
// form-encoded access_token (§2.2), never both. The answer is the claims
// the consent put in session.id_token, with sub as in the ID token; a
// client registered with userinfo_signed_response_alg gets them as a JWT
// signed with the ID token key set (§5.3.2).
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, err := bearerToken(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	t, found, err := h.lookupToken(ctx, token)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	if !found || !t.Active || !h.now().Before(t.ExpiresAt) || t.Kind != storage.KindAccessToken {
		httpx.WriteError(w, r, invalidToken("The access token is unknown, expired or revoked"))
		return
	}
	s, err := decodeSession(t.Data)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	if s.TokenUse != useAccess {
		httpx.WriteError(w, r, invalidToken("The token is not an access token"))
		return
	}
	// §5.3: the access token must come from an OpenID Connect request.
	if s.Grant == nil || !slices.Contains(s.Scope, "openid") {
		httpx.WriteError(w, r, apierr.InsufficientScope("The access token was not granted the openid scope").
			WithHeader("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`))
		return
	}
	c, err := h.clients.Get(ctx, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		httpx.WriteError(w, r, invalidToken("The client of the access token no longer exists"))
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

// bearerToken reads the access token of a protected resource request.
func bearerToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var fromHeader, fromBody string
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", invalidToken("The Authorization header must be Bearer <token>")
		}
		fromHeader = strings.TrimSpace(tok)
	}
	if r.Method == http.MethodPost {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			if err := httpx.ParseForm(w, r); err != nil {
				return "", err
			}
			v, err := httpx.SingleValue(r.PostForm, "access_token")
			if err != nil {
				return "", err
			}
			fromBody = v
		}
	}
	switch {
	case fromHeader != "" && fromBody != "":
		// RFC 6750 §2: "Clients MUST NOT use more than one method".
		return "", apierr.InvalidRequest("The access token was sent both in the Authorization header and in the body")
	case fromHeader != "":
		return fromHeader, nil
	case fromBody != "":
		return fromBody, nil
	}
	// §3.1: a request without any token gets the bare challenge.
	return "", apierr.Unauthorized("An access token is required").WithHeader("WWW-Authenticate", `Bearer`)
}
