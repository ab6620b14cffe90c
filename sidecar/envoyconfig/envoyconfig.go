// Package envoyconfig writes the Envoy v3 bootstrap that puts Envoy in
// front of the issuer and gatehouse-sidecar: the oauth2 filter doing the
// browser login against the issuer, then ext_authz (gRPC, fail closed) to
// the sidecar. It is the `gatehouse-sidecar envoy-config` command. The
// templates in envoytmpl/ are the kit's files envoy/envoy.yaml and
// envoy/envoy-api.yaml, comments and all, so that with DefaultOptions the
// command prints them byte for byte; envoy/bootstrap validates them.
package envoyconfig

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"unicode"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Options are the addresses written into the bootstrap.
type Options struct {
	// APIOnly leaves out the oauth2 filter: every request needs a bearer
	// token (envoy/envoy-api.yaml).
	APIOnly bool
	// Listen and Admin are Envoy's own listeners (IP:port).
	Listen, Admin string
	// Issuer is the issuer URL browsers reach (URLS_SELF_ISSUER): the
	// authorization and end-session endpoints hang off it.
	Issuer string
	// TokenEndpoint is where Envoy redeems codes; default Issuer +
	// /oauth2/token. Its host and port make the gatehouse_public cluster
	// (TLS when https).
	TokenEndpoint string
	// Sidecar (gRPC ext_authz), App and API are host:port.
	Sidecar, App, API string
	ClientID          string
	SecretsDir        string
	Scopes            []string
}

// DefaultOptions are the demo's loopback addresses, with which Render
// gives envoy/envoy.yaml (apiOnly: envoy/envoy-api.yaml).
func DefaultOptions(apiOnly bool) Options {
	o := Options{APIOnly: apiOnly, Listen: "127.0.0.1:10000", Admin: "127.0.0.1:9901",
		Issuer: "http://127.0.0.1:4444", Sidecar: "127.0.0.1:9191", App: "127.0.0.1:8081", API: "127.0.0.1:8082",
		ClientID: "envoy", SecretsDir: "/etc/envoy/secrets", Scopes: []string{"openid", "offline_access", "profile", "email"}}
	if apiOnly {
		o.Listen, o.Admin = "127.0.0.1:10001", "127.0.0.1:9902"
	}
	return o
}

// NewCommand is the envoy-config command: it prints Render's output for
// the addresses given as flags.
func NewCommand() *cobra.Command {
	var apiOnly bool
	o := DefaultOptions(false)
	cmd := &cobra.Command{
		Use:   "envoy-config",
		Short: "Print an Envoy v3 bootstrap for the issuer and gatehouse-sidecar (oauth2 login + ext_authz)",
		Long: `Print an Envoy v3 bootstrap: the oauth2 filter doing the browser login against the
issuer, then ext_authz (gRPC, fail closed) to gatehouse-sidecar, with a
public route, a JSON API route and a browser app route; --api-only prints the
variant without the oauth2 filter. With the defaults the output is
envoy/envoy.yaml (or envoy/envoy-api.yaml) byte for byte, the files the
repository validates with go-control-plane; see docs/gateways/envoy.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if apiOnly {
				d := DefaultOptions(true)
				if !cmd.Flags().Changed("listen") {
					o.Listen = d.Listen
				}
				if !cmd.Flags().Changed("admin-listen") {
					o.Admin = d.Admin
				}
			}
			o.APIOnly = apiOnly
			b, err := Render(o)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&apiOnly, "api-only", false, "no browser login: every request needs a bearer token (listener 127.0.0.1:10001, admin 127.0.0.1:9902 by default)")
	fs.StringVar(&o.Listen, "listen", o.Listen, "Envoy's listener, IP:port")
	fs.StringVar(&o.Admin, "admin-listen", o.Admin, "Envoy's admin interface, IP:port")
	fs.StringVar(&o.Issuer, "issuer", o.Issuer, "the issuer URL browsers reach (URLS_SELF_ISSUER)")
	fs.StringVar(&o.TokenEndpoint, "token-endpoint", "", "where Envoy redeems codes (default <issuer>/oauth2/token), e.g. http://gatehouse:4444/oauth2/token on a private network")
	fs.StringVar(&o.Sidecar, "sidecar", o.Sidecar, "gatehouse-sidecar's gRPC address, host:port")
	fs.StringVar(&o.App, "app", o.App, "the browser app upstream, host:port")
	fs.StringVar(&o.API, "api", o.API, "the JSON API upstream, host:port")
	fs.StringVar(&o.ClientID, "client-id", o.ClientID, "the issuer client of the oauth2 filter")
	fs.StringVar(&o.SecretsDir, "secrets-dir", o.SecretsDir, "directory of the SDS files token-secret.yaml and hmac-secret.yaml")
	fs.StringSliceVar(&o.Scopes, "scope", o.Scopes, "scopes the oauth2 filter requests")
	return cmd
}

// endpoint is a parsed host:port for a cluster or listener.
type endpoint struct {
	host string
	port int
}

func (e endpoint) String() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// hostRe is what a cluster or listener host may be: an IP address or a DNS
// name (the YAML is written with it unquoted).
var hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

func parseHostPort(what, s string, needIP bool) (endpoint, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return endpoint{}, fmt.Errorf("%s %q: want host:port", what, s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return endpoint{}, fmt.Errorf("%s %q: bad port", what, s)
	}
	if needIP && net.ParseIP(h) == nil {
		return endpoint{}, fmt.Errorf("%s %q: Envoy listens on an IP address, not a name", what, s)
	}
	if net.ParseIP(h) == nil && !hostRe.MatchString(h) {
		return endpoint{}, fmt.Errorf("%s %q: not an IP address or a DNS name", what, s)
	}
	return endpoint{host: h, port: port}, nil
}

// The templates are the kit's files, comments and all.
var (
	//go:embed envoytmpl/envoy.yaml.tmpl envoytmpl/envoy-api.yaml.tmpl
	envoyTemplateFS embed.FS
	envoyTemplates  = template.Must(template.New("").Funcs(template.FuncMap{
		"plain":    func(s string) string { return yamlScalar(s, false) },
		"flow":     func(s string) string { return yamlScalar(s, true) },
		"flowList": func(l []string) string { return yamlFlowList(l) },
		"sock": func(e endpoint) string {
			return "{address: " + yamlScalar(e.host, true) + ", port_value: " + strconv.Itoa(e.port) + "}"
		},
		// A name is resolved by DNS; an IP address is STATIC.
		"clusterType": func(e endpoint) string {
			if net.ParseIP(e.host) == nil {
				return "STRICT_DNS"
			}
			return "STATIC"
		},
	}).ParseFS(envoyTemplateFS, "envoytmpl/*.tmpl"))
)

// plainRe is what may stay an unquoted YAML scalar here; in a flow
// collection ({...}, [...]) a colon is quoted too.
var (
	plainRe     = regexp.MustCompile(`^[A-Za-z0-9_./%@+~=-][A-Za-z0-9_./:%@+~=-]*$`)
	plainFlowRe = regexp.MustCompile(`^[A-Za-z0-9_./%@+~=-][A-Za-z0-9_./%@+~=-]*$`)
)

// yamlScalar writes s as a YAML string: plain when that reads back as the
// same string, else double-quoted (a JSON string is one).
func yamlScalar(s string, flow bool) string {
	re := plainRe
	if flow {
		re = plainFlowRe
	}
	var v any
	if re.MatchString(s) && yaml.Unmarshal([]byte(s), &v) == nil && v == s {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func yamlFlowList(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = yamlScalar(s, true)
	}
	return strings.Join(out, ", ")
}

// envoyData is what the templates fill in.
type envoyData struct {
	Listen, Admin, Sidecar, App, API                      string
	ListenEP, AdminEP, SidecarEP, AppEP, APIEP            endpoint
	PublicEP                                              endpoint
	PublicHostPort, PublicSNI                             string
	PublicTLS                                             bool
	TokenURI, AuthURI, EndSessionURI                      string
	ClientID, SecretsDir, TokenSecretPath, HMACSecretPath string
	Scopes                                                []string
	ScopeList                                             string
}

// Render returns the bootstrap as YAML.
func Render(o Options) ([]byte, error) {
	var d envoyData
	var err error
	if d.ListenEP, err = parseHostPort("--listen", o.Listen, true); err != nil {
		return nil, err
	}
	if d.AdminEP, err = parseHostPort("--admin-listen", o.Admin, true); err != nil {
		return nil, err
	}
	if d.SidecarEP, err = parseHostPort("--sidecar", o.Sidecar, false); err != nil {
		return nil, err
	}
	if d.APIEP, err = parseHostPort("--api", o.API, false); err != nil {
		return nil, err
	}
	d.Listen, d.Admin, d.Sidecar, d.API = d.ListenEP.String(), d.AdminEP.String(), d.SidecarEP.String(), d.APIEP.String()
	name := "envoy-api.yaml.tmpl"
	if !o.APIOnly {
		name = "envoy.yaml.tmpl"
		if d.AppEP, err = parseHostPort("--app", o.App, false); err != nil {
			return nil, err
		}
		d.App = d.AppEP.String()
		iss, err := url.Parse(strings.TrimRight(o.Issuer, "/"))
		if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" {
			return nil, fmt.Errorf("--issuer %q: want an absolute http(s) URL without query or fragment", o.Issuer)
		}
		issuer := iss.String()
		d.AuthURI, d.EndSessionURI = issuer+"/oauth2/auth", issuer+"/oauth2/sessions/logout"
		d.TokenURI = o.TokenEndpoint
		if d.TokenURI == "" {
			d.TokenURI = issuer + "/oauth2/token"
		}
		tu, err := url.Parse(d.TokenURI)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Hostname() == "" {
			return nil, fmt.Errorf("--token-endpoint %q: want an absolute http(s) URL", d.TokenURI)
		}
		port := tu.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[tu.Scheme]
		}
		if d.PublicEP, err = parseHostPort("--token-endpoint", net.JoinHostPort(tu.Hostname(), port), false); err != nil {
			return nil, err
		}
		d.PublicHostPort = d.PublicEP.String()
		d.PublicTLS, d.PublicSNI = tu.Scheme == "https", tu.Hostname()
		// They are also written into comments: one line each.
		for flag, v := range map[string]string{"--client-id": o.ClientID, "--scope": strings.Join(o.Scopes, ","), "--secrets-dir": o.SecretsDir} {
			if strings.ContainsFunc(v, unicode.IsControl) {
				return nil, fmt.Errorf("%s %q: control characters", flag, v)
			}
		}
		d.ClientID, d.Scopes, d.ScopeList = o.ClientID, o.Scopes, strings.Join(o.Scopes, ",")
		d.SecretsDir = strings.TrimRight(o.SecretsDir, "/")
		d.TokenSecretPath, d.HMACSecretPath = d.SecretsDir+"/token-secret.yaml", d.SecretsDir+"/hmac-secret.yaml"
	}
	var b bytes.Buffer
	if err := envoyTemplates.ExecuteTemplate(&b, name, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
