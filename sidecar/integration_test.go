package sidecar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

const sidecarPkg = "./sidecar/cmd/gatehouse-sidecar"

// baseConfig is the YAML the integration tests run with: a public route,
// an admin route needing a scope, identity headers including a nested
// claim, and an /introspect client. The issuer itself comes from --issuer.
const baseConfig = `
rules:
  - name: public
    match: {path_prefix: /public}
    allow_anonymous: true
  - name: admin
    match: {path_prefix: /admin, methods: [GET, POST]}
    scopes: [admin]
headers:
  identity:
    x-user-id: sub
    x-client-id: client_id
    x-user-scopes: scope
    x-user-email: ext.email
introspection_endpoint:
  clients:
    - client_id: apisix
      client_secret: apisix-secret-0123456789
`

// sidecarProc is a running gatehouse-sidecar binary.
type sidecarProc struct {
	*testbin.Process
	GRPC, HTTP string // host:port
	authz      authv3.AuthorizationClient
	health     healthpb.HealthClient
}

// startSidecar runs the real binary against p with baseConfig plus extra
// YAML, the issuer from --issuer, the introspection endpoint and its
// credentials from the environment, and waits until it is ready.
func startSidecar(t *testing.T, p provider, extraYAML string) *sidecarProc {
	t.Helper()
	return startSidecarCmd(t, p, extraYAML, "serve")
}

// startSidecarCmd is startSidecar with the leading arguments (e.g. none:
// a plain invocation serves too).
func startSidecarCmd(t *testing.T, p provider, extraYAML string, cmd ...string) *sidecarProc {
	t.Helper()
	return startSidecarYAML(t, p, baseConfig+extraYAML, cmd...)
}

// startSidecarYAML is startSidecarCmd with the whole configuration file.
func startSidecarYAML(t *testing.T, p provider, config string, cmd ...string) *sidecarProc {
	t.Helper()
	return startSidecarEnv(t, p, config, nil, cmd...)
}

// startSidecarEnv is startSidecarYAML with more environment variables.
func startSidecarEnv(t *testing.T, p provider, config string, extraEnv map[string]string, cmd ...string) *sidecarProc {
	t.Helper()
	bin := testbin.Build(t, sidecarPkg)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sidecar.yaml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GATEHOUSE_SIDECAR_LOG_LEVEL": "debug", // so that the no-token-in-logs check sees everything
	}
	if u := p.IntrospectionURL(); u != "" {
		env["GATEHOUSE_SIDECAR_INTROSPECTION_URL"] = u
	}
	if id, secret := p.IntrospectionCredentials(); id != "" {
		env["GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_ID"] = id
		env["GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_SECRET"] = secret
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	var g, h string
	proc := testbin.StartBound(t, testbin.SidecarBound, func() (*testbin.Process, string) {
		g, h = fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
		args := append(slices.Clip(cmd), "--config", cfgFile, "--issuer", p.Issuer(), "--grpc-listen", g, "--http-listen", h)
		return testbin.Start(t, bin, env, args...), "http://" + h + "/health/ready"
	})
	conn, err := grpc.NewClient(g, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sidecarProc{Process: proc, GRPC: g, HTTP: h, authz: authv3.NewAuthorizationClient(conn), health: healthpb.NewHealthClient(conn)}
}

// assertNoTokenLogged fails if any of the tokens appears in the output.
func (s *sidecarProc) assertNoTokenLogged(t *testing.T, tokens ...string) {
	t.Helper()
	out := s.Output.String()
	for _, tok := range tokens {
		if strings.Contains(out, tok) || strings.Contains(out, tok[len(tok)/2:]) {
			t.Errorf("a token appears in the sidecar's logs")
		}
	}
	if _, secret := (&fakeProvider{}).IntrospectionCredentials(); strings.Contains(out, secret) {
		t.Errorf("the introspection client secret appears in the sidecar's logs")
	}
}

// envoyRequest builds the CheckRequest Envoy's ext_authz filter sends
// over gRPC (transport_api_version V3): source and destination peers, the
// request time, the HTTP attributes with lower-case header names
// (pseudo-headers included) and the path with its query string.
func envoyRequest(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	hm := map[string]string{
		":authority": host, ":method": method, ":path": path, ":scheme": "https",
		"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "https",
		"x-request-id": "5b0c6e0e-6f5e-4f7e-9c55-3f2b7b1f2a10",
	}
	for k, v := range headers {
		hm[strings.ToLower(k)] = v
	}
	sock := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock("10.0.0.7", 53422)},
		Destination: &authv3.AttributeContext_Peer{Address: sock("10.0.0.2", 10000)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "11774502737741702510", Method: method, Headers: hm, Path: path, Host: host,
				Scheme: "https", Protocol: "HTTP/1.1",
			},
		},
		MetadataContext: &corev3.Metadata{},
	}}
}

func (s *sidecarProc) check(t *testing.T, method, host, path string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.authz.Check(ctx, envoyRequest(method, host, path, headers))
	if err != nil {
		t.Fatalf("Check %s %s: %v", method, path, err)
	}
	return r
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

// okSet returns the headers an OK response sets, failing if it is not OK
// or a header is not set with OVERWRITE_IF_EXISTS_OR_ADD / append=false.
func okSet(t *testing.T, r *authv3.CheckResponse) (map[string]string, []string) {
	t.Helper()
	if r.GetStatus().GetCode() != int32(codes.OK) || r.GetOkResponse() == nil {
		t.Fatalf("want OK, got %v", r)
	}
	set := map[string]string{}
	for _, h := range r.GetOkResponse().GetHeaders() {
		//lint:ignore SA1019 the deprecated append must be false for older Envoy versions
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() == nil || h.GetAppend().GetValue() {
			t.Errorf("header %s is not set with OVERWRITE_IF_EXISTS_OR_ADD and append=false: %v", h.GetHeader().GetKey(), h)
		}
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return set, r.GetOkResponse().GetHeadersToRemove()
}

// denied checks a denial's gRPC code, HTTP status and challenge.
func denied(t *testing.T, r *authv3.CheckResponse, code codes.Code, httpStatus int, challenge string) {
	t.Helper()
	if got := codes.Code(r.GetStatus().GetCode()); got != code {
		t.Fatalf("gRPC code = %v, want %v (%v)", got, code, r)
	}
	d := r.GetDeniedResponse()
	if d == nil || int(d.GetStatus().GetCode()) != httpStatus {
		t.Fatalf("denied response = %v, want HTTP %d", d, httpStatus)
	}
	var www string
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			www = h.GetHeader().GetValue()
		}
	}
	if !strings.HasPrefix(www, challenge) {
		t.Errorf("WWW-Authenticate = %q, want prefix %q", www, challenge)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body["error"] == "" {
		t.Errorf("body = %q, want a JSON error", d.GetBody())
	}
}

func TestCheckOverGRPC(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecar(t, p, "")
	tok, want := p.JWT(t)
	adminTok, adminWant := p.JWT(t, "read", "admin")

	hc, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", hc, err)
	}

	t.Run("valid JWT sets identity over spoofed headers", func(t *testing.T) {
		r := s.check(t, "GET", "api.example.com", "/orders?page=2", map[string]string{
			"authorization": "Bearer " + tok, "x-user-id": "admin", "x-user-email": "root@example.com", "x-client-id": "spoof",
		})
		set, remove := okSet(t, r)
		for name, v := range map[string]string{"x-user-id": want.Subject, "x-client-id": want.ClientID,
			"x-user-scopes": want.Scopes, "x-user-email": "alice@example.com"} {
			if set[name] != v {
				t.Errorf("%s = %q, want %q", name, set[name], v)
			}
		}
		if len(remove) != 0 {
			t.Errorf("headers_to_remove = %v, want none (every identity header is set)", remove)
		}
	})
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		okSet(t, s.check(t, "GET", "api.example.com", "/", map[string]string{"authorization": "bEaReR " + tok}))
	})
	t.Run("no token", func(t *testing.T) {
		r := s.check(t, "GET", "api.example.com", "/orders", map[string]string{"x-user-id": "admin"})
		denied(t, r, codes.Unauthenticated, 401, "Bearer")
		if www := r.GetDeniedResponse().GetHeaders()[0].GetHeader().GetValue(); strings.Contains(www, "error=") {
			t.Errorf("no token sent: the challenge must have no error attribute (RFC 6750 §3.1), got %q", www)
		}
	})
	t.Run("token in the query string is ignored", func(t *testing.T) {
		denied(t, s.check(t, "GET", "api.example.com", "/orders?access_token="+tok, nil), codes.Unauthenticated, 401, "Bearer")
	})
	t.Run("tampered token", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		bad := parts[0] + "." + parts[1] + "x." + parts[2]
		denied(t, s.check(t, "GET", "api.example.com", "/orders", bearer(bad)), codes.Unauthenticated, 401, `Bearer error="invalid_token"`)
	})
	t.Run("missing scope", func(t *testing.T) {
		denied(t, s.check(t, "GET", "api.example.com", "/admin/users", bearer(tok)), codes.PermissionDenied, 403,
			`Bearer error="insufficient_scope", error_description="The access token lacks a required scope.", scope="admin"`)
	})
	t.Run("scope present", func(t *testing.T) {
		set, _ := okSet(t, s.check(t, "POST", "api.example.com", "/admin/users", bearer(adminTok)))
		if set["x-user-id"] != adminWant.Subject {
			t.Errorf("x-user-id = %q", set["x-user-id"])
		}
	})
	t.Run("anonymous route removes spoofed identity", func(t *testing.T) {
		set, remove := okSet(t, s.check(t, "GET", "api.example.com", "/public/index.html", map[string]string{"x-user-id": "admin", "x-client-id": "spoof"}))
		if len(set) != 0 {
			t.Errorf("anonymous request sets %v", set)
		}
		for _, name := range []string{"x-user-id", "x-client-id", "x-user-scopes", "x-user-email"} {
			if !contains(remove, name) {
				t.Errorf("headers_to_remove = %v, lacks %s", remove, name)
			}
		}
	})
	t.Run("unset claim header is removed, never a set one", func(t *testing.T) {
		// A token without ext: x-user-email has no value for it.
		noExt := p.is.Token(p.key, map[string]any{"ext": nil})
		set, remove := okSet(t, s.check(t, "GET", "api.example.com", "/", map[string]string{"authorization": "Bearer " + noExt, "x-user-email": "root@example.com"}))
		if _, ok := set["x-user-email"]; ok || !contains(remove, "x-user-email") {
			t.Errorf("set %v, remove %v: x-user-email must be removed", set, remove)
		}
		for _, name := range remove {
			if _, ok := set[name]; ok {
				t.Errorf("%s is both set and removed (Envoy removes after setting)", name)
			}
		}
	})
	t.Run("opaque token through introspection", func(t *testing.T) {
		op, opWant := p.Opaque(t)
		set, _ := okSet(t, s.check(t, "GET", "api.example.com", "/orders", bearer(op)))
		if set["x-user-id"] != opWant.Subject || set["x-user-scopes"] != opWant.Scopes {
			t.Errorf("opaque identity = %v, want %+v", set, opWant)
		}
		denied(t, s.check(t, "GET", "api.example.com", "/orders", bearer("ory_at_unknown.token")), codes.Unauthenticated, 401, `Bearer error="invalid_token"`)
	})
	s.assertNoTokenLogged(t, tok, adminTok)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// forwardAuth calls /auth as nginx auth_request / Traefik forwardAuth do.
func forwardAuth(t *testing.T, s *sidecarProc, method, host, uri string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+"/auth", nil)
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Host", host)
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("X-Forwarded-Proto", "https")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestForwardAuth(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecarCmd(t, p, "") // plain invocation: serves
	tok, want := p.JWT(t)

	resp := forwardAuth(t, s, "GET", "api.example.com", "/orders?x=1", map[string]string{"Authorization": "Bearer " + tok, "X-User-Id": "admin"})
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	for name, v := range map[string]string{"X-User-Id": want.Subject, "X-Client-Id": want.ClientID, "X-User-Scopes": want.Scopes, "X-User-Email": "alice@example.com"} {
		if got := resp.Header.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", name, got, v)
		}
	}

	// The route comes from X-Forwarded-*: /admin needs the admin scope.
	resp = forwardAuth(t, s, "POST", "api.example.com", "/admin/users", map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) {
		t.Errorf("admin route: %d %q, want 403 insufficient_scope", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A method the admin rule does not list falls to the default rule.
	if resp = forwardAuth(t, s, "DELETE", "api.example.com", "/admin/users", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Errorf("DELETE /admin (default rule) = %d, want 200", resp.StatusCode)
	}
	// X-Original-URI (nginx) works as well.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+"/auth", nil)
	req.Header.Set("X-Original-URI", "/admin/x")
	req.Header.Set("Authorization", "Bearer "+tok)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 403 {
		t.Errorf("X-Original-URI /admin/x: %v %v, want 403", r.StatusCode, err)
	} else {
		r.Body.Close()
	}

	resp = forwardAuth(t, s, "GET", "api.example.com", "/orders", nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %q, want 401 Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = forwardAuth(t, s, "GET", "api.example.com", "/orders", map[string]string{"Authorization": "Bearer not-a-valid.token.at-all"})
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Anonymous route: 200 with every identity header present and empty,
	// so a gateway copying them overwrites the client's spoofed values.
	resp = forwardAuth(t, s, "GET", "api.example.com", "/public/a", map[string]string{"X-User-Id": "admin"})
	if resp.StatusCode != 200 {
		t.Fatalf("public: %d", resp.StatusCode)
	}
	for _, name := range []string{"X-User-Id", "X-Client-Id", "X-User-Scopes", "X-User-Email"} {
		if got := resp.Header.Values(name); len(got) != 1 || got[0] != "" {
			t.Errorf("public: %s = %q, want one empty value", name, got)
		}
	}
	s.assertNoTokenLogged(t, tok)
}

// introspect calls the sidecar's RFC 7662 endpoint.
func introspect(t *testing.T, s *sidecarProc, user, pass, tok string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTP+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestIntrospectionEndpoint(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecar(t, p, "")
	jwt, jwtWant := p.JWT(t)
	op, opWant := p.Opaque(t, "read")

	for _, tc := range []struct {
		name, tok string
		want      identity
	}{{"jwt", jwt, jwtWant}, {"opaque", op, opWant}} {
		code, m := introspect(t, s, "apisix", "apisix-secret-0123456789", tc.tok)
		if code != 200 || m["active"] != true || m["sub"] != tc.want.Subject || m["client_id"] != tc.want.ClientID || m["scope"] != tc.want.Scopes {
			t.Errorf("%s: %d %v, want active for %+v", tc.name, code, m, tc.want)
		}
	}
	if code, m := introspect(t, s, "apisix", "apisix-secret-0123456789", "ory_at_nope.nope"); code != 200 || m["active"] != false || len(m) != 1 {
		t.Errorf("unknown token: %d %v, want {active:false}", code, m)
	}
	if code, m := introspect(t, s, "apisix", "wrong-secret-0123456789", jwt); code != 401 || m["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v, want 401 invalid_client", code, m)
	}
	if code, m := introspect(t, s, "", "", jwt); code != 401 || m["error"] != "invalid_client" {
		t.Errorf("no credentials: %d %v, want 401 invalid_client", code, m)
	}
	resp, err := http.Get("http://" + s.HTTP + "/introspect")
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /introspect: %v %v, want 405", resp.StatusCode, err)
	}
	s.assertNoTokenLogged(t, jwt, op)
}

func TestHealthAndMetrics(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecar(t, p, "")
	tok, _ := p.JWT(t)
	// A JWT is cached from its second check on; the cache applies a set
	// asynchronously (a moment after the answer).
	okSet(t, s.check(t, "GET", "a", "/", bearer(tok)))
	okSet(t, s.check(t, "GET", "a", "/", bearer(tok)))
	time.Sleep(200 * time.Millisecond)
	okSet(t, s.check(t, "GET", "a", "/", bearer(tok)))
	s.check(t, "GET", "a", "/", nil)
	for _, path := range []string{"/health/alive", "/health/ready"} {
		resp, err := http.Get("http://" + s.HTTP + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
	}
	resp, err := http.Get("http://" + s.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`gatehouse_sidecar_decisions_total{reason="valid_token",result="allow"} 3`,
		`gatehouse_sidecar_decisions_total{reason="missing_token",result="deny"} 1`,
		`gatehouse_sidecar_cache_requests_total{result="hit"} 1`,
		`gatehouse_sidecar_jwks_fetches_total{issuer="` + p.Issuer() + `",result="success",trigger="scheduled"}`,
		`gatehouse_sidecar_build_info{version=`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestKeyRotationPickedUpLive(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecar(t, p, "")
	old, _ := p.JWT(t)
	okSet(t, s.check(t, "GET", "a", "/", bearer(old)))

	p.RotateKey(t)
	fresh, want := p.JWT(t)
	// Many requests with the new key at once: not a single one may fail
	// (the unknown kid triggers one re-fetch they all wait for).
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := s.authz.Check(ctx, envoyRequest("GET", "a", "/", bearer(fresh)))
			if err != nil {
				errs <- err.Error()
			} else if r.GetStatus().GetCode() != 0 {
				errs <- r.GetStatus().GetMessage()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request with the new key failed: %s", e)
	}
	set, _ := okSet(t, s.check(t, "GET", "a", "/", bearer(fresh)))
	if set["x-user-id"] != want.Subject {
		t.Errorf("x-user-id = %q", set["x-user-id"])
	}
	// The old key is still published: its tokens keep working.
	okSet(t, s.check(t, "GET", "a", "/", bearer(old)))
}

func TestIssuerStoppedKeepsValidatingJWTs(t *testing.T) {
	p := newFakeProvider(t)
	s := startSidecar(t, p, "")
	cached, _ := p.JWT(t)
	notYetSeen, want := p.JWT(t)
	opaque, _ := p.Opaque(t)
	okSet(t, s.check(t, "GET", "a", "/", bearer(cached)))

	p.Stop(t)
	okSet(t, s.check(t, "GET", "a", "/", bearer(cached)))
	// A JWT never seen before is verified with the cached keys.
	set, _ := okSet(t, s.check(t, "GET", "a", "/", bearer(notYetSeen)))
	if set["x-user-id"] != want.Subject {
		t.Errorf("x-user-id = %q", set["x-user-id"])
	}
	// An opaque token cannot be introspected: no decision, UNAVAILABLE,
	// so Envoy's failure mode applies; /auth answers 503.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.authz.Check(ctx, envoyRequest("GET", "a", "/", bearer(opaque))); status.Code(err) != codes.Unavailable {
		t.Errorf("opaque with the issuer down: %v, want UNAVAILABLE", err)
	}
	if resp := forwardAuth(t, s, "GET", "a", "/", map[string]string{"Authorization": "Bearer " + opaque}); resp.StatusCode != 503 {
		t.Errorf("/auth opaque with the issuer down = %d, want 503", resp.StatusCode)
	}
	// Still ready: the keys are cached.
	if resp, err := http.Get("http://" + s.HTTP + "/health/ready"); err != nil || resp.StatusCode != 200 {
		t.Errorf("ready with the issuer down: %v %v, want 200", resp.StatusCode, err)
	}
}

func TestRevokedOpaqueDeniedAfterCacheTTL(t *testing.T) {
	p := newFakeProvider(t)
	const ttl = 2 * time.Second
	s := startSidecar(t, p, "introspection:\n  cache_ttl: 2s\n")
	tok, _ := p.Opaque(t)
	first := time.Now()
	okSet(t, s.check(t, "GET", "a", "/", bearer(tok)))
	// The cache applies a set asynchronously, a moment after the answer
	// (under a loaded CI machine, more than a moment).
	time.Sleep(200 * time.Millisecond)
	p.Revoke(t, tok)
	// Inside the TTL the cached introspection answer is used.
	r := s.check(t, "GET", "a", "/", bearer(tok))
	if time.Since(first) < ttl && r.GetStatus().GetCode() != 0 {
		t.Errorf("revoked token denied before the cache TTL: %v", r)
	}
	deadline := first.Add(ttl + 5*time.Second)
	for {
		r = s.check(t, "GET", "a", "/", bearer(tok))
		if r.GetStatus().GetCode() != 0 {
			if time.Since(first) < ttl {
				t.Fatalf("denied after %s, before the %s cache TTL", time.Since(first), ttl)
			}
			denied(t, r, codes.Unauthenticated, 401, `Bearer error="invalid_token", error_description="The access token is not active."`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted %s after the first check", time.Since(first))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSIGTERMDrains sends SIGTERM while a check waits on a slow
// introspection: the check completes, the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	p := newFakeProvider(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"sub":"slow-user","client_id":"c","scope":"read","token_use":"access_token","exp":` + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + `}`))
	}))
	t.Cleanup(slow.Close)
	s := startSidecar(t, slowIntrospection{p, slow.URL}, "introspection:\n  timeout: 5s\n")
	done := make(chan *authv3.CheckResponse, 1)
	go func() {
		r, err := s.authz.Check(context.Background(), envoyRequest("GET", "a", "/", bearer("ory_at_slow.token")))
		if err != nil {
			t.Errorf("in-flight check failed during drain: %v", err)
		}
		done <- r
	}()
	time.Sleep(300 * time.Millisecond)
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited, err := s.Wait(15 * time.Second)
	if !exited || err != nil {
		t.Fatalf("after SIGTERM: exited=%v err=%v, want a clean exit", exited, err)
	}
	select {
	case r := <-done:
		if set, _ := okSet(t, r); set["x-user-id"] != "slow-user" {
			t.Errorf("drained check: %v", set)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight check never completed")
	}
	if !strings.Contains(s.Output.String(), "draining") {
		t.Errorf("no drain in the logs")
	}
}

// slowIntrospection points the sidecar at another introspection endpoint.
type slowIntrospection struct {
	provider
	url string
}

func (s slowIntrospection) IntrospectionURL() string                   { return s.url }
func (s slowIntrospection) IntrospectionCredentials() (string, string) { return "", "" }

func TestBadConfigRefusesToStart(t *testing.T) {
	bin := testbin.Build(t, sidecarPkg)
	mismatch := newFakeProvider(t)
	mismatch.is.IssuerInDiscovery = "https://someone-else.example.com"
	dir := t.TempDir()
	write := func(name, doc string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	ports := func() []string {
		return []string{"--grpc-listen", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)), "--http-listen", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"no issuer", nil, nil, []string{"issuers:", "--issuer"}},
		{"issuer not a URL", nil, []string{"--issuer", "auth.example.com"}, []string{"issuers[0].issuer"}},
		{"unknown key", nil, []string{"--issuer", "https://a.example.com", "--config", write("unknown.yaml", "jwks:\n  refresh_intervall: 5m\n")}, []string{"jwks.refresh_intervall", "unknown key"}},
		{"bad duration", nil, []string{"--issuer", "https://a.example.com", "--config", write("dur.yaml", "cache:\n  max_ttl: soon\n")}, []string{"cache.max_ttl"}},
		{"bad rule", nil, []string{"--issuer", "https://a.example.com", "--config", write("rule.yaml", "rules:\n  - match: {path: admin}\n")}, []string{"rules[0].match.path"}},
		{"bad listen", map[string]string{"GATEHOUSE_SIDECAR_GRPC_LISTEN": "9191"}, []string{"--issuer", "https://a.example.com"}, []string{"serve.grpc_listen"}},
		{"bad log level", map[string]string{"GATEHOUSE_SIDECAR_LOG_LEVEL": "loud"}, []string{"--issuer", "https://a.example.com"}, []string{"log.level"}},
		{"secret without id", map[string]string{"GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_SECRET": "s"}, []string{"--issuer", "https://a.example.com"}, []string{"issuers[0].introspection_client_secret"}},
		{"missing file", nil, []string{"--issuer", "https://a.example.com", "--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"discovery names another issuer", nil, append([]string{"serve", "--issuer", mismatch.Issuer()}, ports()...), []string{"issuers[0].issuer", "someone-else.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := testbin.Start(t, bin, tc.env, tc.args...)
			exited, err := proc.Wait(20 * time.Second)
			if !exited {
				t.Fatalf("still running with a bad configuration:\n%s", proc.Output.String())
			}
			if err == nil {
				t.Fatalf("exit status 0 with a bad configuration:\n%s", proc.Output.String())
			}
			out := proc.Output.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	bin := testbin.Build(t, sidecarPkg)
	proc := testbin.Start(t, bin, nil, "version")
	if exited, err := proc.Wait(10 * time.Second); !exited || err != nil {
		t.Fatalf("version: exited=%v err=%v", exited, err)
	}
	if strings.TrimSpace(proc.Output.String()) == "" {
		t.Error("version printed nothing")
	}
}
