package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The admin CLI speaks HTTP to a running issuer, as Hydra's does: the
// admin verbs to the admin API (--endpoint or HYDRA_ADMIN_URL), the OAuth2
// verbs to the public API (--endpoint or HYDRA_PUBLIC_URL).

const (
	defaultAdminURL  = "http://127.0.0.1:4445"
	defaultPublicURL = "http://127.0.0.1:4444"
)

// remote holds the flags every HTTP verb takes.
type remote struct {
	endpoint      string
	skipTLSVerify bool
	format        string
	public        bool // talks to the public API
}

func (r *remote) addFlags(cmd *cobra.Command, public bool) {
	r.public = public
	env, def := "HYDRA_ADMIN_URL", defaultAdminURL
	if public {
		env, def = "HYDRA_PUBLIC_URL", defaultPublicURL
	}
	cmd.Flags().StringVarP(&r.endpoint, "endpoint", "e", "", fmt.Sprintf("the API URL (default $%s or %s)", env, def))
	cmd.Flags().BoolVar(&r.skipTLSVerify, "skip-tls-verify", false, "do not verify the server's TLS certificate (testing only)")
	cmd.Flags().StringVar(&r.format, "format", "table", "output format: table, json or json-pretty")
}

func (r *remote) baseURL() (string, error) {
	env, def := "HYDRA_ADMIN_URL", defaultAdminURL
	if r.public {
		env, def = "HYDRA_PUBLIC_URL", defaultPublicURL
	}
	u := r.endpoint
	if u == "" {
		u = os.Getenv(env)
	}
	if u == "" {
		u = def
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("--endpoint %q is not an http(s) URL", u)
	}
	return strings.TrimRight(u, "/"), nil
}

func (r *remote) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.skipTLSVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicitly asked for
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// apiError is the issuer's JSON error body.
type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// do sends a request and decodes a JSON answer into out (unless nil). A
// non-2xx answer becomes a one-line error.
func (r *remote) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any, auth func(*http.Request)) error {
	_, err := r.send(ctx, method, path, body, contentType, out, auth)
	return err
}

// send is do that also returns the answer's headers (for Link).
func (r *remote) send(ctx context.Context, method, path string, body io.Reader, contentType string, out any, auth func(*http.Request)) (http.Header, error) {
	base, err := r.baseURL()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not reach %s: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			if e.Description != "" {
				return nil, fmt.Errorf("%s %s failed (HTTP %d): %s: %s", method, path, resp.StatusCode, e.Error, e.Description)
			}
			return nil, fmt.Errorf("%s %s failed (HTTP %d): %s", method, path, resp.StatusCode, e.Error)
		}
		return nil, fmt.Errorf("%s %s failed (HTTP %d)", method, path, resp.StatusCode)
	}
	if out != nil && len(b) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], b...)
			return resp.Header, nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("unexpected answer from %s: %v", path, err)
		}
	}
	return resp.Header, nil
}

func (r *remote) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return r.do(ctx, method, path, body, ct, out, nil)
}

// table is what a command prints in table format: a header and rows, or,
// for one record, one "FIELD  value" line per field as Hydra prints it.
type table struct {
	head     []string
	rows     [][]string
	vertical bool
}

// isTable reports whether the output format is the table.
func (r *remote) isTable() bool { return r.format == "table" || r.format == "" }

// print writes v as JSON, or t as a table.
func (r *remote) print(cmd *cobra.Command, v any, t table) error {
	out := cmd.OutOrStdout()
	switch r.format {
	case "json", "json-pretty":
		var b []byte
		var err error
		if raw, ok := v.(json.RawMessage); ok && r.format == "json" {
			b = raw
		} else if r.format == "json" {
			b, err = json.Marshal(v)
		} else {
			b, err = json.MarshalIndent(v, "", "  ")
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(out, strings.TrimSpace(string(b)))
		return nil
	case "table", "":
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		if t.vertical && len(t.rows) == 1 {
			for i, h := range t.head {
				fmt.Fprintf(w, "%s\t%s\n", h, t.rows[0][i])
			}
			return w.Flush()
		}
		fmt.Fprintln(w, strings.Join(t.head, "\t"))
		for _, row := range t.rows {
			fmt.Fprintln(w, strings.Join(row, "\t"))
		}
		return w.Flush()
	default:
		return fmt.Errorf("--format must be table, json or json-pretty, got %q", r.format)
	}
}

func addAdminCommands(root *cobra.Command) {
	create := &cobra.Command{Use: "create", Short: "Create resources (client, jwks)"}
	get := &cobra.Command{Use: "get", Short: "Get resources (client, jwks)"}
	list := &cobra.Command{Use: "list", Short: "List resources (clients)"}
	update := &cobra.Command{Use: "update", Short: "Update resources (client)"}
	del := &cobra.Command{Use: "delete", Short: "Delete resources (client, jwks)"}
	perform := &cobra.Command{Use: "perform", Short: "Perform OAuth2 flows (client-credentials, authorization-code, device-code, token-exchange)"}
	introspect := &cobra.Command{Use: "introspect", Short: "Introspect tokens"}
	revoke := &cobra.Command{Use: "revoke", Short: "Revoke tokens"}

	create.AddCommand(newCreateClientCmd(), newCreateJWKSCmd())
	get.AddCommand(newGetClientCmd(), newGetJWKSCmd())
	list.AddCommand(newListClientsCmd())
	update.AddCommand(newUpdateClientCmd())
	del.AddCommand(newDeleteClientCmd(), newDeleteJWKSCmd())
	perform.AddCommand(newClientCredentialsCmd())
	perform.AddCommand(newAuthorizationCodeCmd())
	perform.AddCommand(newDeviceCodeCmd())
	perform.AddCommand(newTokenExchangeCmd())
	introspect.AddCommand(newIntrospectCmd())
	revoke.AddCommand(newRevokeCmd())
	root.AddCommand(create, get, list, update, del, perform, introspect, revoke, newJanitorCmd())
	addV1Aliases(root)
}
