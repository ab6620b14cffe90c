// Package envoy_test validates every Envoy bootstrap in envoy/ the way
// Envoy would (envoy/bootstrap.Validate, which gatehouse-sidecar
// envoy-config's tests use too), and checks the wiring a config can get
// wrong while still being valid protobuf.
package envoy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	oauth2v3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/envoy/bootstrap"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/sidecar"
)

func readFile(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlToJSON converts a YAML file to JSON for protojson.
func yamlToJSON(t *testing.T, file string) []byte {
	t.Helper()
	j, err := bootstrap.YAMLToJSON(readFile(t, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return j
}

// loadBootstrap fails the test unless Envoy would accept file.
func loadBootstrap(t *testing.T, file string) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := bootstrap.Validate(readFile(t, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return bs
}

func bootstraps(t *testing.T) []string {
	files, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob("*.yml")
	files = append(files, more...)
	if len(files) < 2 {
		t.Fatalf("expected envoy.yaml and envoy-api.yaml, found %v", files)
	}
	return files
}

// TestBootstrapsValidate is the acceptance check: every YAML file here is
// a Bootstrap Envoy would accept.
func TestBootstrapsValidate(t *testing.T) {
	for _, f := range bootstraps(t) {
		t.Run(f, func(t *testing.T) { loadBootstrap(t, f) })
	}
}

// TestValidatorCatchesMistakes: the validation above does fail on
// configs Envoy rejects.
func TestValidatorCatchesMistakes(t *testing.T) {
	good := string(yamlToJSON(t, "envoy-api.yaml"))
	tests := []struct{ name, from, to string }{
		{"unknown typed_config type", "envoy.extensions.filters.http.router.v3.Router", "envoy.extensions.filters.http.nope.v3.Nope"},
		{"invalid value inside an Any", `"transport_api_version":"V3"`, `"transport_api_version":"V4"`},
		{"unknown field", `"stat_prefix":"api"`, `"stat_prefix":"api","no_such_field":1`},
		{"PGV rule inside an Any (empty stat_prefix)", `"stat_prefix":"api"`, `"stat_prefix":""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.from) {
				t.Fatalf("fixture lacks %s", tt.from)
			}
			if _, err := bootstrap.Validate([]byte(strings.Replace(good, tt.from, tt.to, 1))); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// filters returns the listener's HTTP connection manager.
func hcm(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	var m hcmv3.HttpConnectionManager
	if err := bs.StaticResources.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func clusterPort(t *testing.T, bs *bootstrapv3.Bootstrap, name string) uint32 {
	t.Helper()
	for _, c := range bs.StaticResources.Clusters {
		if c.Name == name {
			return c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().GetPortValue()
		}
	}
	t.Fatalf("no cluster %q", name)
	return 0
}

// TestWiring checks what valid protobuf can still get wrong: ext_authz
// fails closed over gRPC v3 to an HTTP/2 sidecar cluster on the port the
// sidecar's config listens on, every route's cluster exists, the public
// route disables the checks, filters are in order, and the oauth2 filter's
// endpoints are the issuer's.
func TestWiring(t *testing.T) {
	side, err := os.ReadFile("sidecar/gatehouse-sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := sidecar.LoadConfig(side, sidecar.Overrides{Issuer: "http://127.0.0.1:4444"})
	if err != nil {
		t.Fatalf("sidecar/gatehouse-sidecar.yaml: %v", err)
	}
	for _, f := range bootstraps(t) {
		t.Run(f, func(t *testing.T) {
			bs := loadBootstrap(t, f)
			m := hcm(t, bs)
			var names []string
			var authz extauthzv3.ExtAuthz
			var oauth *oauth2v3.OAuth2
			for _, hf := range m.HttpFilters {
				names = append(names, hf.Name)
				switch hf.Name {
				case "envoy.filters.http.ext_authz":
					if err := hf.GetTypedConfig().UnmarshalTo(&authz); err != nil {
						t.Fatal(err)
					}
				case "envoy.filters.http.oauth2":
					oauth = &oauth2v3.OAuth2{}
					if err := hf.GetTypedConfig().UnmarshalTo(oauth); err != nil {
						t.Fatal(err)
					}
				}
			}
			if names[len(names)-1] != "envoy.filters.http.router" || !slices.Contains(names, "envoy.filters.http.ext_authz") {
				t.Fatalf("filters %v: ext_authz then router last", names)
			}
			if oauth != nil && slices.Index(names, "envoy.filters.http.oauth2") > slices.Index(names, "envoy.filters.http.ext_authz") {
				t.Fatalf("oauth2 must run before ext_authz: %v", names)
			}
			if !authz.IncludePeerCertificate {
				t.Fatal("ext_authz must send the client certificate (include_peer_certificate) for certificate-bound tokens")
			}
			checkBindingInputs(t, m, &authz)
			if authz.FailureModeAllow || authz.TransportApiVersion.String() != "V3" || authz.GetGrpcService().GetEnvoyGrpc() == nil {
				t.Fatalf("ext_authz must be gRPC V3 and fail closed: %v", &authz)
			}
			sc := authz.GetGrpcService().GetEnvoyGrpc().ClusterName
			if got := fmt.Sprint(clusterPort(t, bs, sc)); !strings.HasSuffix(scfg.Serve.GRPCListen, ":"+got) {
				t.Fatalf("cluster %s port %s, sidecar listens on %s", sc, got, scfg.Serve.GRPCListen)
			}
			for _, c := range bs.StaticResources.Clusters {
				if c.Name != sc {
					continue
				}
				var po upstreamhttpv3.HttpProtocolOptions
				if err := c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil ||
					po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
					t.Fatalf("the sidecar cluster must speak HTTP/2 (gRPC): %v", err)
				}
			}
			var publicDisabled bool
			for _, vh := range m.GetRouteConfig().VirtualHosts {
				for _, r := range vh.Routes {
					if c := r.GetRoute().GetCluster(); c != "" {
						clusterPort(t, bs, c)
					}
					if a, ok := r.TypedPerFilterConfig["envoy.filters.http.ext_authz"]; ok {
						var pr extauthzv3.ExtAuthzPerRoute
						if err := a.UnmarshalTo(&pr); err != nil {
							t.Fatal(err)
						}
						publicDisabled = publicDisabled || pr.GetDisabled()
					}
					if a, ok := r.TypedPerFilterConfig["envoy.filters.http.oauth2"]; ok {
						var fc routev3.FilterConfig
						if err := a.UnmarshalTo(&fc); err != nil || !fc.Disabled {
							t.Fatalf("oauth2 per-route config must be a disabled FilterConfig: %v", err)
						}
					}
				}
			}
			if !publicDisabled {
				t.Fatal("no route disables ext_authz (public path or health check)")
			}
			checkAuthorizationReachesUpstream(t, m.GetRouteConfig())
			if oauth != nil {
				checkOAuth2(t, bs, oauth.Config)
			}
		})
	}
}

// checkAuthorizationReachesUpstream: the sidecar's OK answer sets
// authorization to the route's internal token (docs/sidecar.md, internal
// tokens), and the router applies route and virtual host header changes
// after ext_authz: none of them may set or remove authorization, or the
// upstream would get the caller's token, or none.
func checkAuthorizationReachesUpstream(t *testing.T, rc *routev3.RouteConfiguration) {
	t.Helper()
	touches := func(where string, remove []string, add []*corev3.HeaderValueOption) {
		for _, h := range remove {
			if strings.EqualFold(h, "authorization") {
				t.Errorf("%s removes authorization: the upstream would not get the internal token", where)
			}
		}
		for _, h := range add {
			if strings.EqualFold(h.GetHeader().GetKey(), "authorization") {
				t.Errorf("%s sets authorization over the sidecar's internal token", where)
			}
		}
	}
	touches("route_config", rc.RequestHeadersToRemove, rc.RequestHeadersToAdd)
	for _, vh := range rc.VirtualHosts {
		touches("virtual host "+vh.Name, vh.RequestHeadersToRemove, vh.RequestHeadersToAdd)
		for _, r := range vh.Routes {
			touches("route "+r.GetName()+" "+r.GetMatch().String(), r.RequestHeadersToRemove, r.RequestHeadersToAdd)
		}
	}
}

// checkOAuth2 compares the oauth2 filter with the real issuer's discovery
// document and checks its secrets files.
func checkOAuth2(t *testing.T, bs *bootstrapv3.Bootstrap, c *oauth2v3.OAuth2Config) {
	t.Helper()
	if !c.ForwardBearerToken {
		t.Fatal("forward_bearer_token must be true: ext_authz and the upstream need the token")
	}
	if !slices.Contains(c.AuthScopes, "openid") {
		t.Fatalf("auth_scopes %v lack openid", c.AuthScopes)
	}
	tu, _ := url.Parse(c.TokenEndpoint.Uri)
	if fmt.Sprint(clusterPort(t, bs, c.TokenEndpoint.GetCluster())) != tu.Port() {
		t.Fatalf("token endpoint %s is not on cluster %s", c.TokenEndpoint.Uri, c.TokenEndpoint.GetCluster())
	}
	for _, sds := range []*tlsv3.SdsSecretConfig{c.Credentials.GetTokenSecret(), c.Credentials.GetHmacSecret()} {
		file := filepath.Join("secrets", filepath.Base(sds.GetSdsConfig().GetPathConfigSource().GetPath()))
		var dr discoveryv3.DiscoveryResponse
		if err := protojson.Unmarshal(yamlToJSON(t, file), &dr); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		found := false
		for _, r := range dr.Resources {
			var s tlsv3.Secret
			if err := r.UnmarshalTo(&s); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if err := s.ValidateAll(); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			found = found || (s.Name == sds.Name && s.GetGenericSecret() != nil)
		}
		if !found {
			t.Fatalf("%s has no generic secret named %q", file, sds.Name)
		}
	}

	// The endpoints are those the issuer advertises.
	is := testbin.StartIssuer(t, nil)
	resp, err := http.Get(is.PublicURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for key, got := range map[string]string{"token_endpoint": c.TokenEndpoint.Uri, "authorization_endpoint": c.AuthorizationEndpoint, "end_session_endpoint": c.EndSessionEndpoint} {
		adv, _ := d[key].(string)
		if adv == "" {
			if key == "token_endpoint" {
				t.Fatalf("the issuer advertises no %s", key)
			}
			t.Logf("the issuer does not advertise %s yet; envoy.yaml uses %s", key, got)
			continue
		}
		a, _ := url.Parse(adv)
		g, _ := url.Parse(got)
		if a.Path != g.Path {
			t.Errorf("%s: envoy.yaml uses path %s, the issuer advertises %s", key, g.Path, a.Path)
		}
	}
}

// checkBindingInputs: the headers the sidecar reads reach it in the
// CheckRequest (the token, a DPoP proof, the scheme a DPoP proof's htu
// names), and the ones it trusts about the request are Envoy's own, not
// a client's: x-forwarded-proto is set by an edge Envoy
// (use_remote_address), and a client's x-forwarded-client-cert is
// removed (forward_client_cert_details SANITIZE or SANITIZE_SET).
func checkBindingInputs(t *testing.T, m *hcmv3.HttpConnectionManager, authz *extauthzv3.ExtAuthz) {
	t.Helper()
	for _, h := range []string{"authorization", "dpop", "cookie", "x-forwarded-proto"} {
		if authz.AllowedHeaders != nil && !listMatches(t, authz.AllowedHeaders, h) {
			t.Errorf("ext_authz allowed_headers leaves out %s, which the sidecar reads", h)
		}
		if authz.DisallowedHeaders != nil && listMatches(t, authz.DisallowedHeaders, h) {
			t.Errorf("ext_authz disallowed_headers removes %s, which the sidecar reads", h)
		}
	}
	if !m.GetUseRemoteAddress().GetValue() {
		t.Error("use_remote_address must be true at the edge: the sidecar takes a DPoP proof's scheme from x-forwarded-proto, which Envoy then sets itself")
	}
	switch m.ForwardClientCertDetails {
	case hcmv3.HttpConnectionManager_SANITIZE, hcmv3.HttpConnectionManager_SANITIZE_SET:
	default:
		t.Errorf("forward_client_cert_details %v passes a client's x-forwarded-client-cert on; an edge Envoy must sanitize it", m.ForwardClientCertDetails)
	}
}

// listMatches evaluates an Envoy ListStringMatcher on a lower-case header
// name (exact, prefix, suffix and contains; a regex fails the test, which
// would need Envoy's RE2 semantics).
func listMatches(t *testing.T, l *matcherv3.ListStringMatcher, name string) bool {
	t.Helper()
	for _, p := range l.Patterns {
		v := name
		cmp := func(s string) string { return s }
		if p.IgnoreCase {
			cmp = strings.ToLower
		}
		var ok bool
		switch {
		case p.GetExact() != "":
			ok = cmp(v) == cmp(p.GetExact())
		case p.GetPrefix() != "":
			ok = strings.HasPrefix(cmp(v), cmp(p.GetPrefix()))
		case p.GetSuffix() != "":
			ok = strings.HasSuffix(cmp(v), cmp(p.GetSuffix()))
		case p.GetContains() != "":
			ok = strings.Contains(cmp(v), cmp(p.GetContains()))
		default:
			t.Fatalf("string matcher %v: this test evaluates exact, prefix, suffix and contains only", p)
		}
		if ok {
			return true
		}
	}
	return false
}
