package oauth2

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// errAlreadyUsed aborts the update of a code or refresh token that a
// concurrent or earlier request already used.
var errAlreadyUsed = errors.New("oauth2: already used")

// errRevoked aborts the redemption of a code or refresh token revoked
// (with its grant) after the caller read it.
var errRevoked = errors.New("oauth2: revoked")

// authorizationCodeGrant is RFC 6749 §4.1.3: the client redeems a code
// issued by the authorization endpoint for an access token, an ID token
// when openid was granted (OpenID Connect Core §3.1.3.3) and a refresh
// token when offline_access was granted.
type authorizationCodeGrant struct{ h *Handler }

var _ grantHandler = (*authorizationCodeGrant)(nil)

func (g *authorizationCodeGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	h := g.h
	c := req.Client
	sig, err := h.grantSignature(opaqueAuthorizeCode, req.Code, "code", "authorization code")
	if err != nil {
		return nil, err
	}
	// The code as this process recorded it moments ago, when it has it
	// (presign.go): everything checked here but its use and revocation is
	// fixed at minting, and those Redeem checks on the stored row.
	presigned := h.presign.take(sig)
	var t storage.Token
	if presigned != nil {
		t = presigned.code
	} else {
		if t, err = h.storedGrant(ctx, opaqueAuthorizeCode, sig, "authorization code"); err != nil {
			return nil, err
		}
	}
	// RFC 6749 §4.1.3: the code was issued to this authenticated client.
	if t.ClientID != c.ID {
		return nil, apierr.InvalidGrant("The authorization code was issued to another client")
	}
	s, err := decodeSession(t.Data)
	if err != nil || s.Grant == nil || s.Code == nil {
		return nil, apierr.ServerError(fmt.Errorf("oauth2: authorization code session: %v", err))
	}
	if s.Used {
		return nil, g.reused(ctx, &t)
	}
	if !t.Active {
		return nil, apierr.InvalidGrant("The authorization code was revoked")
	}
	if !h.now().Before(t.ExpiresAt) {
		return nil, apierr.InvalidGrant("The authorization code has expired")
	}
	// RFC 6749 §4.1.3: redirect_uri must be present and identical if it
	// was included in the authorization request; when it was not, a value
	// sent now must still be the one the code was delivered to.
	if s.Code.RedirectURISent && req.RedirectURI != s.Code.RedirectURI {
		return nil, apierr.InvalidGrant("The redirect_uri does not match the one of the authorization request")
	}
	if !s.Code.RedirectURISent && req.RedirectURI != "" && req.RedirectURI != s.Code.RedirectURI {
		return nil, apierr.InvalidGrant("The redirect_uri does not match the one the authorization code was sent to")
	}
	if err := verifyPKCE(s.Code.CodeChallenge, s.Code.CodeChallengeMethod, req.CodeVerifier); err != nil {
		return nil, err
	}
	if err := checkCodeBinding(s.Code.DPoPJKT, req.jkt()); err != nil {
		return nil, err
	}
	grant := s.Grant
	// RFC 8707 §2.2: resource may narrow the access token's aud to part of
	// what was granted (Hydra's audience parameter is ignored here, as in
	// Hydra).
	aud, err := narrowTargets(grant.GrantedAudience, req.Resource)
	if err != nil {
		return nil, err
	}
	httpx.Info(ctx).Subject = grant.Subject
	gt := h.codeGrantTokens(c, grant, t.RequestID, s.Code.Nonce)
	gt.JKT = req.jkt()
	gt.X5T = req.X5T
	if (presignCase{Hooked: len(h.hooks) > 0, CertBound: req.X5T != "", Narrowed: len(req.Resource) > 0}).usesPresigned() {
		gt.presigned = presigned.usableFor(ctx, gt)
	}
	gt.Audience = aud
	return h.issueGrantTokens(ctx, gt, func(issue []storage.Token) error {
		// Redeem exactly once, recording the new tokens in the same
		// transaction: the store serialises the update, the loser of a
		// race sees the code used (RFC 6749 §4.1.2: "The client MUST NOT
		// use the authorization code more than once").
		_, err := h.tokens.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindAuthorizationCode, Signature: sig,
			Read: &t, Update: h.useUp, Issue: issue})
		if errors.Is(err, errAlreadyUsed) {
			return g.reused(ctx, &t)
		}
		if errors.Is(err, errRevoked) {
			return apierr.InvalidGrant("The authorization code was revoked")
		}
		if err != nil {
			return apierr.ServerError(err)
		}
		return nil
	})
}

// grantSignature is the signature of the opaque code or token of kind k
// that a grant redeems, sent as the parameter param: none is
// invalid_request, one this server did not mint invalid_grant. what names
// it in the error's description.
func (h *Handler) grantSignature(k opaqueKind, value, param, what string) (string, error) {
	if value == "" {
		return "", apierr.InvalidRequest("The %s parameter is missing", param)
	}
	sig, ok := opaqueSignature(h.mac, k, value)
	if !ok {
		return "", apierr.InvalidGrant("The %s is malformed or was not issued by this server", what)
	}
	return sig, nil
}

// storedGrant reads the stored code or token of kind k with signature
// sig. None is invalid_grant (RFC 6749 §5.2: "invalid, expired, revoked");
// what names it in the error's description.
func (h *Handler) storedGrant(ctx context.Context, k opaqueKind, sig, what string) (storage.Token, error) {
	t, err := h.tokens.Get(ctx, k.kind, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return t, apierr.InvalidGrant("The %s is unknown, expired or was revoked", what)
	}
	if err != nil {
		return t, apierr.ServerError(err)
	}
	return t, nil
}

// useUp marks a code (or device code) used, once: errAlreadyUsed if it
// was, errRevoked if it was revoked.
func (h *Handler) useUp(t *storage.Token) error {
	cur, err := decodeSession(t.Data)
	if err != nil {
		return err
	}
	if cur.Used {
		return errAlreadyUsed
	}
	if !t.Active {
		return errRevoked
	}
	cur.Used, cur.UsedAt = true, h.now().UTC()
	t.Active = false
	t.Data, err = json.Marshal(cur)
	return err
}

// reused answers a second use of a code: RFC 6749 §4.1.2 "If an
// authorization code is used more than once, the authorization server MUST
// deny the request and SHOULD revoke (when possible) all tokens previously
// issued based on that authorization code."
func (g *authorizationCodeGrant) reused(ctx context.Context, t *storage.Token) error {
	if err := g.h.tokens.RevokeRequest(ctx, t.ClientID, t.RequestID, g.h.tokenRevocation(t.ClientID)); err != nil {
		return apierr.ServerError(err)
	}
	g.h.log.Warn("an authorization code was used twice; every token issued from it was revoked",
		zap.String("client_id", t.ClientID))
	return apierr.InvalidGrant("The authorization code has already been used; every token issued from it was revoked")
}

// verifyPKCE is RFC 7636 §4.6. A code issued without a challenge must be
// redeemed without a verifier (a verifier then means a downgrade attempt,
// OAuth 2.0 Security BCP §2.1.1).
func verifyPKCE(challenge, method, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return apierr.InvalidGrant("The code_verifier was sent but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return apierr.InvalidGrant("The code_verifier is missing (PKCE, RFC 7636 §4.5)")
	}
	// §4.1: code-verifier = 43*128unreserved.
	if len(verifier) < 43 || len(verifier) > 128 || !IsPKCEChars(verifier) {
		return apierr.InvalidGrant("The code_verifier must be 43 to 128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.1)")
	}
	var computed string
	switch method {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		computed = b64.EncodeToString(sum[:])
	case "plain", "":
		computed = verifier
	default:
		return apierr.InvalidGrant("The code_challenge_method %q is not supported", method)
	}
	if subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) != 1 {
		return apierr.InvalidGrant("The code_verifier does not match the code_challenge (PKCE)")
	}
	return nil
}

// checkCodeBinding is RFC 9449 §10: a code issued for dpop_jkt is
// exchanged only with a DPoP proof of that key ("If they do not match, it
// MUST reject the request"; the RFC names no error code: the code is the
// grant, so invalid_grant, as for PKCE).
func checkCodeBinding(codeJKT, proofJKT string) error {
	switch {
	case codeJKT == "":
		return nil
	case proofJKT == "":
		return apierr.InvalidGrant("The authorization code is bound to a DPoP key (dpop_jkt): the token request must carry a DPoP proof made with it")
	case subtle.ConstantTimeCompare([]byte(codeJKT), []byte(proofJKT)) != 1:
		return apierr.InvalidGrant("The DPoP proof's key is not the one the authorization code is bound to (dpop_jkt)")
	}
	return nil
}

// IsPKCEChars reports whether s uses only the unreserved characters of
// RFC 7636 §4.1 ([A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~").
func IsPKCEChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// codeGrantTokens is what the exchange of a code issued to c for grant g
// issues.
func (h *Handler) codeGrantTokens(c *client.Client, g *GrantSession, requestID, nonce string) *grantTokens {
	return &grantTokens{
		GrantType: client.GrantAuthorizationCode, Client: c, Grant: g,
		Scope: g.GrantedScope, Audience: g.GrantedAudience, RequestID: requestID, Nonce: nonce,
		AccessLifespan:  c.AuthorizationCodeGrantAccessTokenLifespan.Get(h.opts.AccessTokenLifespan),
		IDLifespan:      c.AuthorizationCodeGrantIDTokenLifespan.Get(h.opts.IDTokenLifespan),
		RefreshLifespan: c.AuthorizationCodeGrantRefreshTokenLifespan.Get(h.opts.RefreshTokenLifespan),
	}
}

// grantTokens is what the code and refresh grants issue from a user grant.
type grantTokens struct {
	GrantType string
	Client    *client.Client
	Grant     *GrantSession
	// Scope and Audience are the access token's scope and targets
	// (possibly narrowed from the grant).
	Scope     []string
	Audience  []string
	RequestID string
	Nonce     string

	AccessLifespan, IDLifespan, RefreshLifespan time.Duration

	// JKT is the thumbprint of the request's DPoP key: the access token,
	// and a public client's refresh token, are bound to it (RFC 9449 §5).
	JKT string
	// X5T binds the access token to a client certificate (RFC 8705 §3).
	X5T string

	// KeepRefreshToken, when set, is the refresh token presented to a
	// refresh that does not rotate it (fapi.go): it is answered again and
	// no new one is minted.
	KeepRefreshToken string

	// presigned, when set, is this exchange's access token and ID token,
	// minted when the code was issued (presign.go).
	presigned *presigned
}

// accessGrant is the access token gt issues.
func (gt *grantTokens) accessGrant() *accessGrant {
	g := gt.Grant
	return &accessGrant{
		GrantType: gt.GrantType, Client: gt.Client, Subject: g.Subject,
		Scope: gt.Scope, Audience: gt.Audience, Ext: g.AccessTokenClaims, Grant: g,
		Lifespan: gt.AccessLifespan, RequestID: gt.RequestID, JKT: gt.JKT, X5T: gt.X5T,
	}
}

// issueGrantTokens mints the access token, the refresh token when offline
// access was granted and the client may use refresh tokens (as in Hydra,
// silently none otherwise), and the ID token when openid was granted, with
// at_hash. redeem records the new tokens (with the use of the code or
// refresh token they come from, in one transaction); nothing is handed out
// unless it succeeds.
func (h *Handler) issueGrantTokens(ctx context.Context, gt *grantTokens, redeem func(issue []storage.Token) error) (*tokenResponse, error) {
	if err := h.hookGrantTokens(ctx, gt); err != nil {
		return nil, err
	}
	g := gt.Grant
	var resp *tokenResponse
	var at storage.Token
	if p := gt.presigned; p != nil {
		r := *p.resp
		resp, at = &r, p.row
		// Its exp was fixed when it was minted, up to presignMaxAge ago.
		resp.ExpiresIn = expiresIn(at.ExpiresAt, h.now())
	} else {
		var err error
		if resp, at, err = h.newAccessToken(ctx, gt.accessGrant()); err != nil {
			return nil, err
		}
	}
	issue := []storage.Token{at}
	switch {
	case gt.KeepRefreshToken != "":
		resp.RefreshToken = gt.KeepRefreshToken
	case g.offline() && gt.Client.HasGrantType(client.GrantRefreshToken):
		rt, row, err := h.newRefreshToken(gt)
		if err != nil {
			return nil, err
		}
		resp.RefreshToken = rt
		issue = append(issue, row)
	}
	// The ID token (at_hash needs the access token) does not depend on
	// the write: its signature (about a millisecond of CPU with RS256)
	// runs while the tokens are recorded (a database commit), which takes
	// a millisecond off the response when there is a core to spare, and
	// costs nothing when there is not.
	var idToken string
	idErr := make(chan error, 1)
	switch {
	case gt.presigned != nil:
		go func() {
			var err error
			idToken, err = gt.presigned.awaitIDToken(ctx, gt)
			idErr <- err
		}()
	case g.HasScope("openid"):
		go func() {
			var err error
			idToken, err = h.signIDToken(ctx, gt.Client, g, gt.Nonce, resp.AccessToken, "", gt.IDLifespan)
			idErr <- err
		}()
	default:
		idErr <- nil
	}
	if err := redeem(issue); err != nil {
		<-idErr
		return nil, err
	}
	if err := <-idErr; err != nil {
		return nil, err
	}
	resp.IDToken = idToken
	return resp, nil
}

// newRefreshToken mints a refresh token (ory_rt_...) of the chain and the
// row to record. It keeps the whole granted scope, so that a later refresh
// may ask again for scope an earlier one narrowed away (RFC 6749 §6).
func (h *Handler) newRefreshToken(gt *grantTokens) (string, storage.Token, error) {
	now := h.now().UTC().Truncate(time.Second)
	tok, sig, err := newOpaque(h.mac, opaqueRefreshToken, h.now())
	if err != nil {
		return "", storage.Token{}, apierr.ServerError(err)
	}
	g := gt.Grant
	sess := session{
		Scope: nonNil(g.GrantedScope), Audience: nonNil(g.GrantedAudience), Ext: g.AccessTokenClaims,
		TokenUse: useRefresh, GrantType: gt.GrantType, Format: formatOpaque, Grant: g,
	}
	// RFC 9449 §5: a public client's refresh token is bound to the DPoP
	// key of the request that obtained it; a confidential client's is not
	// ("already sender-constrained" by client authentication).
	// RFC 8705 §4 and §7.1 likewise for the client certificate.
	if gt.Client.IsPublic() {
		sess.JKT, sess.X5T = gt.JKT, gt.X5T
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return "", storage.Token{}, apierr.ServerError(err)
	}
	return tok, storage.Token{Kind: storage.KindRefreshToken, Signature: sig,
		RequestID: gt.RequestID, ClientID: gt.Client.ID, Subject: g.Subject, Active: true,
		IssuedAt: now, ExpiresAt: now.Add(gt.RefreshLifespan), Data: data}, nil
}
