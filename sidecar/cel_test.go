package sidecar_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// celConfig is baseConfig with routes carrying CEL conditions and a CEL
// identity header.
var celConfig = strings.NewReplacer("rules:\n", `rules:
  - name: tenants
    match: {path_prefix: /tenants}
    scopes: [read]
    conditions:
      - name: own-tenant
        expression: 'request.headers["x-tenant"] == claims.client_id && request.path.startsWith("/tenants/" + claims.client_id + "/")'
      - name: delete-from-office
        expression: 'request.method != "DELETE" || cidr("10.0.0.0/8").containsIP(ip(source.address))'
  - name: bound-only
    match: {path_prefix: /orders}
    conditions:
      - name: dpop-bound
        expression: 'binding.type == "dpop" && binding.jkt != ""'
`, "headers:\n  identity:\n", `headers:
  identity_cel:
    x-caller: 'token.type + ":" + claims.client_id'
    x-missing: 'claims.no_such_claim'
  identity:
`).Replace(baseConfig)

// TestCELRulesAtTheGateway: tokens minted by the real issuer pass CEL
// conditions over their claims, the request (path, header, method,
// source address) and the binding, through the real sidecar over gRPC
// and /auth; a failed condition is a 403 naming it, and is logged with
// the rule's name. CEL identity headers reach the upstream.
func TestCELRulesAtTheGateway(t *testing.T) {
	p := newRealProvider(t)
	s := startSidecarYAML(t, p, celConfig, "serve")
	tok, id := p.JWT(t, "read")
	opaque, _ := p.Opaque(t, "read")
	key := testbin.NewDPoPKey(t)
	bound := p.is.DPoPToken(t, p.client(t, "jwt"), key, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	const host = "api.example.com"
	challenge := func(cond string) string {
		return `Bearer error="insufficient_scope", error_description="The request does not meet the condition ` + cond + ` of this resource.", scope="read"`
	}
	with := func(tok string, kv ...string) map[string]string {
		h := bearer(tok)
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	mine := "/tenants/" + id.ClientID + "/invoices"
	for _, g := range gateways {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range []struct {
				name, method, uri string
				hdr               map[string]string
				status            int
				challenge         string
			}{
				{"own tenant", "GET", mine, with(tok, "x-tenant", id.ClientID, "x-forwarded-for", "192.0.2.1"), 200, ""},
				{"own tenant, opaque token", "GET", mine, with(opaque, "x-tenant", p.opaque.ID), 403, challenge("own-tenant")},
				{"another tenant's path", "GET", "/tenants/someone-else/invoices", with(tok, "x-tenant", id.ClientID), 403, challenge("own-tenant")},
				{"dot segments do not escape", "GET", mine + "/../../someone-else/x", with(tok, "x-tenant", id.ClientID), 403, challenge("own-tenant")},
				{"another tenant's header", "GET", mine, with(tok, "x-tenant", "someone-else"), 403, challenge("own-tenant")},
				{"no tenant header", "GET", mine, bearer(tok), 403, challenge("own-tenant")},
				{"a huge tenant header", "GET", mine, with(tok, "x-tenant", strings.Repeat("a", 30000)), 403, challenge("own-tenant")},
				{"a tenant header with non-ASCII bytes", "GET", mine, with(tok, "x-tenant", id.ClientID+"é"), 403, challenge("own-tenant")},
				{"a bearer token on a DPoP-only route", "GET", "/orders", bearer(tok), 403,
					`Bearer error="insufficient_scope", error_description="The request does not meet the condition dpop-bound of this resource."`},
				{"DPoP-bound token", "GET", "/orders", map[string]string{"authorization": "DPoP " + bound,
					"dpop": key.Proof(t, "GET", "https://"+host+"/orders", bound, nil)}, 200, ""},
			} {
				st, www, _ := g.ask(t, s, tc.method, host, tc.uri, tc.hdr)
				if st != tc.status || www != tc.challenge {
					t.Errorf("%s: %d %q, want %d %q", tc.name, st, www, tc.status, tc.challenge)
				}
			}
		})
	}
	// The opaque token's client is another: its own path passes.
	if st, www, _ := gateways[0].ask(t, s, "GET", host, "/tenants/"+p.opaque.ID+"/x", with(opaque, "x-tenant", p.opaque.ID)); st != 200 {
		t.Errorf("opaque token on its own tenant: %d %q", st, www)
	}
	// source.address: Envoy's source peer (envoyRequest sends 10.0.0.7);
	// /auth's last X-Forwarded-For entry.
	if st, _, _ := gateways[0].ask(t, s, "DELETE", host, mine, with(tok, "x-tenant", id.ClientID)); st != 200 {
		t.Errorf("gRPC DELETE from 10.0.0.7: %d", st)
	}
	for xff, want := range map[string]int{"10.1.2.3": 200, "10.1.2.3, 192.0.2.1": 403, "": 200} {
		hdr := with(tok, "x-tenant", id.ClientID)
		if xff != "" {
			hdr["x-forwarded-for"] = xff
		}
		// Without X-Forwarded-For, the caller's own address: 127.0.0.1.
		if xff == "" {
			want = 403
		}
		if st := forwardAuth(t, s, "DELETE", host, mine, hdr).StatusCode; st != want {
			t.Errorf("/auth DELETE, X-Forwarded-For %q: %d, want %d", xff, st, want)
		}
	}
	// The CEL identity header is set; the one without a value removed
	// (Envoy) or empty (/auth) so that a client's copy never passes.
	set, removed := okSet(t, s.check(t, "GET", host, mine, with(tok, "x-tenant", id.ClientID, "x-caller", "forged", "x-missing", "forged")))
	if set["x-caller"] != "jwt:"+id.ClientID || !contains(removed, "x-missing") {
		t.Errorf("Envoy: set %v, removed %v", set, removed)
	}
	resp := forwardAuth(t, s, "GET", host, mine, with(tok, "x-tenant", id.ClientID))
	if resp.Header.Get("X-Caller") != "jwt:"+id.ClientID || resp.Header.Values("X-Missing") == nil || resp.Header.Get("X-Missing") != "" {
		t.Errorf("/auth headers: %v", resp.Header)
	}
	// On a public route without a token, a client's copy is removed too.
	if set, removed := okSet(t, s.check(t, "GET", host, "/public/x", map[string]string{"x-caller": "forged"})); set["x-caller"] != "" || !contains(removed, "x-caller") {
		t.Errorf("public route: set %v, removed %v", set, removed)
	}
	if resp := forwardAuth(t, s, "GET", host, "/public/x", map[string]string{"x-caller": "forged"}); resp.StatusCode != 200 || resp.Header.Values("X-Caller") == nil || resp.Header.Get("X-Caller") != "" {
		t.Errorf("/auth public route: %d %v", resp.StatusCode, resp.Header)
	}
	out := s.Output.String()
	if !strings.Contains(out, `"rule":"tenants","condition":"own-tenant"`) || !strings.Contains(out, `"rule":"bound-only","condition":"dpop-bound"`) {
		t.Errorf("the sidecar's log does not name the failed rule and condition:\n%s", out)
	}
	s.assertNoTokenLogged(t, tok, opaque, bound)
}

// TestBadCELRefusesToStart: an expression that does not compile, or is
// not a bool, stops the real binary with a non-zero status and a message
// naming the rule, the key and the CEL error.
func TestBadCELRefusesToStart(t *testing.T) {
	bin := testbin.Build(t, sidecarPkg)
	dir := t.TempDir()
	for i, tc := range []struct {
		yaml string
		want []string
	}{
		{"rules:\n  - name: admin\n    conditions:\n      - {name: tenant, expression: 'claims.tenant =='}\n",
			[]string{"rules[0].conditions[0].expression", `condition "tenant" (rule "admin")`, "Syntax error"}},
		{"rules:\n  - name: admin\n  - name: api\n    conditions:\n      - {name: admin, expression: 'claims.admin'}\n",
			[]string{"rules[1].conditions[0].expression", `(rule "api")`, "of type dyn, a condition must be a bool"}},
		{"rules:\n  - name: api\n    conditions:\n      - {name: m, expression: 'request.methd == \"GET\"'}\n",
			[]string{"rules[0].conditions[0].expression", "undeclared reference to 'request'"}},
		{"headers:\n  identity_cel:\n    x-path: 'request.path'\n",
			[]string{"headers.identity_cel.x-path", "undeclared reference to 'request'"}},
	} {
		f := filepath.Join(dir, fmt.Sprintf("cel%d.yaml", i))
		if err := os.WriteFile(f, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		proc := testbin.Start(t, bin, nil, "serve", "--issuer", "https://a.example.com", "--config", f,
			"--grpc-listen", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)), "--http-listen", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)))
		exited, err := proc.Wait(20 * time.Second)
		if !exited || err == nil {
			t.Fatalf("%d: exited=%v err=%v with a bad expression:\n%s", i, exited, err, proc.Output.String())
		}
		out := proc.Output.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%d: output lacks %q:\n%s", i, w, out)
			}
		}
	}
}
