package flow

import (
	"encoding/json"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// Flow statuses (storage.Flow.Status).
const (
	statusPending  = "pending"
	statusAccepted = "accepted"
	statusRejected = "rejected"
	statusUsed     = "used"
)

// OIDCContext is Hydra's oidc_context of login and consent requests.
type OIDCContext struct {
	ACRValues         []string       `json:"acr_values"`
	Display           string         `json:"display,omitempty"`
	IDTokenHintClaims map[string]any `json:"id_token_hint_claims,omitempty"`
	LoginHint         string         `json:"login_hint,omitempty"`
	UILocales         []string       `json:"ui_locales"`
	// Claims is the request's claims parameter (OpenID Connect Core
	// §5.5), which Hydra does not pass on: the claims the client asks for
	// in the ID token and userinfo, to be granted in the consent's
	// session.id_token.
	Claims *ClaimsRequest `json:"claims,omitempty"`
}

// LoginRequest is Hydra v2's GET /admin/oauth2/auth/requests/login answer.
type LoginRequest struct {
	Challenge                    string         `json:"challenge"`
	RequestedScope               []string       `json:"requested_scope"`
	RequestedAccessTokenAudience []string       `json:"requested_access_token_audience"`
	Skip                         bool           `json:"skip"`
	Subject                      string         `json:"subject"`
	OIDCContext                  OIDCContext    `json:"oidc_context"`
	Client                       *client.Client `json:"client"`
	RequestURL                   string         `json:"request_url"`
	SessionID                    string         `json:"session_id"`
}

// ConsentRequest is Hydra v2's GET /admin/oauth2/auth/requests/consent answer.
type ConsentRequest struct {
	Challenge string `json:"challenge"`
	// ConsentRequestID (Hydra v25) names the consent and every token
	// issued on it: DELETE .../sessions/consent?consent_request_id= revokes
	// them. It is the consent session's id.
	ConsentRequestID             string          `json:"consent_request_id"`
	RequestedScope               []string        `json:"requested_scope"`
	RequestedAccessTokenAudience []string        `json:"requested_access_token_audience"`
	Skip                         bool            `json:"skip"`
	Subject                      string          `json:"subject"`
	OIDCContext                  OIDCContext     `json:"oidc_context"`
	Client                       *client.Client  `json:"client"`
	RequestURL                   string          `json:"request_url"`
	LoginChallenge               string          `json:"login_challenge"`
	LoginSessionID               string          `json:"login_session_id"`
	ACR                          string          `json:"acr"`
	AMR                          []string        `json:"amr"`
	Context                      json.RawMessage `json:"context,omitempty"`
}

// LogoutRequest is Hydra v2's GET /admin/oauth2/auth/requests/logout answer.
type LogoutRequest struct {
	Challenge   string         `json:"challenge"`
	Subject     string         `json:"subject"`
	SessionID   string         `json:"sid"`
	RequestURL  string         `json:"request_url"`
	RPInitiated bool           `json:"rp_initiated"`
	Client      *client.Client `json:"client"`
}

// Redirect is Hydra's completedRequest answer of accept/reject.
type Redirect struct {
	RedirectTo string `json:"redirect_to"`
}

// AcceptLogin is the PUT .../login/accept body.
type AcceptLogin struct {
	Subject                   string          `json:"subject"`
	Remember                  bool            `json:"remember"`
	RememberFor               int64           `json:"remember_for"`
	ACR                       string          `json:"acr"`
	AMR                       []string        `json:"amr"`
	Context                   json.RawMessage `json:"context,omitempty"`
	ForceSubjectIdentifier    string          `json:"force_subject_identifier"`
	ExtendSessionLifespan     bool            `json:"extend_session_lifespan"`
	IdentityProviderSessionID string          `json:"identity_provider_session_id,omitempty"`
}

// ConsentSessionClaims is the session of an accepted consent.
type ConsentSessionClaims struct {
	AccessToken map[string]any `json:"access_token"`
	IDToken     map[string]any `json:"id_token"`
}

// AcceptConsent is the PUT .../consent/accept body.
type AcceptConsent struct {
	GrantScope               []string             `json:"grant_scope"`
	GrantAccessTokenAudience []string             `json:"grant_access_token_audience"`
	Remember                 bool                 `json:"remember"`
	RememberFor              int64                `json:"remember_for"`
	Session                  ConsentSessionClaims `json:"session"`
	Context                  json.RawMessage      `json:"context,omitempty"`
	HandledAt                *time.Time           `json:"handled_at,omitempty"`
}

// Reject is the PUT .../reject body (Hydra's rejectOAuth2Request).
type Reject struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorHint        string `json:"error_hint,omitempty"`
	ErrorDebug       string `json:"error_debug,omitempty"`
	StatusCode       int    `json:"status_code,omitempty"`
}

// PreviousConsentSession is an element of GET /admin/oauth2/auth/sessions/consent.
type PreviousConsentSession struct {
	ConsentRequestID         string               `json:"consent_request_id"`
	ConsentRequest           *ConsentRequest      `json:"consent_request"`
	GrantScope               []string             `json:"grant_scope"`
	GrantAccessTokenAudience []string             `json:"grant_access_token_audience"`
	Session                  ConsentSessionClaims `json:"session"`
	Remember                 bool                 `json:"remember"`
	RememberFor              int64                `json:"remember_for"`
	HandledAt                time.Time            `json:"handled_at"`
	Context                  json.RawMessage      `json:"context,omitempty"`
	ExpiresAt                map[string]any       `json:"expires_at,omitempty"`
}

// state is a flow's stored state (storage.Flow.Data).
type state struct {
	Request     *AuthorizeRequest `json:"request,omitempty"`
	RedirectURI string            `json:"redirect_uri,omitempty"` // resolved
	RequestURL  string            `json:"request_url"`
	RequestedAt time.Time         `json:"requested_at"`
	OIDCContext OIDCContext       `json:"oidc_context"`
	Skip        bool              `json:"skip"`
	// CSRF is the hash of the value of the browser's CSRF cookie;
	// Verifier the hash of the verifier's secret part.
	CSRF     string `json:"csrf"`
	Verifier string `json:"verifier,omitempty"`

	// Login flows.
	Login *AcceptLogin `json:"login,omitempty"`
	// SessionSubject is the subject of the browser's remembered session
	// when the flow started ("" when none).
	SessionSubject string    `json:"session_subject,omitempty"`
	SessionAuth    time.Time `json:"session_auth,omitzero"`

	// Consent flows.
	LoginChallenge string          `json:"login_challenge,omitempty"`
	IDTokenSubject string          `json:"id_token_subject,omitempty"`
	AuthTime       time.Time       `json:"auth_time,omitzero"`
	ACR            string          `json:"acr,omitempty"`
	AMR            []string        `json:"amr,omitempty"`
	LoginContext   json.RawMessage `json:"login_context,omitempty"`
	Consent        *AcceptConsent  `json:"consent,omitempty"`

	// Logout flows.
	RPInitiated           bool   `json:"rp_initiated,omitempty"`
	PostLogoutRedirectURI string `json:"post_logout_redirect_uri,omitempty"`
	LogoutState           string `json:"logout_state,omitempty"`

	// Device flows: the device challenge and the login and consent
	// challenges that follow it (device.go).
	Device *deviceFlow `json:"device,omitempty"`

	Reject *Reject `json:"reject,omitempty"`
	// HandledAt is when the app accepted or rejected.
	HandledAt time.Time `json:"handled_at,omitzero"`
}

// consentData is a consent session's stored data (storage.ConsentSession.Data).
type consentData struct {
	Session     ConsentSessionClaims `json:"session"`
	RememberFor int64                `json:"remember_for"`
	Context     json.RawMessage      `json:"context,omitempty"`
	// IDTokenSubject is the subject's identifier at the client (pairwise
	// or forced), for logout tokens.
	IDTokenSubject string          `json:"id_token_subject,omitempty"`
	Request        *ConsentRequest `json:"request,omitempty"`
}

// nonNil renders a missing list as [] (Hydra's JSON shape).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
