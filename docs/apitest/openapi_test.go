package apitest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// The two servers docs/openapi.yaml declares, and which listener each is.
const (
	publicServer = "http://127.0.0.1:4444"
	adminServer  = "http://127.0.0.1:4445"
)

var listenerOf = map[string]string{publicServer: public, adminServer: admin}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operation is one documented method of one path.
type operation struct {
	Path      string // as documented: /admin/clients/{id}
	Method    string // upper case
	Listeners []string
	Params    map[string]map[string]any // path parameters by name
	ID        string
}

func (o operation) String() string { return o.Method + " " + o.Path }

type openAPI struct {
	raw        map[string]any
	operations []operation
	// paths: documented path → listeners.
	paths map[string][]string
}

func specPath() string { return filepath.Join(testbin.RepoRoot(), "docs", "openapi.yaml") }

// loadSpec reads docs/openapi.yaml and checks its structure; every
// problem is reported through t.
func loadSpec(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile(specPath())
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	s := &openAPI{raw: raw, paths: map[string][]string{}}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("docs/openapi.yaml: openapi is %q, want 3.0.x", raw["openapi"])
	}
	var top []string
	for _, sv := range asList(raw["servers"]) {
		top = append(top, str(asMap(sv)["url"]))
	}
	if !slices.Equal(top, []string{publicServer, adminServer}) {
		t.Errorf("docs/openapi.yaml: servers are %v, want [%s %s] (public, admin)", top, publicServer, adminServer)
	}

	ids := map[string]string{}
	paths := asMap(raw["paths"])
	if len(paths) == 0 {
		t.Fatal("docs/openapi.yaml has no paths")
	}
	for path, item := range paths {
		pi := asMap(item)
		var listeners []string
		for _, sv := range asList(pi["servers"]) {
			u := str(asMap(sv)["url"])
			l, ok := listenerOf[u]
			if !ok {
				t.Errorf("docs/openapi.yaml %s: server %q is neither %s (public) nor %s (admin)", path, u, publicServer, adminServer)
				continue
			}
			listeners = append(listeners, l)
		}
		if len(listeners) == 0 {
			t.Errorf("docs/openapi.yaml %s: the path item must list its listener(s) in servers (%s public, %s admin)", path, publicServer, adminServer)
		}
		s.paths[path] = listeners
		for k := range pi {
			if !slices.Contains(httpMethods, k) && !slices.Contains([]string{"servers", "parameters", "summary", "description"}, k) {
				t.Errorf("docs/openapi.yaml %s: unknown key %q in a path item", path, k)
			}
		}
		template := pathParams(path)
		for _, m := range httpMethods {
			o, ok := pi[m]
			if !ok {
				continue
			}
			op := asMap(o)
			oo := operation{Path: path, Method: strings.ToUpper(m), Listeners: listeners, Params: map[string]map[string]any{}, ID: str(op["operationId"])}
			if oo.ID == "" {
				t.Errorf("docs/openapi.yaml %s: no operationId", oo)
			} else if prev, dup := ids[oo.ID]; dup {
				t.Errorf("docs/openapi.yaml: operationId %s is used by %s and %s", oo.ID, prev, oo)
			}
			ids[oo.ID] = oo.String()
			if len(asMap(op["responses"])) == 0 {
				t.Errorf("docs/openapi.yaml %s: no responses", oo)
			}
			for _, p := range append(asList(pi["parameters"]), asList(op["parameters"])...) {
				pm := s.resolve(t, asMap(p))
				if str(pm["in"]) == "path" {
					oo.Params[str(pm["name"])] = pm
					if pm["required"] != true {
						t.Errorf("docs/openapi.yaml %s: path parameter %s must be required", oo, pm["name"])
					}
				}
			}
			for _, name := range template {
				if _, ok := oo.Params[name]; !ok {
					t.Errorf("docs/openapi.yaml %s: path parameter {%s} is not declared", oo, name)
				}
			}
			for name := range oo.Params {
				if !slices.Contains(template, name) {
					t.Errorf("docs/openapi.yaml %s: declares path parameter %s, which is not in the path", oo, name)
				}
			}
			s.operations = append(s.operations, oo)
		}
	}
	sort.Slice(s.operations, func(i, j int) bool { return s.operations[i].String() < s.operations[j].String() })

	// Every $ref resolves, and every component is used.
	used := map[string]bool{}
	walk(raw, func(ref string) {
		if _, err := s.lookup(ref); err != nil {
			t.Errorf("docs/openapi.yaml: $ref %q: %v", ref, err)
		}
		used[ref] = true
	})
	for kind, comps := range asMap(raw["components"]) {
		if kind == "securitySchemes" {
			continue
		}
		for name := range asMap(comps) {
			if ref := "#/components/" + kind + "/" + name; !used[ref] {
				t.Errorf("docs/openapi.yaml: %s is never used", ref)
			}
		}
	}
	return s
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

func pathParams(path string) []string {
	var out []string
	for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
		out = append(out, strings.TrimSuffix(m[1], "..."))
	}
	return out
}

// normalize makes documented and registered paths comparable: every
// wildcard becomes {}.
func normalize(path string) string { return templateParam.ReplaceAllString(path, "{}") }

func (s *openAPI) lookup(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("only local references are used")
	}
	var cur any = s.raw
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

func (s *openAPI) resolve(t *testing.T, m map[string]any) map[string]any {
	if ref, ok := m["$ref"].(string); ok {
		v, err := s.lookup(ref)
		if err != nil {
			t.Errorf("docs/openapi.yaml: $ref %q: %v", ref, err)
			return map[string]any{}
		}
		return asMap(v)
	}
	return m
}

func walk(v any, ref func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "$ref" {
				if r, ok := e.(string); ok {
					ref(r)
				}
				continue
			}
			walk(e, ref)
		}
	case []any:
		for _, e := range x {
			walk(e, ref)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestOpenAPIDocumentsEveryRoute: every route pattern the issuer's
// sources register is in docs/openapi.yaml, with its method, on the
// listener that serves it.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := loadSpec(t)
	routes, errs := scanRoutes(testbin.RepoRoot(), "issuer")
	for _, err := range errs {
		t.Error(err)
	}
	documented := map[string][]string{} // normalized path → documented path
	for p := range s.paths {
		documented[normalize(p)] = append(documented[normalize(p)], p)
	}
	for _, r := range routes {
		docPaths := documented[normalize(r.Path)]
		if len(docPaths) == 0 {
			t.Errorf("route %s is not documented in docs/openapi.yaml: add the path %s", r, r.Path)
			continue
		}
		if len(docPaths) > 1 {
			t.Errorf("docs/openapi.yaml documents %v, which are one route pattern %s", docPaths, r.Path)
			continue
		}
		docPath := docPaths[0]
		if !slices.Contains(s.paths[docPath], r.Listener) {
			t.Errorf("route %s: docs/openapi.yaml lists %s only on %v; add the %s server to the path's servers", r, docPath, s.paths[docPath], r.Listener)
		}
		if r.Method == "" { // a helper answering 405 for other methods
			continue
		}
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		found := false
		for _, o := range s.operations {
			if o.Path == docPath && o.Method == method {
				found = true
			}
		}
		if !found {
			t.Errorf("route %s is not documented in docs/openapi.yaml: add %s to paths.%s", r, strings.ToLower(method), docPath)
		}
	}
}

// routeMissing reports whether the issuer's answer means that no route
// serves the request with this method: the JSON 404 "The requested route
// does not exist" or a 405.
func routeMissing(code int, body []byte) bool {
	return code == http.StatusMethodNotAllowed ||
		(code == http.StatusNotFound && regexp.MustCompile(`The requested route (\S+ )?does not exist`).Match(body))
}

// probe sends method to base+path (path parameters filled in) and reports
// the status and whether the route is missing.
func probe(t *testing.T, method, base, path string, params map[string]map[string]any) (int, bool) {
	t.Helper()
	url := base + templateParam.ReplaceAllStringFunc(path, func(m string) string {
		name := strings.Trim(m, "{}")
		if ex := str(params[name]["example"]); ex != "" {
			return ex
		}
		return "apitest-probe"
	})
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	// Only a 404's body tells a missing route from a missing resource;
	// other bodies are not read (an event stream never ends).
	var body []byte
	if resp.StatusCode == http.StatusNotFound {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	}
	return resp.StatusCode, routeMissing(resp.StatusCode, body)
}

// TestOpenAPIOperationsAreServed probes the real gatehouse binary: every
// documented operation is served on the listener(s) docs/openapi.yaml
// names and on no other; every admin path also answers without /admin
// (Hydra v1 aliases).
func TestOpenAPIOperationsAreServed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gatehouse binary")
	}
	s := loadSpec(t)
	if t.Failed() {
		t.FailNow()
	}
	bin := testbin.Build(t, "./issuer/cmd/gatehouse")
	var pub, adm string
	for attempt := 0; ; attempt++ {
		pp, ap := testbin.FreePort(t), testbin.FreePort(t)
		pub, adm = fmt.Sprintf("http://127.0.0.1:%d", pp), fmt.Sprintf("http://127.0.0.1:%d", ap)
		p := testbin.Start(t, bin, map[string]string{
			"DSN":               "memory",
			"SECRETS_SYSTEM":    testbin.TestSecret,
			"SERVE_PUBLIC_HOST": "127.0.0.1", "SERVE_PUBLIC_PORT": fmt.Sprint(pp),
			"SERVE_ADMIN_HOST": "127.0.0.1", "SERVE_ADMIN_PORT": fmt.Sprint(ap),
			// An issuer with a path, so that RFC 8414 §3.1's path-suffixed
			// metadata route exists (its documented example is "tenant").
			"URLS_SELF_ISSUER": pub + "/tenant",
			// Dynamic client registration is off by default.
			"OIDC_DYNAMIC_CLIENT_REGISTRATION_ENABLED": "true",
			"LOG_LEVEL": "warn",
		}, "serve", "all")
		if ready(p, adm+"/health/ready") || attempt == 2 {
			p.WaitHTTP(t, adm+"/health/ready", 60*time.Second)
			break
		}
	}
	base := map[string]string{public: pub, admin: adm}

	for _, o := range s.operations {
		for _, l := range []string{public, admin} {
			code, missing := probe(t, o.Method, base[l], o.Path, o.Params)
			served := slices.Contains(o.Listeners, l)
			switch {
			case served && missing:
				t.Errorf("docs/openapi.yaml documents %s on the %s listener, but the real gatehouse has no such route there (%d)", o, l, code)
			case !served && !missing && l == admin:
				t.Errorf("%s is also served on the admin listener (%d); add %s to the servers of %s in docs/openapi.yaml", o, code, adminServer, o.Path)
			case !served && !missing:
				t.Errorf("%s is served on the PUBLIC listener (%d) although docs/openapi.yaml has it on %v only", o, code, o.Listeners)
			}
		}
		if strings.HasPrefix(o.Path, "/admin/") && slices.Contains(o.Listeners, admin) {
			alias := strings.TrimPrefix(o.Path, "/admin")
			if code, missing := probe(t, o.Method, adm, alias, o.Params); missing {
				t.Errorf("%s: the Hydra v1 alias %s %s is not served on the admin listener (%d)", o, o.Method, alias, code)
			}
		}
	}
	// The probe itself: an undocumented route is reported as missing.
	if _, missing := probe(t, http.MethodGet, pub, "/apitest/no-such-route", nil); !missing {
		t.Fatal("a route that does not exist was not recognised as missing; routeMissing needs updating")
	}
	if _, missing := probe(t, http.MethodDelete, pub, "/oauth2/token", nil); !missing {
		t.Fatal("a method the route does not serve was not recognised as missing; routeMissing needs updating")
	}
}

// ready waits until url answers 200 or the process exits.
func ready(p *testbin.Process, url string) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if p.Exited() {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestRouteMissing(t *testing.T) {
	tests := []struct {
		code int
		body string
		want bool
	}{
		{404, `{"error":"not_found","error_description":"The requested route does not exist","status_code":404}`, true},
		{404, `{"error":"not_found","error_description":"The requested route /x does not exist","status_code":404}`, true},
		{405, `{"error":"method_not_allowed"}`, true},
		{404, `{"error":"not_found","error_description":"The client does not exist"}`, false},
		{400, `{"error":"invalid_request"}`, false},
		{302, ``, false},
		{200, `The requested route does not exist`, false},
	}
	for _, tt := range tests {
		if got := routeMissing(tt.code, []byte(tt.body)); got != tt.want {
			t.Errorf("routeMissing(%d, %s) = %v, want %v", tt.code, tt.body, got, tt.want)
		}
	}
}
