// Package apisix_test checks the APISIX kit: apisix.yaml parses as a
// standalone configuration, every plugin field is one the plugin's schema
// knows and required fields are set, admin-api.sh makes the same objects,
// and every URL the plugins call exists and answers the way the plugins
// expect, against the real issuer and gatehouse-sidecar.
package apisix_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/internal/gatewaytest"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/sidecar"
)

type standalone struct {
	Upstreams []map[string]any `yaml:"upstreams"`
	Routes    []map[string]any `yaml:"routes"`
}

// Fields of the plugins' JSON schemas (APISIX 3.x openid-connect and
// forward-auth): a key outside these is a typo APISIX rejects.
var schemaFields = map[string][]string{
	"openid-connect": {"client_id", "client_secret", "discovery", "scope", "ssl_verify", "timeout", "introspection_endpoint",
		"introspection_endpoint_auth_method", "token_endpoint_auth_method", "bearer_only", "session", "realm", "logout_path",
		"redirect_uri", "post_logout_redirect_uri", "unauth_action", "public_key", "use_jwks", "use_pkce",
		"token_signing_alg_values_expected", "set_access_token_header", "access_token_in_authorization_header",
		"set_id_token_header", "set_userinfo_header", "set_refresh_token_header", "proxy_opts", "authorization_params",
		"client_rsa_private_key", "client_rsa_private_key_id", "client_jwt_assertion_expires_in", "renew_access_token_on_expiry",
		"access_token_expires_in", "refresh_session_interval", "iat_slack", "accept_none_alg", "accept_unsupported_alg",
		"access_token_expires_leeway", "force_reauthorize", "use_nonce", "revoke_tokens_on_logout", "jwk_expires_in",
		"jwt_verification_cache_ignore", "cache_segment", "introspection_interval", "introspection_expiry_claim",
		"introspection_addon_headers", "required_scopes", "claim_validator", "claim_schema"},
	"forward-auth": {"uri", "allow_degradation", "status_on_error", "ssl_verify", "request_method", "request_headers",
		"extra_headers", "upstream_headers", "client_headers", "timeout", "keepalive", "keepalive_timeout", "keepalive_pool"},
}

func load(t *testing.T) (standalone, string) {
	t.Helper()
	b, err := os.ReadFile("apisix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[len(lines)-1] != "#END" {
		t.Fatal("a standalone apisix.yaml must end with the line #END, or APISIX ignores it")
	}
	var s standalone
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("apisix.yaml: %v", err)
	}
	return s, string(b)
}

func plugin(t *testing.T, s standalone, route, name string) map[string]any {
	t.Helper()
	for _, r := range s.Routes {
		if r["id"] == route {
			p, _ := r["plugins"].(map[string]any)[name].(map[string]any)
			if p == nil {
				t.Fatalf("route %s has no %s plugin", route, name)
			}
			return p
		}
	}
	t.Fatalf("no route %s", route)
	return nil
}

func TestStandaloneConfig(t *testing.T) {
	s, _ := load(t)
	ups := map[any]bool{}
	for _, u := range s.Upstreams {
		ups[u["id"]] = true
		if len(u["nodes"].(map[string]any)) == 0 {
			t.Fatalf("upstream %v has no nodes", u["id"])
		}
	}
	want := []string{"app-browser", "api-introspection", "api-forward-auth", "api-internal-token"}
	var ids []string
	for _, r := range s.Routes {
		id, _ := r["id"].(string)
		ids = append(ids, id)
		if u, _ := r["uri"].(string); !strings.HasPrefix(u, "/") {
			t.Fatalf("route %s: uri %q", id, u)
		}
		if !ups[r["upstream_id"]] {
			t.Fatalf("route %s: upstream_id %v is not defined", id, r["upstream_id"])
		}
		for name, conf := range r["plugins"].(map[string]any) {
			fields, known := schemaFields[name]
			if !known {
				t.Fatalf("route %s: plugin %s is not checked by this test", id, name)
			}
			for k := range conf.(map[string]any) {
				if !slices.Contains(fields, k) {
					t.Fatalf("route %s: %s has no field %q", id, name, k)
				}
			}
		}
	}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("routes %v, want %v", ids, want)
	}

	browser := plugin(t, s, "app-browser", "openid-connect")
	for _, k := range []string{"client_id", "client_secret", "discovery", "redirect_uri"} {
		if browser[k] == "" || browser[k] == nil {
			t.Fatalf("app-browser: %s is required", k)
		}
	}
	if browser["bearer_only"] != false || browser["set_userinfo_header"] != true || browser["set_access_token_header"] != true {
		t.Fatalf("app-browser: %v", browser)
	}
	// The plugin refuses a session secret shorter than 16 characters.
	if sec, _ := browser["session"].(map[string]any)["secret"].(string); len(sec) < 16 {
		t.Fatal("app-browser: session.secret must be at least 16 characters")
	}
	ru, _ := url.Parse(browser["redirect_uri"].(string))
	if !strings.HasPrefix(ru.Path, "/app/") {
		t.Fatalf("redirect_uri %s must be under the route's /app/*", ru)
	}

	api := plugin(t, s, "api-introspection", "openid-connect")
	if api["bearer_only"] != true || !strings.HasSuffix(api["introspection_endpoint"].(string), "/introspect") {
		t.Fatalf("api-introspection: %v", api)
	}
	for _, route := range []string{"api-forward-auth", "api-internal-token"} {
		fa := plugin(t, s, route, "forward-auth")
		if !strings.HasSuffix(fa["uri"].(string), "/auth") || !slices.Contains(toStrings(fa["request_headers"]), "Authorization") {
			t.Fatalf("%s: %v", route, fa)
		}
	}
	// Authorization is copied upstream only where the sidecar sends an
	// internal token: elsewhere the client's must reach the upstream.
	if slices.Contains(toStrings(plugin(t, s, "api-forward-auth", "forward-auth")["upstream_headers"]), "Authorization") ||
		!slices.Contains(toStrings(plugin(t, s, "api-internal-token", "forward-auth")["upstream_headers"]), "Authorization") {
		t.Fatal("only api-internal-token copies Authorization from the sidecar's answer")
	}
	for _, route := range []string{"api-forward-auth", "api-internal-token"} {
		if !slices.Contains(toStrings(plugin(t, s, route, "forward-auth")["request_headers"]), "DPoP") {
			t.Fatalf("%s: request_headers must pass the client's DPoP proof to the sidecar", route)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// normalize round-trips through JSON so that YAML and JSON values compare.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

var putRe = regexp.MustCompile(`(?s)put (upstreams|routes) ([a-z0-9-]+) <<'JSON'\n(.*?)\nJSON\n`)

// TestAdminAPIScriptMatches: admin-api.sh creates exactly apisix.yaml's
// objects.
func TestAdminAPIScriptMatches(t *testing.T) {
	s, _ := load(t)
	b, err := os.ReadFile("admin-api.sh")
	if err != nil {
		t.Fatal(err)
	}
	yamlObjs := map[string]any{}
	for kind, list := range map[string][]map[string]any{"upstreams": s.Upstreams, "routes": s.Routes} {
		for _, o := range list {
			c := map[string]any{}
			for k, v := range o {
				if k != "id" {
					c[k] = v
				}
			}
			yamlObjs[kind+"/"+fmt.Sprint(o["id"])] = normalize(t, c)
		}
	}
	seen := 0
	for _, m := range putRe.FindAllStringSubmatch(string(b), -1) {
		key := m[1] + "/" + m[2]
		var body any
		if err := json.Unmarshal([]byte(m[3]), &body); err != nil {
			t.Fatalf("admin-api.sh %s: %v", key, err)
		}
		if !reflect.DeepEqual(body, yamlObjs[key]) {
			t.Fatalf("admin-api.sh %s differs from apisix.yaml:\nscript: %v\nyaml:   %v", key, body, yamlObjs[key])
		}
		seen++
	}
	if seen != len(yamlObjs) {
		t.Fatalf("admin-api.sh has %d objects, apisix.yaml %d", seen, len(yamlObjs))
	}
}

// TestAgainstIssuerAndSidecar: the discovery document has what
// lua-resty-openidc reads, the sidecar's /introspect answers the plugin's
// client as RFC 7662 says, and /auth answers forward-auth with the status
// codes and headers the route copies.
func TestAgainstIssuerAndSidecar(t *testing.T) {
	s, _ := load(t)
	is := testbin.StartIssuer(t, nil)
	client, token := is.ClientCredentialsToken(t, "read")
	clientID := client.ID

	side, err := os.ReadFile("gatehouse-sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.LoadConfig(side, sidecar.Overrides{Issuer: is.PublicURL}); err != nil {
		t.Fatalf("gatehouse-sidecar.yaml: %v", err)
	}
	sideHTTP := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	// The internal-token rule and section uncommented, with the
	// sidecar's own client at the issuer.
	const internalTokens = "# rules:\n#   - name: orders\n#     match: {path_prefix: /orders}\n#     internal_token: {audience: orders-api}\n# internal_tokens:\n#   actor: true\n"
	if !strings.Contains(string(side), internalTokens) {
		t.Fatal("gatehouse-sidecar.yaml no longer has the commented internal-token rule")
	}
	gw := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scope": "read", "audience": []string{"orders-api"}})
	conf := strings.NewReplacer("127.0.0.1:4456", sideHTTP, "127.0.0.1:9191", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)),
		internalTokens, strings.ReplaceAll(strings.ReplaceAll(internalTokens, "#   ", "  "), "# ", "")).Replace(string(side))
	cfgFile := filepath.Join(t.TempDir(), "sidecar.yaml")
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := testbin.Start(t, testbin.Build(t, "./sidecar/cmd/gatehouse-sidecar"), map[string]string{
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID": gw.ID, "GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": gw.Secret}, "--config", cfgFile,
		"--issuer", is.PublicURL, "--introspection-url", is.AdminURL+"/admin/oauth2/introspect")
	sc.WaitHTTP(t, "http://"+sideHTTP+"/health/ready", 30*time.Second)
	local := func(u string) string {
		return strings.NewReplacer("http://127.0.0.1:4444", is.PublicURL, "http://127.0.0.1:4456", "http://"+sideHTTP).Replace(u)
	}

	t.Run("discovery", func(t *testing.T) {
		for _, route := range []string{"app-browser", "api-introspection"} {
			p := plugin(t, s, route, "openid-connect")
			resp, err := http.Get(local(p["discovery"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if resp.StatusCode != 200 || d["issuer"] != is.PublicURL {
				t.Fatalf("%s: discovery %d %v", route, resp.StatusCode, d["issuer"])
			}
			need := []string{"jwks_uri", "token_endpoint"}
			if p["bearer_only"] == false && d["authorization_endpoint"] == nil {
				// An issuer without browser flows: only bearer checks apply.
				t.Logf("%s: the issuer advertises no authorization_endpoint yet: redirect login not checked", route)
			} else if p["bearer_only"] == false {
				// redirect login, userinfo header and logout_path.
				need = append(need, "authorization_endpoint", "userinfo_endpoint", "end_session_endpoint")
			}
			for _, k := range need {
				if v, _ := d[k].(string); !strings.HasPrefix(v, is.PublicURL+"/") {
					t.Fatalf("%s: discovery %s = %v", route, k, d[k])
				}
			}
			if p["use_pkce"] == true {
				if m, _ := d["code_challenge_methods_supported"].([]any); !slices.Contains(m, any("S256")) {
					t.Logf("discovery does not list S256 in code_challenge_methods_supported (%v); the plugin sends S256 regardless", d["code_challenge_methods_supported"])
				}
			}
		}
	})

	t.Run("introspection", func(t *testing.T) {
		p := plugin(t, s, "api-introspection", "openid-connect")
		introspect := func(id, secret, tok string) (int, map[string]any) {
			req, _ := http.NewRequest("POST", local(p["introspection_endpoint"].(string)), strings.NewReader(url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		id, secret := p["client_id"].(string), p["client_secret"].(string)
		code, out := introspect(id, secret, token)
		// lua-resty-openidc requires active=true and caches until the
		// introspection_expiry_claim (exp).
		if code != 200 || out["active"] != true || out["sub"] != clientID {
			t.Fatalf("valid token: %d %v", code, out)
		}
		if _, ok := out["exp"].(float64); !ok {
			t.Fatalf("no numeric exp for the plugin's cache: %v", out)
		}
		if code, out := introspect(id, secret, "not-a-token"); code != 200 || out["active"] != false {
			t.Fatalf("invalid token: %d %v", code, out)
		}
		if code, _ := introspect(id, "wrong-secret", token); code != 401 {
			t.Fatalf("wrong client secret: %d", code)
		}
	})

	forwardAuth := func(t *testing.T, route, uri string) {
		p := plugin(t, s, route, "forward-auth")
		// call sends the auth request the plugin would make for a client's
		// GET http://127.0.0.1:9080<uri> with the headers hdr: its own
		// X-Forwarded-* (the host without the port, as the plugin takes
		// it), then extra_headers (which replace them), then the client's
		// headers listed in request_headers (never replacing one already
		// set).
		call := func(hdr map[string]string) *http.Response {
			req, _ := http.NewRequest(p["request_method"].(string), local(p["uri"].(string)), nil)
			sent := map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Method": "GET",
				"X-Forwarded-Host": "127.0.0.1", "X-Forwarded-Uri": uri, "X-Forwarded-For": "127.0.0.1"}
			vars := map[string]string{"$http_host": "127.0.0.1:9080", "$host": "127.0.0.1", "$scheme": "http", "$request_uri": uri}
			extra, _ := p["extra_headers"].(map[string]any)
			for k, v := range extra {
				val, ok := vars[v.(string)]
				if !ok {
					t.Fatalf("extra_headers %s: %v is not a variable this test knows", k, v)
				}
				sent[k] = val
			}
			for _, h := range toStrings(p["request_headers"]) {
				if _, set := sent[h]; !set && hdr[h] != "" {
					sent[h] = hdr[h]
				}
			}
			for k, v := range sent {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		if !slices.Contains(toStrings(p["client_headers"]), "DPoP-Nonce") {
			t.Fatal("client_headers must pass the sidecar's DPoP-Nonce to the client (binding.dpop.use_nonce)")
		}
		resp := call(nil)
		if resp.StatusCode != 401 {
			t.Fatalf("no token: %d", resp.StatusCode)
		}
		for _, h := range toStrings(p["client_headers"]) {
			if h != "DPoP-Nonce" && resp.Header.Get(h) == "" {
				t.Fatalf("401 lacks %s, which the route passes to the client", h)
			}
		}
		resp = call(map[string]string{"Authorization": "Bearer " + token, "X-User-Id": "forged"})
		if resp.StatusCode != 200 {
			t.Fatalf("valid token: %d", resp.StatusCode)
		}
		for _, h := range toStrings(p["upstream_headers"]) {
			if _, ok := resp.Header[http.CanonicalHeaderKey(h)]; !ok {
				t.Fatalf("200 lacks %s, which the route copies upstream (it must be sent, even empty, to replace a forged one)", h)
			}
		}
		if got := resp.Header.Get("X-User-Id"); got != clientID {
			t.Fatalf("X-User-Id = %q, want %q", got, clientID)
		}
		// On the internal-token route, the Authorization APISIX copies
		// upstream is the sidecar's token for orders-api, not the client's.
		internalRoute := slices.Contains(toStrings(p["upstream_headers"]), "Authorization")
		if internal, _ := strings.CutPrefix(resp.Header.Get("Authorization"), "Bearer "); internalRoute &&
			(internal == "" || internal == token || !strings.Contains(jwtPayload(t, internal), `"aud":["orders-api"]`)) {
			t.Fatalf("the upstream would not get an internal token for orders-api: %q", resp.Header.Get("Authorization"))
		}

		// A DPoP-bound token with a proof for the URL the client called
		// (RFC 9449 §7): the route passes the proof and the port.
		dc := gatewaytest.NewDPoPClient(t)
		dpopClient := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read"})
		bound := dc.Token(t, is, dpopClient, "read")
		path, _, _ := strings.Cut(uri, "?")
		htu := "http://127.0.0.1:9080" + path
		resp = call(map[string]string{"Authorization": "DPoP " + bound, "DPoP": dc.Proof(t, "GET", htu, bound)})
		if internalRoute {
			// The proof passes, and the issuer refuses to exchange a
			// DPoP-bound token without a proof of its key (docs/sidecar.md,
			// internal tokens): the sidecar's exchange_refused answer, not a
			// DPoP challenge.
			if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(www, "cannot be exchanged") {
				t.Fatalf("DPoP-bound token with its proof on an internal-token route: %d %q", resp.StatusCode, www)
			}
		} else if resp.StatusCode != 200 || resp.Header.Get("X-Client-Id") != dpopClient.ID {
			t.Fatalf("DPoP-bound token with its proof: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		resp = call(map[string]string{"Authorization": "Bearer " + bound})
		if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.HasPrefix(www, `DPoP error="invalid_token"`) {
			t.Fatalf("DPoP-bound token as Bearer: %d %q", resp.StatusCode, www)
		}
	}
	t.Run("forward-auth", func(t *testing.T) { forwardAuth(t, "api-forward-auth", "/fa/things?x=1") })
	t.Run("forward-auth with an internal token", func(t *testing.T) { forwardAuth(t, "api-internal-token", "/orders/1") })
}

// jwtPayload is the decoded payload of a JWT (not verified: the issuer's
// own tests verify its tokens).
func jwtPayload(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
