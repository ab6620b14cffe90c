// Command orders is an upstream app that calls another API on the caller's
// behalf with an exchanged token (RFC 8693 token exchange, delegation).
//
// On GET /orders with "Authorization: Bearer <token>" (as the gateway
// forwards it) it
//
//  1. introspects the incoming token at the issuer's admin API,
//
//  2. gets its own client_credentials token (the actor),
//
//  3. exchanges the incoming token (the subject) with its own as
//     actor_token for a token whose audience is the second API, so the new
//     token carries act: {sub: <orders client>} (RFC 8693 §4.1),
//
//  4. calls the second API with the new token, and
//
//  5. answers JSON with the incoming token's introspection, the exchanged
//     token's introspection (with act) and the second API's answer.
//
//     orders --listen 127.0.0.1:8083 --issuer http://127.0.0.1:4444 \
//     --introspection-url http://127.0.0.1:4445/admin/oauth2/introspect \
//     --client-id orders --client-secret ... --api-url http://127.0.0.1:8082
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/examples/internal/serve"
)

// Token type and grant type URNs (RFC 8693 §3, §2.1).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken    = "urn:ietf:params:oauth:token-type:access_token"
)

// App is the orders service.
type App struct {
	// TokenURL is the issuer's token endpoint.
	TokenURL string
	// IntrospectionURL is the issuer's RFC 7662 introspection endpoint
	// (Gatehouse's is on the admin API).
	IntrospectionURL string
	// ClientID and ClientSecret are this app's client (client_secret_basic).
	ClientID, ClientSecret string
	// APIURL is the second API: the exchanged token's audience, and where
	// GET APIURL+"/things" is sent with it.
	APIURL string
	// Client makes the outbound calls (default: 10 s timeout).
	Client *http.Client
}

// Answer is what GET /orders returns.
type Answer struct {
	App string `json:"app"`
	// Incoming is the introspection of the caller's token.
	Incoming map[string]any `json:"incoming"`
	// Exchanged is the introspection of the token this app got for the
	// second API: sub of the caller, aud the API, act this app.
	Exchanged map[string]any `json:"exchanged"`
	// API is the second API's answer to the call with the exchanged token.
	API json.RawMessage `json:"api"`
}

// upstreamError is a failed call to the issuer or the API: shown to the
// caller as 502 with the issuer's OAuth error, never a token.
type upstreamError struct{ msg string }

func (e *upstreamError) Error() string { return e.msg }

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		_, _ = w.Write([]byte("ok\n"))
		return
	case "/orders":
	default:
		http.NotFound(w, r)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orders"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "Authorization: Bearer <token> is required"})
		return
	}
	ans, err := a.handle(r.Context(), token)
	var bad *invalidToken
	switch {
	case errors.As(err, &bad):
		w.Header().Set("WWW-Authenticate", `Bearer realm="orders", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "upstream_failed", "error_description": err.Error()})
	default:
		writeJSON(w, http.StatusOK, ans)
	}
}

type invalidToken struct{}

func (*invalidToken) Error() string { return "the token is not active" }

func (a *App) handle(ctx context.Context, token string) (*Answer, error) {
	incoming, err := a.introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	if active, _ := incoming["active"].(bool); !active {
		return nil, &invalidToken{}
	}
	actor, err := a.token(ctx, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return nil, err
	}
	exchanged, err := a.token(ctx, url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {typeAccessToken},
		"actor_token":        {actor},
		"actor_token_type":   {typeAccessToken},
		"audience":           {a.APIURL},
	})
	if err != nil {
		return nil, err
	}
	info, err := a.introspect(ctx, exchanged)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.APIURL, "/")+"/things", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+exchanged)
	req.Header.Set("Accept", "application/json")
	status, body, err := a.do(req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK || !json.Valid(body) {
		return nil, &upstreamError{fmt.Sprintf("the API answered %d", status)}
	}
	return &Answer{App: "orders", Incoming: incoming, Exchanged: info, API: body}, nil
}

// token posts form to the token endpoint as this client
// (client_secret_basic, id and secret form-encoded first, RFC 6749 §2.3.1)
// and returns the access token.
func (a *App) token(ctx context.Context, form url.Values) (string, error) {
	req, err := a.form(ctx, a.TokenURL, form)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(a.ClientID), url.QueryEscape(a.ClientSecret))
	status, body, err := a.do(req)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &tok)
	if status != http.StatusOK || tok.AccessToken == "" {
		return "", &upstreamError{fmt.Sprintf("token endpoint (%s): %d %s %s", form.Get("grant_type"), status, tok.Error, tok.Description)}
	}
	return tok.AccessToken, nil
}

// introspect asks the introspection endpoint about token (RFC 7662 §2.1).
func (a *App) introspect(ctx context.Context, token string) (map[string]any, error) {
	req, err := a.form(ctx, a.IntrospectionURL, url.Values{"token": {token}})
	if err != nil {
		return nil, err
	}
	status, body, err := a.do(req)
	if err != nil {
		return nil, err
	}
	var info map[string]any
	if status != http.StatusOK || json.Unmarshal(body, &info) != nil {
		return nil, &upstreamError{fmt.Sprintf("introspection: %d", status)}
	}
	return info, nil
}

func (a *App) form(ctx context.Context, u string, v url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (a *App) do(req *http.Request) (int, []byte, error) {
	c := a.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, &upstreamError{fmt.Sprintf("%s %s: %v", req.Method, req.URL.Redacted(), errors.Unwrap(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func main() {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	listen := serve.ListenFlag(fs, "127.0.0.1:8083")
	issuer := fs.String("issuer", serve.EnvOr("ISSUER", "http://127.0.0.1:4444"), "issuer URL; the token endpoint is <issuer>/oauth2/token ($ISSUER)")
	introspection := fs.String("introspection-url", serve.EnvOr("INTROSPECTION_URL", "http://127.0.0.1:4445/admin/oauth2/introspect"), "introspection endpoint ($INTROSPECTION_URL)")
	clientID := fs.String("client-id", serve.EnvOr("CLIENT_ID", "orders"), "this app's client id ($CLIENT_ID)")
	clientSecret := fs.String("client-secret", os.Getenv("CLIENT_SECRET"), "this app's client secret ($CLIENT_SECRET)")
	api := fs.String("api-url", serve.EnvOr("API_URL", "http://127.0.0.1:8082"), "the second API: the exchanged token's audience ($API_URL)")
	serve.ParseFlags(fs)
	if *clientSecret == "" {
		fmt.Fprintln(os.Stderr, "orders: --client-secret (or $CLIENT_SECRET) is required")
		os.Exit(2)
	}
	app := &App{TokenURL: strings.TrimRight(*issuer, "/") + "/oauth2/token", IntrospectionURL: *introspection,
		ClientID: *clientID, ClientSecret: *clientSecret, APIURL: *api}
	serve.ListenAndServe("orders", *listen, app, func(a net.Addr) string {
		return fmt.Sprintf("orders listening on http://%s (calls %s with exchanged tokens)", a, *api)
	})
}
