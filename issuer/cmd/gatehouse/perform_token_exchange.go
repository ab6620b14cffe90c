package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// tokenTypeURNs maps the short token type names of `perform
// token-exchange` to RFC 8693 §3's identifiers; a full URN is used as is.
var tokenTypeURNs = map[string]string{
	"access_token":  "urn:ietf:params:oauth:token-type:access_token",
	"refresh_token": "urn:ietf:params:oauth:token-type:refresh_token",
	"id_token":      "urn:ietf:params:oauth:token-type:id_token",
	"jwt":           "urn:ietf:params:oauth:token-type:jwt",
}

func tokenTypeURN(s string) string {
	if urn, ok := tokenTypeURNs[s]; ok {
		return urn
	}
	return s
}

// newTokenExchangeCmd is `gatehouse perform token-exchange`: an RFC 8693
// token exchange at the public token endpoint, as the given client.
func newTokenExchangeCmd() *cobra.Command {
	var r remote
	var cred credentials
	var subject, subjectType, actor, actorType, requested string
	var scope, audience, resource []string
	cmd := &cobra.Command{
		Use:   "token-exchange",
		Short: "Exchange a token for an access token for another audience (RFC 8693)",
		Long: "Exchanges --subject-token (and, for delegation, --actor-token) for an access token for the\n" +
			"--audience/--resource given, as the client. Token types: access_token, refresh_token, id_token,\n" +
			"jwt, or a full urn:ietf:params:oauth:token-type URN.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cred.id == "" {
				return fmt.Errorf("--client-id is required")
			}
			if subject == "" {
				return fmt.Errorf("--subject-token is required")
			}
			v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token": {subject}, "subject_token_type": {tokenTypeURN(subjectType)}}
			if actor != "" {
				v.Set("actor_token", actor)
				v.Set("actor_token_type", tokenTypeURN(actorType))
			}
			if requested != "" {
				v.Set("requested_token_type", tokenTypeURN(requested))
			}
			if len(scope) > 0 {
				v.Set("scope", strings.Join(scope, " "))
			}
			if len(audience) > 0 {
				v.Set("audience", strings.Join(audience, " "))
			}
			v["resource"] = resource
			body, auth := cred.form(v)
			var tok struct {
				tokenResponse
				IssuedTokenType string `json:"issued_token_type"`
			}
			if err := r.do(cmd.Context(), "POST", "/oauth2/token", strings.NewReader(body), "application/x-www-form-urlencoded", &tok, auth); err != nil {
				return err
			}
			return r.printToken(cmd, &tok, &tok.tokenResponse, tok.IssuedTokenType)
		},
	}
	r.addFlags(cmd, true)
	cred.register(cmd)
	f := cmd.Flags()
	f.Lookup("format").Usage = "output format: table, json, json-pretty or token (the access token alone)"
	f.StringVar(&subject, "subject-token", "", "the token to exchange (required)")
	f.StringVar(&subjectType, "subject-token-type", "access_token", "its type")
	f.StringVar(&actor, "actor-token", "", "the token of the party acting for the subject (delegation)")
	f.StringVar(&actorType, "actor-token-type", "access_token", "its type")
	f.StringVar(&requested, "requested-token-type", "", "access_token (the client's format) or jwt")
	f.StringSliceVar(&scope, "scope", nil, "scopes to request (at most the subject token's)")
	f.StringSliceVar(&audience, "audience", nil, "audiences to request")
	f.StringSliceVar(&resource, "resource", nil, "resources (absolute URIs) to request")
	return cmd
}
