package flow

import (
	"context"
	"encoding/json"

	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// verifyIDTokenHint checks an id_token_hint: signed by this issuer with
// the ID token key set and issued by it. An expired hint is fine (OpenID
// Connect Core §3.1.2.1: the hint is about the End-User, not a credential).
func (h *Handler) verifyIDTokenHint(ctx context.Context, hint string) (map[string]any, error) {
	set, err := h.keys.PublicKeys(ctx, oauth2.IDTokenKeySet)
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	if len(hint) > maxParamLength {
		return nil, apierr.InvalidRequest("The id_token_hint is too long")
	}
	payload, err := jws.Verify([]byte(hint), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		return nil, apierr.InvalidRequest("The id_token_hint was not issued by this server or its signature is invalid").WithCause(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, apierr.InvalidRequest("The id_token_hint has unreadable claims")
	}
	if iss, _ := claims["iss"].(string); iss != h.opts.IssuerURL {
		return nil, apierr.InvalidRequest("The id_token_hint was issued by another issuer")
	}
	return claims, nil
}

// audiences reads an aud claim (string or array).
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
