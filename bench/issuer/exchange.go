package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// exchangeAudience is the target of the exchange scenario's tokens.
const exchangeAudience = "https://api2.bench.example"

// exchangeScenario is RFC 8693 token exchange: a JWT access token
// (client_credentials, RS256, the jwt-rs256 scenario's token) exchanged
// for a JWT access token for another audience, impersonation, on every
// request: the token endpoint finds and checks the subject token (one
// read), then signs and records the new one. It compares with jwt-rs256,
// the same key signing the same kind of token.
func exchangeScenario(o options, is *issuerProc) (*scenario, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name": "bench token exchange", "grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scope": "read write", "access_token_strategy": "jwt", "audience": []string{exchangeAudience},
		"token_exchange_impersonation": true,
	})
	req, _ := http.NewRequest(http.MethodPost, is.Admin+"/admin/clients", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var cl client
	var created struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := do(req, http.StatusCreated, &created); err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	cl = client{created.ID, created.Secret}
	subject, err := is.token(cl)
	if err != nil {
		return nil, err
	}
	mk := exchangeTarget(is, cl, subject)
	// Check once that the exchange answers a JWT for the target.
	r, err := mk()
	if err != nil {
		return nil, err
	}
	var out struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	if err := do(r, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("token exchange: %w", err)
	}
	note, err := checkToken(is, out.AccessToken, "jwt", "RS256")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(jwtPayload(out.AccessToken)), exchangeAudience) {
		return nil, fmt.Errorf("the exchanged token is not for %s", exchangeAudience)
	}
	s := load(o, "exchange", is, mk)
	s.Note = note + "; subject token: a JWT access token of the same key"
	return s, nil
}

func exchangeTarget(is *issuerProc, cl client, subject string) target {
	u := is.Public + "/oauth2/token"
	body := []byte(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "audience": {exchangeAudience}}.Encode())
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cl.ID)+":"+url.QueryEscape(cl.Secret)))
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		return req, nil
	}
}
