// Command issuer is the issuer's load generator. It builds and starts the
// real gatehouse binary on the embedded SQLite default (or is pointed at a
// running one with -public/-admin), creates the clients it needs through
// the admin API, and drives HTTP/1.1 keep-alive requests over loopback
// from -connections workers (one request in flight each) for -duration per
// scenario:
//
//	hello       a trivial net/http handler in this process: the machine's
//	            HTTP ceiling, measured with the same generator
//	sign        single-goroutine sign rate of RS256-2048 and ES256 (jwx v3,
//	            the call the issuer makes), the JWT scenarios' baseline
//	opaque      client_credentials, opaque access token
//	jwt-rs256   client_credentials, RFC 9068 JWT signed with RS256-2048
//	jwt-es256   the same signed with ES256: a second issuer started with
//	            KEYS_ALGORITHM=ES256 (or, with -public/-admin, an ES256 key
//	            added to hydra.jwt.access-token and deleted afterwards)
//	dpop-rs256  jwt-rs256 with an ES256 DPoP proof (RFC 9449) per request
//	dpop-es256  jwt-es256 with an ES256 DPoP proof per request
//	exchange    RFC 8693 token exchange of a jwt-rs256 token for a JWT
//	            access token for another audience (exchange.go)
//	introspect  RFC 7662 introspection of a pool of opaque tokens
//	jwks        GET /.well-known/jwks.json
//	discovery   GET /.well-known/openid-configuration
//
// It prints requests/s, p50/p99/p99.9 latency, the error count (non-2xx or
// transport error), the ratio to the hello-world ceiling, for JWT
// scenarios the ratio to cores x single-core sign rate, the CPU time each
// request cost the issuer, and the issuer's resident memory idle and after
// load. Run from the repository root:
//
//	go run ./bench/issuer [-duration 10s] [-connections 16] [-scenarios a,b] [-json]
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/h1"
	"github.com/gatehouse-dev/gatehouse/issuer/keys"
)

type options struct {
	genProfile     string
	generatorProcs int
	client         string
	duration       time.Duration
	warmup         time.Duration
	signFor        time.Duration
	connections    int
	scenarios      string
	jsonOut        bool
	public         string
	admin          string
	pid            int
	bin            string
	tokens         int
	dpopProofs     int
	helloEach      bool
	pairs          int
	issuerEnv      []string
	// between, when set with pairs > 1, runs between the slices of a
	// scenario's measured window (the paired hello/sign measurements).
	between    func()
	profileDir string
}

const allScenarios = "hello,sign,opaque,jwt-rs256,jwt-es256,dpop-rs256,dpop-es256,exchange,introspect,jwks,discovery"

func main() {
	if os.Getenv(helloEnv) == "1" {
		serveHello()
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each load scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each load scenario (opens the connections)")
	flag.DurationVar(&o.signFor, "sign-duration", 2*time.Second, "how long each single-core sign rate is measured")
	flag.IntVar(&o.connections, "connections", 16, "concurrent keep-alive connections, one request in flight on each")
	flag.IntVar(&o.generatorProcs, "generator-procs", 0, "GOMAXPROCS of the load generator while it drives a server (0: all cores, the generator and the hello server in one process as always); with N > 0 the hello server runs in a child process with all cores, so that every scenario has a separate server and the same generator. A generator on fewer Ps spends less CPU spinning in the scheduler while it waits, which the server under test then has; on 1 P it also caps hello")
	flag.StringVar(&o.client, "client", "h1", "how the workers send: h1 (bench/internal/h1: each request written and its response read on the worker's goroutine over a pooled keep-alive connection, as wrk does) or transport (net/http's Client and Transport, whose per-connection goroutines cost the generator two scheduler hand-offs per request)")
	flag.StringVar(&o.scenarios, "scenarios", allScenarios, "comma-separated scenarios, in order (hello and sign always run first when listed; sign is added when a jwt-* scenario is listed)")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON document instead of the table")
	flag.StringVar(&o.public, "public", "", "public URL of a running issuer (default: build and start one on SQLite)")
	flag.StringVar(&o.admin, "admin", "", "admin URL of a running issuer (with -public)")
	flag.IntVar(&o.pid, "pid", 0, "with -public/-admin: the issuer's pid, to report its memory and CPU")
	flag.StringVar(&o.bin, "issuer", "", "gatehouse binary to start (default: go build ./issuer/cmd/gatehouse as make build does)")
	flag.IntVar(&o.dpopProofs, "dpop-proofs", 40000, "DPoP proofs signed ahead for each dpop-* scenario (more are signed on the fly, on the generator's cores)")
	flag.IntVar(&o.tokens, "tokens", 1000, "opaque tokens minted for the introspection scenario, introspected round robin")
	benchproc.EnvFlag(&o.issuerEnv, "KEY=VALUE added to the environment of the issuers this program starts (repeatable), e.g. GOGC=200 to compare configurations")
	flag.IntVar(&o.pairs, "pairs", 5, "split each issuer scenario's measured time into N slices and measure the hello ceiling (and, for JWT scenarios, the single-core sign rate) between them; the ratios compare the sums, so a drift of the machine's speed during a run falls on both sides (0 or 1: hello once at the start, the sign rate before and after)")
	flag.BoolVar(&o.helloEach, "hello-each", false, "with -pairs 0: re-measure the hello-world ceiling right before each issuer scenario and take its ratio to that one")
	flag.StringVar(&o.profileDir, "profile", "", "build the issuer with a loopback pprof listener (a go build -overlay file; no source change) and write a CPU profile of each issuer scenario's measured window to this directory")
	flag.StringVar(&o.genProfile, "generator-profile", "", "write a CPU profile of this load generator (every scenario, and the in-process hello server when hello runs) to this file")
	flag.Parse()
	if o.client != "h1" && o.client != "transport" {
		fmt.Fprintf(os.Stderr, "bench/issuer: -client %q: want h1 or transport\n", o.client)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/issuer:", err)
		os.Exit(1)
	}
}

// report is the whole run, printed as a table or as JSON.
type report struct {
	Machine   benchproc.Machine `json:"machine"`
	Options   map[string]any    `json:"options"`
	Sign      []signRate        `json:"sign_rates,omitempty"`
	Issuers   []*issuerMem      `json:"issuers,omitempty"`
	Scenarios []*scenario       `json:"scenarios"`
	LoadEnd   string            `json:"loadavg_end"`
}

type signRate struct {
	Alg string `json:"alg"`
	// JWXPerSec is signatures per second of CPU time of one goroutine
	// (keys.SignCompact with kid and typ headers, the call keys.Manager.Sign
	// makes: jwx's jwsbb building blocks): what one
	// core does when nothing else runs on it. Counting CPU rather than wall
	// time keeps the other processes of a shared machine out of it.
	JWXPerSec  float64 `json:"jwx_per_cpu_sec"`
	JWXWallSec float64 `json:"jwx_per_wall_sec"`
	RawPerSec  float64 `json:"raw_per_cpu_sec"` // crypto/rsa or crypto/ecdsa over a SHA-256 digest
	// ExportedPerSec is JWXPerSec with a private JWK read back with
	// jwk.ParseKey and jwk.Export and not precomputed: what an RS256
	// signature costs without the Precompute keys.Manager does on opening.
	ExportedPerSec float64 `json:"jwx_exported_key_per_cpu_sec"`
	// ParallelPerSec is keys.SignCompact on GOMAXPROCS goroutines at once, per
	// wall-second: what the cores really give together (on a quiet
	// machine), against the cores x single-core product.
	ParallelPerSec float64 `json:"jwx_parallel_per_wall_sec"`
	ParallelOther  float64 `json:"parallel_other_cpu_cores"` // other processes' cores meanwhile
}

type issuerMem struct {
	Name         string `json:"name"`
	PID          int    `json:"pid"`
	IdleRSSKiB   int64  `json:"idle_rss_kib"`
	LoadRSSKiB   int64  `json:"rss_after_load_kib"`
	PeakRSSKiB   int64  `json:"peak_rss_kib"`
	StartupMilli int64  `json:"startup_ms,omitempty"`
}

type scenario struct {
	Name        string  `json:"name"`
	Requests    int     `json:"requests"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	Maxms       float64 `json:"max_ms"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	OfHello     float64 `json:"ratio_to_hello,omitempty"`
	OfSignCeil  float64 `json:"ratio_to_cores_x_sign,omitempty"`
	SignShare   float64 `json:"sign_share_of_server_cpu,omitempty"` // single-core sign CPU / issuer CPU per token
	SignBefore  float64 `json:"sign_before_per_cpu_sec,omitempty"`  // single-core sign rate before the run (the sign scenario)
	SignAfter   float64 `json:"sign_after_per_cpu_sec,omitempty"`   // and right after it; without -pairs the ratio uses the higher
	SignPaired  float64 `json:"sign_paired_per_cpu_sec,omitempty"`  // with -pairs: the mean of the rates measured between the slices
	Pairs       int     `json:"pairs,omitempty"`                    // slices interleaved with hello (and sign) measurements
	HelloRPS    float64 `json:"hello_rps_adjacent,omitempty"`       // with -hello-each: the ceiling measured just before
	ServerCPUus float64 `json:"server_cpu_us_per_req,omitempty"`    // issuer (or, for hello, this process) CPU per request
	BenchCPUus  float64 `json:"bench_cpu_us_per_req,omitempty"`     // this process (generator), not for hello
	OtherCPU    float64 `json:"other_cpu_cores"`                    // cores busy with other processes meanwhile (irq/softirq excluded)
	SoftIRQ     float64 `json:"irq_cpu_cores"`                      // cores in irq/softirq meanwhile (loopback TCP is partly here)
	RSSAfterKiB int64   `json:"server_rss_after_kib,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func run(o options) error {
	scen, err := parseScenarios(o.scenarios)
	if err != nil {
		return err
	}
	stopProfile, err := benchproc.StartCPUProfile(o.genProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	rep := &report{
		Machine: benchproc.ThisMachine(),
		Options: map[string]any{"duration": o.duration.String(), "warmup": o.warmup.String(), "connections": o.connections,
			"scenarios": strings.Join(scen, ","), "tokens": o.tokens, "client": o.client, "generator_procs": o.generatorProcs, "pairs": o.pairs, "issuer_env": o.issuerEnv},
	}
	logf := func(format string, a ...any) {
		if !o.jsonOut {
			fmt.Printf(format, a...)
		} else {
			fmt.Fprintf(os.Stderr, format, a...)
		}
	}
	logf("== issuer bench: %d connections, %s per scenario (+%s warm-up), %s, %d cores (GOMAXPROCS %d), %s %s, load average %s\n",
		o.connections, o.duration, o.warmup, rep.Machine.CPU, rep.Machine.Cores, rep.Machine.GOMAXPROCS,
		rep.Machine.Go, rep.Machine.OS, rep.Machine.LoadStart)

	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		cleanups = nil
	}
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()

	var hello *scenario
	signs := map[string]signRate{}

	// The issuer under test: started here, or the one given.
	var main *issuerProc
	needIssuer := slices.ContainsFunc(scen, func(s string) bool { return s != "hello" && s != "sign" })
	bin := o.bin
	if needIssuer && o.public == "" && bin == "" {
		dir, err := os.MkdirTemp("", "gatehouse-bench-bin-")
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		logf("building ./issuer/cmd/gatehouse ...\n")
		if bin, err = benchproc.BuildIssuer(dir, o.profileDir != ""); err != nil {
			return err
		}
	}
	if needIssuer {
		if o.public != "" {
			if o.admin == "" {
				return errors.New("-public needs -admin")
			}
			main = &issuerProc{Process: &benchproc.Process{Public: strings.TrimRight(o.public, "/"), Admin: strings.TrimRight(o.admin, "/"), PID: o.pid}, name: "given"}
		} else {
			p, err := startIssuer(bin, "rs256", o.issuerEnv, o.profileDir != "")
			if err != nil {
				return err
			}
			cleanups = append(cleanups, p.stop)
			main = p
		}
		main.mem.Name, main.mem.PID = main.name, main.PID
		main.mem.IdleRSSKiB = benchproc.RSSKiB(main.PID, "VmRSS")
		rep.Issuers = append(rep.Issuers, &main.mem)
		logf("issuer %s: pid %d, public %s, admin %s, idle RSS %s (after start, before any request)\n",
			main.name, main.PID, main.Public, main.Admin, benchproc.KiB(main.mem.IdleRSSKiB))
	}

	for _, name := range scen {
		var s *scenario
		var adjacent float64
		if o.helloEach && o.pairs <= 1 && name != "hello" && name != "sign" { // with pairs, hello is measured between the slices
			h, err := helloScenario(o)
			if err != nil {
				return err
			}
			adjacent = h.RPS
		}
		// -pairs: the hello ceiling (and the sign rate) measured between
		// the slices of this scenario's window.
		so := o
		var pairReq int
		var pairSec, signSum float64
		var signN int
		jwtAlg, isJWT := strings.CutPrefix(name, "jwt-")
		if o.pairs > 1 && name != "hello" && name != "sign" {
			ho := o
			ho.duration, ho.warmup = o.duration/time.Duration(o.pairs), 200*time.Millisecond
			so.between = func() {
				if h, err := helloScenario(ho); err == nil {
					pairReq += h.Requests
					pairSec += h.Seconds
				}
				if isJWT {
					if r, err := signRateAgain(strings.ToUpper(jwtAlg), o.signFor/time.Duration(o.pairs)); err == nil {
						signSum += r
						signN++
					}
				}
			}
		}
		switch name {
		case "hello":
			s, err = helloScenario(o)
			hello = s
		case "sign":
			for _, alg := range []string{"RS256", "ES256"} {
				r, err := measureSign(alg, o.signFor)
				if err != nil {
					return err
				}
				signs[alg] = r
				rep.Sign = append(rep.Sign, r)
				logf("sign %s on one goroutine: %.0f per CPU-second with keys.SignCompact (the issuer's call, on jwx v3 jwsbb; %.0f per wall-second), %.0f raw crypto, %.0f with a JWK-exported key not precomputed; x %d cores = %.0f/s; measured on %d goroutines: %.0f/s (other processes: %.2f cores)\n",
					alg, r.JWXPerSec, r.JWXWallSec, r.RawPerSec, r.ExportedPerSec, runtime.NumCPU(), r.JWXPerSec*float64(runtime.NumCPU()), runtime.GOMAXPROCS(0), r.ParallelPerSec, r.ParallelOther)
			}
			continue
		case "opaque":
			s, err = tokenScenario(so, main, "opaque", "opaque", "")
		case "jwt-rs256":
			s, err = tokenScenario(so, main, "jwt-rs256", "jwt", "RS256")
		case "jwt-es256", "dpop-es256":
			s, err = es256Scenario(so, main, bin, rep, logf, name)
		case "dpop-rs256":
			s, err = dpopScenario(so, main, "dpop-rs256", "RS256")
		case "exchange":
			s, err = exchangeScenario(so, main)
		case "introspect":
			s, err = introspectScenario(so, main, logf)
		case "jwks":
			s, err = getScenario(so, main, "jwks", main.Public+"/.well-known/jwks.json")
		case "discovery":
			s, err = getScenario(so, main, "discovery", main.Public+"/.well-known/openid-configuration")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hello != nil && s != hello && hello.RPS > 0 {
			s.OfHello = s.RPS / hello.RPS
		}
		if adjacent > 0 {
			s.HelloRPS, s.OfHello = adjacent, s.RPS/adjacent
		}
		if s.Pairs > 0 && pairSec > 0 {
			s.HelloRPS = float64(pairReq) / pairSec
			s.OfHello = s.RPS / s.HelloRPS
		}
		if alg, ok := strings.CutPrefix(s.Name, "jwt-"); ok {
			if r, ok := signs[strings.ToUpper(alg)]; ok {
				// The reference is the faster of the sign rates measured
				// before and right after the scenario (the least
				// flattering when the host's speed drifts during a run).
				s.SignBefore = r.JWXPerSec
				var ref float64
				if signN > 0 {
					s.SignPaired = signSum / float64(signN)
					ref = s.SignPaired
				} else {
					after, err := signRateAgain(strings.ToUpper(alg), o.signFor)
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					s.SignAfter = after
					ref = max(r.JWXPerSec, after)
				}
				s.OfSignCeil = s.RPS / (ref * float64(runtime.NumCPU()))
				if s.ServerCPUus > 0 {
					s.SignShare = 1e6 / ref / s.ServerCPUus
				}
			}
		}
		rep.Scenarios = append(rep.Scenarios, s)
		logf("%s\n", s.line())
	}
	if main != nil && main.PID > 0 {
		main.mem.LoadRSSKiB = benchproc.RSSKiB(main.PID, "VmRSS")
		main.mem.PeakRSSKiB = benchproc.RSSKiB(main.PID, "VmHWM")
	}
	rep.LoadEnd = benchproc.LoadAvg()
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.printTable()
	return nil
}

func parseScenarios(list string) ([]string, error) {
	known := strings.Split(allScenarios, ",")
	var want []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, allScenarios)
		}
		if !slices.Contains(want, s) {
			want = append(want, s)
		}
	}
	if slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, "jwt-") }) && !slices.Contains(want, "sign") {
		want = append(want, "sign")
	}
	// Baselines first.
	var out []string
	for _, b := range []string{"hello", "sign"} {
		if slices.Contains(want, b) {
			out = append(out, b)
		}
	}
	for _, s := range want {
		if s != "hello" && s != "sign" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (s *scenario) line() string {
	b := fmt.Sprintf("%-11s %8.0f req/s  p50 %7.2fms  p99 %7.2fms  p99.9 %7.2fms  errors %d", s.Name, s.RPS, s.P50ms, s.P99ms, s.P999ms, s.Errors)
	if s.OfHello > 0 {
		b += fmt.Sprintf("  %5.1f%% of hello", 100*s.OfHello)
	}
	if s.OfSignCeil > 0 {
		if s.SignPaired > 0 {
			b += fmt.Sprintf("  %5.1f%% of cores x sign (%.0f/s, measured between its %d slices)", 100*s.OfSignCeil, s.SignPaired, s.Pairs)
		} else {
			b += fmt.Sprintf("  %5.1f%% of cores x sign (%.0f/s before, %.0f/s after)", 100*s.OfSignCeil, s.SignBefore, s.SignAfter)
		}
	}
	if s.HelloRPS > 0 && s.Pairs > 0 {
		b += fmt.Sprintf(" (hello between its %d slices: %.0f/s)", s.Pairs, s.HelloRPS)
	} else if s.HelloRPS > 0 {
		b += fmt.Sprintf(" (hello just before: %.0f/s)", s.HelloRPS)
	}
	if s.ServerCPUus > 0 {
		b += fmt.Sprintf("  server %.0fµs CPU/req", s.ServerCPUus)
	}
	if s.SignShare > 0 {
		b += fmt.Sprintf(" (%.0f%% of it signing)", 100*s.SignShare)
	}
	if s.BenchCPUus > 0 {
		b += fmt.Sprintf(", bench %.0fµs", s.BenchCPUus)
	}
	b += fmt.Sprintf(", irq %.2f, other processes %.2f cores", s.SoftIRQ, s.OtherCPU)
	if s.FirstError != "" {
		b += "\n            first error: " + s.FirstError
	}
	if s.Note != "" {
		b += "\n            " + s.Note
	}
	return b
}

func (r *report) printTable() {
	fmt.Printf("\n%-11s %9s %9s %9s %9s %7s %8s %8s %9s %8s\n", "scenario", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "/hello", "/sign", "cpu µs/r", "rss KiB")
	for _, s := range r.Scenarios {
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*v)
		}
		rss := "-"
		if s.RSSAfterKiB > 0 {
			rss = strconv.FormatInt(s.RSSAfterKiB, 10)
		}
		fmt.Printf("%-11s %9.0f %9.2f %9.2f %9.2f %7d %8s %8s %9.0f %8s\n", s.Name, s.RPS, s.P50ms, s.P99ms, s.P999ms, s.Errors,
			ratio(s.OfHello), ratio(s.OfSignCeil), s.ServerCPUus, rss)
	}
	for _, m := range r.Issuers {
		fmt.Printf("issuer %-7s pid %d: idle RSS %s, after load %s, peak %s\n", m.Name, m.PID, benchproc.KiB(m.IdleRSSKiB), benchproc.KiB(m.LoadRSSKiB), benchproc.KiB(m.PeakRSSKiB))
	}
	fmt.Printf("load average: start %s, end %s\n", r.Machine.LoadStart, r.LoadEnd)
}

// ---- load generation ----

// target is what one worker sends: a fresh request per call.
type target func() (*http.Request, error)

// load runs n workers, each with one request in flight on its own
// keep-alive connection, for warmup (unmeasured) then d. The CPU time of
// is (nil: the server runs in this process) is charged to the server;
// with -profile, its CPU profile over the measured window is saved.
func load(o options, name string, is *issuerProc, mk target) *scenario {
	serverPID := 0
	if is != nil {
		serverPID = is.PID
	}
	if o.generatorProcs > 0 && is != nil {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.generatorProcs))
	}
	var do func(req *http.Request) (*http.Response, error)
	if o.client == "transport" {
		tr := benchproc.Transport(o.connections, o.connections)
		defer tr.CloseIdleConnections()
		do = (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do
	} else {
		tr := &h1.Transport{Timeout: 30 * time.Second, MaxIdlePerHost: o.connections}
		defer tr.Close()
		do = tr.RoundTrip
	}

	var measuring, stop, paused atomic.Bool
	var inFlight atomic.Int64
	type workerRes struct {
		lat      []int64
		errs     int
		firstErr string
	}
	out := make([]workerRes, o.connections)
	var wg sync.WaitGroup
	for w := range out {
		out[w].lat = make([]int64, 0, 1<<15)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wr := &out[w]
			for !stop.Load() {
				if paused.Load() {
					time.Sleep(time.Millisecond)
					continue
				}
				inFlight.Add(1)
				if paused.Load() { // paused meanwhile: the pauser may have seen none in flight
					inFlight.Add(-1)
					continue
				}
				req, err := mk()
				if err != nil {
					panic(err)
				}
				t0 := time.Now()
				resp, err := do(req)
				var status int
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				el := time.Since(t0)
				inFlight.Add(-1)
				if !measuring.Load() {
					continue
				}
				if err != nil || status < 200 || status > 299 {
					wr.errs++
					if wr.firstErr == "" {
						if err != nil {
							wr.firstErr = err.Error()
						} else {
							wr.firstErr = "HTTP " + strconv.Itoa(status)
						}
					}
				}
				wr.lat = append(wr.lat, int64(el))
			}
		}(w)
	}
	time.Sleep(o.warmup)
	profDone := make(chan error, 1)
	profiling := is != nil && is.Profiling()
	if profiling {
		go func() { profDone <- is.CPUProfile(filepath.Join(o.profileDir, name+".pprof"), o.duration) }()
	} else {
		profDone <- nil
	}
	nSlices := 1
	if o.between != nil && o.pairs > 1 && !profiling {
		nSlices = o.pairs
	}
	var elapsed time.Duration
	var d benchproc.CPUSample
	for k := range nSlices {
		if nSlices > 1 {
			// Pause: the workers finish their request and wait, the
			// paired measurement runs alone, then the load resumes and
			// refills its connections before the next slice.
			paused.Store(true)
			for inFlight.Load() > 0 {
				time.Sleep(time.Millisecond)
			}
			o.between()
			paused.Store(false)
			time.Sleep(200 * time.Millisecond)
		}
		cpu0 := benchproc.SampleCPU(serverPID)
		start := time.Now()
		measuring.Store(true)
		time.Sleep(o.duration / time.Duration(nSlices))
		if k == nSlices-1 {
			stop.Store(true)
		}
		measuring.Store(false)
		elapsed += time.Since(start)
		d = d.Add(benchproc.SampleCPU(serverPID).Sub(cpu0))
	}
	wg.Wait()
	profErr := <-profDone

	s := &scenario{Name: name, Seconds: elapsed.Seconds()}
	if nSlices > 1 {
		s.Pairs = nSlices
	}
	var lat []int64
	for _, r := range out {
		lat = append(lat, r.lat...)
		s.Errors += r.errs
		if s.FirstError == "" {
			s.FirstError = r.firstErr
		}
	}
	slices.Sort(lat)
	s.Requests = len(lat)
	s.RPS = float64(len(lat)) / elapsed.Seconds()
	ms := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		// Nearest rank.
		i := int(p/100*float64(len(lat))+0.999999) - 1
		return float64(lat[max(0, min(i, len(lat)-1))]) / 1e6
	}
	s.P50ms, s.P99ms, s.P999ms, s.Maxms = ms(50), ms(99), ms(99.9), ms(100)
	if s.Requests > 0 {
		switch {
		case is == nil: // in-process server: this process's CPU is both sides
			s.ServerCPUus = d.Self.Seconds() * 1e6 / float64(s.Requests)
		case serverPID > 0:
			s.ServerCPUus = d.Server.Seconds() * 1e6 / float64(s.Requests)
			s.BenchCPUus = d.Self.Seconds() * 1e6 / float64(s.Requests)
		default: // a given issuer without -pid: its CPU counts as "other"
			s.BenchCPUus = d.Self.Seconds() * 1e6 / float64(s.Requests)
		}
		s.OtherCPU = max(0, (d.Machine-d.IRQ-d.Server-d.Self).Seconds()/elapsed.Seconds())
		s.SoftIRQ = d.IRQ.Seconds() / elapsed.Seconds()
	}
	if serverPID > 0 {
		s.RSSAfterKiB = benchproc.RSSKiB(serverPID, "VmRSS")
	}
	if profErr != nil {
		s.FirstError += " (profile: " + profErr.Error() + ")"
	}
	return s
}

// ---- scenarios ----

// helloEnv makes this program serve the hello-world handler instead (the
// child process helloScenario starts).
const helloEnv = "GATEHOUSE_BENCH_HELLO_SERVER"

// serveHello serves "Hello, World!" on a loopback port, prints the address
// on stdout and serves until it is terminated.
func serveHello() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: helloHandler(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Println(ln.Addr().String())
	_ = srv.Serve(ln)
}

// helloScenario measures the machine's HTTP ceiling: the same generator
// against a trivial net/http handler, in this process (generator and
// server share the runtime; the default) or, with -generator-procs, in a
// child process with all cores, as the issuer runs in its own.
func helloScenario(o options) (*scenario, error) {
	if o.generatorProcs <= 0 {
		return helloInProcess(o)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helloEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &issuerProc{Process: benchproc.Adopt(cmd), name: "hello"}
	defer p.stop()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("hello server: %w", err)
	}
	u := "http://" + strings.TrimSpace(addr) + "/"
	s := load(o, "hello", p, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, u, nil) })
	s.RSSAfterKiB = 0
	s.Note = fmt.Sprintf("net/http hello-world in a child process (all cores), generator on %d P", o.generatorProcs)
	return s, nil
}

func helloInProcess(o options) (*scenario, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: helloHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	u := "http://" + ln.Addr().String() + "/"
	s := load(o, "hello", nil, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, u, nil) })
	s.Note = "in-process net/http hello-world (server and generator share this process: cpu µs/r is both)"
	return s, nil
}

func helloHandler() http.Handler {
	body := []byte("Hello, World!\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(body)
	})
}

func tokenScenario(o options, is *issuerProc, name, strategy, wantAlg string) (*scenario, error) {
	cl, err := is.createClient(strategy)
	if err != nil {
		return nil, err
	}
	// Check once that the token is what the scenario claims to measure.
	tok, err := is.token(cl)
	if err != nil {
		return nil, err
	}
	note, err := checkToken(is, tok, strategy, wantAlg)
	if err != nil {
		return nil, err
	}
	s := load(o, name, is, tokenTarget(is, cl))
	s.Note = note
	return s, nil
}

func tokenTarget(is *issuerProc, cl client) target {
	return formTarget(is, cl, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
}

// formTarget posts form to the token endpoint as cl (client_secret_basic).
func formTarget(is *issuerProc, cl client, form url.Values) target {
	u := is.Public + "/oauth2/token"
	body := []byte(form.Encode())
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cl.ID)+":"+url.QueryEscape(cl.Secret)))
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		return req, nil
	}
}

// checkToken verifies the access token's shape: for JWTs the header alg
// and, for RSA, the modulus size of the signing key in the JWKS.
func checkToken(is *issuerProc, tok, strategy, wantAlg string) (string, error) {
	if strategy == "opaque" {
		if !strings.HasPrefix(tok, "ory_at_") || strings.Count(tok, ".") != 1 {
			return "", fmt.Errorf("not an opaque ory_at_ token (starts %.12q)", tok)
		}
		return "token: ory_at_<random>.<signature>", nil
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		return "", fmt.Errorf("the access token is not a JWS: %w", err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	alg, _ := h.Algorithm()
	kid, _ := h.KeyID()
	typ, _ := h.Type()
	if alg.String() != wantAlg {
		return "", fmt.Errorf("the access token is signed with %s, want %s", alg, wantAlg)
	}
	var set struct {
		Keys []struct {
			Kid, Alg, Kty, N, Crv string
		} `json:"keys"`
	}
	if err := is.getJSON(is.Public+"/.well-known/jwks.json", &set); err != nil {
		return "", err
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		detail := k.Crv
		if k.Kty == "RSA" {
			n, err := base64.RawURLEncoding.DecodeString(k.N)
			if err != nil {
				return "", err
			}
			bits := len(n) * 8
			if wantAlg == "RS256" && bits != 2048 {
				return "", fmt.Errorf("the RS256 key has %d bits, want 2048", bits)
			}
			detail = strconv.Itoa(bits) + " bits"
		}
		return fmt.Sprintf("token: JWT typ %s, alg %s, key %s %s (kid %.8s...), %d bytes", typ, alg, k.Kty, detail, kid, len(tok)), nil
	}
	return "", fmt.Errorf("kid %q is not in the JWKS", kid)
}

// es256Scenario measures JWT client_credentials with an ES256 key: on a
// second issuer started with KEYS_ALGORITHM=ES256 when this program
// started the first one, otherwise by adding an ES256 key to the given
// issuer's access-token set for the duration of the scenario.
func es256Scenario(o options, main *issuerProc, bin string, rep *report, logf func(string, ...any), name string) (*scenario, error) {
	scen := func(o options, is *issuerProc) (*scenario, error) {
		if name == "dpop-es256" {
			return dpopScenario(o, is, name, "ES256")
		}
		return tokenScenario(o, is, name, "jwt", "ES256")
	}
	if !main.Started() {
		kid, err := main.addKey("ES256")
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := main.deleteKey(kid); err != nil {
				logf("WARNING: could not delete the ES256 key %s from hydra.jwt.access-token: %v\n", kid, err)
			}
		}()
		s, err := scen(o, main)
		if s != nil {
			s.Note += "; ES256 key added to the running issuer for this scenario"
		}
		return s, err
	}
	p, err := startIssuer(bin, strings.Replace(name, "jwt-", "", 1), append([]string{"KEYS_ALGORITHM=ES256"}, o.issuerEnv...), o.profileDir != "")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	p.mem.Name, p.mem.PID = p.name, p.PID
	p.mem.IdleRSSKiB = benchproc.RSSKiB(p.PID, "VmRSS")
	logf("issuer %s: pid %d, KEYS_ALGORITHM=ES256, idle RSS %s\n", p.name, p.PID, benchproc.KiB(p.mem.IdleRSSKiB))
	s, err := scen(o, p)
	p.mem.LoadRSSKiB = benchproc.RSSKiB(p.PID, "VmRSS")
	p.mem.PeakRSSKiB = benchproc.RSSKiB(p.PID, "VmHWM")
	rep.Issuers = append(rep.Issuers, &p.mem)
	if s != nil {
		s.Note += "; second issuer started with KEYS_ALGORITHM=ES256"
	}
	return s, err
}

func introspectScenario(o options, is *issuerProc, logf func(string, ...any)) (*scenario, error) {
	cl, err := is.createClient("opaque")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	toks := make([]string, o.tokens)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mintErr atomic.Value
	for w := 0; w < min(o.connections, o.tokens); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(toks) {
					return
				}
				t, err := is.token(cl)
				if err != nil {
					mintErr.Store(err)
					return
				}
				toks[i] = t
			}
		}()
	}
	wg.Wait()
	if err, _ := mintErr.Load().(error); err != nil {
		return nil, err
	}
	logf("introspect: minted %d opaque tokens in %s\n", len(toks), time.Since(t0).Round(time.Millisecond))
	// Check once that introspection answers active:true.
	var ir struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
	}
	if err := is.postForm(is.Admin+"/admin/oauth2/introspect", url.Values{"token": {toks[0]}}, &ir); err != nil {
		return nil, err
	}
	if !ir.Active || ir.ClientID != cl.ID {
		return nil, fmt.Errorf("introspection of a fresh token answered %+v", ir)
	}
	bodies := make([][]byte, len(toks))
	for i, t := range toks {
		bodies[i] = []byte(url.Values{"token": {t}}.Encode())
	}
	u := is.Admin + "/admin/oauth2/introspect"
	var n atomic.Int64
	s := load(o, "introspect", is, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(bodies[int(n.Add(1))%len(bodies)]))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	})
	s.Note = fmt.Sprintf("%d distinct opaque tokens round robin, each answered active:true", len(toks))
	return s, nil
}

func getScenario(o options, is *issuerProc, name, u string) (*scenario, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	s := load(o, name, is, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, u, nil) })
	s.Note = fmt.Sprintf("%d-byte document, Cache-Control %q", len(b), resp.Header.Get("Cache-Control"))
	return s, nil
}

// ---- sign rate ----

// newSigner makes a key for alg and a sign call over the payload
// measureSign times.
func newSigner(alg string) (crypto.Signer, func(key any) func() error, []byte, error) {
	var key crypto.Signer
	var sa jwa.SignatureAlgorithm
	var err error
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		sa = jwa.RS256()
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sa = jwa.ES256()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	payload, _ := json.Marshal(map[string]any{
		"aud": []string{}, "client_id": "6064a8d8-25b1-4f4a-9bc1-5dc384ae2c69", "exp": 1796176704, "iat": 1796173104,
		"iss": "http://127.0.0.1:4444", "jti": "6d31fdf4-b78e-45c0-95e2-831a9d7b04c7", "nbf": 1796173104,
		"scope": "read", "scp": []string{"read"}, "sub": "6064a8d8-25b1-4f4a-9bc1-5dc384ae2c69",
	})
	sign := func(key any) func() error {
		return func() error {
			_, err := keys.SignCompact(key, sa, "a870db34-842d-47cf-80e5-df5a383d0eb9", "at+jwt", payload)
			return err
		}
	}
	return key, sign, payload, nil
}

// signRateAgain is measureSign's single-goroutine keys.SignCompact rate
// alone, measured again after a signing scenario: the machine's cores do
// not keep one speed for the length of a run.
func signRateAgain(alg string, d time.Duration) (float64, error) {
	key, sign, _, err := newSigner(alg)
	if err != nil {
		return 0, err
	}
	perCPU, _, err := rate(d, sign(key))
	return perCPU, err
}

// measureSign is the rate of one goroutine signing a ~400-byte RFC 9068
// payload: with keys.SignCompact and kid/typ protected headers, exactly as
// keys.Manager.Sign does, and with the raw crypto primitive.
func measureSign(alg string, d time.Duration) (signRate, error) {
	key, sign, payload, err := newSigner(alg)
	if err != nil {
		return signRate{}, err
	}
	r := signRate{Alg: alg}
	if r.JWXPerSec, r.JWXWallSec, err = rate(d, sign(key)); err != nil {
		return r, err
	} // A private JWK parsed and exported back to a crypto key, without
	// Precompute (see ExportedPerSec).
	jk, err := jwk.Import(key)
	if err != nil {
		return r, err
	}
	b, err := json.Marshal(jk)
	if err != nil {
		return r, err
	}
	if jk, err = jwk.ParseKey(b); err != nil {
		return r, err
	}
	var exported any
	if err := jwk.Export(jk, &exported); err != nil {
		return r, err
	}
	if r.ExportedPerSec, _, err = rate(d, sign(exported)); err != nil {
		return r, err
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	c0 := benchproc.SampleCPU(0)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := sign(key)
			n := int64(0)
			for time.Since(start) < d {
				if f() != nil {
					return
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r.ParallelPerSec = float64(total.Load()) / el.Seconds()
	c := benchproc.SampleCPU(0).Sub(c0)
	r.ParallelOther = max(0, (c.Machine-c.IRQ-c.Self).Seconds()/el.Seconds())
	var opts crypto.SignerOpts = crypto.SHA256
	r.RawPerSec, _, err = rate(d, func() error {
		sum := sha256.Sum256(payload)
		_, err := key.Sign(rand.Reader, sum[:], opts)
		return err
	})
	return r, err
}

// rate runs f on one goroutine for d of wall time and returns calls per
// second of this process's CPU time and per second of wall time.
func rate(d time.Duration, f func() error) (perCPU, perWall float64, err error) {
	for range 10 { // warm up
		if err := f(); err != nil {
			return 0, 0, err
		}
	}
	runtime.GC()
	n := 0
	c0 := benchproc.SampleCPU(0).Self
	start := time.Now()
	for time.Since(start) < d {
		if err := f(); err != nil {
			return 0, 0, err
		}
		n++
	}
	wall, cpu := time.Since(start), benchproc.SampleCPU(0).Self-c0
	return float64(n) / cpu.Seconds(), float64(n) / wall.Seconds(), nil
}

// ---- the issuer process and its admin API ----

type issuerProc struct {
	*benchproc.Process
	name string
	dir  string // removed by stop
	mem  issuerMem
}

// stop ends the process this program started and removes its directory.
func (p *issuerProc) stop() {
	p.Stop()
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

type client struct{ ID, Secret string }

// startIssuer runs the issuer on a fresh SQLite file in a temporary
// directory (removed by stop).
func startIssuer(bin, name string, env []string, profile bool) (*issuerProc, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	is, err := benchproc.StartIssuer(bin, dir, append([]string{"DSN=sqlite://" + filepath.Join(dir, "gh.sqlite"),
		"OAUTH2_DPOP_PROOF_MAX_AGE=" + dpopProofMaxAge}, env...), profile)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &issuerProc{Process: is, name: name, dir: dir}
	p.mem.StartupMilli = is.Startup.Milliseconds()
	return p, nil
}

func (p *issuerProc) createClient(strategy string) (client, error) {
	return p.createClientWith(map[string]any{
		"client_name": "bench " + strategy, "grant_types": []string{"client_credentials"},
		"scope": "read write", "access_token_strategy": strategy,
	})
}

// createClientWith registers a client with these fields.
func (p *issuerProc) createClientWith(fields map[string]any) (client, error) {
	body, _ := json.Marshal(fields)
	req, _ := http.NewRequest(http.MethodPost, p.Admin+"/admin/clients", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := do(req, http.StatusCreated, &out); err != nil {
		return client{}, fmt.Errorf("creating a client: %w", err)
	}
	return client{out.ID, out.Secret}, nil
}

func (p *issuerProc) token(cl client) (string, error) {
	req, err := tokenTarget(p, cl)()
	if err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := do(req, http.StatusOK, &out); err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	return out.AccessToken, nil
}

func (p *issuerProc) addKey(alg string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, p.Admin+"/admin/keys/hydra.jwt.access-token",
		strings.NewReader(`{"alg":"`+alg+`","use":"sig"}`))
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := do(req, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("creating an %s key: %w", alg, err)
	}
	if len(out.Keys) != 1 {
		return "", fmt.Errorf("creating an %s key: %d keys returned", alg, len(out.Keys))
	}
	return out.Keys[0].Kid, nil
}

func (p *issuerProc) deleteKey(kid string) error {
	req, _ := http.NewRequest(http.MethodDelete, p.Admin+"/admin/keys/hydra.jwt.access-token/"+url.PathEscape(kid), nil)
	return do(req, http.StatusNoContent, nil)
}

func (p *issuerProc) getJSON(u string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(req, http.StatusOK, out)
}

func (p *issuerProc) postForm(u string, v url.Values, out any) error {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(req, http.StatusOK, out)
}

var setupClient = &http.Client{Transport: benchproc.Transport(64, 64), Timeout: 60 * time.Second}

func do(req *http.Request, want int, out any) error {
	resp, err := setupClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %.300s", req.Method, req.URL.Path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
