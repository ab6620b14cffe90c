package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// jwksTable prints one row per key: set, kid, alg, use.
func jwksTable(set string, raw json.RawMessage) table {
	var s struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	_ = json.Unmarshal(raw, &s)
	t := table{head: []string{"SET ID", "KEY ID", "ALGORITHM", "USE", "TYPE"}}
	for _, k := range s.Keys {
		t.rows = append(t.rows, []string{set, k.KID, k.Alg, k.Use, k.Kty})
	}
	return t
}

func newCreateJWKSCmd() *cobra.Command {
	var r remote
	var alg, use, kid string
	cmd := &cobra.Command{
		Use:   "jwks SET",
		Short: "Generate a new key in a JSON Web Key Set (the private key is returned once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			body := map[string]string{"alg": alg, "use": use}
			if kid != "" {
				body["kid"] = kid
			}
			if err := r.doJSON(cmd.Context(), "POST", "/admin/keys/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			return r.print(cmd, out, jwksTable(args[0], out))
		},
	}
	r.addFlags(cmd, false)
	cmd.Flags().StringVarP(&alg, "alg", "a", "RS256", "algorithm: RS256, RS384, RS512, PS256, ES256, ES384, ES512 or EdDSA")
	cmd.Flags().StringVarP(&use, "use", "u", "sig", "key use: sig or enc")
	cmd.Flags().StringVar(&kid, "kid", "", "key ID (generated when empty)")
	return cmd
}

func newGetJWKSCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "jwks SET",
		Short: "Get the public keys of a JSON Web Key Set",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			if err := r.doJSON(cmd.Context(), "GET", "/admin/keys/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return r.print(cmd, out, jwksTable(args[0], out))
		},
	}
	r.addFlags(cmd, false)
	return cmd
}

func newDeleteJWKSCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "jwks SET [SET...]",
		Short: "Delete JSON Web Key Sets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, set := range args {
				if err := r.doJSON(cmd.Context(), "DELETE", "/admin/keys/"+url.PathEscape(set), nil, nil); err != nil {
					return err
				}
			}
			return r.print(cmd, args, table{head: []string{"DELETED SET ID"}, rows: rowsOf(args)})
		},
	}
	r.addFlags(cmd, false)
	return cmd
}

// formatToken is the --format of `token client` that prints the access
// token alone.
const formatToken = "token"

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// credentials are a client's id and secret for the public endpoints.
type credentials struct {
	id, secret string
	post       bool // client_secret_post instead of client_secret_basic
}

func (c *credentials) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.id, "client-id", "", "the client's ID")
	cmd.Flags().StringVar(&c.secret, "client-secret", "", "the client's secret")
	cmd.Flags().BoolVar(&c.post, "auth-post", false, "send the credentials in the form body (client_secret_post)")
}

// form builds the request body and the authentication for it. Basic
// credentials are form-encoded first, as RFC 6749 §2.3.1 requires.
func (c *credentials) form(v url.Values) (string, func(req *http.Request)) {
	if c.post {
		v.Set("client_id", c.id)
		if c.secret != "" {
			v.Set("client_secret", c.secret)
		}
		return v.Encode(), nil
	}
	if c.secret == "" {
		v.Set("client_id", c.id)
		return v.Encode(), nil
	}
	return v.Encode(), func(req *http.Request) {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
}

func newClientCredentialsCmd() *cobra.Command {
	return clientCredentialsCmd("client-credentials", false)
}

// clientCredentialsCmd is `perform client-credentials` or, with tokenOnly,
// Hydra v1's `token client`, which prints the access token alone by default
// so that scripts can do TOKEN=$(gatehouse token client ...).
func clientCredentialsCmd(use string, tokenOnly bool) *cobra.Command {
	var r remote
	var cred credentials
	var scope, audience []string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Get an access token with the client_credentials grant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cred.id == "" {
				return fmt.Errorf("--client-id is required")
			}
			v := url.Values{"grant_type": {"client_credentials"}}
			if len(scope) > 0 {
				v.Set("scope", strings.Join(scope, " "))
			}
			if len(audience) > 0 {
				v.Set("audience", strings.Join(audience, " "))
			}
			body, auth := cred.form(v)
			var tok tokenResponse
			if err := r.do(cmd.Context(), "POST", "/oauth2/token", strings.NewReader(body), "application/x-www-form-urlencoded", &tok, auth); err != nil {
				return err
			}
			return r.printToken(cmd, &tok, &tok)
		},
	}
	r.addFlags(cmd, true)
	if tokenOnly {
		r.format = formatToken
		f := cmd.Flags().Lookup("format")
		f.DefValue = formatToken
		f.Usage = "output format: token (the access token alone), table, json or json-pretty"
	}
	cred.register(cmd)
	cmd.Flags().StringSliceVar(&scope, "scope", nil, "scopes to request")
	cmd.Flags().StringSliceVar(&audience, "audience", nil, "audiences to request")
	return cmd
}

// printToken prints a token response: v as JSON, the access token alone
// (--format token), or tok as a table, with issuedType's column when set.
func (r *remote) printToken(cmd *cobra.Command, v any, tok *tokenResponse, issuedType ...string) error {
	if r.format == formatToken {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
		return err
	}
	exp := ""
	if tok.ExpiresIn > 0 {
		exp = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	}
	head := []string{"ACCESS TOKEN", "TOKEN TYPE", "EXPIRY", "SCOPE"}
	row := []string{tok.AccessToken, tok.TokenType, exp, tok.Scope}
	if len(issuedType) > 0 {
		head, row = append(head, "ISSUED TOKEN TYPE"), append(row, issuedType[0])
	}
	return r.print(cmd, v, table{head: head, rows: [][]string{row}, vertical: true})
}

func newIntrospectCmd() *cobra.Command {
	var r remote
	var scope []string
	cmd := &cobra.Command{
		Use:   "token TOKEN",
		Short: "Introspect an access or refresh token (RFC 7662, admin API)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{"token": {args[0]}}
			if len(scope) > 0 {
				v.Set("scope", strings.Join(scope, " "))
			}
			var out map[string]any
			if err := r.do(cmd.Context(), "POST", "/admin/oauth2/introspect", strings.NewReader(v.Encode()), "application/x-www-form-urlencoded", &out, nil); err != nil {
				return err
			}
			head := []string{"ACTIVE", "SUBJECT", "CLIENT ID", "SCOPE", "EXPIRY", "TOKEN USE"}
			row := []string{fmt.Sprint(out["active"]), str(out["sub"]), str(out["client_id"]), str(out["scope"]), unixTime(out["exp"]), str(out["token_use"])}
			return r.print(cmd, out, table{head: head, rows: [][]string{row}, vertical: true})
		},
	}
	r.addFlags(cmd, false)
	cmd.Flags().StringSliceVar(&scope, "scope", nil, "scopes the token must have to be reported active")
	return cmd
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func unixTime(v any) string {
	f, ok := v.(float64)
	if !ok {
		return ""
	}
	return time.Unix(int64(f), 0).UTC().Format(time.RFC3339)
}

func newRevokeCmd() *cobra.Command {
	var r remote
	var cred credentials
	cmd := &cobra.Command{
		Use:   "token TOKEN",
		Short: "Revoke an access or refresh token (RFC 7009, public API, as its client)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cred.id == "" {
				return fmt.Errorf("--client-id is required")
			}
			body, auth := cred.form(url.Values{"token": {args[0]}})
			if err := r.do(cmd.Context(), "POST", "/oauth2/revoke", strings.NewReader(body), "application/x-www-form-urlencoded", nil, auth); err != nil {
				return err
			}
			return r.print(cmd, map[string]bool{"revoked": true}, table{head: []string{"REVOKED"}, rows: [][]string{{"true"}}})
		},
	}
	r.addFlags(cmd, true)
	cred.register(cmd)
	return cmd
}
