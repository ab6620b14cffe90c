// Command extauthz is the sidecar's load generator: it starts a fake
// OpenID provider in this process (extauthztest), builds and starts the
// real gatehouse-sidecar binary against it, and drives Envoy-shaped gRPC
// Check calls over loopback the way Envoy's ext_authz filter does: a few
// HTTP/2 connections (-connections, one per Envoy worker thread) each
// multiplexing many concurrent Check streams (-streams in flight in
// total), through a lean HTTP/2 client (h2client.go) or, with -typed,
// grpc-go's authv3 client:
//
//	(a) one valid JWT repeated (decision-cache hit);
//	(b) N distinct valid JWTs, each sent once (cache miss: signature
//	    verification), for RS256 and ES256, with the raw verification
//	    rate of the same algorithm measured in this process beside it;
//	(c) opaque tokens whose introspection result is cached;
//	(d) one DPoP-bound JWT (cached) with a fresh ES256 proof per check,
//	    the proofs signed before the measurement;
//	(e) one JWT (cached) on a route with an internal token (warm: the
//	    exchange cached too) against the same JWT on a plain route, in
//	    alternated rounds (internaltoken.go).
//	(f) one JWT (cached) on a plain route and on a route with a CEL
//	    condition, alternated (cel.go).
//
// It prints throughput, p50/p99/p99.9 latency and the error count per
// scenario, and the sidecar's resident memory. Run from the repository
// root: go run ./bench/extauthz [-duration 10s] [-connections 2] [-streams 16].
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchdpop"
	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	connections int
	streams     int
	missStreams int
	distinct    int
	opaque      int
	sidecar     string
	scenarios   string
	dpopChecks  int
	celRounds   int
	typed       bool
	cpuprofile  string
	profileDir  string
	pairRounds  int
	pairEach    time.Duration
	internalAlg string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of the repeated-token scenarios (a) and (c)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before (a) and (c)")
	flag.IntVar(&o.connections, "connections", 2, "HTTP/2 connections to the sidecar (Envoy opens one per worker thread)")
	flag.IntVar(&o.streams, "streams", 16, "concurrent Check calls in flight in total, multiplexed over the connections")
	flag.IntVar(&o.missStreams, "miss-streams", 48, "concurrent Check calls in flight in scenario (b): enough to keep both cores busy, because (b) compares the sidecar's capacity with a saturated verify loop (an explicit -streams alone sets it too)")
	flag.IntVar(&o.distinct, "distinct", 100000, "distinct JWTs per algorithm in scenario (b), each sent once")
	flag.IntVar(&o.opaque, "opaque", 1000, "distinct opaque tokens in scenario (c)")
	flag.StringVar(&o.sidecar, "sidecar", "", "gatehouse-sidecar binary to run (default: go build ./sidecar/cmd/gatehouse-sidecar)")
	flag.IntVar(&o.dpopChecks, "dpop-checks", 60000, "checks in scenario (d), each with its own DPoP proof signed ahead")
	flag.StringVar(&o.scenarios, "scenarios", "a,d,e,f,c,b", "scenarios to run, in order")
	flag.IntVar(&o.pairRounds, "pair-rounds", 6, "rounds of scenario (e), each measuring the plain and the internal-token route once, in alternating order")
	flag.DurationVar(&o.pairEach, "pair-duration", 2*time.Second, "measured duration of each route in each round of (e)")
	flag.StringVar(&o.internalAlg, "internal-token-alg", "RS256", "signature algorithm of the internal token in (e): RS256 (Gatehouse's default key) or ES256 (a shorter token)")
	flag.IntVar(&o.celRounds, "cel-rounds", 10, "rounds of scenario (f), each a slice of the plain route and one of the CEL route (-duration is split among them)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the load generator's CPU profile (not the sidecar's) to this file")
	flag.StringVar(&o.profileDir, "profile-dir", "", "build the sidecar with a loopback-only pprof listener (go build -overlay) and save its CPU profile of the first seconds of each distinct-token run of (b) and its allocations during that run (allocs-<alg>.pprof, diff with -base allocs-<alg>-before.pprof) in this directory")
	flag.BoolVar(&o.typed, "typed", false, "send through grpc-go's typed authv3 client (marshal every request, decode every response) instead of the lean HTTP/2 client")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["streams"] && !set["miss-streams"] {
		o.missStreams = o.streams
	}
	if o.streams < o.connections {
		// make bench's shared -connections alone: at least one stream each.
		o.streams = o.connections
	}
	o.missStreams = max(o.missStreams, o.connections)
	stopProfile, err := benchproc.StartCPUProfile(o.cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/extauthz:", err)
		os.Exit(1)
	}
	defer stopProfile()
	if err := run(o); err != nil {
		stopProfile()
		fmt.Fprintln(os.Stderr, "bench/extauthz:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	client := "lean HTTP/2 client"
	if o.typed {
		client = "grpc-go authv3 client"
	}
	fmt.Printf("== extauthz: gRPC Check over loopback, %s, %d connections, %d streams in flight (%d in (b)), %d cores (GOMAXPROCS %d), %s %s/%s\n",
		client, o.connections, o.streams, o.missStreams, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)

	is := extauthztest.New()
	defer is.Close()
	rsKey, esKey := is.AddKey(jwa.RS256()), is.AddKey(jwa.ES256())
	itKey := rsKey
	if o.internalAlg == "ES256" {
		itKey = esKey
	}
	te := newTokenEndpoint(is, itKey)
	defer te.Close()

	bin := o.sidecar
	if bin == "" {
		var err error
		if bin, err = buildSidecar(o.profileDir != ""); err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(bin))
	}
	if slices.Contains(strings.Split(o.scenarios, ","), "f") {
		extraRules += celRuleYAML
	}
	sc, err := startSidecar(bin, is, te.URL, o.profileDir != "")
	if err != nil {
		return err
	}
	defer sc.stop()
	fmt.Printf("sidecar: pid %d, gRPC %s, idle RSS %s (before any check)\n", sc.PID, sc.grpcAddr, sc.rss())

	g, err := newGenerator(sc.grpcAddr, o)
	if err != nil {
		return err
	}
	defer g.close()

	for _, s := range strings.Split(o.scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "a":
			req := newCall(checkRequest(is.Token(rsKey, nil)))
			res := g.load(sc, o.streams, o.warmup, o.duration, 0, func() *call { return req })
			res.print("(a) one JWT repeated (RS256, cache hit)")
			fmt.Printf("    sidecar RSS %s\n", sc.rss())
		case "b":
			for _, k := range []*extauthztest.Key{rsKey, esKey} {
				if err := distinctScenario(o, is, k, g, sc); err != nil {
					return err
				}
			}
		case "c":
			toks := make([]*call, o.opaque)
			for i := range toks {
				tok := opaqueToken()
				c := is.Claims()
				c["token_type"], c["token_use"] = "Bearer", "access_token"
				c["sub"] = "user-" + strconv.Itoa(i)
				delete(c, "scp")
				is.AddOpaque(tok, c)
				toks[i] = newCall(checkRequest(tok))
			}
			// First pass, unmeasured: one introspection per token.
			var first atomic.Int64
			g.load(sc, o.streams, 0, 0, len(toks), func() *call {
				if i := int(first.Add(1) - 1); i < len(toks) {
					return toks[i]
				}
				return nil
			})
			before := is.IntrospectionCalls.Load()
			var next atomic.Int64
			res := g.load(sc, o.streams, o.warmup, o.duration, 0, func() *call {
				return toks[int(next.Add(1)-1)%len(toks)]
			})
			res.print(fmt.Sprintf("(c) %d opaque tokens round robin, introspection cached", o.opaque))
			fmt.Printf("    introspection calls to the issuer meanwhile: %d; sidecar RSS %s\n", is.IntrospectionCalls.Load()-before, sc.rss())
		case "d":
			if err := dpopScenario(o, is, rsKey, g, sc); err != nil {
				return err
			}
		case "e":
			internalTokenScenario(o, is, rsKey, te, g, sc)
		case "f":
			if err := celScenario(o, is, rsKey, g, sc); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown scenario %q (a, b, c, d, e or f)", s)
		}
		if g.failed != nil {
			return g.failed
		}
	}
	fmt.Printf("sidecar peak RSS %s\n", sc.peakRSS())
	return nil
}

// distinctScenario mints o.distinct tokens signed by k, measures the raw
// verification rate of this process for them, then sends each once.
func distinctScenario(o options, is *extauthztest.Issuer, k *extauthztest.Key, g *generator, sc *sidecarProc) error {
	start := time.Now()
	toks := mint(is, k, o.distinct)
	fmt.Printf("    minted %d %s tokens in %s\n", len(toks), k.Alg, time.Since(start).Round(time.Millisecond))

	pub, err := rawPublicKey(k)
	if err != nil {
		return err
	}
	// Best of three alternating 1 s runs each: other processes on the
	// machine only ever lower a rate, so the best is the closest to the
	// machine's own (and the ratio below the least flattering).
	var raw1, rawN, cpu1 float64
	for range 3 {
		r, c := verifyRate(toks, pub, k.Alg, 1, time.Second)
		if r > raw1 {
			raw1, cpu1 = r, c
		}
		r, _ = verifyRate(toks, pub, k.Alg, runtime.GOMAXPROCS(0), time.Second)
		rawN = max(rawN, r)
	}

	// Requests are built and marshaled before the measurement (Envoy
	// copies headers it already parsed, it does not marshal a message
	// per call in Go), keeping only the form the client sends; then
	// minting's garbage is collected.
	calls := make([]*call, len(toks))
	for i, tok := range toks {
		calls[i] = newCall(checkRequest(tok))
		if o.typed {
			calls[i].raw = nil
		} else {
			calls[i].req = nil
		}
	}
	// FreeOSMemory, not just GC: the runtime would otherwise return the
	// freed pages to the OS during the measurement, on the generator's
	// CPU time.
	debug.FreeOSMemory()
	var profDone chan error
	if o.profileDir != "" {
		base := filepath.Join(o.profileDir, "allocs-"+k.Alg.String())
		if err := sc.SaveProfile(base+"-before.pprof", "allocs"); err != nil {
			return err
		}
		profDone = make(chan error, 1)
		go func() {
			// The first seconds of the run (a run of 100,000 RS256 tokens
			// lasts 5-10 s).
			profDone <- sc.CPUProfile(filepath.Join(o.profileDir, "cpu-"+k.Alg.String()+".pprof"), 3*time.Second)
		}()
		defer func() {
			if err := <-profDone; err != nil {
				fmt.Fprintln(os.Stderr, "bench/extauthz: sidecar CPU profile:", err)
			}
			if err := sc.SaveProfile(base+".pprof", "allocs"); err != nil {
				fmt.Fprintln(os.Stderr, "bench/extauthz: sidecar allocation profile:", err)
			}
		}()
	}
	var next atomic.Int64
	res := g.load(sc, o.missStreams, 0, 0, len(calls), func() *call {
		i := next.Add(1) - 1
		if int(i) >= len(calls) {
			return nil
		}
		return calls[i]
	})
	res.print(fmt.Sprintf("(b) %d distinct %s JWTs, each once (cache miss), %d in flight", res.n, k.Alg, o.missStreams))
	fmt.Printf("    raw %s verify in this process (best of 3 x 1 s): %.0f/s on %d goroutines, %.0f/s on 1 (%.1fµs CPU each); sidecar = %.0f%% / %.0f%% of them; sidecar RSS %s\n",
		k.Alg, rawN, runtime.GOMAXPROCS(0), raw1, cpu1, 100*res.rate()/rawN, 100*res.rate()/raw1, sc.rss())
	runtime.GC()
	return nil
}

// mint signs n distinct tokens (distinct jti and sub) on every core.
func mint(is *extauthztest.Issuer, k *extauthztest.Key, n int) []string {
	toks := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				toks[i] = is.Token(k, map[string]any{"jti": "bench-" + strconv.Itoa(i), "sub": "user-" + strconv.Itoa(i)})
			}
		}()
	}
	wg.Wait()
	return toks
}

func rawPublicKey(k *extauthztest.Key) (any, error) {
	var raw any
	if err := jwk.Export(k.Public, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// verifyRate is the raw signature verification rate (the same jws call
// the sidecar makes) on g goroutines for d, cycling through toks, and
// this process's CPU time per verification in microseconds.
func verifyRate(toks []string, pub any, alg jwa.SignatureAlgorithm, g int, d time.Duration) (float64, float64) {
	cpu0 := selfCPU()
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := 0
			for i := w; time.Now().Before(deadline); i += g {
				if _, err := jws.VerifyCompactFast(pub, []byte(toks[i%len(toks)]), alg); err != nil {
					panic(err)
				}
				n++
			}
			total.Add(int64(n))
		}(w)
	}
	wg.Wait()
	n := float64(total.Load())
	return n / time.Since(start).Seconds(), float64((selfCPU() - cpu0).Microseconds()) / n
}

func opaqueToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "ory_at_" + base64.RawURLEncoding.EncodeToString(b[:16]) + "." + base64.RawURLEncoding.EncodeToString(b[16:])
}

// dpopScenario is (a) with a DPoP-bound token (cnf.jkt, RS256, cached
// after its first checks) and a fresh ES256 proof on every check: each
// check verifies one proof signature and records its jti. The proofs are
// signed before the measurement, on every core.
func dpopScenario(o options, is *extauthztest.Issuer, k *extauthztest.Key, g *generator, sc *sidecarProc) error {
	key, err := benchdpop.NewKey()
	if err != nil {
		return err
	}
	tok := is.Token(k, map[string]any{"cnf": map[string]any{"jkt": key.JKT}})
	start := time.Now()
	proofs, err := key.Proofs("GET", "https://api.example.com/api/orders", tok, o.dpopChecks)
	if err != nil {
		return err
	}
	calls := make([]*call, o.dpopChecks)
	for i := range calls {
		p, _ := proofs.Take()
		req := checkRequest(tok)
		h := req.Attributes.Request.Http.Headers
		h["authorization"], h["dpop"] = "DPoP "+tok, p
		calls[i] = newCall(req)
	}
	fmt.Printf("    %d ES256 proofs signed and requests built in %s\n", len(calls), time.Since(start).Round(time.Millisecond))
	var next atomic.Int64
	res := g.load(sc, o.streams, 0, 0, len(calls), func() *call {
		if i := int(next.Add(1) - 1); i < len(calls) {
			return calls[i]
		}
		return nil
	})
	res.print("(d) one DPoP-bound JWT (RS256, cache hit), a fresh ES256 proof per check")
	fmt.Printf("    sidecar RSS %s\n", sc.rss())
	return nil
}

// checkRequest is the CheckRequest Envoy sends for GET /api/orders.
func checkRequest(tok string) *authv3.CheckRequest { return checkRequestAt(tok, "/api/orders?page=1") }

// checkRequestAt is the CheckRequest Envoy sends for GET path.
func checkRequestAt(tok, path string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Host: "api.example.com", Path: path, Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "GET", ":path": path, ":scheme": "https",
				"authorization": "Bearer " + tok, "user-agent": "bench", "x-request-id": "5b0c6e0e-6f5e-4f7e-9c55-3f2b7b1f2a10",
			},
		}},
	}}
}

// result is one scenario's measurements.
type result struct {
	n, errs    int
	elapsed    time.Duration
	err        error         // a connection failed
	lat        []int64       // nanoseconds, sorted
	sidecarCPU time.Duration // user+system CPU the sidecar used meanwhile
	loadCPU    time.Duration // and this process
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.lat)))
	return time.Duration(r.lat[min(i, len(r.lat)-1)])
}

func (r result) print(name string) {
	fmt.Printf("%s\n    %d checks in %s: %.0f checks/s, p50 %s, p99 %s, p99.9 %s, errors %d\n",
		name, r.n, r.elapsed.Round(time.Millisecond), r.rate(), fmtDur(r.pct(50)), fmtDur(r.pct(99)), fmtDur(r.pct(99.9)), r.errs)
	if r.err != nil {
		fmt.Printf("    CONNECTION FAILED: %v\n", r.err)
	}
	if r.n > 0 {
		fmt.Printf("    CPU per check: sidecar %.1fµs, load generator %.1fµs (sidecar used %.2f of %d cores)\n",
			float64(r.sidecarCPU.Microseconds())/float64(r.n), float64(r.loadCPU.Microseconds())/float64(r.n),
			r.sidecarCPU.Seconds()/r.elapsed.Seconds(), runtime.NumCPU())
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// generator holds the connections to the sidecar for every scenario:
// -connections HTTP/2 connections carrying -streams concurrent Check
// calls in total, through the lean client (h2conn) or, with -typed,
// through grpc-go and the authv3 client.
type generator struct {
	failed error // a connection failed: later scenarios cannot run
	h2     []*h2conn
	grpc   []*grpc.ClientConn
}

func newGenerator(addr string, o options) (*generator, error) {
	if o.connections < 1 {
		return nil, fmt.Errorf("-connections must be ≥ 1")
	}
	g := &generator{}
	for range o.connections {
		if o.typed {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				g.close()
				return nil, err
			}
			g.grpc = append(g.grpc, conn)
			continue
		}
		h, err := dialH2(addr)
		if err != nil {
			g.close()
			return nil, err
		}
		g.h2 = append(g.h2, h)
	}
	return g, nil
}

func (g *generator) close() {
	for _, h := range g.h2 {
		h.close()
	}
	for _, c := range g.grpc {
		c.Close()
	}
}

// load keeps streams calls in flight. With d > 0 it runs for d after
// an unmeasured warm-up; otherwise until next returns nil. An error is a
// failed call or a non-OK decision.
func (g *generator) load(sc *sidecarProc, streams int, warmup, d time.Duration, capHint int, next func() *call) result {
	var measuring, stop atomic.Bool
	type laneRes struct {
		lat  []int64
		errs int
		err  error
	}
	lanes := max(len(g.h2), streams*len(g.grpc))
	out := make([]laneRes, lanes)
	per := 1 << 16
	if capHint > 0 {
		per = capHint/lanes + 1
	}
	record := func(l *laneRes) func(time.Duration, bool) {
		l.lat = make([]int64, 0, per)
		return func(el time.Duration, ok bool) {
			if !measuring.Load() {
				return
			}
			if !ok {
				l.errs++
			}
			l.lat = append(l.lat, int64(el))
		}
	}
	var start time.Time
	var sc0, self0 time.Duration
	begin := func() {
		sc0, self0 = sc.cpu(), selfCPU()
		start = time.Now()
		measuring.Store(true)
	}
	if d == 0 {
		// Every call counts: measure from before the first one.
		begin()
	}
	var wg sync.WaitGroup
	for i, h := range g.h2 {
		// Streams spread evenly over the connections.
		inFlight := streams / len(g.h2)
		if i < streams%len(g.h2) {
			inFlight++
		}
		rec := record(&out[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].err = h.run(inFlight, next, stop.Load, rec)
		}()
	}
	for i := range lanes {
		if g.grpc == nil {
			break
		}
		cl := authv3.NewAuthorizationClient(g.grpc[i%len(g.grpc)])
		rec := record(&out[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				k := next()
				if k == nil {
					return
				}
				t0 := time.Now()
				resp, err := cl.Check(context.Background(), k.req)
				rec(time.Since(t0), err == nil && resp.GetStatus().GetCode() == 0)
			}
		}()
	}
	if d > 0 {
		time.Sleep(warmup)
		begin()
		time.Sleep(d)
		stop.Store(true)
	}
	wg.Wait()
	var r result
	r.elapsed = time.Since(start)
	r.sidecarCPU, r.loadCPU = sc.cpu()-sc0, selfCPU()-self0
	for _, o := range out {
		r.lat = append(r.lat, o.lat...)
		r.errs += o.errs
		if o.err != nil && r.err == nil {
			r.err, g.failed = o.err, o.err
		}
	}
	slices.Sort(r.lat)
	r.n = len(r.lat)
	return r
}

// call is one CheckRequest, kept marshaled for the lean client.
type call struct {
	req *authv3.CheckRequest
	raw []byte
}

func newCall(req *authv3.CheckRequest) *call {
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return &call{req: req, raw: b}
}

// statusCode reads CheckResponse.status (1).code (1); -1 if malformed.
func statusCode(b []byte) int64 {
	code := int64(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return -1
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			st, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return -1
			}
			b = b[n:]
			for len(st) > 0 {
				num, typ, n := protowire.ConsumeTag(st)
				if n < 0 {
					return -1
				}
				st = st[n:]
				if num == 1 && typ == protowire.VarintType {
					v, n := protowire.ConsumeVarint(st)
					if n < 0 {
						return -1
					}
					code = int64(v)
					st = st[n:]
					continue
				}
				if n = protowire.ConsumeFieldValue(num, typ, st); n < 0 {
					return -1
				}
				st = st[n:]
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return -1
		}
		b = b[n:]
	}
	return code
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// buildSidecar builds the binary the way `make build` does; with
// profile, plus benchproc's pprof overlay.
func buildSidecar(profile bool) (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return "", err
	}
	bin, err := benchproc.Build(dir, "./sidecar/cmd/gatehouse-sidecar", profile)
	if err != nil {
		os.RemoveAll(dir)
	}
	return bin, err
}

// extraRules are rules added after the internal-token route's in the
// sidecar's configuration (the CEL route of (f)).
var extraRules string

type sidecarProc struct {
	*benchproc.Process // adopted child process
	grpcAddr           string
	dir                string
}

// startSidecar runs the binary against the fake issuer with introspection
// results cached for 5 minutes, and a route /internal whose upstream gets
// internal tokens from tokenURL, and waits for gRPC health SERVING. With
// profile, the overlay's pprof listener gets a loopback port.
func startSidecar(bin string, is *extauthztest.Issuer, tokenURL string, profile bool) (*sidecarProc, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench-cfg-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "sidecar.yaml")
	// Proofs are signed before (d) runs: they must still be young enough
	// at its end.
	if err := os.WriteFile(cfg, []byte("revocations:\n  events_url: \"off\"\nintrospection:\n  cache_ttl: 5m\ncache:\n  max_ttl: 5m\nbinding:\n  dpop:\n    proof_max_age: 5m\n"+
		internalTokenConfig(tokenURL)+extraRules), 0o600); err != nil {
		return nil, err
	}
	g, h := freeAddr(), freeAddr()
	cmd := exec.Command(bin, "serve", "--config", cfg, "--issuer", is.URL, "--introspection-url", is.IntrospectionURL(),
		"--grpc-listen", g, "--http-listen", h, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	pprofAddr := ""
	if profile {
		var env string
		pprofAddr, env = benchproc.PprofAddr()
		cmd.Env = append(os.Environ(), env)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &sidecarProc{Process: benchproc.AdoptProfiled(cmd, pprofAddr), grpcAddr: g, dir: dir}
	// Stop the sidecar if the bench is interrupted.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; p.stop(); os.Exit(130) }()

	conn, err := grpc.NewClient(g, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.stop()
		return nil, err
	}
	defer conn.Close()
	hc := grpc_health_v1.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return p, nil
		}
		select {
		case <-p.Exited():
			return nil, fmt.Errorf("the sidecar exited before serving")
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the sidecar is not SERVING after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the sidecar (SIGTERM, by pid) and removes its directory.
func (p *sidecarProc) stop() {
	p.Stop()
	os.RemoveAll(p.dir)
}

// cpu is the sidecar's user+system CPU time (/proc/<pid>/stat).
func (p *sidecarProc) cpu() time.Duration {
	d, _ := benchproc.ProcCPU(strconv.Itoa(p.PID))
	return d
}

// rss and peakRSS read VmRSS and VmHWM from /proc (Linux).
func (p *sidecarProc) rss() string     { return benchproc.KiB(benchproc.RSSKiB(p.PID, "VmRSS")) }
func (p *sidecarProc) peakRSS() string { return benchproc.KiB(benchproc.RSSKiB(p.PID, "VmHWM")) }

func freeAddr() string { return "127.0.0.1:" + strconv.Itoa(benchproc.FreePort()) }
