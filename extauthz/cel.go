package extauthz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"go.uber.org/zap"
)

// CEL route conditions and computed identity headers.
//
// A rule's conditions are CEL expressions (github.com/google/cel-go, the
// language of Envoy's RBAC, Kubernetes and Authorino) compiled and
// type-checked once, when the configuration is validated; a bad one
// refuses to start. Each check evaluates the matching rule's programs
// against a lazy activation: a variable is computed only when the
// expression reads it (celActivation), and the token's claims are
// converted to CEL values once per cached identity.
//
// Identity headers computed by CEL see the token only (claims and
// token.*), never the request: identity headers are rendered once per
// token and kept with the cached identity (and the Envoy answer made from
// it), so a header that varied per request would defeat that.

// Condition is one CEL condition of a rule.
type Condition struct {
	// Name identifies the condition in denials and logs.
	Name string `yaml:"name"`
	// Expression is a CEL expression of type bool over the variables
	// celVariables declares.
	Expression string `yaml:"expression"`
}

// CELConfig bounds the evaluation of CEL expressions.
type CELConfig struct {
	// CostLimit is the most one evaluation of an expression with a
	// comprehension may cost, in cel-go's runtime cost units (about one
	// per operation; string, list and map operations cost more with their
	// size). An evaluation that goes past it stops with an error: the
	// condition denies, the header is omitted. Default 5000.
	CostLimit uint64 `yaml:"cost_limit"`
}

// ReasonCondition is the metrics reason of a failed CEL condition.
const ReasonCondition = "condition_failed"

const defaultCELCostLimit = 5000

func (c CELConfig) defaults() CELConfig {
	if c.CostLimit == 0 {
		c.CostLimit = defaultCELCostLimit
	}
	return c
}

// The variables a condition may read. Names with dots are declared as
// such (CEL resolves "request.method" as one qualified name), so that a
// misspelt one fails at start instead of evaluating to an error.
const (
	celClaims         = "claims"
	celTokenType      = "token.type"
	celTokenIssuer    = "token.issuer"
	celTokenScopes    = "token.scopes"
	celRequestMethod  = "request.method"
	celRequestHost    = "request.host"
	celRequestPath    = "request.path"
	celRequestHeaders = "request.headers"
	celSourceAddress  = "source.address"
	celBindingType    = "binding.type"
	celBindingJKT     = "binding.jkt"
	celBindingX5T     = "binding.x5t"
)

// Values of binding.type.
const (
	bindingNone     = "none"
	bindingDPoP     = "dpop"
	bindingMTLS     = "mtls"
	bindingDPoPMTLS = "dpop+mtls"
)

// tokenVariables are what identity-header expressions see.
func tokenVariables() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable(celClaims, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(celTokenType, cel.StringType),
		cel.Variable(celTokenIssuer, cel.StringType),
		cel.Variable(celTokenScopes, cel.ListType(cel.StringType)),
	}
}

// requestVariables are what conditions see besides the token.
func requestVariables() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable(celRequestMethod, cel.StringType),
		cel.Variable(celRequestHost, cel.StringType),
		cel.Variable(celRequestPath, cel.StringType),
		cel.Variable(celRequestHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(celSourceAddress, cel.StringType),
		cel.Variable(celBindingType, cel.StringType),
		cel.Variable(celBindingJKT, cel.StringType),
		cel.Variable(celBindingX5T, cel.StringType),
	}
}

func newCELEnv(vars []cel.EnvOption) (*cel.Env, error) {
	opts := append([]cel.EnvOption{
		// int and double claims compare with each other (JSON has one
		// number type).
		cel.CrossTypeNumericComparisons(true),
		// claims.?ext.?tenant.orValue(""): optional claims without has().
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Network(), // ip(source.address), cidr("10.0.0.0/8").containsIP(...)
	}, vars...)
	return cel.NewEnv(opts...)
}

// celPlan is the compiled CEL of a configuration.
type celPlan struct {
	costLimit uint64
	// conditions[i] are the programs of Config.Rules[i].
	conditions [][]*condition
	headers    []celHeader // sorted by name
	// headerNames are the request headers the conditions read by name;
	// allHeaders is set when one reads the headers map otherwise
	// (iterates it, passes it to a function): then every header is
	// decoded.
	headerNames []string
	allHeaders  bool
}

type condition struct {
	name string
	prg  cel.Program
	deny *Denial
}

type celHeader struct {
	name string
	prg  cel.Program
}

var conditionNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// compileCEL compiles the configuration's conditions and CEL identity
// headers. Every problem is returned, each naming its key, the rule and
// the CEL error; the plan is nil when there is none to evaluate.
func compileCEL(c Config) (*celPlan, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	needed := len(c.Headers.IdentityCEL) > 0
	for _, r := range c.Rules {
		needed = needed || len(r.Conditions) > 0
	}
	if c.CEL.CostLimit < 1 || c.CEL.CostLimit > 10_000_000 {
		bad("cel.cost_limit", "must be between 1 and 10000000, got %d", c.CEL.CostLimit)
	}
	if !needed || len(errs) > 0 {
		return nil, errs
	}
	tokEnv, err := newCELEnv(tokenVariables())
	if err != nil {
		return nil, []error{fmt.Errorf("cel: %w", err)}
	}
	reqEnv, err := newCELEnv(append(tokenVariables(), requestVariables()...))
	if err != nil {
		return nil, []error{fmt.Errorf("cel: %w", err)}
	}
	p := &celPlan{costLimit: c.CEL.CostLimit, conditions: make([][]*condition, len(c.Rules))}
	names := map[string]bool{}
	for i, r := range c.Rules {
		k := fmt.Sprintf("rules[%d]", i)
		route := ""
		if r.Name != "" {
			route = fmt.Sprintf(" (rule %q)", r.Name)
		}
		if r.AllowAnonymous && len(r.Conditions) > 0 {
			bad(k+".allow_anonymous", "cannot be combined with conditions (they could never be enforced)%s", route)
		}
		seen := map[string]bool{}
		for j, cd := range r.Conditions {
			ck := fmt.Sprintf("%s.conditions[%d]", k, j)
			switch {
			case !conditionNameRE.MatchString(cd.Name):
				bad(ck+".name", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit%s", cd.Name, route)
			case seen[cd.Name]:
				bad(ck+".name", "duplicate condition name %q%s", cd.Name, route)
			}
			seen[cd.Name] = true
			ast, err := compileExpr(reqEnv, cd.Expression, cel.BoolType)
			if err != nil {
				bad(ck+".expression", "condition %q%s: %v", cd.Name, route, err)
				continue
			}
			prg, err := p.program(reqEnv, ast)
			if err != nil {
				bad(ck+".expression", "condition %q%s: %v", cd.Name, route, err)
				continue
			}
			hn, all, err := headersRead(ast)
			if err != nil {
				bad(ck+".expression", "condition %q%s: %v", cd.Name, route, err)
				continue
			}
			p.allHeaders = p.allHeaders || all
			for _, n := range hn {
				names[n] = true
			}
			p.conditions[i] = append(p.conditions[i], &condition{name: cd.Name, prg: prg})
		}
	}
	hnames := make([]string, 0, len(c.Headers.IdentityCEL))
	for n := range c.Headers.IdentityCEL {
		hnames = append(hnames, n)
	}
	sort.Strings(hnames)
	for _, n := range hnames {
		k := "headers.identity_cel." + n
		if err := checkHeaderName(n); err != nil {
			bad(k, "%v", err)
		} else if _, dup := c.Headers.Identity[n]; dup {
			bad(k, "%q is also in headers.identity", n)
		} else if n == c.Headers.ClaimsHeader {
			bad(k, "%q is also headers.claims_header", n)
		}
		ast, err := compileExpr(tokEnv, c.Headers.IdentityCEL[n], cel.StringType)
		if err != nil {
			bad(k, "%v", err)
			continue
		}
		prg, err := p.program(tokEnv, ast)
		if err != nil {
			bad(k, "%v", err)
			continue
		}
		p.headers = append(p.headers, celHeader{name: n, prg: prg})
	}
	for n := range names {
		p.headerNames = append(p.headerNames, n)
	}
	sort.Strings(p.headerNames)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// compileExpr parses and type-checks src, whose result must be of type
// want; an expression of type dyn (a claim) is accepted only for a
// string, where a value of another type is then omitted at run time.
func compileExpr(env *cel.Env, src string, want *cel.Type) (*cel.Ast, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty CEL expression")
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, fmt.Errorf("CEL: %s", strings.Join(msgs, "; "))
	}
	out := ast.OutputType()
	switch {
	case out.IsExactType(want):
	case want == cel.StringType && out.IsExactType(cel.DynType):
	case want == cel.BoolType:
		return nil, fmt.Errorf("CEL: the expression is of type %s, a condition must be a bool (compare a claim: claims.admin == true)", out)
	default:
		return nil, fmt.Errorf("CEL: the expression is of type %s, a header must be a string (convert it: string(...))", out)
	}
	return ast, nil
}

// program plans an evaluation. Only an expression with a comprehension
// (all, exists, exists_one, map, filter) is metered against the cost
// limit: without a loop an evaluation is one pass over the expression,
// each function linear in its arguments, and metering would cost about
// three times the evaluation itself (BenchmarkDecideCEL).
func (p *celPlan) program(env *cel.Env, ast *cel.Ast) (cel.Program, error) {
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(ast) {
		opts = append(opts, cel.CostLimit(p.costLimit))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, fmt.Errorf("CEL: %w", err)
	}
	return prg, nil
}

func hasComprehension(a *cel.Ast) bool {
	found := false
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		found = found || e.Kind() == celast.ComprehensionKind
	}))
	return found
}

// headersRead lists the request headers an expression reads by a
// constant name (request.headers["x"], request.headers.x, has(...), "x"
// in request.headers, request.headers[?"x"], request.headers.?x); all is
// set when it uses the map otherwise. A
// constant name that is not lower case could never match.
func headersRead(a *cel.Ast) (names []string, all bool, err error) {
	uses, known := 0, 0
	add := func(v ref.Val) {
		s, ok := v.(types.String)
		if !ok {
			return
		}
		known++
		n := string(s)
		if n != strings.ToLower(n) && err == nil {
			err = fmt.Errorf("request.headers[%q]: header names are lower case", n)
		}
		names = append(names, n)
	}
	isHeaders := func(e celast.Expr) bool {
		return e.Kind() == celast.IdentKind && e.AsIdent() == celRequestHeaders
	}
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			if isHeaders(e) {
				uses++
			}
		case celast.SelectKind:
			if s := e.AsSelect(); isHeaders(s.Operand()) {
				add(types.String(s.FieldName()))
			}
		case celast.CallKind:
			c := e.AsCall()
			args := c.Args()
			if len(args) != 2 {
				return
			}
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
				if isHeaders(args[0]) && args[1].Kind() == celast.LiteralKind {
					add(args[1].AsLiteral())
				}
			case operators.In:
				if isHeaders(args[1]) && args[0].Kind() == celast.LiteralKind {
					add(args[0].AsLiteral())
				}
			}
		}
	}))
	slices.Sort(names)
	return slices.Compact(names), uses != known, err
}

// attach gives the compiled rules their conditions and denials (403
// insufficient_scope like a claim mismatch, the description naming the
// condition).
func (p *celPlan) attach(a *Authorizer) {
	for i, cs := range p.conditions {
		ru := a.rules[i]
		ru.conds = cs
		scope := strings.Join(ru.scopes, " ")
		for _, c := range cs {
			c.deny = newDenial(a.cfg.Realm, http.StatusForbidden, ErrInsufficientScope, ReasonCondition,
				"The request does not meet the condition "+c.name+" of this resource.", scope, a.m)
		}
	}
}

// checkConditions evaluates the rule's conditions in order; the first
// that is false, or fails (an error, a missing claim, the cost limit),
// denies. The client learns the condition's name; the log (debug level,
// as other denials) names the rule too, with the evaluation error. A
// condition stopped by the cost limit is logged as a warning: the
// configuration needs attention.
func (a *Authorizer) checkConditions(ru *rule, r *Request, id *Identity) *Denial {
	act := &celActivation{r: r, id: id}
	for _, c := range ru.conds {
		out, _, err := c.prg.Eval(act)
		if err == nil && out == types.True {
			continue
		}
		lvl := zap.DebugLevel
		if err != nil && strings.Contains(err.Error(), "cost limit exceeded") {
			lvl = zap.WarnLevel
		}
		if ce := a.log.Check(lvl, "condition not met"); ce != nil {
			fields := []zap.Field{zap.String("rule", ru.name), zap.String("condition", c.name)}
			if err != nil {
				fields = append(fields, zap.String("cel_error", err.Error()))
			}
			ce.Write(fields...)
		}
		return c.deny
	}
	return nil
}

// celHeaderValues sets the CEL identity headers of a new identity. A
// value that is not a non-empty string fit for a header (a missing claim,
// another type, an error, the cost limit) is never sent: the header is
// removed upstream, as for a claim path that has no value.
func (a *Authorizer) celHeaderValues(id *Identity) {
	act := &celActivation{id: id}
	for _, h := range a.cel.headers {
		out, _, err := h.prg.Eval(act)
		v, ok := "", false
		if err == nil {
			s, isStr := out.(types.String)
			v, ok = string(s), isStr && headerValueOK(string(s))
		}
		if ok {
			id.headers = append(id.headers, Header{h.name, v})
			continue
		}
		id.unset = append(id.unset, h.name)
		if ce := a.log.Check(zap.DebugLevel, "identity header omitted"); ce != nil {
			if err == nil {
				err = fmt.Errorf("the value is not a header value (type %s)", out.Type())
			}
			ce.Write(zap.String("header", h.name), zap.Error(err))
		}
	}
	sortHeaders(id.headers)
}

// celActivation resolves the variables of an evaluation on demand.
type celActivation struct {
	r  *Request // nil for identity headers
	id *Identity
}

var _ interpreter.Activation = (*celActivation)(nil)

func (v *celActivation) Parent() interpreter.Activation { return nil }

func (v *celActivation) ResolveName(name string) (any, bool) {
	switch name {
	case celClaims:
		return v.id.celToken().claims, true
	case celTokenType:
		return types.String(v.id.TokenType), true
	case celTokenIssuer:
		return types.String(v.id.Issuer), true
	case celTokenScopes:
		return v.id.celToken().scopes, true
	case celBindingType:
		switch b := v.id.bind; {
		case b.jkt != "" && b.x5t != "":
			return types.String(bindingDPoPMTLS), true
		case b.jkt != "":
			return types.String(bindingDPoP), true
		case b.x5t != "":
			return types.String(bindingMTLS), true
		}
		return types.String(bindingNone), true
	case celBindingJKT:
		return types.String(v.id.bind.jkt), true
	case celBindingX5T:
		return types.String(v.id.bind.x5t), true
	}
	if v.r == nil {
		return nil, false
	}
	switch name {
	case celRequestMethod:
		if m, ok := celMethods[v.r.Method]; ok {
			return m, true
		}
		return types.String(v.r.Method), true
	case celRequestHost:
		return types.String(NormalizeHost(v.r.Host)), true
	case celRequestPath:
		return types.String(NormalizePath(v.r.Path)), true
	case celRequestHeaders:
		if v.r.headers == nil {
			return types.NewStringStringMap(types.DefaultTypeAdapter, nil), true
		}
		return v.r.headers.celMap(), true
	case celSourceAddress:
		if !v.r.source.IsValid() {
			return types.String(""), true
		}
		return types.String(v.r.source.WithZone("").String()), true
	}
	return nil, false
}

// celMethods are the common methods as CEL values, made once.
var celMethods = func() map[string]ref.Val {
	m := map[string]ref.Val{}
	for _, x := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		m[x] = types.String(x)
	}
	return m
}()

// celValue is an identity's claims and scopes as CEL values, made once.
type celValue struct{ claims, scopes ref.Val }

// celToken converts the identity's claims and scopes for CEL the first
// time an expression reads them; the identity is shared, so the
// conversion is kept with it.
func (id *Identity) celToken() *celValue {
	if p := id.celCache.Load(); p != nil {
		return p
	}
	m, err := parseClaims(id.Claims)
	if err != nil {
		m = map[string]any{}
	}
	scopes := make([]ref.Val, len(id.Scopes))
	for i, sc := range id.Scopes {
		scopes[i] = types.String(sc)
	}
	v := &celValue{claims: celOf(m), scopes: types.NewRefValList(types.DefaultTypeAdapter, scopes)}
	id.celCache.Store(v)
	return v
}

// celOf converts a decoded JSON value to CEL values all the way down, so
// that reading a nested claim converts nothing per check. Numbers become
// int when integral and within 64 bits, else double (out of range: ±Inf,
// which still compares).
func celOf(x any) ref.Val {
	switch t := x.(type) {
	case string:
		return types.String(t)
	case bool:
		return types.Bool(t)
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return types.Int(i)
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		return types.Double(f)
	case map[string]any:
		m := make(map[ref.Val]ref.Val, len(t))
		for k, e := range t {
			m[types.String(k)] = celOf(e)
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, m)
	case []any:
		l := make([]ref.Val, len(t))
		for i, e := range t {
			l[i] = celOf(e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	}
	return types.NullValue
}

// headerView is a request's headers as CEL's request.headers reads them:
// lower-case names, repeated headers joined by ",".
type headerView interface {
	celMap() ref.Val
}

// envoyHeaders is the CheckRequest's headers map: Envoy's names are lower
// case and it joins repeated headers with ",". The map is used as it is.
type envoyHeaders map[string]string

func (h envoyHeaders) celMap() ref.Val {
	return types.NewStringStringMap(types.DefaultTypeAdapter, h)
}

// envoyHeaderList is the header_map Envoy sends with encode_raw_headers.
type envoyHeaderList []*corev3.HeaderValue

func (l envoyHeaderList) celMap() ref.Val {
	m := make(map[string]string, len(l))
	for _, hv := range l {
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		addHeader(m, strings.ToLower(hv.GetKey()), v)
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

// httpHeaders are the headers of a forward-auth request.
type httpHeaders http.Header

func (h httpHeaders) celMap() ref.Val {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		for _, v := range vs {
			addHeader(m, strings.ToLower(k), v)
		}
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

func addHeader(m map[string]string, k, v string) {
	if old, ok := m[k]; ok {
		v = old + "," + v
	}
	m[k] = v
}

// compileCELPlan is compileCEL for New, its errors joined.
func compileCELPlan(c Config) (*celPlan, error) {
	p, errs := compileCEL(c)
	return p, errors.Join(errs...)
}

// forwardedSource is the client address of a forward-auth request: the
// last X-Forwarded-For entry (the one the gateway added), else the
// address calling the sidecar.
func forwardedSource(r *http.Request) netip.Addr {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
			return a.Unmap()
		}
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
