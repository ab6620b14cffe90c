package main

import (
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
	cl, err := is.createClientWith(map[string]any{
		"client_name": "bench token exchange", "grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scope": "read write", "access_token_strategy": "jwt", "audience": []string{exchangeAudience},
		"token_exchange_impersonation": true,
	})
	if err != nil {
		return nil, err
	}
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
	return formTarget(is, cl, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "audience": {exchangeAudience}})
}
