package testbin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Client is a client registered at an Issuer.
type Client struct {
	ID     string
	Secret string
	// Metadata is the admin API's answer: the client as registered.
	Metadata map[string]any
}

// RegisterClient registers a client through the admin API (POST
// /admin/clients with fields, Hydra's client JSON) and fails the test
// unless it is created.
func (is *Issuer) RegisterClient(t testing.TB, fields map[string]any) Client {
	t.Helper()
	body, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(is.AdminURL+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var c Client
	if err := json.Unmarshal(raw, &c.Metadata); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create client: %d %s", resp.StatusCode, raw)
	}
	c.ID, _ = c.Metadata["client_id"].(string)
	c.Secret, _ = c.Metadata["client_secret"].(string)
	if c.ID == "" {
		t.Fatalf("create client: no client_id in %s", raw)
	}
	return c
}

// Tokens is a successful token endpoint answer (RFC 6749 §5.1).
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Token posts form to the token endpoint as c, with client_secret_basic
// (id and secret form-encoded first, RFC 6749 §2.3.1), and fails the test
// unless the answer is 200 with an access token.
func (is *Issuer) Token(t testing.TB, c Client, form url.Values) Tokens {
	t.Helper()
	status, raw := is.postToken(t, c, form, nil)
	var tok Tokens
	if err := json.Unmarshal(raw, &tok); err != nil || status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token (%s): %d %s", form.Get("grant_type"), status, raw)
	}
	return tok
}

// PostToken posts form to the token endpoint as c, with
// client_secret_basic, and returns the status and body, whatever they are.
func (is *Issuer) PostToken(t testing.TB, c Client, form url.Values) (int, []byte) {
	return is.postToken(t, c, form, nil)
}

// postToken posts form to the token endpoint as c (client_secret_basic)
// with the extra headers, and returns the status and body.
func (is *Issuer) postToken(t testing.TB, c Client, form url.Values, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, is.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// ClientCredentialsToken registers a client_credentials client allowed
// scope and returns it with an access token for that scope (its subject is
// the client id, as in Hydra).
func (is *Issuer) ClientCredentialsToken(t testing.TB, scope string) (Client, string) {
	t.Helper()
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": scope,
		"token_endpoint_auth_method": "client_secret_basic"})
	return c, is.Token(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}).AccessToken
}
