package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// clientFlags are the client metadata flags of create/update client (and
// of the v1 alias `clients create`, which names some of them differently).
type clientFlags struct {
	file                   string
	id, secret, name       string
	owner                  string
	grantTypes             []string
	responseTypes          []string
	scope                  []string
	audience               []string
	defaultAudience        []string
	redirectURIs           []string
	postLogoutRedirectURIs []string
	authMethod             string
	jwksURI                string
	clientURI, logoURI     string
	policyURI, tosURI      string
	contacts               []string
	corsOrigins            []string
	subjectType            string
	frontchannel           string
	backchannel            string
	skipConsent            bool
	skipLogoutConsent      bool
	accessTokenStrategy    string
	metadata               string
}

// flagNames maps a field to its flag name in the v2 and v1 vocabularies.
type flagNames struct{ grant, response, redirect, postLogout string }

var (
	v2Names = flagNames{"grant-type", "response-type", "redirect-uri", "post-logout-callback"}
	v1Names = flagNames{"grant-types", "response-types", "callbacks", "post-logout-callbacks"}
)

func (f *clientFlags) register(fs *pflag.FlagSet, n flagNames) {
	fs.StringVar(&f.file, "file", "", "read the client's JSON from this file (- for stdin); flags override its fields")
	fs.StringVar(&f.id, "id", "", "client ID (generated when empty)")
	fs.StringVar(&f.secret, "secret", "", "client secret (generated when empty, for confidential clients)")
	fs.StringVarP(&f.name, "name", "n", "", "human-readable client name")
	fs.StringVar(&f.owner, "owner", "", "owner of the client")
	fs.StringSliceVarP(&f.grantTypes, n.grant, "g", nil, "grant types, e.g. client_credentials,authorization_code,refresh_token")
	fs.StringSliceVarP(&f.responseTypes, n.response, "r", nil, "response types, e.g. code,id_token")
	fs.StringSliceVarP(&f.scope, "scope", "a", nil, "allowed scopes (comma-separated or repeated)")
	fs.StringSliceVar(&f.audience, "audience", nil, "allowed audiences")
	fs.StringSliceVar(&f.defaultAudience, "default-access-token-audience", nil, "aud of access tokens granted no audience (each in --audience or the global default)")
	fs.StringSliceVarP(&f.redirectURIs, n.redirect, "c", nil, "allowed redirect URIs")
	fs.StringSliceVar(&f.postLogoutRedirectURIs, n.postLogout, nil, "allowed post-logout redirect URIs")
	fs.StringVar(&f.authMethod, "token-endpoint-auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
	fs.StringVar(&f.jwksURI, "jwks-uri", "", "URL of the client's JSON Web Key Set (private_key_jwt)")
	fs.StringVar(&f.clientURI, "client-uri", "", "client home page")
	fs.StringVar(&f.logoURI, "logo-uri", "", "client logo")
	fs.StringVar(&f.policyURI, "policy-uri", "", "privacy policy URL")
	fs.StringVar(&f.tosURI, "tos-uri", "", "terms of service URL")
	fs.StringSliceVar(&f.contacts, "contact", nil, "contact e-mail addresses")
	fs.StringSliceVar(&f.corsOrigins, "allowed-cors-origin", nil, "origins allowed to call the token endpoint from a browser")
	fs.StringVar(&f.subjectType, "subject-type", "", "public or pairwise")
	fs.StringVar(&f.frontchannel, "frontchannel-logout-callback", "", "front-channel logout URI")
	fs.StringVar(&f.backchannel, "backchannel-logout-callback", "", "back-channel logout URI")
	fs.BoolVar(&f.skipConsent, "skip-consent", false, "skip the consent screen for this (first-party) client")
	fs.BoolVar(&f.skipLogoutConsent, "skip-logout-consent", false, "skip the logout confirmation for this client")
	fs.StringVar(&f.accessTokenStrategy, "access-token-strategy", "", "opaque or jwt (default: the server's strategies.access_token)")
	fs.StringVar(&f.metadata, "metadata", "", "free JSON object stored with the client")
}

// apply copies the flags that were set onto c.
func (f *clientFlags) apply(fs *pflag.FlagSet, n flagNames, c *client.Client) error {
	set := func(name string) bool { return fs.Changed(name) }
	if f.file != "" {
		var b []byte
		var err error
		if f.file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(f.file)
		}
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		if err := json.Unmarshal(b, c); err != nil {
			return fmt.Errorf("--file: not a client JSON document: %v", err)
		}
	}
	str := func(name string, dst *string, v string) {
		if set(name) {
			*dst = v
		}
	}
	list := func(name string, dst *[]string, v []string) {
		if set(name) {
			*dst = v
		}
	}
	str("id", &c.ID, f.id)
	str("secret", &c.Secret, f.secret)
	str("name", &c.Name, f.name)
	str("owner", &c.Owner, f.owner)
	list(n.grant, &c.GrantTypes, f.grantTypes)
	list(n.response, &c.ResponseTypes, f.responseTypes)
	if set("scope") {
		c.Scope = strings.Join(f.scope, " ")
	}
	list("audience", &c.Audience, f.audience)
	list("default-access-token-audience", &c.DefaultAccessTokenAudience, f.defaultAudience)
	list(n.redirect, &c.RedirectURIs, f.redirectURIs)
	list(n.postLogout, &c.PostLogoutRedirectURIs, f.postLogoutRedirectURIs)
	str("token-endpoint-auth-method", &c.TokenEndpointAuthMethod, f.authMethod)
	str("jwks-uri", &c.JWKSURI, f.jwksURI)
	str("client-uri", &c.ClientURI, f.clientURI)
	str("logo-uri", &c.LogoURI, f.logoURI)
	str("policy-uri", &c.PolicyURI, f.policyURI)
	str("tos-uri", &c.TOSURI, f.tosURI)
	list("contact", &c.Contacts, f.contacts)
	list("allowed-cors-origin", &c.AllowedCORSOrigins, f.corsOrigins)
	str("subject-type", &c.SubjectType, f.subjectType)
	str("frontchannel-logout-callback", &c.FrontchannelLogoutURI, f.frontchannel)
	str("backchannel-logout-callback", &c.BackchannelLogoutURI, f.backchannel)
	if set("skip-consent") {
		c.SkipConsent = f.skipConsent
	}
	if set("skip-logout-consent") {
		c.SkipLogoutConsent = f.skipLogoutConsent
	}
	str("access-token-strategy", &c.AccessTokenStrategy, f.accessTokenStrategy)
	if set("metadata") {
		if !json.Valid([]byte(f.metadata)) {
			return fmt.Errorf("--metadata must be a JSON object")
		}
		c.Metadata = json.RawMessage(f.metadata)
	}
	return nil
}

func clientTable(cs ...*client.Client) table {
	t := table{head: []string{"CLIENT ID", "CLIENT SECRET", "GRANT TYPES", "RESPONSE TYPES", "SCOPE", "AUDIENCE", "REDIRECT URIS"}, vertical: len(cs) == 1}
	for _, c := range cs {
		t.rows = append(t.rows, []string{c.ID, c.Secret, strings.Join(c.GrantTypes, ", "), strings.Join(c.ResponseTypes, ", "),
			c.Scope, strings.Join(c.Audience, ", "), strings.Join(c.RedirectURIs, ", ")})
	}
	return t
}

func newCreateClientCmd() *cobra.Command { return createClientCmd("client", v2Names) }

func createClientCmd(use string, n flagNames) *cobra.Command {
	var r remote
	var f clientFlags
	cmd := &cobra.Command{
		Use:     use,
		Aliases: []string{"clients"},
		Short:   "Create an OAuth2 client (the secret is shown once)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &client.Client{}
			if err := f.apply(cmd.Flags(), n, c); err != nil {
				return err
			}
			var out client.Client
			if err := r.doJSON(cmd.Context(), "POST", "/admin/clients", c, &out); err != nil {
				return err
			}
			return r.print(cmd, &out, clientTable(&out))
		},
	}
	r.addFlags(cmd, false)
	f.register(cmd.Flags(), n)
	return cmd
}

func newGetClientCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:     "client ID [ID...]",
		Aliases: []string{"clients"},
		Short:   "Get OAuth2 clients",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cs []*client.Client
			for _, id := range args {
				var c client.Client
				if err := r.doJSON(cmd.Context(), "GET", "/admin/clients/"+url.PathEscape(id), nil, &c); err != nil {
					return err
				}
				cs = append(cs, &c)
			}
			var v any = cs
			if len(cs) == 1 {
				v = cs[0]
			}
			return r.print(cmd, v, clientTable(cs...))
		},
	}
	r.addFlags(cmd, false)
	return cmd
}

// clientPage is one page of `list clients --format json`, in the shape
// Hydra v2's CLI prints: the clients and the token of the next page.
type clientPage struct {
	Items         []*client.Client `json:"items"`
	NextPageToken string           `json:"next_page_token"`
	IsLastPage    bool             `json:"is_last_page"`
}

// nextPageToken returns the page_token of the rel="next" link of a Link
// header (RFC 8288), or "" on the last page.
func nextPageToken(link string) string {
	for _, l := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		return u.Query().Get("page_token")
	}
	return ""
}

func newListClientsCmd() *cobra.Command {
	var r remote
	var pageSize int
	var pageToken, name, owner string
	cmd := &cobra.Command{
		Use:     "clients",
		Aliases: []string{"client"},
		Short:   "List OAuth2 clients, one page at a time",
		Long: `List OAuth2 clients, one page at a time. After the table comes the line
NEXT PAGE TOKEN <token> when there are more; pass the token to --page-token for
the next page. With --format json the answer is {"items": [...],
"next_page_token": "...", "is_last_page": ...}, as Hydra v2's CLI prints it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			q.Set("page_size", fmt.Sprint(pageSize))
			if pageToken != "" {
				q.Set("page_token", pageToken)
			}
			if name != "" {
				q.Set("client_name", name)
			}
			if owner != "" {
				q.Set("owner", owner)
			}
			page := clientPage{Items: []*client.Client{}}
			h, err := r.send(cmd.Context(), "GET", "/admin/clients?"+q.Encode(), nil, "", &page.Items, nil)
			if err != nil {
				return err
			}
			page.NextPageToken = nextPageToken(h.Get("Link"))
			page.IsLastPage = page.NextPageToken == ""
			t := clientTable(page.Items...)
			t.vertical = false
			if err := r.print(cmd, &page, t); err != nil {
				return err
			}
			if r.isTable() && !page.IsLastPage {
				fmt.Fprintf(cmd.OutOrStdout(), "\nNEXT PAGE TOKEN  %s\n", page.NextPageToken)
			}
			return nil
		},
	}
	r.addFlags(cmd, false)
	cmd.Flags().IntVar(&pageSize, "page-size", 100, "clients per page (at most 500)")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the NEXT PAGE TOKEN of the previous page")
	cmd.Flags().StringVar(&name, "client-name", "", "only clients with this name")
	cmd.Flags().StringVar(&owner, "owner", "", "only clients of this owner")
	return cmd
}

func newUpdateClientCmd() *cobra.Command { return updateClientCmd("client ID", v2Names) }

// updateClientCmd replaces a client with the one the flags describe (a PUT
// of the whole client), as Hydra's update does: fields not given get their
// defaults; only the secret is kept when --secret is not given.
func updateClientCmd(use string, n flagNames) *cobra.Command {
	var r remote
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: "Replace an OAuth2 client with the one the flags describe (fields not given are reset to their defaults)",
		Long: `Replace an OAuth2 client by its ID, as Hydra's update does: the client
becomes exactly what the flags (and --file) describe, and every field not
given is reset to its default (grant type authorization_code, response type
code, no scope, no redirect URIs, ...). The secret is kept unless --secret
is given. To change one field, start from the current client:

  gatehouse get client ID --format json > c.json   # edit c.json
  gatehouse update client ID --file c.json

or send a JSON Patch to PATCH /admin/clients/ID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &client.Client{}
			if err := f.apply(cmd.Flags(), n, c); err != nil {
				return err
			}
			if c.ID != "" && c.ID != args[0] {
				return fmt.Errorf("--id %q (or the file's client_id) differs from the client to update, %q", c.ID, args[0])
			}
			c.ID = args[0]
			var out client.Client
			if err := r.doJSON(cmd.Context(), "PUT", "/admin/clients/"+url.PathEscape(args[0]), c, &out); err != nil {
				return err
			}
			return r.print(cmd, &out, clientTable(&out))
		},
	}
	r.addFlags(cmd, false)
	f.register(cmd.Flags(), n)
	return cmd
}

func newDeleteClientCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:     "client ID [ID...]",
		Aliases: []string{"clients"},
		Short:   "Delete OAuth2 clients",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, id := range args {
				if err := r.doJSON(cmd.Context(), "DELETE", "/admin/clients/"+url.PathEscape(id), nil, nil); err != nil {
					return err
				}
			}
			return r.print(cmd, args, table{head: []string{"DELETED CLIENT ID"}, rows: rowsOf(args)})
		},
	}
	r.addFlags(cmd, false)
	return cmd
}

func rowsOf(vals []string) [][]string {
	rows := make([][]string, len(vals))
	for i, v := range vals {
		rows[i] = []string{v}
	}
	return rows
}
