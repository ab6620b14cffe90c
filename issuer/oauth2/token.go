package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Token formats and uses recorded in a token's session.
const (
	formatOpaque = "opaque"
	formatJWT    = "jwt"
	useAccess    = "access_token"
	// accessTokenType is the JWT typ of RFC 9068 §2.1.
	accessTokenType = "at+jwt"
	maxJWTLength    = 16 << 10
)

// session is the grant session stored as storage.Token.Data.
type session struct {
	// Scope and Audience are the granted scope and the token's audience
	// (for JWTs exactly the aud claim, client id included when configured).
	Scope    []string       `json:"scope"`
	Audience []string       `json:"audience"`
	Ext      map[string]any `json:"ext,omitempty"`
	// TokenUse is "access_token" (refresh tokens: "refresh_token").
	TokenUse  string `json:"token_use"`
	GrantType string `json:"grant_type,omitempty"`
	// Format is "opaque" or "jwt"; JTI is the jti of a JWT.
	Format string `json:"format"`
	JTI    string `json:"jti,omitempty"`

	// Grant is the user's grant behind tokens of the authorization code,
	// implicit and refresh token grants (nil for client_credentials and
	// jwt-bearer).
	Grant *GrantSession `json:"grant,omitempty"`
	// Code holds what an authorization code is checked against.
	Code *codeParams `json:"code,omitempty"`
	// JKT is the thumbprint of the DPoP key an access token, or a public
	// client's refresh token, is bound to (RFC 9449 §5, §6).
	JKT string `json:"jkt,omitempty"`
	// Device is the polling state and decision of a device code.
	Device *deviceState `json:"device,omitempty"`
	// Act is the RFC 8693 §4.1 act claim of an exchanged token; Parent the
	// token it was exchanged from, which it lives no longer than
	// (token_exchange.go).
	Act    map[string]any `json:"act,omitempty"`
	Parent *tokenRef      `json:"parent,omitempty"`
	// X5T is the x5t#S256 of the client certificate an access token is
	// bound to (RFC 8705 §3).
	X5T string `json:"x5t_s256,omitempty"`
	// Used and UsedAt mark a redeemed code or rotated refresh token.
	Used   bool      `json:"used,omitempty"`
	UsedAt time.Time `json:"used_at,omitzero"`
	// Reuses counts the uses of a rotated refresh token after its first,
	// within the rotation grace period.
	Reuses int `json:"reuses,omitempty"`
}

// sid is the login session behind the token's grant, "" when it came
// from no browser login (client credentials, jwt-bearer, ...).
func (s *session) sid() string {
	if s.Grant == nil {
		return ""
	}
	return s.Grant.SessionID
}

func decodeSession(raw json.RawMessage) (*session, error) {
	var s session
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("oauth2: stored token session is unreadable: %w", err)
		}
	}
	return &s, nil
}

// accessGrant is what a grant handler decided: who gets a token for whom,
// with which scope and audience, for how long.
type accessGrant struct {
	GrantType string
	Client    *client.Client
	Subject   string
	Scope     []string
	Audience  []string
	// Ext are session extras: under "ext" in JWTs and introspection.
	Ext      map[string]any
	Lifespan time.Duration
	// RequestID ties together the tokens of one grant; empty: a new one.
	RequestID string
	// Grant is the user's grant, for userinfo and ID tokens.
	Grant *GrantSession
	// JKT binds the token to a DPoP key (RFC 9449 §6); "" for a bearer token.
	JKT string
	// Act and Parent are set by token exchange (session.Act, .Parent).
	Act    map[string]any
	Parent *tokenRef
	// X5T binds the token to a client certificate (RFC 8705 §3).
	X5T string
}

// accessTokenStrategy returns "opaque" or "jwt": the client's
// access_token_strategy, else Options.AccessTokenStrategy.
func (h *Handler) accessTokenStrategy(c *client.Client) string {
	if c.AccessTokenStrategy != "" {
		return c.AccessTokenStrategy
	}
	return h.opts.AccessTokenStrategy
}

// issueAccessToken creates, records and returns an access token for g
// (RFC 6749 §5.1 response, without refresh or ID token).
func (h *Handler) issueAccessToken(ctx context.Context, g *accessGrant) (*tokenResponse, error) {
	if err := h.hookAccessGrant(ctx, g); err != nil {
		return nil, err
	}
	resp, row, err := h.newAccessToken(ctx, g)
	if err != nil {
		return nil, err
	}
	if err := h.tokens.Create(ctx, row); err != nil {
		return nil, apierr.ServerError(fmt.Errorf("oauth2: recording the access token: %w", err))
	}
	return resp, nil
}

// newAccessToken mints an access token for g without recording it: the
// response, and the row the caller must store before handing it out.
func (h *Handler) newAccessToken(ctx context.Context, g *accessGrant) (*tokenResponse, storage.Token, error) {
	if g.Lifespan <= 0 {
		return nil, storage.Token{}, apierr.ServerError(errors.New("oauth2: access token lifespan must be positive"))
	}
	now := h.now().UTC().Truncate(time.Second)
	exp := now.Add(g.Lifespan)
	if g.RequestID == "" {
		// Time-ordered (UUIDv7, RFC 9562 §5.7) so that the tokens table's
		// request index grows at its right edge like its primary key.
		g.RequestID = newTimeOrderedID()
	}
	sess := session{
		Scope:     nonNil(g.Scope),
		Audience:  h.accessTokenAudience(g.Client, g.Audience),
		Ext:       g.Ext,
		TokenUse:  useAccess,
		GrantType: g.GrantType,
		Grant:     g.Grant,
		JKT:       g.JKT,
		Act:       g.Act,
		Parent:    g.Parent,
		X5T:       g.X5T,
	}
	var token, sig string
	var err error
	switch h.accessTokenStrategy(g.Client) {
	case formatJWT:
		sess.Format = formatJWT
		sess.JTI = newTimeOrderedID()
		if h.opts.ClientIDInAudience && !contains(sess.Audience, g.Client.ID) {
			sess.Audience = append(sess.Audience, g.Client.ID)
		}
		token, err = h.signAccessToken(ctx, g, &sess, now, exp)
		if err != nil {
			return nil, storage.Token{}, apierr.ServerError(fmt.Errorf("oauth2: signing the access token: %w", err))
		}
		sig = jwtSignature(token)
	default:
		sess.Format = formatOpaque
		token, sig, err = newOpaque(h.mac, opaqueAccessToken, h.now())
		if err != nil {
			return nil, storage.Token{}, apierr.ServerError(err)
		}
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return nil, storage.Token{}, apierr.ServerError(fmt.Errorf("oauth2: encoding the session: %w", err))
	}
	row := storage.Token{
		Kind:      storage.KindAccessToken,
		Signature: sig,
		RequestID: g.RequestID,
		ClientID:  g.Client.ID,
		Subject:   g.Subject,
		Active:    true,
		IssuedAt:  now,
		ExpiresAt: exp,
		Data:      data,
	}
	tokenType := "bearer"
	if g.JKT != "" {
		// RFC 9449 §5: "A token_type of DPoP MUST be included".
		tokenType = dpop.TokenType
	}
	return &tokenResponse{
		AccessToken: token,
		TokenType:   tokenType,
		ExpiresIn:   expiresIn(exp, now),
		Scope:       strings.Join(g.Scope, " "),
	}, row, nil
}

// expiresIn is a token response's expires_in (RFC 6749 §5.1) at now for an
// access token expiring at exp: the whole seconds left, as a client
// computes them from the token's exp and the current Unix time (so a
// token just minted reports its lifespan).
func expiresIn(exp, now time.Time) int64 {
	return exp.Unix() - now.Unix()
}

// reservedClaims cannot be set from session extras.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"client_id": true, "scope": true, "scp": true, "ext": true, "cnf": true, "auth_time": true, "acr": true,
	"act": true, "sid": true,
}

// signAccessToken builds and signs an RFC 9068 JWT access token.
func (h *Handler) signAccessToken(ctx context.Context, g *accessGrant, s *session, now, exp time.Time) (string, error) {
	claims := map[string]any{
		"iss":       h.opts.IssuerURL,
		"sub":       g.Subject,
		"aud":       s.Audience, // always an array, as Hydra writes it
		"exp":       exp.Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       s.JTI,
		"client_id": g.Client.ID,
	}
	// RFC 9068 §2.2.3: scope is the space-separated string of RFC 8693
	// §4.2 (what APISIX and most gateways read); Hydra writes scp, an array.
	switch h.opts.JWTScopeClaim {
	case "string":
		claims["scope"] = strings.Join(s.Scope, " ")
	case "list":
		claims["scp"] = s.Scope
	default:
		claims["scope"] = strings.Join(s.Scope, " ")
		claims["scp"] = s.Scope
	}
	if cnf := s.confirmation(); cnf != nil {
		// RFC 9449 §6.1 jkt, RFC 8705 §3.1 x5t#S256.
		claims["cnf"] = cnf
	}
	if s.Act != nil {
		// RFC 8693 §4.1: the actor of a delegated token.
		claims["act"] = s.Act
	}
	if sid := s.sid(); sid != "" {
		// The login session the grant came from (RFC 9068 §2.2 allows
		// further claims; OpenID Connect names it sid): the revocation
		// events of a logout select the session's tokens by it
		// (docs/revocation-events.md).
		claims["sid"] = sid
	}
	ext := maps.Clone(s.Ext)
	for _, name := range h.opts.AllowedTopLevelClaims {
		v, ok := ext[name]
		if !ok || reservedClaims[name] {
			continue
		}
		claims[name] = v
		if !h.opts.MirrorTopLevelClaims {
			delete(ext, name)
		}
	}
	if len(ext) > 0 {
		claims["ext"] = ext
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return h.signer.Sign(ctx, AccessTokenKeySet, accessTokenType, payload)
}

// jwtSignature is the storage key of a JWT access token: its jti, then a
// hash of the whole compact token, so a lookup only ever matches the exact
// token that was issued (a token with a forged payload or header finds
// nothing). The jti is a UUIDv7 (time-ordered), so keys issued close
// together sort together and the token table's primary key grows at its
// right edge instead of taking a random page per token.
func jwtSignature(token string) string {
	sum := sha256.Sum256([]byte(token))
	h := b64.EncodeToString(sum[:])
	if jti := jwtID(token); jti != "" {
		return jti + "." + h
	}
	return h
}

// jwtID returns the jti claim of a compact JWT when it is a plausible id
// (at most 64 characters of the base64url alphabet, as UUIDs are), else "". The token is not
// verified: the result only locates a row that the hash must then match.
func jwtID(token string) string {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > maxJWTLength {
		return ""
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		ID string `json:"jti"`
	}
	if json.Unmarshal(raw, &c) != nil || len(c.ID) > 64 || !isBase64URL(c.ID) {
		return ""
	}
	return c.ID
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// non-empty base64url parts.
func looksLikeJWT(s string) bool {
	if len(s) > maxJWTLength || strings.Count(s, ".") != 2 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || !isBase64URL(part) {
			return false
		}
	}
	return true
}

// tokenSignature maps a presented token to its storage kind and signature.
// ok is false for malformed tokens and opaque tokens with a wrong MAC.
func (h *Handler) tokenSignature(raw string) (storage.TokenKind, string, bool) {
	for _, k := range opaqueKinds {
		if strings.HasPrefix(raw, k.prefix) {
			sig, ok := opaqueSignature(h.mac, k, raw)
			return k.kind, sig, ok
		}
	}
	if looksLikeJWT(raw) {
		return storage.KindAccessToken, jwtSignature(raw), true
	}
	return "", "", false
}

// lookupToken returns the record of a presented token. found is false for
// malformed, forged and unknown tokens; err is a storage failure.
func (h *Handler) lookupToken(ctx context.Context, raw string) (t storage.Token, found bool, err error) {
	kind, sig, ok := h.tokenSignature(raw)
	if !ok {
		return storage.Token{}, false, nil
	}
	t, err = h.tokens.Get(ctx, kind, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Token{}, false, nil
	}
	if err != nil {
		return storage.Token{}, false, err
	}
	return t, true, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string{}, s...)
}

// newTimeOrderedID returns a time-ordered id (UUIDv7, RFC 9562 §5.7).
func newTimeOrderedID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
