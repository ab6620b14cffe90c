// Command tokenhook measures what a token hook (oauth2.token_hook) adds to
// a token request beyond the hook's own latency. It builds the real
// gatehouse binary and starts two issuers on SQLite (each in a temporary
// directory, loopback ports, LOG_LEVEL=warn): one without a hook, one with
// OAUTH2_TOKEN_HOOK pointing at a hook on loopback (this program, run again
// as a child process), which answers 200 with two access token claims after
// -hook-delay. Then,
// one request in flight at a time over a keep-alive connection (latency,
// not throughput: nothing competes for the two shared cores but the
// request being measured), it alternates -rounds times between three
// series of -duration each:
//
//	plain   POST /oauth2/token client_credentials (opaque token) at the
//	        issuer without a hook
//	hooked  the same at the issuer with the hook
//	hook    the hook alone: this program POSTs to it a body of the size
//	        the issuer sends (its own latency as a loopback caller sees it),
//	        through the generator's lean HTTP/1.1 client (bench/internal/h1)
//	hook-nethttp  the same through net/http's Transport, the kind of
//	        client the issuer calls the hook with
//
// and prints p50/p90/p99 of each, and the overhead
// p50(hooked) - p50(plain) - p50(hook): the target is at most 0.2 ms (and
// the same with hook-nethttp). It
// also prints the mean hook call the issuer measured itself (its
// gatehouse_token_hook_duration_seconds histogram). Run from the
// repository root:
//
//	go run ./bench/tokenhook [-duration 3s] [-rounds 3] [-hook-delay 0s] [-json]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/h1"
)

type options struct {
	duration, warmup, delay time.Duration
	rounds                  int
	jsonOut                 bool
	bin                     string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each series in each round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured requests of each series before the first round")
	flag.DurationVar(&o.delay, "hook-delay", 0, "how long the hook waits before it answers")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each measures plain, hooked and hook once, in that order")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON document instead of the table")
	flag.StringVar(&o.bin, "issuer", "", "gatehouse binary to start (default: go build ./issuer/cmd/gatehouse as make build does)")
	flag.Parse()
	if os.Getenv(hookEnv) == "1" {
		serveHook(o.delay)
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "tokenhook:", err)
		os.Exit(1)
	}
}

// Dist is a latency distribution in milliseconds.
type Dist struct {
	Count         int
	P50, P90, P99 float64
}

func distOf(lat []time.Duration) Dist {
	if len(lat) == 0 {
		return Dist{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	// Nearest rank.
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return Dist{Count: len(s), P50: at(.50), P90: at(.90), P99: at(.99)}
}

// Result is what the program prints.
type Result struct {
	Machine       string
	HookDelayMS   float64
	Plain         Dist
	Hooked        Dist
	Hook          Dist
	HookNetHTTP   Dist
	OverheadP50MS float64
	// OverheadNetHTTPP50MS counts the hook's latency as a net/http
	// client sees it, the kind of client the issuer calls it with.
	OverheadNetHTTPP50MS float64
	TargetMS             float64
	IssuerHookMeanMS     float64
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "gatehouse-bench-tokenhook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		progress("building the issuer")
		if bin, err = benchproc.BuildIssuer(dir, false); err != nil {
			return err
		}
	}

	hookURL, stopHook, err := startHook(o.delay)
	if err != nil {
		return err
	}
	defer stopHook()

	start := func(name string, env ...string) (*benchproc.Process, error) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
		return benchproc.StartIssuer(bin, d, append([]string{"DSN=sqlite://" + filepath.Join(d, "gh.sqlite")}, env...), false)
	}
	progress("starting the issuers")
	plain, err := start("plain")
	if err != nil {
		return err
	}
	defer plain.Stop()
	hooked, err := start("hooked", "OAUTH2_TOKEN_HOOK="+hookURL)
	if err != nil {
		return err
	}
	defer hooked.Stop()

	hc := &http.Client{Transport: &h1.Transport{Timeout: 30 * time.Second}}
	plainReq, err := tokenRequest(hc, plain)
	if err != nil {
		return err
	}
	hookedReq, err := tokenRequest(hc, hooked)
	if err != nil {
		return err
	}
	// The hook series send the body the issuer sent.
	if _, err := measure(hc, hookedReq, 100*time.Millisecond); err != nil {
		return fmt.Errorf("hooked: %w", err)
	}
	hookBody, err := lastBody(hc, hookURL)
	if err != nil {
		return err
	}
	hookReq := func() (*http.Request, error) {
		return http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(hookBody))
	}
	// The issuer calls its hook with net/http's Transport (behind the SSRF
	// guard); hook-nethttp is the hook's latency through the same kind of
	// client, hook through the generator's lean one.
	nethttp := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	series := []struct {
		name string
		hc   *http.Client
		req  func() (*http.Request, error)
		lat  []time.Duration
	}{{name: "plain", hc: hc, req: plainReq}, {name: "hooked", hc: hc, req: hookedReq}, {name: "hook", hc: hc, req: hookReq},
		{name: "hook-nethttp", hc: nethttp, req: hookReq}}
	for i := range series {
		if _, err := measure(series[i].hc, series[i].req, o.warmup); err != nil {
			return fmt.Errorf("%s: %w", series[i].name, err)
		}
	}
	for r := range o.rounds {
		for i := range series {
			progress(fmt.Sprintf("round %d/%d: %s", r+1, o.rounds, series[i].name))
			lat, err := measure(series[i].hc, series[i].req, o.duration)
			if err != nil {
				return fmt.Errorf("%s: %w", series[i].name, err)
			}
			series[i].lat = append(series[i].lat, lat...)
		}
	}
	res := Result{
		Machine:     fmt.Sprintf("%d cores, %s, %s, %s", runtime.NumCPU(), runtime.GOARCH, benchproc.CPUModel(), runtime.Version()),
		HookDelayMS: float64(o.delay) / float64(time.Millisecond),
		Plain:       distOf(series[0].lat), Hooked: distOf(series[1].lat), Hook: distOf(series[2].lat),
		HookNetHTTP: distOf(series[3].lat),
		TargetMS:    0.2,
	}
	res.OverheadP50MS = res.Hooked.P50 - res.Plain.P50 - res.Hook.P50
	res.OverheadNetHTTPP50MS = res.Hooked.P50 - res.Plain.P50 - res.HookNetHTTP.P50
	res.IssuerHookMeanMS, _ = issuerHookMean(hc, hooked.Admin)
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("machine: %s; hook delay %s; %d rounds of %s per series\n", res.Machine, o.delay, o.rounds, o.duration)
	fmt.Printf("%-13s %8s %9s %9s %9s\n", "series", "requests", "p50 ms", "p90 ms", "p99 ms")
	for _, s := range []struct {
		n string
		d Dist
	}{{"plain", res.Plain}, {"hooked", res.Hooked}, {"hook", res.Hook}, {"hook-nethttp", res.HookNetHTTP}} {
		fmt.Printf("%-13s %8d %9.3f %9.3f %9.3f\n", s.n, s.d.Count, s.d.P50, s.d.P90, s.d.P99)
	}
	verdict := "within"
	if res.OverheadP50MS > res.TargetMS {
		verdict = "OVER"
	}
	fmt.Printf("overhead at p50: hooked - plain - hook = %.3f ms (target <= %.1f ms: %s); hooked - plain - hook-nethttp = %.3f ms; the issuer's mean hook call %.3f ms\n",
		res.OverheadP50MS, res.TargetMS, verdict, res.OverheadNetHTTPP50MS, res.IssuerHookMeanMS)
	return nil
}

// hookEnv makes this program the hook: it serves on loopback, prints its
// address on stdout and runs until its stdin closes.
const hookEnv = "GATEHOUSE_BENCH_TOKENHOOK"

// serveHook is the hook process: every POST is read and answered 200 with
// two access token claims after delay; GET /last returns the last body
// the issuer sent (calls marked X-Bench-Direct are the generator's).
func serveHook(delay time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	answer := []byte(`{"session":{"access_token":{"tenant":"acme","plan":"gold"},"id_token":{}}}`)
	var last atomic.Pointer[[]byte]
	none := []byte{}
	last.Store(&none)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = w.Write(*last.Load())
			return
		}
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Bench-Direct") == "" {
			last.Store(&b)
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})}
	fmt.Println(ln.Addr().String())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	_ = srv.Serve(ln)
}

// startHook runs the hook in a child process, so that calling it costs
// the issuer and the generator the same cross-process round trip.
func startHook(delay time.Duration) (hookURL string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-hook-delay", delay.String())
	cmd.Env = append(os.Environ(), hookEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	p := benchproc.Adopt(cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.Stop()
		return "", nil, fmt.Errorf("the hook process: %w", err)
	}
	return "http://" + strings.TrimSpace(line) + "/hook", func() { stdin.Close(); p.Stop() }, nil
}

// tokenRequest registers a client_credentials client (client_secret_basic,
// opaque tokens) and returns a maker of its token request.
func tokenRequest(hc *http.Client, is *benchproc.Process) (func() (*http.Request, error), error) {
	body := `{"grant_types":["client_credentials"],"scope":"read","token_endpoint_auth_method":"client_secret_basic"}`
	resp, err := hc.Post(is.Admin+"/admin/clients", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("creating the client: %d %v", resp.StatusCode, err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, is.Public+"/oauth2/token", strings.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		return req, nil
	}, nil
}

// measure sends requests one after the other for d and returns their
// latencies; any answer but 200 is an error.
func measure(hc *http.Client, mk func() (*http.Request, error), d time.Duration) ([]time.Duration, error) {
	var lat []time.Duration
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		req, err := mk()
		if err != nil {
			return nil, err
		}
		if req.URL.Path == "/hook" {
			req.Header.Set("X-Bench-Direct", "1")
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		}
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("answered %d", resp.StatusCode)
		}
	}
	return lat, nil
}

// lastBody is the last body the issuer sent the hook.
func lastBody(hc *http.Client, hookURL string) ([]byte, error) {
	resp, err := hc.Get(hookURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && len(b) == 0 {
		err = fmt.Errorf("the hook has no body from the issuer")
	}
	return b, err
}

// issuerHookMean is the mean of the issuer's own hook latency histogram,
// in milliseconds.
func issuerHookMean(hc *http.Client, admin string) (float64, error) {
	resp, err := hc.Get(admin + "/admin/metrics/prometheus")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum, count float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gatehouse_token_hook_duration_seconds_") || !strings.Contains(line, `outcome="200"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "gatehouse_token_hook_duration_seconds_sum"):
			sum += v
		case strings.HasPrefix(line, "gatehouse_token_hook_duration_seconds_count"):
			count += v
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("no hook calls in the metrics")
	}
	return sum / count * 1000, nil
}

func progress(s string) { fmt.Fprintln(os.Stderr, "==", s) }
