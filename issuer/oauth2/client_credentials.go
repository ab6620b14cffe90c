package oauth2

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// clientCredentialsGrant is RFC 6749 §4.4: a confidential client obtains
// an access token for itself. The subject is the client id (as Hydra). The
// requested scope must be permitted by the client's scope
// (Options.ScopeStrategy) and the requested resources and audience listed
// in the client's audience (AllowedTargets); the token carries exactly what was requested (no
// scope requested: none granted, as in Hydra).
type clientCredentialsGrant struct{ h *Handler }

var _ grantHandler = (*clientCredentialsGrant)(nil)

func (g *clientCredentialsGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	c := req.Client
	// RFC 6749 §4.4: "The client credentials grant type MUST only be used
	// by confidential clients." (Client validation refuses the combination
	// too; this guards clients stored before that rule.)
	if c.IsPublic() {
		return nil, apierr.UnauthorizedClient("The OAuth 2.0 Client is public and may not use the client_credentials grant")
	}
	if err := checkScopes(g.h.scopes, c.Scopes(), req.Scope, "The OAuth 2.0 Client"); err != nil {
		return nil, err
	}
	// RFC 8707 §2.2: resource (and Hydra's audience) name the token's aud.
	aud, err := AllowedTargets(c, Targets(req.Resource, req.Audience))
	if err != nil {
		return nil, err
	}
	httpx.Info(ctx).Subject = c.ID
	return g.h.issueAccessToken(ctx, &accessGrant{
		GrantType: client.GrantClientCredentials,
		Client:    c,
		Subject:   c.ID,
		Scope:     req.Scope,
		Audience:  aud,
		Lifespan:  c.ClientCredentialsGrantAccessTokenLifespan.Get(g.h.opts.AccessTokenLifespan),
		JKT:       req.jkt(),
		X5T:       req.X5T,
	})
}
