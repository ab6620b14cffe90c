package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// envoyOptions are the addresses `gatehouse envoy-config` writes into an
// Envoy v3 bootstrap. The defaults give exactly envoy/envoy.yaml (and, with
// APIOnly, envoy/envoy-api.yaml), which envoy/envoy_test.go validates with
// go-control-plane; envoy_config_test.go checks both equalities and
// validates other addresses the same way.
type envoyOptions struct {
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

func defaultEnvoyOptions(apiOnly bool) envoyOptions {
	o := envoyOptions{APIOnly: apiOnly, Listen: "127.0.0.1:10000", Admin: "127.0.0.1:9901",
		Issuer: "http://127.0.0.1:4444", Sidecar: "127.0.0.1:9191", App: "127.0.0.1:8081", API: "127.0.0.1:8082",
		ClientID: "envoy", SecretsDir: "/etc/envoy/secrets", Scopes: []string{"openid", "offline_access", "profile", "email"}}
	if apiOnly {
		o.Listen, o.Admin = "127.0.0.1:10001", "127.0.0.1:9902"
	}
	return o
}

func newEnvoyConfigCmd() *cobra.Command {
	var apiOnly bool
	o := defaultEnvoyOptions(false)
	cmd := &cobra.Command{
		Use:   "envoy-config",
		Short: "Print an Envoy v3 bootstrap for this issuer and gatehouse-sidecar (oauth2 login + ext_authz)",
		Long: `Print an Envoy v3 bootstrap: the oauth2 filter doing the browser login against the
issuer, then ext_authz (gRPC, fail closed) to gatehouse-sidecar, with a
public route, a JSON API route and a browser app route; --api-only prints the
variant without the oauth2 filter. With the defaults the output is
envoy/envoy.yaml (or envoy/envoy-api.yaml), the files the repository
validates with go-control-plane; see docs/gateways/envoy.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if apiOnly {
				d := defaultEnvoyOptions(true)
				if !cmd.Flags().Changed("listen") {
					o.Listen = d.Listen
				}
				if !cmd.Flags().Changed("admin-listen") {
					o.Admin = d.Admin
				}
			}
			o.APIOnly = apiOnly
			b, err := renderEnvoyConfig(o)
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

type (
	obj = map[string]any
	arr = []any
)

// endpoint is a parsed host:port for a cluster or listener.
type endpoint struct {
	host string
	port int
}

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
	return endpoint{host: h, port: port}, nil
}

func socketAddress(e endpoint) obj {
	return obj{"socket_address": obj{"address": e.host, "port_value": e.port}}
}

// cluster is a cluster with one endpoint: STATIC for an IP, STRICT_DNS for
// a name.
func cluster(name, timeout string, e endpoint) obj {
	typ := "STATIC"
	if net.ParseIP(e.host) == nil {
		typ = "STRICT_DNS"
	}
	return obj{"name": name, "type": typ, "connect_timeout": timeout,
		"load_assignment": obj{"cluster_name": name, "endpoints": arr{
			obj{"lb_endpoints": arr{obj{"endpoint": obj{"address": socketAddress(e)}}}},
		}}}
}

func typed(t string, fields obj) obj {
	out := obj{"@type": "type.googleapis.com/" + t}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

func disabledPerRoute(filters ...string) obj {
	out := obj{}
	for _, f := range filters {
		switch f {
		case "envoy.filters.http.oauth2":
			out[f] = typed("envoy.config.route.v3.FilterConfig", obj{"disabled": true})
		case "envoy.filters.http.ext_authz":
			out[f] = typed("envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute", obj{"disabled": true})
		}
	}
	return out
}

// renderEnvoyConfig returns the bootstrap as YAML.
func renderEnvoyConfig(o envoyOptions) ([]byte, error) {
	listen, err := parseHostPort("--listen", o.Listen, true)
	if err != nil {
		return nil, err
	}
	adm, err := parseHostPort("--admin-listen", o.Admin, true)
	if err != nil {
		return nil, err
	}
	side, err := parseHostPort("--sidecar", o.Sidecar, false)
	if err != nil {
		return nil, err
	}
	api, err := parseHostPort("--api", o.API, false)
	if err != nil {
		return nil, err
	}
	sideCluster := cluster("gatehouse_sidecar", "1s", side)
	// ext_authz is gRPC: HTTP/2 to the sidecar.
	sideCluster["typed_extension_protocol_options"] = obj{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
			obj{"explicit_http_config": obj{"http2_protocol_options": obj{}}}),
	}
	extAuthz := obj{"name": "envoy.filters.http.ext_authz", "typed_config": typed("envoy.extensions.filters.http.ext_authz.v3.ExtAuthz", obj{
		"transport_api_version": "V3",
		// Fail closed: no decision, no request.
		"failure_mode_allow": false,
		"status_on_error":    obj{"code": "ServiceUnavailable"},
		"grpc_service":       obj{"envoy_grpc": obj{"cluster_name": "gatehouse_sidecar"}, "timeout": "1s"},
	})}
	router := obj{"name": "envoy.filters.http.router", "typed_config": typed("envoy.extensions.filters.http.router.v3.Router", nil)}
	hcm := obj{"stat_prefix": "api", "codec_type": "AUTO", "use_remote_address": true}
	listenerName := "api"
	var clusters arr

	if o.APIOnly {
		hcm["route_config"] = obj{"name": "api", "virtual_hosts": arr{obj{"name": "api", "domains": arr{"*"}, "routes": arr{
			obj{"match": obj{"path": "/healthz"}, "direct_response": obj{"status": 200, "body": obj{"inline_string": "ok\n"}},
				"typed_per_filter_config": disabledPerRoute("envoy.filters.http.ext_authz")},
			obj{"match": obj{"prefix": "/"}, "route": obj{"cluster": "api", "timeout": "15s"}},
		}}}}
		hcm["http_filters"] = arr{extAuthz, router}
		clusters = arr{sideCluster, cluster("api", "2s", api)}
	} else {
		app, err := parseHostPort("--app", o.App, false)
		if err != nil {
			return nil, err
		}
		iss, err := url.Parse(strings.TrimRight(o.Issuer, "/"))
		if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" {
			return nil, fmt.Errorf("--issuer %q: want an absolute http(s) URL without query or fragment", o.Issuer)
		}
		issuer := iss.String()
		token := o.TokenEndpoint
		if token == "" {
			token = issuer + "/oauth2/token"
		}
		tu, err := url.Parse(token)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Hostname() == "" {
			return nil, fmt.Errorf("--token-endpoint %q: want an absolute http(s) URL", token)
		}
		port := tu.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[tu.Scheme]
		}
		pub, err := parseHostPort("--token-endpoint", net.JoinHostPort(tu.Hostname(), port), false)
		if err != nil {
			return nil, err
		}
		pubCluster := cluster("gatehouse_public", "2s", pub)
		if tu.Scheme == "https" {
			pubCluster["transport_socket"] = obj{"name": "envoy.transport_sockets.tls", "typed_config": typed(
				"envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", obj{"sni": tu.Hostname()})}
		}
		sideCluster["health_checks"] = arr{obj{"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2,
			"healthy_threshold": 1, "grpc_health_check": obj{}}}
		scopes := arr{}
		for _, s := range o.Scopes {
			scopes = append(scopes, s)
		}
		secrets := strings.TrimRight(o.SecretsDir, "/")
		oauth2 := obj{"name": "envoy.filters.http.oauth2", "typed_config": typed("envoy.extensions.filters.http.oauth2.v3.OAuth2", obj{
			"config": obj{
				"token_endpoint":         obj{"cluster": "gatehouse_public", "uri": token, "timeout": "5s"},
				"authorization_endpoint": issuer + "/oauth2/auth",
				"end_session_endpoint":   issuer + "/oauth2/sessions/logout",
				"redirect_uri":           "%REQ(x-forwarded-proto)%://%REQ(:authority)%/oauth2/callback",
				"redirect_path_matcher":  obj{"path": obj{"exact": "/oauth2/callback"}},
				"signout_path":           obj{"path": obj{"exact": "/signout"}},
				"credentials": obj{
					"client_id": o.ClientID,
					"token_secret": obj{"name": "gatehouse-client-secret",
						"sds_config": obj{"path_config_source": obj{"path": secrets + "/token-secret.yaml"}}},
					"hmac_secret": obj{"name": "oauth2-hmac",
						"sds_config": obj{"path_config_source": obj{"path": secrets + "/hmac-secret.yaml"}}},
				},
				"auth_type":            "BASIC_AUTH",
				"auth_scopes":          scopes,
				"use_refresh_token":    true,
				"forward_bearer_token": true,
				"pass_through_matcher": arr{obj{"name": "authorization", "string_match": obj{"prefix": "Bearer "}}},
			},
		})}
		listenerName = "ingress"
		hcm["stat_prefix"] = "ingress"
		hcm["access_log"] = arr{obj{"name": "envoy.access_loggers.stdout",
			"typed_config": typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", nil)}}
		hcm["route_config"] = obj{"name": "routes", "virtual_hosts": arr{obj{"name": "gateway", "domains": arr{"*"}, "routes": arr{
			obj{"match": obj{"prefix": "/public/"}, "route": obj{"cluster": "app"},
				"typed_per_filter_config": disabledPerRoute("envoy.filters.http.oauth2", "envoy.filters.http.ext_authz")},
			obj{"match": obj{"prefix": "/api/"}, "route": obj{"cluster": "api", "timeout": "15s"},
				"typed_per_filter_config": disabledPerRoute("envoy.filters.http.oauth2")},
			obj{"match": obj{"prefix": "/"}, "route": obj{"cluster": "app", "timeout": "15s"}},
		}}}}
		hcm["http_filters"] = arr{oauth2, extAuthz, router}
		clusters = arr{pubCluster, sideCluster, cluster("app", "2s", app), cluster("api", "2s", api)}
	}

	bootstrap := obj{
		"admin": obj{"address": socketAddress(adm)},
		"static_resources": obj{
			"listeners": arr{obj{"name": listenerName, "address": socketAddress(listen), "filter_chains": arr{obj{"filters": arr{
				obj{"name": "envoy.filters.network.http_connection_manager",
					"typed_config": typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", hcm)},
			}}}}},
			"clusters": clusters,
		},
	}
	body, err := yaml.Marshal(bootstrap)
	if err != nil {
		return nil, err
	}
	head := "# Envoy v3 bootstrap generated by `gatehouse envoy-config`"
	if o.APIOnly {
		head += " --api-only"
	}
	head += ".\n# See docs/gateways/envoy.md. Validate edits with go-control-plane (envoy/envoy_test.go).\n"
	return append([]byte(head), body...), nil
}
