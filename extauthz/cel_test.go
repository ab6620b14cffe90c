package extauthz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/cel-go/cel"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// celEnv is an authorizer whose rule "cel" (path prefix /cel) has one
// condition.
func celEnv(t testing.TB, expr string) *env {
	t.Helper()
	return newEnv(t, func(c *Config) {
		c.Rules = []Rule{{Name: "cel", Match: Match{PathPrefix: "/cel"}, Scopes: []string{"read"},
			Conditions: []Condition{{Name: "the-condition", Expression: expr}}}}
	})
}

func TestCELConditions(t *testing.T) {
	withClaims := func(extra map[string]any) map[string]any { return extra }
	for _, tc := range []struct {
		name   string
		expr   string
		claims map[string]any // overrides of the token's claims
		req    func(*Request)
		allow  bool
	}{
		{name: "claim string", expr: `claims.ext.tenant == "acme"`, allow: true},
		{name: "claim string mismatch", expr: `claims.ext.tenant == "other"`},
		{name: "missing claim is an error: deny", expr: `claims.group == "x"`},
		{name: "has() guards a missing claim", expr: `!has(claims.group) || claims.group == "x"`, allow: true},
		{name: "has() on a missing parent is an error: deny", expr: `!has(claims.nope.group)`},
		{name: "optional claims", expr: `claims.?nope.?group.orValue("none") == "none" && claims.?ext.?tenant.orValue("") == "acme"`, allow: true},
		{name: "optional header", expr: `request.headers[?"x-tenant"].orValue("acme") == claims.ext.tenant`, allow: true},
		{name: "int claim", expr: `claims.level >= 3`, claims: withClaims(map[string]any{"level": 3}), allow: true},
		{name: "int claim against a double", expr: `claims.level > 2.5`, claims: withClaims(map[string]any{"level": 3}), allow: true},
		{name: "double claim", expr: `claims.score < 1`, claims: withClaims(map[string]any{"score": 0.5}), allow: true},
		{name: "huge number claim", expr: `claims.big > 1`, claims: withClaims(map[string]any{"big": 1e300}), allow: true},
		{name: "bool claim", expr: `claims.admin == true`, claims: withClaims(map[string]any{"admin": true}), allow: true},
		{name: "list claim", expr: `"ops" in claims.groups`, claims: withClaims(map[string]any{"groups": []any{"dev", "ops"}}), allow: true},
		{name: "list claim without it", expr: `"ops" in claims.groups`, claims: withClaims(map[string]any{"groups": []any{"dev"}})},
		{name: "a claim of another type than compared: error, deny", expr: `claims.groups == "ops"`, claims: withClaims(map[string]any{"groups": 7})},
		{name: "claim name with dots", expr: `claims["https://example.com/role"] == "boss"`, claims: withClaims(map[string]any{"https://example.com/role": "boss"}), allow: true},
		{name: "token scopes", expr: `"write" in token.scopes && token.type == "jwt"`, allow: true},
		{name: "token issuer", expr: `token.issuer.startsWith("http://")`, allow: true},
		{name: "method", expr: `request.method in ["GET", "HEAD"]`, allow: true},
		{name: "method denied", expr: `request.method == "POST"`},
		{name: "path is normalized", expr: `request.path == "/cel/admin"`, req: func(r *Request) { r.Path = "/cel/x/../admin?q=1" }, allow: true},
		{name: "host is normalized", expr: `request.host == "api.example.com"`, req: func(r *Request) { r.Host = "API.example.com:443" }, allow: true},
		{name: "header by index", expr: `request.headers["x-tenant"] == claims.ext.tenant`, req: headers(map[string]string{"x-tenant": "acme"}), allow: true},
		{name: "header by index, other value", expr: `request.headers["x-tenant"] == claims.ext.tenant`, req: headers(map[string]string{"x-tenant": "evil"})},
		{name: "absent header is an error: deny", expr: `request.headers["x-tenant"] == "acme"`},
		{name: "header presence", expr: `"x-debug" in request.headers`, req: headers(map[string]string{"x-debug": "1"}), allow: true},
		{name: "header presence with has()", expr: `!has(request.headers.x_debug)`, allow: true},
		{name: "header iteration", expr: `request.headers.exists(k, k.startsWith("x-") && request.headers[k] == "yes")`, req: headers(map[string]string{"x-a": "yes"}), allow: true},
		{name: "string extension", expr: `request.headers["x-tenant"].lowerAscii() == "acme"`, req: headers(map[string]string{"x-tenant": "ACME"}), allow: true},
		{name: "regex", expr: `claims.ext.email.matches("@example[.]com$")`, allow: true},
		{name: "source address in a network", expr: `cidr("10.0.0.0/8").containsIP(ip(source.address))`, req: func(r *Request) { r.source = netip.MustParseAddr("10.1.2.3") }, allow: true},
		{name: "source address outside", expr: `cidr("10.0.0.0/8").containsIP(ip(source.address))`, req: func(r *Request) { r.source = netip.MustParseAddr("192.0.2.1") }},
		{name: "no source address: error, deny", expr: `ip(source.address).isLoopback()`},
		{name: "unbound token", expr: `binding.type == "none" && binding.jkt == "" && binding.x5t == ""`, allow: true},
		{name: "require a binding", expr: `binding.type != "none"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := celEnv(t, tc.expr)
			r := bearer(e.is.Token(e.key, tc.claims))
			r.Path = "/cel/orders"
			if tc.req != nil {
				tc.req(r)
			}
			d := e.a.Decide(context.Background(), r)
			if d.Allowed() != tc.allow {
				t.Fatalf("allowed = %v, want %v (%+v)", d.Allowed(), tc.allow, d.Denial)
			}
			if !tc.allow {
				if d.Denial == nil || d.Denial.Status != 403 || d.Denial.Reason != ReasonCondition || d.Rule != "cel" {
					t.Fatalf("denial %+v, rule %q", d.Denial, d.Rule)
				}
				if want := `Bearer error="insufficient_scope", error_description="The request does not meet the condition the-condition of this resource.", scope="read"`; d.Denial.WWWAuthenticate != want {
					t.Fatalf("WWW-Authenticate %q, want %q", d.Denial.WWWAuthenticate, want)
				}
			}
		})
	}
}

func headers(h map[string]string) func(*Request) {
	return func(r *Request) { r.headers = envoyHeaders(h) }
}

// The first failing condition denies, and names itself; the token's own
// requirements (scope) are checked before any condition.
func TestCELConditionsInOrder(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Rules = []Rule{{Name: "orders", Match: Match{PathPrefix: "/orders"}, Scopes: []string{"read"}, Conditions: []Condition{
			{Name: "tenant", Expression: `claims.ext.tenant == "acme"`},
			{Name: "writers-only", Expression: `request.method == "GET" || "write" in token.scopes`},
			{Name: "no-delete", Expression: `request.method != "DELETE"`},
		}}}
	})
	tok := e.is.Token(e.key, map[string]any{"scope": "read", "scp": nil})
	for _, tc := range []struct{ method, denied string }{{"GET", ""}, {"POST", "writers-only"}, {"DELETE", "writers-only"}} {
		r := bearer(tok)
		r.Path, r.Method = "/orders/1", tc.method
		d := e.a.Decide(context.Background(), r)
		got := ""
		if d.Denial != nil {
			got = d.Denial.Description
		}
		if (tc.denied == "") != d.Allowed() || (tc.denied != "" && !strings.Contains(got, " "+tc.denied+" ")) {
			t.Errorf("%s: %+v, want denied by %q", tc.method, d.Denial, tc.denied)
		}
	}
	noScope := bearer(e.is.Token(e.key, map[string]any{"scope": "other", "scp": nil}))
	noScope.Path = "/orders"
	if d := e.a.Decide(context.Background(), noScope); d.Denial == nil || d.Denial.Reason != ReasonScope {
		t.Fatalf("missing scope: %+v", d.Denial)
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_decisions_total", map[string]string{"reason": ReasonCondition}); n != 2 {
		t.Fatalf("condition denials counted %v, want 2", n)
	}
}

func TestCELConfigErrors(t *testing.T) {
	rule := func(expr string) Rule {
		return Rule{Name: "admin", Conditions: []Condition{{Name: "c", Expression: expr}}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"syntax", func(c *Config) { c.Rules = []Rule{rule(`claims.x ==`)} },
			`rules[0].conditions[0].expression: condition "c" (rule "admin"): CEL: 1:12: Syntax error`},
		{"undeclared variable", func(c *Config) { c.Rules = []Rule{rule(`request.methd == "GET"`)} },
			`rules[0].conditions[0].expression: condition "c" (rule "admin"): CEL: 1:1: undeclared reference to 'request'`},
		{"not a bool", func(c *Config) { c.Rules = []Rule{rule(`claims.admin`)} },
			`the expression is of type dyn, a condition must be a bool`},
		{"a string", func(c *Config) { c.Rules = []Rule{rule(`request.path`)} },
			`the expression is of type string, a condition must be a bool`},
		{"type error", func(c *Config) { c.Rules = []Rule{rule(`request.path == 1`)} },
			`found no matching overload for '_==_' applied to '(string, int)'`},
		{"empty", func(c *Config) { c.Rules = []Rule{rule(` `)} }, `empty CEL expression`},
		{"upper-case header", func(c *Config) { c.Rules = []Rule{rule(`request.headers["X-Tenant"] == "a"`)} },
			`request.headers["X-Tenant"]: header names are lower case`},
		{"bad name", func(c *Config) { c.Rules = []Rule{{Conditions: []Condition{{Name: "a b", Expression: "true"}}}} },
			`rules[0].conditions[0].name: "a b" must be`},
		{"duplicate name", func(c *Config) {
			c.Rules = []Rule{{Conditions: []Condition{{Name: "a", Expression: "true"}, {Name: "a", Expression: "true"}}}}
		}, `rules[0].conditions[1].name: duplicate condition name "a"`},
		{"anonymous", func(c *Config) {
			c.Rules = []Rule{{AllowAnonymous: true, Conditions: []Condition{{Name: "a", Expression: "true"}}}}
		},
			`rules[0].allow_anonymous: cannot be combined with conditions`},
		{"header reads the request", func(c *Config) { c.Headers.IdentityCEL = map[string]string{"x-path": `request.path`} },
			`headers.identity_cel.x-path: CEL: 1:1: undeclared reference to 'request'`},
		{"header not a string", func(c *Config) { c.Headers.IdentityCEL = map[string]string{"x-n": `size(claims)`} },
			`headers.identity_cel.x-n: CEL: the expression is of type int, a header must be a string`},
		{"header name reserved", func(c *Config) { c.Headers.IdentityCEL = map[string]string{"authorization": `"x"`} },
			`headers.identity_cel.authorization: "authorization" is reserved`},
		{"header twice", func(c *Config) { c.Headers.IdentityCEL = map[string]string{"x-user-id": `"x"`} },
			`headers.identity_cel.x-user-id: "x-user-id" is also in headers.identity`},
		{"cost limit", func(c *Config) { c.CEL.CostLimit = 20_000_000 }, `cel.cost_limit: must be between 1 and 10000000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Issuers: []IssuerConfig{{Issuer: "https://issuer.example"}}}
			tc.mutate(&cfg)
			_, err := New(cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCELIdentityHeaders(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.IdentityCEL = map[string]string{
			"x-tenant-user": `claims.ext.tenant + "/" + claims.sub`,
			"x-email":       `claims.ext.email`,
			"x-admin":       `has(claims.admin) && claims.admin ? "yes" : "no"`,
			"x-optional":    `claims.?nope.orValue("")`, // empty: omitted
			"x-missing":     `claims.nope`,              // absent: omitted
			"x-not-string":  `claims.exp`,               // an int at run time: omitted
			"x-bad-value":   `"a\nb"`,                   // not a header value: omitted
			"x-scopes":      `token.scopes.join(" ")`,   // strings extension
			"x-kind":        `token.type + ":" + string(size(token.scopes))`,
		}
	})
	d := e.a.Decide(context.Background(), bearer(e.is.Token(e.key, nil)))
	if !d.Allowed() {
		t.Fatal(d.Denial)
	}
	got := map[string]string{}
	for _, h := range d.Identity.Headers() {
		got[h.Name] = h.Value
	}
	want := map[string]string{"x-tenant-user": "acme/client-1", "x-email": "alice@example.com", "x-admin": "no",
		"x-scopes": "read write", "x-kind": "jwt:2", "x-user-id": "client-1", "x-client-id": "client-1", "x-user-scopes": "read write"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	unset := strings.Join(d.Identity.UnsetHeaders(), " ")
	if unset != "x-bad-value x-missing x-not-string x-optional" {
		t.Errorf("unset %q", unset)
	}
	// Every CEL header is stripped from client requests like the others.
	names := strings.Join(e.a.IdentityHeaderNames(), " ")
	for _, n := range []string{"x-tenant-user", "x-missing", "x-bad-value"} {
		if !strings.Contains(names, n) {
			t.Errorf("%s not among the identity header names %q", n, names)
		}
	}
}

// A pathological expression stops at the cost limit and denies at once.
func TestCELCostLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.CEL.CostLimit = 5000
		c.Rules = []Rule{{Name: "slow", Conditions: []Condition{{Name: "quadratic",
			Expression: `request.headers["x-a"].split("").all(a, request.headers["x-a"].split("").all(b, a == b))`}}}}
	})
	r := bearer(e.is.Token(e.key, nil))
	r.headers = envoyHeaders{"x-a": strings.Repeat("a", 100000)}
	start := time.Now()
	d := e.a.Decide(context.Background(), r)
	if d.Denial == nil || d.Denial.Reason != ReasonCondition {
		t.Fatalf("%+v", d)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("evaluation took %s", el)
	}
	_, _, err := e.a.rules[0].conds[0].prg.Eval(&celActivation{r: r, id: &Identity{}})
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("error %v, want the cost limit", err)
	}
}

// Hostile inputs never panic: huge headers, odd claim types, claims
// that are not what an expression expects.
func TestCELHostileInputs(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Rules = []Rule{{Name: "r", Conditions: []Condition{
			{Name: "a", Expression: `request.headers.exists(k, k.contains("x") && request.headers[k].matches("^a+$"))`},
			{Name: "b", Expression: `claims.odd.size() > 0 && claims.odd[0] == 1`},
			{Name: "c", Expression: `ip(source.address).family() == 4`},
		}}}
		c.Headers.IdentityCEL = map[string]string{"x-odd": `claims.odd[0]`, "x-deep": `claims.a.b.c.d`}
	})
	odd := []map[string]any{
		{"odd": nil}, {"odd": "str"}, {"odd": []any{}}, {"odd": []any{nil, 1.5}}, {"odd": map[string]any{"0": 1}},
		{"odd": []any{1e308, -1e308}}, {"odd": []any{1}, "a": map[string]any{"b": []any{1}}},
		{"odd": []any{"\x00\xff"}}, {"odd": 18446744073709551615.0},
	}
	for _, c := range odd {
		r := bearer(e.is.Token(e.key, c))
		big := strings.Repeat("a", 1<<20)
		r.headers = envoyHeaders{"x-big": big, "x-odd\x00": "\xff", "": ""}
		r.source = netip.MustParseAddr("::ffff:10.0.0.1").Unmap()
		d := e.a.Decide(context.Background(), r)
		if d.Err != nil {
			t.Fatal(d.Err)
		}
	}
}

// The Envoy codec decodes the headers conditions read by name, and every
// header when one reads the map otherwise.
func TestCELCheckCodecHeaders(t *testing.T) {
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Headers: map[string]string{
			"authorization": "Bearer x", "x-tenant": "acme", "x-other": "1", "x-third": "2"}}}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(a *Authorizer) map[string]string {
		var m authv3.CheckRequest
		if err := a.CheckCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &m); err != nil {
			t.Fatal(err)
		}
		return m.GetAttributes().GetRequest().GetHttp().GetHeaders()
	}
	named := celEnv(t, `request.headers["x-tenant"] == "acme"`)
	if h := decode(named.a); h["x-tenant"] != "acme" || h["authorization"] == "" {
		t.Fatalf("named: %v", h)
	}
	all := celEnv(t, `size(request.headers) > 0`)
	if h := decode(all.a); len(h) != 4 {
		t.Fatalf("all: %v", h)
	}
}

func TestCELHeadersRead(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		names string
		all   bool
	}{
		{`request.method == "GET"`, "", false},
		{`request.headers["x-a"] == "1" && "x-b" in request.headers && has(request.headers.x_c)`, "x-a x-b x_c", false},
		{`request.headers.exists(k, k == "x")`, "", true},
		{`size(request.headers) == 1 || request.headers["x-a"] == ""`, "x-a", true},
		{`request.headers[request.method] == "x"`, "", true},
		{`request.headers[?"x-a"].orValue("") == "1" || request.headers.?x_b.hasValue()`, "x-a x_b", false},
	} {
		env, err := newCELEnv(append(tokenVariables(), requestVariables()...))
		if err != nil {
			t.Fatal(err)
		}
		ast, err := compileExpr(env, tc.expr, cel.BoolType)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hasComprehension(ast), strings.Contains(tc.expr, "exists"); got != want {
			t.Errorf("%s: metered %v, want %v", tc.expr, got, want)
		}
		names, all, err := headersRead(ast)
		if err != nil || strings.Join(names, " ") != tc.names || all != tc.all {
			t.Errorf("%s: %v %v %v, want %q %v", tc.expr, names, all, err, tc.names, tc.all)
		}
	}
}

// /auth reads the client address from the last X-Forwarded-For entry,
// else from the connection.
func TestForwardedSource(t *testing.T) {
	for _, tc := range []struct {
		xff  []string
		want string
	}{
		{nil, "192.0.2.9"},
		{[]string{"203.0.113.7"}, "203.0.113.7"},
		{[]string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{[]string{"1.1.1.1", "2001:db8::1"}, "2001:db8::1"},
		{[]string{"garbage"}, "invalid IP"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/auth", nil)
		r.RemoteAddr = "192.0.2.9:5555"
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := forwardedSource(r).String(); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.xff, got, tc.want)
		}
	}
}

// withoutHeaders drops the headers CEL reads: the lean codec decodes only
// those the conditions name (TestCELCheckCodecMatchesStandard).
func withoutHeaders(r *Request) *Request {
	r.headers = nil
	return r
}

// TestCELCheckCodecMatchesStandard: with conditions reading headers, the
// lean codec gives CEL the same values as the standard decoding: every
// header when a condition reads the whole map, the named ones otherwise.
func TestCELCheckCodecMatchesStandard(t *testing.T) {
	for _, keep := range []*headerFilter{{all: true}, {names: map[string]bool{"x-a": true, "accept": true}}} {
		codec := checkCodec{std: NewCheckCodec().(checkCodec).std, keep: keep}
		for name, b := range codecCases() {
			var full, fast authv3.CheckRequest
			if proto.Unmarshal(b, &full) != nil {
				continue
			}
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &fast); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, want := celHeaders(t, requestFromCheck(&fast)), celHeaders(t, requestFromCheck(&full))
			if !keep.all {
				for k := range want {
					if !keep.names[k] {
						delete(want, k)
						delete(got, k)
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s (all %v): fast %v, full %v", name, keep.all, got, want)
			}
		}
	}
}

func celHeaders(t *testing.T, r *Request) map[string]string {
	if r.headers == nil {
		return map[string]string{}
	}
	m, err := r.headers.celMap().ConvertToNative(reflect.TypeFor[map[string]string]())
	if err != nil {
		t.Fatal(err)
	}
	return m.(map[string]string)
}

// FuzzCELEvaluation: whatever claims a token carries and whatever a
// request sends, evaluating conditions and CEL headers never panics, and
// a condition is true only as CEL says (here: never for junk).
func FuzzCELEvaluation(f *testing.F) {
	f.Add([]byte(`{"sub":"a","ext":{"tenant":"acme"},"n":1}`), "acme", "/t/acme/x", "10.0.0.1")
	f.Add([]byte(`{"ext":[1,2],"n":1e999,"sub":null}`), "", "/../..", "")
	f.Add([]byte(`{"n":18446744073709551616,"ext":{"tenant":{"x":[]}}}`), strings.Repeat("é", 100), "%2F%00", "::1")
	f.Add([]byte(`not json`), "\x00", "", "garbage")
	cfg := Config{Issuers: []IssuerConfig{{Issuer: "https://issuer.example"}},
		Rules: []Rule{{Name: "r", Conditions: []Condition{
			{Name: "tenant", Expression: `claims.ext.tenant == request.headers["x-tenant"] && request.path.startsWith("/t/" + claims.ext.tenant)`},
			{Name: "num", Expression: `claims.n > 0 && size(claims) < 100`},
			{Name: "net", Expression: `cidr("10.0.0.0/8").containsIP(ip(source.address))`},
			{Name: "iter", Expression: `request.headers.all(k, request.headers[k].size() < 1000)`},
		}}},
		Headers: HeadersConfig{IdentityCEL: map[string]string{"x-t": `claims.ext.tenant`, "x-n": `string(claims.n)`}},
	}
	a, err := New(cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims []byte, tenant, path, addr string) {
		id := &Identity{TokenType: TokenTypeJWT, Claims: claims, Scopes: []string{"read"}}
		a.celHeaderValues(id)
		r := &Request{Method: "GET", Path: path, headers: envoyHeaders{"x-tenant": tenant}}
		r.source, _ = netip.ParseAddr(addr)
		_ = a.checkConditions(a.rules[0], r, id)
		for _, h := range id.headers {
			if !headerValueOK(h.Value) {
				t.Fatalf("header %s = %q", h.Name, h.Value)
			}
		}
	})
}

// Concurrent checks share the cached identity and its claims converted
// for CEL (run with -race).
func TestCELConcurrentChecks(t *testing.T) {
	e := celEnv(t, `claims.ext.tenant == request.headers["x-tenant"] && request.method == "GET"`)
	tok := e.is.Token(e.key, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				r := bearer(tok)
				r.Path = "/cel/x"
				tenant := "acme"
				if (i+j)%3 == 0 {
					tenant = "other"
				}
				r.headers = envoyHeaders{"x-tenant": tenant}
				if d := e.a.Decide(context.Background(), r); d.Allowed() != (tenant == "acme") {
					t.Errorf("tenant %s: %+v", tenant, d.Denial)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// request.headers has lower-case names and repeated headers joined by
// ",", whichever way the gateway sent them.
func TestCELHeaderViews(t *testing.T) {
	want := map[string]string{"x-a": "1,2", "x-b": "raw", ":authority": "h"}
	list := envoyHeaderList{{Key: "X-A", Value: "1"}, {Key: "x-a", Value: "2"}, {Key: "x-b", RawValue: []byte("raw")}, {Key: ":authority", Value: "h"}}
	hh := http.Header{"X-A": {"1", "2"}, "X-B": {"raw"}, ":authority": {"h"}}
	for name, v := range map[string]headerView{"header_map": list, "http": httpHeaders(hh), "headers map": envoyHeaders(want)} {
		m, err := v.celMap().ConvertToNative(reflect.TypeFor[map[string]string]())
		if err != nil || !reflect.DeepEqual(m, want) {
			t.Errorf("%s: %v %v, want %v", name, m, err, want)
		}
	}
}
