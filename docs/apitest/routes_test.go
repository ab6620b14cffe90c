package apitest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// Listeners of the issuer.
const (
	public = "public"
	admin  = "admin"
)

// route is one pattern registered on a *http.ServeMux in the issuer's
// sources.
type route struct {
	Method   string // "" for a pattern without a method (a 405 helper)
	Path     string // Go 1.22 mux pattern path, e.g. /admin/clients/{id}
	Listener string // public or admin
	Pos      string // file:line of the registration
}

func (r route) String() string {
	p := r.Path
	if r.Method != "" {
		p = r.Method + " " + p
	}
	return fmt.Sprintf("%q (%s listener, %s)", p, r.Listener, r.Pos)
}

// notAPIMuxes are files whose muxes are not the issuer's listeners.
var notAPIMuxes = map[string]string{
	"issuer/cmd/gatehouse/perform_authcode.go": "the CLI's local redirect receiver of `gatehouse perform authorization-code`",
}

// dynamicParts are expressions in route patterns that are not constants,
// with the path parameter they stand for in docs/openapi.yaml.
var dynamicParts = map[string]string{
	// discovery: RFC 8414 §3.1's path-suffixed metadata URL of an issuer
	// with a path (https://host/tenant).
	`strings.Trim(u.Path, "/")`: "{issuer_path}",
}

// scanRoutes finds every HandleFunc/Handle registration under dir (the
// issuer's sources, tests excluded) and evaluates its pattern: string
// literals, constants and variables of the package, concatenation, range
// loops over string slices and appends to them. An expression it cannot
// evaluate is an error naming its position, so a new kind of registration
// cannot slip past the documentation check.
func scanRoutes(root, dir string) ([]route, []error) {
	fset := token.NewFileSet()
	pkgs := map[string][]*ast.File{} // dir → files
	var errs []error
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if _, skip := notAPIMuxes[filepath.ToSlash(rel)]; skip {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		return nil, []error{err}
	}
	var out []route
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		e := &evaluator{fset: fset, root: root, globals: map[string]ast.Expr{}}
		for _, f := range pkgs[d] {
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || (g.Tok != token.CONST && g.Tok != token.VAR) {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							e.globals[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
		for _, f := range pkgs[d] {
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				rs, es := e.function(fn)
				out = append(out, rs...)
				errs = append(errs, es...)
			}
		}
	}
	return out, errs
}

type evaluator struct {
	fset    *token.FileSet
	root    string
	globals map[string]ast.Expr
	// Per function: local variables (every value assigned, appends
	// included) and range variables.
	locals map[string][]ast.Expr
	ranges map[string]ast.Expr // range variable → the ranged expression
}

func (e *evaluator) pos(n ast.Node) string {
	p := e.fset.Position(n.Pos())
	rel, err := filepath.Rel(e.root, p.Filename)
	if err != nil {
		rel = p.Filename
	}
	return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), p.Line)
}

func (e *evaluator) src(n ast.Node) string {
	var b strings.Builder
	_ = printer.Fprint(&b, e.fset, n)
	return b.String()
}

var methodPrefix = regexp.MustCompile(`^([A-Z]+) (.*)$`)

// function returns the routes fn registers.
func (e *evaluator) function(fn *ast.FuncDecl) ([]route, []error) {
	e.locals, e.ranges = map[string][]ast.Expr{}, map[string]ast.Expr{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.AssignStmt:
			for i, l := range s.Lhs {
				id, ok := l.(*ast.Ident)
				if !ok || i >= len(s.Rhs) || len(s.Lhs) != len(s.Rhs) {
					continue
				}
				e.locals[id.Name] = append(e.locals[id.Name], s.Rhs[i])
			}
		case *ast.ValueSpec:
			for i, id := range s.Names {
				if i < len(s.Values) {
					e.locals[id.Name] = append(e.locals[id.Name], s.Values[i])
				}
			}
		case *ast.RangeStmt:
			for _, v := range []ast.Expr{s.Key, s.Value} {
				if id, ok := v.(*ast.Ident); ok && id.Name != "_" {
					e.ranges[id.Name] = s.X
				}
			}
		}
		return true
	})
	listener := ""
	switch fn.Name.Name {
	case "MountPublic":
		listener = public
	case "MountAdmin":
		listener = admin
	}
	var out []route
	var errs []error
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
			return true
		}
		patterns, err := e.eval(call.Args[0], 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot evaluate the route pattern %s: %v (make it a constant expression, or teach docs/apitest/routes_test.go)", e.pos(call), e.src(call.Args[0]), err))
			return true
		}
		for _, p := range patterns {
			r := route{Path: p, Pos: e.pos(call)}
			if m := methodPrefix.FindStringSubmatch(p); m != nil {
				r.Method, r.Path = m[1], m[2]
			}
			switch {
			case !strings.HasPrefix(r.Path, "/"):
				errs = append(errs, fmt.Errorf("%s: route pattern %q has a host or no leading slash", r.Pos, p))
				continue
			case listener != "":
				r.Listener = listener
			case strings.HasPrefix(r.Path, "/admin/"):
				r.Listener = admin
			default:
				errs = append(errs, fmt.Errorf("%s: cannot tell which listener serves %q (register it in MountPublic or MountAdmin)", r.Pos, p))
				continue
			}
			out = append(out, r)
		}
		return true
	})
	return out, errs
}

// eval returns every value x can take.
func (e *evaluator) eval(x ast.Expr, depth int) ([]string, error) {
	if depth > 20 {
		return nil, fmt.Errorf("too deep")
	}
	if v, ok := dynamicParts[e.src(x)]; ok {
		return []string{v}, nil
	}
	switch x := x.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return nil, fmt.Errorf("%s is not a string", x.Value)
		}
		s, err := strconv.Unquote(x.Value)
		return []string{s}, err
	case *ast.ParenExpr:
		return e.eval(x.X, depth+1)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return nil, fmt.Errorf("operator %s", x.Op)
		}
		l, err := e.eval(x.X, depth+1)
		if err != nil {
			return nil, err
		}
		r, err := e.eval(x.Y, depth+1)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, a := range l {
			for _, b := range r {
				out = append(out, a+b)
			}
		}
		return out, nil
	case *ast.CompositeLit: // []string{...}: one value per element
		var out []string
		for _, el := range x.Elts {
			vs, err := e.eval(el, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	case *ast.CallExpr: // append(list, values...)
		if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "append" && len(x.Args) > 1 && !x.Ellipsis.IsValid() {
			var out []string
			for _, a := range x.Args[1:] {
				vs, err := e.eval(a, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, vs...)
			}
			return out, nil
		}
		return nil, fmt.Errorf("call %s", e.src(x))
	case *ast.Ident:
		if r, ok := e.ranges[x.Name]; ok {
			return e.eval(r, depth+1)
		}
		if vals, ok := e.locals[x.Name]; ok {
			// Every value ever assigned: the initial list and whatever
			// append adds (append(x, ...) evaluates to the added values).
			var out []string
			for _, v := range vals {
				vs, err := e.eval(v, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, vs...)
			}
			return out, nil
		}
		if g, ok := e.globals[x.Name]; ok {
			return e.eval(g, depth+1)
		}
		return nil, fmt.Errorf("unknown identifier %s", x.Name)
	}
	return nil, fmt.Errorf("expression %s", e.src(x))
}

// TestScanRoutesFindsTheIssuerRoutes guards the scanner itself: a few
// routes every issuer has, including the ones built in loops.
func TestScanRoutesFindsTheIssuerRoutes(t *testing.T) {
	routes, errs := scanRoutes(testbin.RepoRoot(), "issuer")
	for _, err := range errs {
		t.Error(err)
	}
	have := map[string]bool{}
	for _, r := range routes {
		have[r.Listener+" "+r.Method+" "+r.Path] = true
	}
	for _, want := range []string{
		"public POST /oauth2/token",
		"public GET /.well-known/openid-configuration",
		"public GET /.well-known/oauth-authorization-server/{issuer_path}", // append in a conditional
		"admin GET /admin/oauth2/auth/requests/login",                      // range over bases
		"admin PUT /admin/oauth2/requests/logout/reject",
		"admin GET /admin/trust/grants/jwt-bearer/issuers/{id}", // package constant
		"admin GET /admin/metrics/prometheus",                   // server.New, not a Mount method
		"admin GET /health/ready",
		"public GET /health/ready",
	} {
		if !have[want] {
			t.Errorf("the scanner did not find %s", want)
		}
	}
	if len(routes) < 60 {
		t.Errorf("only %d route registrations found", len(routes))
	}
}
