package tokenhook

import (
	"maps"
	"net/url"
	"slices"
	"time"
)

// The JSON the hook receives and answers, in Ory Hydra's shapes
// (oauth2/token_hook.go and oauth2/refresh_hook.go of Hydra v2, whose
// session is Hydra's oauth2.Session with fosite's openid.DefaultSession
// under "id_token"), so that a hook written for Hydra works unchanged.

// Body is what oauth2.token_hook receives (Hydra's TokenHookRequest).
type Body struct {
	Session Session     `json:"session"`
	Request RequestInfo `json:"request"`
}

// RequestInfo is the token request as the hook sees it (Hydra's Request).
type RequestInfo struct {
	ClientID        string   `json:"client_id"`
	RequestedScopes []string `json:"requested_scopes"`
	GrantedScopes   []string `json:"granted_scopes"`
	GrantedAudience []string `json:"granted_audience"`
	GrantTypes      []string `json:"grant_types"`
	// Payload holds only grant_type, response_type, scope, client_id and
	// assertion of the token request body (Hydra's Sanitize): never the
	// client secret, the code, the verifier or the refresh token.
	Payload map[string][]string `json:"payload"`
}

// LegacyBody is what the legacy oauth2.refresh_token_hook receives
// (Hydra's RefreshTokenHookRequest): the session and the request, and the
// older top-level subject, client_id, granted_scopes and granted_audience.
type LegacyBody struct {
	Subject         string          `json:"subject"`
	Session         Session         `json:"session"`
	Requester       LegacyRequester `json:"requester"`
	ClientID        string          `json:"client_id"`
	GrantedScopes   []string        `json:"granted_scopes"`
	GrantedAudience []string        `json:"granted_audience"`
}

// LegacyRequester is Hydra's Requester of the refresh token hook.
type LegacyRequester struct {
	ClientID        string   `json:"client_id"`
	GrantedScopes   []string `json:"granted_scopes"`
	GrantedAudience []string `json:"granted_audience"`
	GrantTypes      []string `json:"grant_types"`
}

// Session is Hydra's oauth2.Session as it is before the tokens are minted.
type Session struct {
	IDToken IDTokenSession `json:"id_token"`
	// Extra are the access token's extra claims (consent's
	// session.access_token, or what an earlier hook set).
	Extra                 map[string]any `json:"extra"`
	KID                   string         `json:"kid"`
	ClientID              string         `json:"client_id"`
	ConsentChallenge      string         `json:"consent_challenge"`
	ExcludeNotBeforeClaim bool           `json:"exclude_not_before_claim"`
	AllowedTopLevelClaims []string       `json:"allowed_top_level_claims"`
	MirrorTopLevelClaims  bool           `json:"mirror_top_level_claims"`
}

// IDTokenSession is fosite's openid.DefaultSession.
type IDTokenSession struct {
	Claims    IDTokenClaims        `json:"id_token_claims"`
	Headers   Headers              `json:"headers"`
	ExpiresAt map[string]time.Time `json:"expires_at"`
	Username  string               `json:"username"`
	Subject   string               `json:"subject"`
}

// IDTokenClaims is fosite's jwt.IDTokenClaims: times are RFC 3339
// strings, and Extra ("ext") are the ID token's extra claims.
type IDTokenClaims struct {
	JTI                                 string         `json:"jti"`
	Issuer                              string         `json:"iss"`
	Subject                             string         `json:"sub"`
	Audience                            []string       `json:"aud"`
	Nonce                               string         `json:"nonce"`
	ExpiresAt                           time.Time      `json:"exp"`
	IssuedAt                            time.Time      `json:"iat"`
	RequestedAt                         time.Time      `json:"rat"`
	AuthTime                            time.Time      `json:"auth_time"`
	AccessTokenHash                     string         `json:"at_hash"`
	AuthenticationContextClassReference string         `json:"acr"`
	AuthenticationMethodsReferences     []string       `json:"amr"`
	CodeHash                            string         `json:"c_hash"`
	Extra                               map[string]any `json:"ext"`
}

// Headers is fosite's jwt.Headers.
type Headers struct {
	Extra map[string]any `json:"extra"`
}

// Response is a 200 answer (Hydra's TokenHookResponse): session.access_token
// replaces the access token's extra claims and session.id_token the ID
// token's, each as a whole (a hook that wants to keep claims echoes them).
type Response struct {
	Session struct {
		AccessToken map[string]any `json:"access_token"`
		IDToken     map[string]any `json:"id_token"`
	} `json:"session"`
}

// Input is what the token endpoint knows when it is about to mint: the
// grant decided, nothing signed yet.
type Input struct {
	GrantType string
	ClientID  string
	// Subject is the local subject (the client id for client_credentials).
	Subject string
	// Form is the token request body; only Hydra's sanitized parameters
	// reach the hook.
	Form            url.Values
	RequestedScopes []string
	GrantedScopes   []string
	GrantedAudience []string
	// AccessTokenClaims and IDTokenClaims are the extra claims the tokens
	// would carry without the hook.
	AccessTokenClaims map[string]any
	IDTokenClaims     map[string]any

	// The ID token context of a user's grant (zero for client_credentials
	// and jwt-bearer): issuer, the ID token's sub, nonce, times, acr, amr,
	// and the consent challenge the grant came from.
	Issuer           string
	IDSubject        string
	Nonce            string
	AuthTime         time.Time
	RequestedAt      time.Time
	ACR              string
	AMR              []string
	ConsentChallenge string
	// Now is the issue time the tokens will carry.
	Now time.Time

	AllowedTopLevelClaims []string
	MirrorTopLevelClaims  bool
}

// payloadParams are the token request parameters the hook is shown: fosite's
// always-allowed ones and the jwt-bearer assertion, as Hydra's
// requester.Sanitize([]string{"assertion"}).
var payloadParams = []string{"grant_type", "response_type", "scope", "client_id", "assertion"}

func (in *Input) payload() map[string][]string {
	out := map[string][]string{}
	for _, k := range payloadParams {
		if v, ok := in.Form[k]; ok {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// session is Hydra's session for in.
func (in *Input) session() Session {
	aud := []string(nil)
	if in.IDSubject != "" {
		aud = []string{in.ClientID}
	}
	return Session{
		IDToken: IDTokenSession{
			Claims: IDTokenClaims{
				Issuer: in.Issuer, Subject: in.IDSubject, Audience: aud, Nonce: in.Nonce,
				IssuedAt: in.Now.UTC(), RequestedAt: in.RequestedAt.UTC(), AuthTime: in.AuthTime.UTC(),
				AuthenticationContextClassReference: in.ACR, AuthenticationMethodsReferences: in.AMR,
				Extra: nonNilMap(in.IDTokenClaims),
			},
			Headers:   Headers{Extra: map[string]any{"kid": ""}},
			ExpiresAt: map[string]time.Time{},
			Subject:   in.Subject,
		},
		Extra:                 nonNilMap(in.AccessTokenClaims),
		ClientID:              in.ClientID,
		ConsentChallenge:      in.ConsentChallenge,
		AllowedTopLevelClaims: nonNil(in.AllowedTopLevelClaims),
		MirrorTopLevelClaims:  in.MirrorTopLevelClaims,
	}
}

// body is what the token hook receives for in.
func (in *Input) body() Body {
	return Body{Session: in.session(), Request: RequestInfo{
		ClientID: in.ClientID, RequestedScopes: nonNil(in.RequestedScopes), GrantedScopes: nonNil(in.GrantedScopes),
		GrantedAudience: nonNil(in.GrantedAudience), GrantTypes: []string{in.GrantType}, Payload: in.payload(),
	}}
}

// legacyBody is what the refresh token hook receives for in.
func (in *Input) legacyBody() LegacyBody {
	scopes, aud := nonNil(in.GrantedScopes), nonNil(in.GrantedAudience)
	return LegacyBody{
		Subject: in.Subject, Session: in.session(), ClientID: in.ClientID, GrantedScopes: scopes, GrantedAudience: aud,
		Requester: LegacyRequester{ClientID: in.ClientID, GrantedScopes: scopes, GrantedAudience: aud,
			GrantTypes: []string{in.GrantType}},
	}
}
