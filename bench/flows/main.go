// Command flows is the load generator of the issuer's browser flows. It
// builds and starts the real gatehouse binary (on the embedded SQLite
// default in a temporary directory, or on a fresh schema of the database
// given with -dsn, migrated first with `gatehouse migrate sql --yes -e`),
// registers a confidential client (client_secret_basic) with the
// authorization_code and refresh_token grants and the openid and
// offline_access scopes, and runs complete authorization code flows with
// PKCE (S256) headlessly, the way the integration tests do
// (issuer/cmd/gatehouse/flows_helpers_test.go): a cookie-keeping HTTP
// client, one fresh cookie jar per flow, follows the issuer's redirects and
// stops where the browser would leave for the login app, the consent app
// or the client's callback; the program plays those apps through the admin
// API. Each flow has five timed steps:
//
//	authorize       GET /oauth2/auth and its redirects, up to the login app
//	login accept    GET .../requests/login, PUT .../login/accept, then the
//	                browser follows redirect_to up to the consent app
//	consent accept  GET .../requests/consent, PUT .../consent/accept, then
//	                the browser follows redirect_to up to the callback
//	token exchange  POST /oauth2/token, grant_type=authorization_code
//	refresh         POST /oauth2/token, grant_type=refresh_token (once)
//
// Every flow uses a new subject, so no remembered login or consent is
// skipped; login and consent are accepted with remember: true as a
// "remember me" box would. Before measuring, one flow is checked as a
// relying party would (go-oidc: ID token signature, nonce, at_hash;
// refresh token rotation). For each level of -concurrency (flows in
// flight at once) it runs -warmup unmeasured, then -duration measured, and
// prints flows/s, errors (by step), p50/p99 per step and per whole flow,
// per HTTP request kind, and the CPU time one flow cost the issuer (and
// the PostgreSQL/MariaDB server processes). Run from the repository root:
//
//	go run ./bench/flows [-duration 10s] [-concurrency 1,4,16] [-dsn postgres://...] [-json]
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchdpop"
	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/h1"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	dsn         string
	jsonOut     bool
	bin         string
	profileDir  string
	issuerEnv   []string
	genProfile  string
	client      string
	modes       []string // flowCode and/or flowPARDPoP (pardpop.go)
}

func main() {
	var o options
	conc := "1,4,16"
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each concurrency level")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each concurrency level")
	flag.StringVar(&conc, "concurrency", conc, "comma-separated numbers of flows in flight at once, one measured level each")
	flag.Func("connections", "the other generators' flag (make bench passes BENCH_ARGS to all of them): N means -concurrency N", func(v string) error {
		conc = v
		return nil
	})
	flag.StringVar(&o.dsn, "dsn", "", "database to run on: postgres://... (a fresh schema is created through search_path and dropped afterwards) or mysql://... (a fresh database, dropped afterwards); default: the embedded SQLite in a temporary directory")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON document instead of the tables")
	flag.StringVar(&o.bin, "issuer", "", "gatehouse binary to start (default: go build ./issuer/cmd/gatehouse as make build does)")
	flag.StringVar(&o.profileDir, "profile", "", "build the issuer with a loopback pprof listener (a go build -overlay file; no source change) and write a CPU profile of each level's measured window to this directory")
	flag.StringVar(&o.client, "client", "h1", "how the browsers, the login/consent app and the relying party send: h1 (bench/internal/h1: request written and response read on the flow's goroutine over a pooled keep-alive connection) or transport (net/http's Transport, two goroutine hand-offs per request)")
	flag.StringVar(&o.genProfile, "generator-profile", "", "write a CPU profile of this load generator (all levels) to this file")
	mode := "code"
	flag.StringVar(&mode, "mode", mode, "which flow: code (authorization request in the browser's URL, bearer tokens), par-dpop (the request pushed to /oauth2/par with a DPoP proof, code exchange and refresh with DPoP proofs), or both (each level runs code, then par-dpop, on the same issuer, and the targets compare them)")
	benchproc.EnvFlag(&o.issuerEnv, "KEY=VALUE added to the issuer's environment (repeatable), e.g. KEYS_ALGORITHM=ES256 to compare configurations")
	flag.Parse()
	if o.client != "h1" && o.client != "transport" {
		fmt.Fprintf(os.Stderr, "bench/flows: -client %q: want h1 or transport\n", o.client)
		os.Exit(2)
	}
	var err error
	if o.modes, err = parseMode(mode); err != nil {
		fmt.Fprintln(os.Stderr, "bench/flows:", err)
		os.Exit(2)
	}
	if o.concurrency, err = parseConcurrency(conc); err != nil {
		fmt.Fprintln(os.Stderr, "bench/flows:", err)
		os.Exit(2)
	}
	if o.profileDir != "" && o.bin != "" {
		fmt.Fprintln(os.Stderr, "bench/flows: -profile builds the issuer itself (with a pprof overlay); it cannot be combined with -issuer")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/flows:", err)
		os.Exit(1)
	}
}

func parseConcurrency(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-concurrency: %q is not a number between 1 and 1024", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-concurrency: no level given")
	}
	return out, nil
}

// ---- report ----

type report struct {
	Machine machine        `json:"machine"`
	Options map[string]any `json:"options"`
	Backend string         `json:"backend"` // sqlite, postgres, mysql
	Issuer  issuerInfo     `json:"issuer"`
	Levels  []*level       `json:"levels"`
	LoadEnd string         `json:"loadavg_end"`
	Targets []target       `json:"targets"`
}

type machine struct {
	benchproc.Machine
	// BusyBefore is the cores the machine kept busy for a second before
	// the issuer started: other users' load on a shared machine.
	BusyBefore float64 `json:"busy_cores_before"`
	// CalibrationUS is the time of one RSA-2048 PKCS#1 v1.5 signature on
	// one goroutine (the ID token's signature), measured for a second
	// before the run and after it: a shared virtual machine's cores slow
	// down when its neighbours are busy, which no process list shows.
	CalibrationUS    float64 `json:"rsa2048_sign_us_before"`
	CalibrationEndUS float64 `json:"rsa2048_sign_us_after"`
}

type issuerInfo struct {
	PID          int    `json:"pid"`
	StartupMilli int64  `json:"startup_ms"`
	IdleRSSKiB   int64  `json:"idle_rss_kib"`
	PeakRSSKiB   int64  `json:"peak_rss_kib"`
	Check        string `json:"check"` // what the checked flow verified
}

type level struct {
	Mode        string         `json:"mode"` // flowCode or flowPARDPoP
	Concurrency int            `json:"concurrency"`
	Flows       int            `json:"flows"` // completed in the measured window
	Seconds     float64        `json:"seconds"`
	FlowsPerSec float64        `json:"flows_per_sec"`
	Errors      int            `json:"errors"`
	ErrorsBy    map[string]int `json:"errors_by_step,omitempty"`
	FirstError  string         `json:"first_error,omitempty"`
	Steps       []*dist        `json:"steps"`    // the five steps, then "flow"
	Requests    []*dist        `json:"requests"` // every HTTP request kind
	// CPU time per completed flow: the issuer process, this generator, the
	// database server's processes working for the issuer (PostgreSQL: the
	// backends of the issuer's connections plus the server's background
	// processes; MariaDB: the whole server), and cores busy with irq and
	// with anything else meanwhile.
	IssuerCPUms float64 `json:"issuer_cpu_ms_per_flow"`
	BenchCPUms  float64 `json:"bench_cpu_ms_per_flow"`
	DBCPUms     float64 `json:"db_cpu_ms_per_flow,omitempty"`
	OtherCores  float64 `json:"other_cpu_cores"` // other processes (irq excluded)
	IRQCores    float64 `json:"irq_cpu_cores"`   // irq and softirq (loopback TCP is partly here)
	RSSAfterKiB int64   `json:"issuer_rss_after_kib"`
	Profile     string  `json:"cpu_profile,omitempty"`
}

type dist struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

type target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Step names, in flow order.
const (
	stepAuthorize = "authorize"
	stepLogin     = "login accept"
	stepConsent   = "consent accept"
	stepToken     = "token exchange"
	stepRefresh   = "refresh"
	stepFlow      = "flow"
)

var steps = []string{stepAuthorize, stepLogin, stepConsent, stepToken, stepRefresh}

// HTTP request kinds, in flow order.
var requestKinds = []string{
	"GET /oauth2/auth",
	"GET admin login request",
	"PUT admin login accept",
	"GET /oauth2/auth login_verifier",
	"GET admin consent request",
	"PUT admin consent accept",
	"GET /oauth2/auth consent_verifier",
	"POST /oauth2/token code",
	"POST /oauth2/token refresh",
	"POST /oauth2/par",
}

// nRequestKinds is len(requestKinds).
const nRequestKinds = 10

func run(o options) error {
	rep := &report{
		Machine: machine{Machine: benchproc.ThisMachine()},
		Options: map[string]any{"duration": o.duration.String(), "warmup": o.warmup.String(),
			"concurrency": o.concurrency, "dsn": benchproc.RedactDSN(o.dsn), "issuer_env": o.issuerEnv, "client": o.client,
			"modes": o.modes},
		Backend: "sqlite",
	}
	logf := func(format string, a ...any) {
		if o.jsonOut {
			fmt.Fprintf(os.Stderr, format, a...)
		} else {
			fmt.Printf(format, a...)
		}
	}

	var cleanups []func()
	var cleanMu sync.Mutex
	cleanup := func() {
		cleanMu.Lock()
		defer cleanMu.Unlock()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		cleanups = nil
	}
	addCleanup := func(f func()) { cleanMu.Lock(); cleanups = append(cleanups, f); cleanMu.Unlock() }
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()

	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "gatehouse-bench-flows-bin-")
		if err != nil {
			return err
		}
		addCleanup(func() { os.RemoveAll(dir) })
		logf("building ./issuer/cmd/gatehouse ...\n")
		if bin, err = benchproc.BuildIssuer(dir, o.profileDir != ""); err != nil {
			return err
		}
	}

	// The database: a temporary SQLite file, or a fresh schema/database
	// on the server given, migrated as an operator would.
	dataDir, err := os.MkdirTemp("", "gatehouse-bench-flows-")
	if err != nil {
		return err
	}
	addCleanup(func() { os.RemoveAll(dataDir) })
	dsn := "sqlite://" + filepath.Join(dataDir, "gh.sqlite")
	if o.dsn != "" {
		var drop func()
		dsn, rep.Backend, drop, err = benchproc.FreshDatabase(o.dsn, "gh_bench_flows_")
		if err != nil {
			return err
		}
		addCleanup(drop)
		logf("database: %s\n", benchproc.RedactDSN(dsn))
		if err := benchproc.Migrate(bin, dsn); err != nil {
			return err
		}
	}
	rep.Options["backend"] = rep.Backend
	rep.Machine.BusyBefore = machineBusy(time.Second)
	rep.Machine.CalibrationUS = calibrate(time.Second)

	is, err := benchproc.StartIssuer(bin, dataDir, append([]string{"DSN=" + dsn,
		"URLS_LOGIN=" + appBase + "/login", "URLS_CONSENT=" + appBase + "/consent", "URLS_LOGOUT=" + appBase + "/logout"},
		o.issuerEnv...), o.profileDir != "")
	if err != nil {
		return err
	}
	addCleanup(is.Stop)
	rep.Issuer.PID = is.PID
	rep.Issuer.StartupMilli = is.Startup.Milliseconds()
	rep.Issuer.IdleRSSKiB = benchproc.RSSKiB(is.PID, "VmRSS")
	logf("== flows bench on %s: %s measured (+%s warm-up) per level, concurrency %v; %s, %d cores (GOMAXPROCS %d), %s %s, load average %s, %.2f cores busy before the start, RSA-2048 sign %.0f µs\n",
		rep.Backend, o.duration, o.warmup, o.concurrency, rep.Machine.CPU, rep.Machine.Cores, rep.Machine.GOMAXPROCS,
		rep.Machine.Go, rep.Machine.OS, rep.Machine.LoadStart, rep.Machine.BusyBefore, rep.Machine.CalibrationUS)
	logf("issuer: pid %d, public %s, admin %s, ready after %s, idle RSS %s\n",
		is.PID, is.Public, is.Admin, is.Startup.Round(time.Millisecond), benchproc.KiB(rep.Issuer.IdleRSSKiB))
	if len(o.issuerEnv) > 0 {
		logf("issuer environment added: %s\n", strings.Join(o.issuerEnv, " "))
	}

	maxConc := slices.Max(o.concurrency)
	var tr http.RoundTripper
	if o.client == "transport" {
		n := 2*maxConc + 4
		t := benchproc.Transport(2*n, n)
		defer t.CloseIdleConnections()
		tr = t
	} else {
		// Requests are bounded by the transport's timeout, not the
		// client's (which would add a timer per request).
		t := &h1.Transport{Timeout: 60 * time.Second, MaxIdlePerHost: 2*maxConc + 4}
		defer t.Close()
		tr = t
	}
	b := &bench{is: is, tr: tr, admin: &http.Client{Transport: tr}}
	if b.client, err = b.createClient(); err != nil {
		return err
	}
	if b.dpop, err = benchdpop.NewKey(); err != nil {
		return err
	}
	for _, m := range o.modes {
		check, err := b.checkFlow(m)
		if err != nil {
			return fmt.Errorf("the checked %s flow failed: %w", m, err)
		}
		logf("checked %s flow: %s\n", m, check)
		rep.Issuer.Check = strings.TrimPrefix(rep.Issuer.Check+"; ", "; ") + m + ": " + check
	}

	stopProfile, err := benchproc.StartCPUProfile(o.genProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	for _, c := range o.concurrency {
		for _, m := range o.modes {
			lv := b.level(o, m, c, rep.Backend)
			rep.Levels = append(rep.Levels, lv)
			logf("%s", lv.text())
		}
	}
	rep.Issuer.PeakRSSKiB = benchproc.RSSKiB(is.PID, "VmHWM")
	rep.LoadEnd = benchproc.LoadAvg()
	rep.Machine.CalibrationEndUS = calibrate(time.Second)
	rep.Targets = targets(rep)
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.printSummary()
	return nil
}

// targets compares the run with the flow targets (docs/benchmarks.md).
func targets(r *report) []target {
	out := []target{}
	for _, lv := range r.Levels {
		if lv.Mode != flowCode {
			continue
		}
		flow := lv.flowDist()
		switch lv.Concurrency {
		case 1:
			out = append(out, target{Name: "1 flow at a time: flow p50", Want: "<= 5 ms",
				Got: fmt.Sprintf("%.2f ms", flow.P50), Met: flow.Count > 0 && flow.P50 <= 5})
		case 16:
			out = append(out, target{Name: "16 concurrent flows: errors", Want: "0",
				Got: strconv.Itoa(lv.Errors), Met: lv.Errors == 0 && lv.Flows > 0})
			out = append(out, target{Name: "16 concurrent flows: throughput", Want: ">= 150 flows/s",
				Got: fmt.Sprintf("%.1f flows/s", lv.FlowsPerSec), Met: lv.FlowsPerSec >= 150})
		}
	}
	return append(out, parDPoPTargets(r.Levels)...)
}

func (lv *level) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n-- %s flow, %d concurrent: %.1f flows/s (%d flows in %.1fs), %d errors", lv.Mode, lv.Concurrency, lv.FlowsPerSec, lv.Flows, lv.Seconds, lv.Errors)
	if len(lv.ErrorsBy) > 0 {
		var parts []string
		for _, s := range steps {
			if n := lv.ErrorsBy[s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\n   CPU per flow: issuer %.2f ms, generator %.2f ms", lv.IssuerCPUms, lv.BenchCPUms)
	if lv.DBCPUms > 0 {
		fmt.Fprintf(&b, ", database server %.2f ms", lv.DBCPUms)
	}
	fmt.Fprintf(&b, "; meanwhile irq %.2f cores, other processes %.2f cores; issuer RSS %s\n", lv.IRQCores, lv.OtherCores, benchproc.KiB(lv.RSSAfterKiB))
	if lv.FirstError != "" {
		fmt.Fprintf(&b, "   first error: %s\n", lv.FirstError)
	}
	fmt.Fprintf(&b, "   %-36s %8s %8s %8s %8s %8s\n", "step", "count", "p50 ms", "p99 ms", "max ms", "mean ms")
	for _, d := range lv.Steps {
		fmt.Fprintf(&b, "   %-36s %8d %8.2f %8.2f %8.2f %8.2f\n", d.Name, d.Count, d.P50, d.P99, d.Max, d.Mean)
	}
	fmt.Fprintf(&b, "   %-36s\n", "requests:")
	for _, d := range lv.Requests {
		fmt.Fprintf(&b, "   %-36s %8d %8.2f %8.2f %8.2f %8.2f\n", "  "+d.Name, d.Count, d.P50, d.P99, d.Max, d.Mean)
	}
	if lv.Profile != "" {
		fmt.Fprintf(&b, "   issuer CPU profile: %s\n", lv.Profile)
	}
	return b.String()
}

func (r *report) printSummary() {
	fmt.Printf("\n%-9s %-12s %9s %7s", "flow", "concurrency", "flows/s", "errors")
	for _, s := range append(slices.Clone(steps), stepFlow) {
		fmt.Printf(" %16s", s+" p50/p99")
	}
	fmt.Println()
	for _, lv := range r.Levels {
		fmt.Printf("%-9s %-12d %9.1f %7d", lv.Mode, lv.Concurrency, lv.FlowsPerSec, lv.Errors)
		for _, d := range lv.Steps {
			fmt.Printf(" %16s", fmt.Sprintf("%.2f/%.2f", d.P50, d.P99))
		}
		fmt.Println()
	}
	fmt.Printf("(milliseconds) backend %s; load average: start %s, end %s; RSA-2048 sign: %.0f µs before, %.0f µs after; issuer peak RSS %s\n",
		r.Backend, r.Machine.LoadStart, r.LoadEnd, r.Machine.CalibrationUS, r.Machine.CalibrationEndUS, benchproc.KiB(r.Issuer.PeakRSSKiB))
	for _, t := range r.Targets {
		verdict := "met"
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Printf("target %-36s want %-15s got %-15s %s\n", t.Name+":", t.Want, t.Got, verdict)
	}
}

// ---- the flows ----

type bench struct {
	is     *benchproc.Process
	tr     http.RoundTripper
	admin  *http.Client // the login/consent app's and the relying party's client
	client client
	dpop   *benchdpop.Key // the client's DPoP key (-mode par-dpop)
	seq    atomic.Int64
}

type client struct{ ID, Secret, basic string }

// callback is where the client's redirect_uri and the login and consent
// apps live: never contacted (port 9, discard); the browser stops at
// them and this program plays the apps.
const appBase = "http://127.0.0.1:9"

const callback = appBase + "/callback"

func (b *bench) createClient() (client, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name":                "bench flows",
		"redirect_uris":              []string{callback},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline_access",
		"token_endpoint_auth_method": "client_secret_basic",
	})
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	code, raw, err := b.call(b.admin, http.MethodPost, b.is.Admin+"/admin/clients", "application/json", "", body)
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("POST /admin/clients: %d %.300s", code, raw)
	}
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		return client{}, fmt.Errorf("creating the client: %w", err)
	}
	// RFC 6749 §2.3.1: client_id and secret are form-encoded before Basic.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(out.ID)+":"+url.QueryEscape(out.Secret)))
	return client{out.ID, out.Secret, basic}, nil
}

// flowResult is one flow's timings: per step and per request kind.
type flowResult struct {
	step    [5]time.Duration
	req     [nRequestKinds]time.Duration
	failed  string // step name
	err     error
	tokens  tokenResponse // of the exchange
	refresh tokenResponse
	nonce   string
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
}

// flow runs one complete flow in a new browser (its own cookie jar).
func (b *bench) flow(mode string) (r flowResult) {
	jar, _ := cookiejar.New(nil)
	br := &http.Client{Jar: jar, Transport: b.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	subject := "bench-user-" + strconv.FormatInt(b.seq.Add(1), 10)
	verifier, challenge := pkcePair()
	state, nonce := randomString(), randomString()
	r.nonce = nonce
	fail := func(step string, err error) flowResult {
		r.failed, r.err = step, err
		return r
	}

	// authorize
	q := url.Values{
		"response_type": {"code"}, "client_id": {b.client.ID}, "redirect_uri": {callback},
		"scope": {"openid offline_access"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	t0 := time.Now()
	authURL := b.is.Public + "/oauth2/auth?" + q.Encode()
	var err error
	if mode == flowPARDPoP {
		// RFC 9126: the request is pushed (with a DPoP proof binding the
		// code, RFC 9449 §10.1); the browser carries client_id and
		// request_uri only.
		authURL, err = b.push(q, &r.req[9])
	}
	var at *url.URL
	if err == nil {
		at, err = b.visit(br, authURL, &r.req[0])
	}
	r.step[0] = time.Since(t0)
	if err != nil {
		return fail(stepAuthorize, err)
	}
	if at.Path != "/login" {
		return fail(stepAuthorize, fmt.Errorf("expected the login app, got %s", at))
	}

	// login accept
	t0 = time.Now()
	ch := url.QueryEscape(at.Query().Get("login_challenge"))
	var lr struct {
		Skip bool `json:"skip"`
	}
	if err := b.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+ch, nil, &lr, &r.req[1]); err != nil {
		return fail(stepLogin, err)
	}
	var red struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := b.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
		map[string]any{"subject": subject, "remember": true, "remember_for": 3600, "acr": "1", "amr": []string{"pwd"}}, &red, &r.req[2]); err != nil {
		return fail(stepLogin, err)
	}
	at, err = b.visit(br, red.RedirectTo, &r.req[3])
	r.step[1] = time.Since(t0)
	if err != nil {
		return fail(stepLogin, err)
	}
	if at.Path != "/consent" {
		return fail(stepLogin, fmt.Errorf("expected the consent app, got %s", at))
	}

	// consent accept
	t0 = time.Now()
	ch = url.QueryEscape(at.Query().Get("consent_challenge"))
	var cr struct {
		Skip     bool     `json:"skip"`
		Scope    []string `json:"requested_scope"`
		Audience []string `json:"requested_access_token_audience"`
	}
	if err := b.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &cr, &r.req[4]); err != nil {
		return fail(stepConsent, err)
	}
	red.RedirectTo = ""
	if err := b.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch, map[string]any{
		"grant_scope": cr.Scope, "grant_access_token_audience": cr.Audience, "remember": true, "remember_for": 3600,
		"session": map[string]any{"id_token": map[string]any{"email": subject + "@example.com"}},
	}, &red, &r.req[5]); err != nil {
		return fail(stepConsent, err)
	}
	at, err = b.visit(br, red.RedirectTo, &r.req[6])
	r.step[2] = time.Since(t0)
	if err != nil {
		return fail(stepConsent, err)
	}
	cq := at.Query()
	if at.Path != "/callback" || cq.Get("state") != state || cq.Get("code") == "" {
		return fail(stepConsent, fmt.Errorf("expected the callback with state and code, got %s", at))
	}

	// token exchange
	t0 = time.Now()
	err = b.token(mode, url.Values{"grant_type": {"authorization_code"}, "code": {cq.Get("code")},
		"redirect_uri": {callback}, "code_verifier": {verifier}}, &r.tokens, &r.req[7])
	r.step[3] = time.Since(t0)
	if err == nil && (r.tokens.AccessToken == "" || r.tokens.RefreshToken == "" || r.tokens.IDToken == "") {
		err = fmt.Errorf("the exchange lacks a token: access %t, refresh %t, id %t",
			r.tokens.AccessToken != "", r.tokens.RefreshToken != "", r.tokens.IDToken != "")
	}
	if err != nil {
		return fail(stepToken, err)
	}

	// refresh
	t0 = time.Now()
	err = b.token(mode, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.tokens.RefreshToken}}, &r.refresh, &r.req[8])
	r.step[4] = time.Since(t0)
	if err == nil && (r.refresh.AccessToken == "" || r.refresh.RefreshToken == "" || r.refresh.RefreshToken == r.tokens.RefreshToken) {
		err = errors.New("the refresh did not return a new access and refresh token")
	}
	if err != nil {
		return fail(stepRefresh, err)
	}
	return r
}

// visit opens u in the browser and follows redirects while they stay on
// the issuer; it returns the first URL outside it. The time of the
// requests is added to *d.
func (b *bench) visit(br *http.Client, u string, d *time.Duration) (*url.URL, error) {
	t0 := time.Now()
	defer func() { *d += time.Since(t0) }()
	if u == "" {
		return nil, errors.New("no redirect_to")
	}
	issuerHost := strings.TrimPrefix(b.is.Public, "http://")
	for range 10 {
		resp, err := br.Get(u)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return nil, fmt.Errorf("GET %s: %d %.300s", resp.Request.URL.Path, resp.StatusCode, body)
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, fmt.Errorf("bad Location %q", resp.Header.Get("Location"))
		}
		if next.Host != issuerHost {
			return next, nil
		}
		if strings.HasPrefix(next.Path, "/oauth2/fallbacks/") {
			return nil, fmt.Errorf("redirected to the error page: %s", next.Query().Get("error_description"))
		}
		u = next.String()
	}
	return nil, fmt.Errorf("too many redirects from %s", u)
}

func (b *bench) adminJSON(method, path string, in, out any, d *time.Duration) error {
	var body []byte
	ct := ""
	if in != nil {
		body, _ = json.Marshal(in)
		ct = "application/json"
	}
	t0 := time.Now()
	code, raw, err := b.call(b.admin, method, b.is.Admin+path, ct, "", body)
	*d += time.Since(t0)
	if err != nil {
		return err
	}
	p, _, _ := strings.Cut(path, "?")
	if code != http.StatusOK {
		return fmt.Errorf("%s %s: %d %.300s", method, p, code, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %v", method, p, err)
	}
	return nil
}

func (b *bench) token(mode string, form url.Values, out *tokenResponse, d *time.Duration) error {
	t0 := time.Now()
	code, raw, err := b.callProof(b.admin, http.MethodPost, b.is.Public+"/oauth2/token", "application/x-www-form-urlencoded", b.client.basic,
		b.proofFor(mode, "/oauth2/token"), []byte(form.Encode()))
	*d += time.Since(t0)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("POST /oauth2/token %s: %d %.300s", form.Get("grant_type"), code, raw)
	}
	return json.Unmarshal(raw, out)
}

func (b *bench) call(hc *http.Client, method, u, contentType, auth string, body []byte) (int, []byte, error) {
	return b.callProof(hc, method, u, contentType, auth, "", body)
}

// callProof is call with a DPoP header when proof is not empty.
func (b *bench) callProof(hc *http.Client, method, u, contentType, auth, proof string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, raw, err
}

// checkFlow runs one flow and verifies its tokens as a relying party
// would: the ID token's signature against the JWKS from discovery, iss,
// aud, nonce and at_hash (go-oidc), and that the refresh rotated the
// refresh token and issued a new ID token for the same subject.
func (b *bench) checkFlow(mode string) (string, error) {
	r := b.flow(mode)
	if r.err != nil {
		return "", fmt.Errorf("%s: %w", r.failed, r.err)
	}
	ctx := oidc.ClientContext(context.Background(), b.admin)
	p, err := oidc.NewProvider(ctx, b.is.Public)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	v := p.Verifier(&oidc.Config{ClientID: b.client.ID})
	idt, err := v.Verify(ctx, r.tokens.IDToken)
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != r.nonce {
		return "", fmt.Errorf("ID token nonce %q, want %q", idt.Nonce, r.nonce)
	}
	if err := idt.VerifyAccessToken(r.tokens.AccessToken); err != nil {
		return "", fmt.Errorf("at_hash: %w", err)
	}
	if r.refresh.IDToken == "" {
		return "", errors.New("the refresh returned no ID token")
	}
	idt2, err := v.Verify(ctx, r.refresh.IDToken)
	if err != nil {
		return "", fmt.Errorf("refreshed ID token: %w", err)
	}
	if idt2.Subject != idt.Subject {
		return "", fmt.Errorf("refreshed ID token subject %q, want %q", idt2.Subject, idt.Subject)
	}
	if mode == flowPARDPoP && (r.tokens.TokenType != "DPoP" || r.refresh.TokenType != "DPoP") {
		return "", fmt.Errorf("token_type %q and %q, want DPoP", r.tokens.TokenType, r.refresh.TokenType)
	}
	kind := "opaque"
	if strings.Count(r.tokens.AccessToken, ".") == 2 {
		kind = "JWT"
	}
	return fmt.Sprintf("ID token verified (go-oidc: signature, iss, aud, nonce, at_hash), %s %s access token, scope %q, refresh token rotated, refreshed ID token for the same sub",
		kind, r.tokens.TokenType, r.tokens.Scope), nil
}

// level runs c flows at once (each worker starts a new flow when its last
// one ends) for the warm-up, then for the measured duration. A flow
// counts when it ends inside the measured window.
func (b *bench) level(o options, mode string, c int, backend string) *level {
	var measuring, stop atomic.Bool
	type workerRes struct {
		steps    [6][]int64
		reqs     [nRequestKinds][]int64
		flows    int
		errs     map[string]int
		firstErr string
	}
	out := make([]workerRes, c)
	var wg sync.WaitGroup
	for w := range out {
		out[w].errs = map[string]int{}
		wg.Add(1)
		go func(wr *workerRes) {
			defer wg.Done()
			for !stop.Load() {
				r := b.flow(mode)
				if !measuring.Load() || stop.Load() {
					continue
				}
				if r.err != nil {
					wr.errs[r.failed]++
					if wr.firstErr == "" {
						wr.firstErr = r.failed + ": " + r.err.Error()
					}
					continue
				}
				wr.flows++
				var total time.Duration
				for i, d := range r.step {
					wr.steps[i] = append(wr.steps[i], int64(d))
					total += d
				}
				wr.steps[5] = append(wr.steps[5], int64(total))
				for i, d := range r.req {
					wr.reqs[i] = append(wr.reqs[i], int64(d))
				}
			}
		}(&out[w])
	}
	time.Sleep(o.warmup)
	profDone := make(chan error, 1)
	profFile := ""
	if b.is.Profiling() {
		profFile = filepath.Join(o.profileDir, fmt.Sprintf("flows-%s-%s-c%d.pprof", benchproc.BackendOf(o.dsn), mode, c))
		go func() { profDone <- b.is.CPUProfile(profFile, o.duration) }()
	} else {
		profDone <- nil
	}
	cpu0 := sampleCPU(b.is.PID, backend)
	start := time.Now()
	measuring.Store(true)
	time.Sleep(o.duration)
	stop.Store(true)
	elapsed := time.Since(start)
	cpu1 := sampleCPU(b.is.PID, backend)
	wg.Wait()
	profErr := <-profDone

	lv := &level{Mode: mode, Concurrency: c, Seconds: elapsed.Seconds(), ErrorsBy: map[string]int{}}
	var stepLat [6][]int64
	var reqLat [nRequestKinds][]int64
	for _, r := range out {
		lv.Flows += r.flows
		for s, n := range r.errs {
			lv.ErrorsBy[s] += n
			lv.Errors += n
		}
		if lv.FirstError == "" {
			lv.FirstError = r.firstErr
		}
		for i := range stepLat {
			stepLat[i] = append(stepLat[i], r.steps[i]...)
		}
		for i := range reqLat {
			reqLat[i] = append(reqLat[i], r.reqs[i]...)
		}
	}
	if len(lv.ErrorsBy) == 0 {
		lv.ErrorsBy = nil
	}
	lv.FlowsPerSec = float64(lv.Flows) / elapsed.Seconds()
	for i, name := range append(slices.Clone(steps), stepFlow) {
		lv.Steps = append(lv.Steps, distOf(name, stepLat[i]))
	}
	for i, name := range requestKinds {
		lv.Requests = append(lv.Requests, distOf(name, reqLat[i]))
	}
	if lv.Flows > 0 {
		d := cpu1.sub(cpu0)
		n := float64(lv.Flows)
		lv.IssuerCPUms = d.Server.Seconds() * 1e3 / n
		lv.BenchCPUms = d.Self.Seconds() * 1e3 / n
		lv.DBCPUms = d.db.Seconds() * 1e3 / n
		lv.OtherCores = max(0, (d.Machine-d.IRQ-d.Server-d.Self-d.db).Seconds()/elapsed.Seconds())
		lv.IRQCores = d.IRQ.Seconds() / elapsed.Seconds()
	}
	lv.RSSAfterKiB = benchproc.RSSKiB(b.is.PID, "VmRSS")
	if profFile != "" {
		if profErr != nil {
			lv.FirstError += " (profile: " + profErr.Error() + ")"
		} else {
			lv.Profile = profFile
		}
	}
	return lv
}

func distOf(name string, lat []int64) *dist {
	slices.Sort(lat)
	d := &dist{Name: name, Count: len(lat)}
	if len(lat) == 0 {
		return d
	}
	ms := func(p float64) float64 {
		// Nearest rank.
		i := int(p/100*float64(len(lat))+0.999999) - 1
		return float64(lat[max(0, min(i, len(lat)-1))]) / 1e6
	}
	var sum int64
	for _, v := range lat {
		sum += v
	}
	d.P50, d.P99, d.Max = ms(50), ms(99), ms(100)
	d.Mean = float64(sum) / float64(len(lat)) / 1e6
	return d
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- the issuer process ----

// cpuSample is the CPU time used so far by the issuer, this process and
// the machine, and per process of the database server (db).
type cpuSample struct {
	benchproc.CPUSample
	db map[int]time.Duration
}

// cpuDelta is what was used between two samples.
type cpuDelta struct {
	benchproc.CPUSample
	db time.Duration
}

func (a cpuSample) sub(b cpuSample) cpuDelta {
	d := cpuDelta{CPUSample: a.CPUSample.Sub(b.CPUSample)}
	// A database process that appeared in between counts whole; one that
	// ended in between is missed.
	for pid, t := range a.db {
		d.db += t - b.db[pid]
	}
	return d
}

// sampleCPU reads the CPU times of the issuer (pid), this process, the
// machine, and the database server processes working for the issuer (see
// benchproc.DBProcesses).
func sampleCPU(pid int, backend string) cpuSample {
	s := cpuSample{db: map[int]time.Duration{}}
	for _, p := range benchproc.DBProcesses(pid, backend) {
		s.db[p], _ = benchproc.ProcCPU(strconv.Itoa(p))
	}
	s.CPUSample = benchproc.SampleCPU(pid)
	return s
}

// machineBusy is how many cores the machine kept busy (all processes,
// irq included) over d: the load other users put on a shared machine
// before the run starts.
func machineBusy(d time.Duration) float64 {
	a := benchproc.SampleCPU(0)
	time.Sleep(d)
	return benchproc.SampleCPU(0).Sub(a).Machine.Seconds() / d.Seconds()
}

// calibrate returns the microseconds one RSA-2048 PKCS#1 v1.5 SHA-256
// signature takes on one goroutine, over d.
func calibrate(d time.Duration) float64 {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0
	}
	sum := sha256.Sum256([]byte("gatehouse bench/flows calibration"))
	n := 0
	start := time.Now()
	for time.Since(start) < d || n < 10 {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			return 0
		}
		n++
	}
	return float64(time.Since(start).Microseconds()) / float64(n)
}
