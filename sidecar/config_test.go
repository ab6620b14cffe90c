package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/extauthz"
)

func TestLoadConfigFullDocument(t *testing.T) {
	doc := `
serve:
  grpc_listen: 0.0.0.0:9191
  http_listen: :4456
  drain_timeout: 5s
log: {level: debug, format: text}
issuers:
  - issuer: https://auth.example.com
    discovery_url: http://gatehouse-public:4444/.well-known/openid-configuration
    introspection_url: http://gatehouse-admin:4445/admin/oauth2/introspect
    introspection_client_id: sidecar
    introspection_client_secret: s3cret
  - issuer: https://partner.example.com
    accept_typ_jwt: true
token: {cookie: BearerToken, max_bytes: 4096}
jwt: {clock_skew: 10s, require_at_jwt_typ: false, algorithms: [RS256, ES256]}
jwks: {refresh_interval: 2m, unknown_kid_interval: 1s}
introspection: {cache_ttl: 10s, timeout: 1s}
cache: {max_bytes: 8388608, max_ttl: 1m, negative_ttl: 2s}
headers:
  identity: {x-user-id: sub, x-user-email: ext.email}
  claims_header: x-user-claims
  dynamic_metadata: true
introspection_endpoint:
  clients: [{client_id: apisix, client_secret: apisix-secret-0123456789}]
realm: api
rules:
  - name: health
    match: {path: /healthz, methods: [GET]}
    allow_anonymous: true
  - name: partner
    match: {hosts: ["*.partner.example.com"], path_prefix: /v1}
    issuers: [https://partner.example.com]
    token_types: [jwt]
    audiences: [partner-api]
    scopes: [read]
    claims: {ext.tenant: acme, roles: [admin, ops]}
`
	c, err := LoadConfig([]byte(doc), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.GRPCListen != "0.0.0.0:9191" || c.Serve.HTTPListen != ":4456" || c.Serve.DrainTimeout != 5*time.Second {
		t.Errorf("serve = %+v", c.Serve)
	}
	if c.Log != (LogConfig{Level: "debug", Format: "text"}) {
		t.Errorf("log = %+v", c.Log)
	}
	if len(c.Issuers) != 2 || c.Issuers[0].IntrospectionClientSecret != "s3cret" || c.Issuers[1].Issuer != "https://partner.example.com" ||
		c.Issuers[0].AcceptTypJWT || !c.Issuers[1].AcceptTypJWT {
		t.Errorf("issuers = %+v", c.Issuers)
	}
	if c.JWT.RequireATJWTType == nil || *c.JWT.RequireATJWTType {
		t.Errorf("jwt.require_at_jwt_typ = %v, want false", c.JWT.RequireATJWTType)
	}
	if c.JWKS.RefreshInterval != 2*time.Minute || c.JWKS.MinRefreshInterval != 30*time.Second {
		t.Errorf("jwks = %+v (defaults must fill the rest)", c.JWKS)
	}
	r := c.Rules[1]
	if r.Claims["ext.tenant"][0] != "acme" || len(r.Claims["roles"]) != 2 || r.Match.Hosts[0] != "*.partner.example.com" {
		t.Errorf("rule = %+v", r)
	}
	if c.Headers.Identity["x-user-email"] != "ext.email" || !c.Headers.DynamicMetadata {
		t.Errorf("headers = %+v", c.Headers)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil, Overrides{Issuer: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.GRPCListen != "127.0.0.1:9191" || c.Serve.HTTPListen != "127.0.0.1:4456" || c.Serve.DrainTimeout != 15*time.Second {
		t.Errorf("serve defaults = %+v", c.Serve)
	}
	if c.Log.Level != "info" || c.Log.Format != "json" {
		t.Errorf("log defaults = %+v", c.Log)
	}
	if c.JWT.ClockSkew != 30*time.Second || c.Headers.Identity["x-user-id"] != "sub" || c.Headers.Identity["x-user-scopes"] != "scope" {
		t.Errorf("authorization defaults not applied: %+v %+v", c.JWT, c.Headers)
	}
}

// TestOverridePrecedence: flags over environment over file over defaults.
func TestOverridePrecedence(t *testing.T) {
	file := `
serve: {grpc_listen: "127.0.0.1:7000", http_listen: "127.0.0.1:7001"}
log: {level: warn}
issuers:
  - issuer: https://file.example.com
    introspection_url: https://file.example.com/introspect
  - issuer: https://second.example.com
`
	env := EnvOverrides(func(k string) string {
		return map[string]string{
			"GATEHOUSE_SIDECAR_ISSUER":                      "https://env.example.com",
			"GATEHOUSE_SIDECAR_GRPC_LISTEN":                 "127.0.0.1:8000",
			"GATEHOUSE_SIDECAR_LOG_LEVEL":                   "error",
			"GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_ID":     "env-id",
			"GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_SECRET": "env-secret",
			"GATEHOUSE_SIDECAR_REVOCATION_EVENTS_URL":       "http://env.example.com/admin/revocations/events",

			"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID":     "env-gw",
			"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": "env-gw-secret",
		}[k]
	})
	flags := Overrides{Issuer: "https://flag.example.com", LogFormat: "text", InternalTokensClientID: "flag-gw"}
	c, err := LoadConfig([]byte(file), env.Over(flags))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"issuer (flag)", c.Issuers[0].Issuer, "https://flag.example.com"},
		{"introspection_url (file)", c.Issuers[0].IntrospectionURL, "https://file.example.com/introspect"},
		{"introspection_client_id (env)", c.Issuers[0].IntrospectionClientID, "env-id"},
		{"second issuer untouched", c.Issuers[1].Issuer, "https://second.example.com"},
		{"grpc_listen (env)", c.Serve.GRPCListen, "127.0.0.1:8000"},
		{"http_listen (file)", c.Serve.HTTPListen, "127.0.0.1:7001"},
		{"log.level (env)", c.Log.Level, "error"},
		{"log.format (flag)", c.Log.Format, "text"},
		{"revocations.events_url (env)", c.Revocations.EventsURL, "http://env.example.com/admin/revocations/events"},
		{"internal_tokens.client_id (flag)", c.InternalTokens.ClientID, "flag-gw"},
		{"internal_tokens.client_secret (env)", c.InternalTokens.ClientSecret, "env-gw-secret"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestApplyDoesNotWriteTheCallersIssuers(t *testing.T) {
	base := Config{}
	base.Issuers = []extauthz.IssuerConfig{{Issuer: "https://a.example.com"}}
	_ = base.Apply(Overrides{Issuer: "https://b.example.com"})
	if base.Issuers[0].Issuer != "https://a.example.com" {
		t.Error("Apply modified the original configuration")
	}
}

// TestConfigErrorsNameTheKey: every invalid setting is reported with its
// key, so an operator knows what to fix.
func TestConfigErrorsNameTheKey(t *testing.T) {
	const iss = "issuers: [{issuer: https://auth.example.com}]\n"
	for _, tc := range []struct {
		name string
		doc  string
		ov   Overrides
		want []string
	}{
		{"no issuer", "", Overrides{}, []string{"issuers: at least one issuer"}},
		{"issuer with query", "", Overrides{Issuer: "https://a.example.com/?x=1"}, []string{"issuers[0].issuer"}},
		{"introspection url", "", Overrides{Issuer: "https://a.example.com", IntrospectionURL: "admin:4445"}, []string{"issuers[0].introspection_url"}},
		{"unknown top-level key", iss + "rulez: []\n", Overrides{}, []string{"line 2: rulez: unknown key"}},
		{"unknown nested key", iss + "jwt:\n  clock_skw: 1s\n", Overrides{}, []string{"line 3: jwt.clock_skw: unknown key"}},
		{"unknown key in a list item", "issuers:\n  - issuer: https://a.example.com\n    jwks_uri: x\n", Overrides{}, []string{"line 3: issuers[0].jwks_uri: unknown key"}},
		{"bad duration", iss + "cache:\n  negative_ttl: 5 seconds\n", Overrides{}, []string{"line 3: cache.negative_ttl"}},
		{"wrong type", iss + "rules:\n  - scopes: {a: b}\n", Overrides{}, []string{"line 3: rules[0].scopes"}},
		{"two documents", iss + "---\nlog: {}\n", Overrides{}, []string{"more than one YAML document"}},
		{"not YAML", "issuers: [", Overrides{}, []string{"configuration file"}},
		{"grpc listen", iss, Overrides{GRPCListen: "localhost"}, []string{"serve.grpc_listen"}},
		{"http listen port", iss, Overrides{HTTPListen: "127.0.0.1:99999"}, []string{"serve.http_listen"}},
		{"same listen", iss, Overrides{GRPCListen: "127.0.0.1:5000", HTTPListen: "127.0.0.1:5000"}, []string{"serve.http_listen: must differ"}},
		{"drain timeout", iss + "serve: {drain_timeout: -1s}\n", Overrides{}, []string{"serve.drain_timeout"}},
		{"log level", iss, Overrides{LogLevel: "verbose"}, []string{"log.level"}},
		{"log format", iss, Overrides{LogFormat: "xml"}, []string{"log.format"}},
		{"rule", iss + "rules:\n  - match: {path: /a, path_prefix: /b}\n", Overrides{}, []string{"rules[0].match.path"}},
		{"identity header", iss + "headers: {identity: {Authorization: sub}}\n", Overrides{}, []string{"headers.identity.Authorization"}},
		{"typ settings contradict", "issuers: [{issuer: https://a.example.com, accept_typ_jwt: true}]\njwt: {require_at_jwt_typ: true}\n", Overrides{},
			[]string{"issuers[0].accept_typ_jwt: contradicts jwt.require_at_jwt_typ: true"}},
		{"several at once", iss + "log: {level: x, format: y}\n", Overrides{}, []string{"log.level", "log.format"}},
		{"revocation events url", iss, Overrides{RevocationEventsURL: "no"}, []string{"revocations.events_url"}},
		{"revocation bound", iss + "revocations: {max_entries: -1}\n", Overrides{}, []string{"revocations.max_entries"}},
		{"revocation backoff", iss + "revocations: {max_backoff: 1ms}\n", Overrides{}, []string{"revocations.max_backoff"}},
		{"internal token without the sidecar's client", iss + "rules:\n  - internal_token: {audience: orders-api}\n", Overrides{},
			[]string{"internal_tokens.client_id: client_id and client_secret are required", "GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET"}},
		{"internal token without audience", iss + "rules:\n  - internal_token: {}\n", Overrides{InternalTokensClientID: "gw", InternalTokensClientSecret: "s"},
			[]string{"rules[0].internal_token.audience"}},
		{"unknown internal_tokens key", iss + "internal_tokens:\n  client: x\n", Overrides{}, []string{"line 3: internal_tokens.client: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig([]byte(tc.doc), tc.ov)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEmptyDocumentIsEmptyConfig(t *testing.T) {
	for _, doc := range []string{"", "   \n", "# only a comment\n"} {
		c, err := ParseConfig([]byte(doc))
		if err != nil || len(c.Issuers) != 0 {
			t.Errorf("%q: %+v %v", doc, c, err)
		}
	}
}

// FuzzParseConfig: a configuration file never panics the parser, and an
// accepted one either validates or names its problem.
func FuzzParseConfig(f *testing.F) {
	f.Add("issuers: [{issuer: https://a.example.com}]\nrules:\n  - match: {path: /x}\n")
	f.Add("serve: {grpc_listen: ':1'}\nlog: {level: debug}\n")
	f.Add("issuers:\n  - 5\n")
	f.Add("a: &x [*x]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := ParseConfig([]byte(doc))
		if err != nil {
			return
		}
		_ = c.Apply(Overrides{Issuer: "https://a.example.com"}).Defaults().Validate()
	})
}
