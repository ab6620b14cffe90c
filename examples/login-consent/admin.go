package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The login and consent app talks to the issuer's admin API exactly as
// it would to Ory Hydra v2's: /admin/oauth2/auth/requests/{login,consent,
// logout}[/accept|/reject]?<kind>_challenge=...

// Client is the OAuth2 client as the admin API embeds it in a request.
type Client struct {
	ClientID    string `json:"client_id"`
	ClientName  string `json:"client_name"`
	ClientURI   string `json:"client_uri"`
	LogoURI     string `json:"logo_uri"`
	PolicyURI   string `json:"policy_uri"`
	TosURI      string `json:"tos_uri"`
	SkipConsent bool   `json:"skip_consent"`
}

// DisplayName is what the screens call the client.
func (c Client) DisplayName() string {
	if c.ClientName != "" {
		return c.ClientName
	}
	return c.ClientID
}

// OIDCContext is the OpenID Connect part of a login or consent request.
type OIDCContext struct {
	ACRValues []string `json:"acr_values"`
	Display   string   `json:"display"`
	LoginHint string   `json:"login_hint"`
	UILocales []string `json:"ui_locales"`
}

// LoginRequest is GET /admin/oauth2/auth/requests/login.
type LoginRequest struct {
	Challenge                    string      `json:"challenge"`
	Client                       Client      `json:"client"`
	OIDCContext                  OIDCContext `json:"oidc_context"`
	RequestURL                   string      `json:"request_url"`
	RequestedScope               []string    `json:"requested_scope"`
	RequestedAccessTokenAudience []string    `json:"requested_access_token_audience"`
	SessionID                    string      `json:"session_id"`
	Skip                         bool        `json:"skip"`
	Subject                      string      `json:"subject"`
}

// ConsentRequest is GET /admin/oauth2/auth/requests/consent.
type ConsentRequest struct {
	Challenge                    string      `json:"challenge"`
	Client                       Client      `json:"client"`
	OIDCContext                  OIDCContext `json:"oidc_context"`
	RequestURL                   string      `json:"request_url"`
	RequestedScope               []string    `json:"requested_scope"`
	RequestedAccessTokenAudience []string    `json:"requested_access_token_audience"`
	Skip                         bool        `json:"skip"`
	Subject                      string      `json:"subject"`
	LoginChallenge               string      `json:"login_challenge"`
	LoginSessionID               string      `json:"login_session_id"`
	ACR                          string      `json:"acr"`
	AMR                          []string    `json:"amr"`
}

// LogoutRequest is GET /admin/oauth2/auth/requests/logout.
type LogoutRequest struct {
	Challenge   string  `json:"challenge"`
	Client      *Client `json:"client"`
	RequestURL  string  `json:"request_url"`
	RPInitiated bool    `json:"rp_initiated"`
	SID         string  `json:"sid"`
	Subject     string  `json:"subject"`
}

// AcceptLogin is the body of PUT .../login/accept.
type AcceptLogin struct {
	Subject     string   `json:"subject"`
	Remember    bool     `json:"remember"`
	RememberFor int64    `json:"remember_for"`
	AMR         []string `json:"amr,omitempty"`
}

// AcceptConsent is the body of PUT .../consent/accept.
type AcceptConsent struct {
	GrantScope               []string       `json:"grant_scope"`
	GrantAccessTokenAudience []string       `json:"grant_access_token_audience"`
	Remember                 bool           `json:"remember"`
	RememberFor              int64          `json:"remember_for"`
	Session                  ConsentSession `json:"session"`
}

// ConsentSession carries the extra claims of the tokens.
type ConsentSession struct {
	AccessToken map[string]any `json:"access_token"`
	IDToken     map[string]any `json:"id_token"`
}

// Reject is the body of PUT .../{login,consent}/reject.
type Reject struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// AdminError is a non-2xx answer of the admin API. A 410 Gone carries
// redirect_to: the request was already handled and the browser should go
// on there.
type AdminError struct {
	Status      int
	Code        string
	Description string
	RedirectTo  string
}

func (e *AdminError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("admin API answered %d: %s: %s", e.Status, e.Code, e.Description)
	}
	return fmt.Sprintf("admin API answered %d %s", e.Status, e.Code)
}

// AcceptUserCode accepts the user code entered at a device challenge (PUT
// .../device/accept, Hydra v25) and returns where to send the browser.
func (a *Admin) AcceptUserCode(ctx context.Context, challenge, userCode string) (string, error) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.do(ctx, http.MethodPut, a.url("device", "accept", challenge), map[string]string{"user_code": userCode}, &out); err != nil {
		return "", err
	}
	if out.RedirectTo == "" {
		return "", errors.New("admin API answered without redirect_to")
	}
	return out.RedirectTo, nil
}

// Admin is a client of the admin API's login, consent and logout routes.
type Admin struct {
	BaseURL string // e.g. http://127.0.0.1:4445
	HTTP    *http.Client
}

var kinds = map[string]bool{"login": true, "consent": true, "logout": true}

func (a *Admin) url(kind, action, challenge string) string {
	p := strings.TrimRight(a.BaseURL, "/") + "/admin/oauth2/auth/requests/" + kind
	if action != "" {
		p += "/" + action
	}
	return p + "?" + url.Values{kind + "_challenge": {challenge}}.Encode()
}

// Get fetches a login, consent or logout request into out.
func (a *Admin) Get(ctx context.Context, kind, challenge string, out any) error {
	if !kinds[kind] {
		return fmt.Errorf("unknown request kind %q", kind)
	}
	return a.do(ctx, http.MethodGet, a.url(kind, "", challenge), nil, out)
}

// Put accepts or rejects a request and returns where to send the browser
// (empty for a logout rejection, which answers 204).
func (a *Admin) Put(ctx context.Context, kind, action, challenge string, body any) (string, error) {
	if !kinds[kind] || (action != "accept" && action != "reject") {
		return "", fmt.Errorf("unknown request %s/%s", kind, action)
	}
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.do(ctx, http.MethodPut, a.url(kind, action, challenge), body, &out); err != nil {
		return "", err
	}
	if out.RedirectTo == "" && !(kind == "logout" && action == "reject") {
		return "", errors.New("admin API answered without redirect_to")
	}
	return out.RedirectTo, nil
}

func (a *Admin) do(ctx context.Context, method, u string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			RedirectTo  string `json:"redirect_to"`
		}
		_ = json.Unmarshal(b, &e)
		return &AdminError{Status: resp.StatusCode, Code: e.Error, Description: e.Description, RedirectTo: e.RedirectTo}
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin API: unexpected answer: %v", err)
		}
	}
	return nil
}
