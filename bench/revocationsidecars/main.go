// Command revocationsidecars measures issue 21's revocation stream end to end with
// the real binaries: two gatehouse instances on one database (SQLite file;
// PostgreSQL too with -postgres or TEST_DATABASE_POSTGRES), three
// gatehouse-sidecar processes subscribed to different instances, and
// -connections gRPC connections checking cached JWTs at them meanwhile.
//
//	latency  revoke a JWT (RFC 7009, alternately at each instance) and poll
//	         every sidecar until all three deny it: p50/p99/max over
//	         -revocations revocations (or as many as -max-time allows)
//	rate     the Check rate of a sidecar with the stream on (its deny-set
//	         holding the revocations above) against one with it off, both
//	         running, measured in alternated rounds (on, off, off, on, ...)
//
// Run from the repository root: go run ./bench/revocationsidecars [-revocations 1000].
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
	"github.com/gatehouse-dev/gatehouse/internal/scrape"
)

type options struct {
	revocations  int
	maxTime      time.Duration
	connections  int
	rounds       int
	roundTime    time.Duration
	postgres     string
	skipSQLite   bool
	bystanders   int
	pollInterval time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.revocations, "revocations", 1000, "revocations to time per database")
	flag.DurationVar(&o.maxTime, "max-time", 5*time.Minute, "stop the latency phase of a database after this long")
	flag.IntVar(&o.connections, "connections", 16, "gRPC connections checking tokens meanwhile (spread over the sidecars)")
	flag.IntVar(&o.rounds, "rounds", 8, "alternated rounds of the rate comparison (half with the stream on)")
	flag.DurationVar(&o.roundTime, "round", 3*time.Second, "duration of one rate round")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("TEST_DATABASE_POSTGRES"), "PostgreSQL server DSN (a schema is created and dropped); empty: SQLite only")
	flag.BoolVar(&o.skipSQLite, "skip-sqlite", false, "only PostgreSQL")
	flag.IntVar(&o.bystanders, "bystanders", 200, "distinct valid JWTs the load checks")
	flag.DurationVar(&o.pollInterval, "poll", time.Millisecond, "how often each sidecar is asked about the revoked token")
	flag.Parse()
	m := benchproc.ThisMachine()
	fmt.Printf("== machine: %s, %d cores (GOMAXPROCS %d), %s, load %s\n", m.CPU, m.Cores, m.GOMAXPROCS, m.Go, m.LoadStart)
	dir, err := os.MkdirTemp("", "gatehouse-bench-rev-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	issuerBin, err := benchproc.BuildIssuer(dir, false)
	if err != nil {
		fail(err)
	}
	sidecarBin, err := benchproc.Build(dir, "./sidecar/cmd/gatehouse-sidecar", false)
	if err != nil {
		fail(err)
	}
	if !o.skipSQLite {
		if err := run(o, "sqlite", "sqlite://"+filepath.Join(dir, "gatehouse.sqlite"), issuerBin, sidecarBin, dir); err != nil {
			fail(err)
		}
	}
	if o.postgres != "" {
		dsn, drop, err := benchproc.FreshMigrated(o.postgres, "gh_bench_revsc_", issuerBin)
		if err != nil {
			fail(err)
		}
		err = run(o, "postgres", dsn, issuerBin, sidecarBin, dir)
		drop()
		if err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "revocationsidecars:", err)
	os.Exit(1)
}

type sidecar struct {
	*benchproc.Process
	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
	authz              authv3.AuthorizationClient
}

func startSidecar(bin, issuer, admin string, extra ...string) (*sidecar, error) {
	g, h := "127.0.0.1:"+strconv.Itoa(benchproc.FreePort()), "127.0.0.1:"+strconv.Itoa(benchproc.FreePort())
	args := append([]string{"serve", "--issuer", issuer, "--introspection-url", admin + "/admin/oauth2/introspect",
		"--grpc-listen", g, "--http-listen", h, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sidecar{Process: benchproc.Adopt(cmd), grpcAddr: g, httpAddr: h}
	want := "connected"
	if slices.Contains(extra, "off") {
		want = "off"
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.streamState() != want {
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("sidecar not ready with the stream %s after 30s (%q)", want, s.streamState())
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient(g, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.conn, s.authz = conn, authv3.NewAuthorizationClient(conn)
	return s, nil
}

func (s *sidecar) streamState() string {
	resp, err := http.Get("http://" + s.httpAddr + "/health/ready")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return m["revocation_stream"]
}

func (s *sidecar) stop() {
	if s.conn != nil {
		s.conn.Close()
	}
	s.Stop()
}

// metric is a sample of the sidecar's /metrics ("" if absent).
func (s *sidecar) metric(sample string) string {
	v, _ := scrape.Sample("http://"+s.httpAddr+"/metrics", sample)
	return v
}

func checkRequest(tok string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Host: "api.example.com", Path: "/api/orders", Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{":authority": "api.example.com", ":method": "GET", ":path": "/api/orders",
				"authorization": "Bearer " + tok},
		}},
	}}
}

// allowed asks the sidecar about tok over c.
func allowed(c authv3.AuthorizationClient, req *authv3.CheckRequest) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Check(ctx, req)
	if err != nil {
		return false, err
	}
	return r.GetStatus().GetCode() == 0, nil
}

// issuerAPI is the part of the issuer the bench calls.
type issuerAPI struct {
	hc             *http.Client
	public, admin  string
	clientID, pass string
}

func (is *issuerAPI) register() error {
	is.pass = "bench-client-secret-0123456789abcdef"
	body, _ := json.Marshal(map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
		"access_token_strategy": "jwt", "client_secret": is.pass})
	resp, err := is.hc.Post(is.admin+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"client_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("register client: %d %v", resp.StatusCode, err)
	}
	is.clientID = out.ID
	return nil
}

func (is *issuerAPI) form(u string, f url.Values) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(is.clientID), url.QueryEscape(is.pass))
	return is.hc.Do(req)
}

func (is *issuerAPI) token() (string, error) {
	resp, err := is.form(is.public+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken, nil
}

// tokens mints n tokens with 8 workers.
func (is *issuerAPI) tokens(n int) ([]string, error) {
	out := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				tok, err := is.token()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = tok
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func (is *issuerAPI) revoke(at, tok string) error {
	resp, err := is.form(at+"/oauth2/revoke", url.Values{"token": {tok}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoke: %d", resp.StatusCode)
	}
	return nil
}

func run(o options, name, dsn, issuerBin, sidecarBin, dir string) error {
	fmt.Printf("== %s: two issuer instances on one database, three sidecars (stream from instance a, b, a)\n", name)
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	shared := []string{"DSN=" + dsn, "SECRETS_SYSTEM=" + base64.RawURLEncoding.EncodeToString(secret)}
	dirA, dirB := filepath.Join(dir, name+"-a"), filepath.Join(dir, name+"-b")
	_ = os.MkdirAll(dirA, 0o700)
	_ = os.MkdirAll(dirB, 0o700)
	a, err := benchproc.StartIssuer(issuerBin, dirA, shared, false)
	if err != nil {
		return err
	}
	defer a.Stop()
	b, err := benchproc.StartIssuer(issuerBin, dirB, append(slices.Clone(shared), "URLS_SELF_ISSUER="+a.Public), false)
	if err != nil {
		return err
	}
	defer b.Stop()
	api := &issuerAPI{hc: &http.Client{Transport: benchproc.Transport(64, 32), Timeout: 30 * time.Second}, public: a.Public, admin: a.Admin}
	if err := api.register(); err != nil {
		return err
	}
	var sidecars []*sidecar
	defer func() {
		for _, s := range sidecars {
			s.stop()
		}
	}()
	for _, admin := range []string{a.Admin, b.Admin, a.Admin} {
		s, err := startSidecar(sidecarBin, a.Public, admin)
		if err != nil {
			return err
		}
		sidecars = append(sidecars, s)
	}
	t0 := time.Now()
	toks, err := api.tokens(o.revocations + o.bystanders)
	if err != nil {
		return err
	}
	fmt.Printf("minted %d tokens in %s\n", len(toks), time.Since(t0).Round(time.Millisecond))
	victims, bystanders := toks[:o.revocations], toks[o.revocations:]

	// Background load: o.connections gRPC connections, spread over the
	// sidecars, checking the bystanders (cached after their first checks).
	var stop atomic.Bool
	var checks, loadErrs atomic.Int64
	var wg sync.WaitGroup
	for i := range o.connections {
		conn, err := grpc.NewClient(sidecars[i%len(sidecars)].grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		c := authv3.NewAuthorizationClient(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; !stop.Load(); j++ {
				ok, err := allowed(c, checkRequest(bystanders[j%len(bystanders)]))
				if err != nil || !ok {
					loadErrs.Add(1)
				}
				checks.Add(1)
			}
		}()
	}

	// Latency: warm the victim at every sidecar (twice: a JWT is cached
	// from its second check), revoke it, poll until all three deny it.
	var lat []time.Duration
	deadline := time.Now().Add(o.maxTime)
	loadStart, checksStart := time.Now(), checks.Load()
	instances := []string{a.Public, b.Public}
	for i, v := range victims {
		if time.Now().After(deadline) {
			break
		}
		req := checkRequest(v)
		for _, s := range sidecars {
			for range 2 {
				if ok, err := allowed(s.authz, req); err != nil || !ok {
					return fmt.Errorf("victim %d not allowed before its revocation (%v)", i, err)
				}
			}
		}
		start := time.Now()
		if err := api.revoke(instances[i%2], v); err != nil {
			return err
		}
		var slowest atomic.Int64
		var pwg sync.WaitGroup
		for _, s := range sidecars {
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				for {
					ok, err := allowed(s.authz, req)
					if err == nil && !ok {
						break
					}
					if time.Since(start) > 30*time.Second {
						break
					}
					time.Sleep(o.pollInterval)
				}
				el := int64(time.Since(start))
				for {
					cur := slowest.Load()
					if el <= cur || slowest.CompareAndSwap(cur, el) {
						break
					}
				}
			}()
		}
		pwg.Wait()
		lat = append(lat, time.Duration(slowest.Load()))
	}
	loadRate := float64(checks.Load()-checksStart) / time.Since(loadStart).Seconds()
	stop.Store(true)
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("revoke -> denied at all three sidecars, %d revocations (RFC 7009, alternately at a and b): p50 %s  p99 %s  max %s\n",
		len(lat), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Printf("meanwhile %d connections checked %.0f/s (%d errors or denials)\n", o.connections, loadRate, loadErrs.Load())
	fmt.Printf("deny-set size at the sidecars: %s %s %s; RSS %s %s %s\n",
		sidecars[0].metric("gatehouse_sidecar_revocation_deny_set_size"), sidecars[1].metric("gatehouse_sidecar_revocation_deny_set_size"),
		sidecars[2].metric("gatehouse_sidecar_revocation_deny_set_size"),
		benchproc.KiB(benchproc.RSSKiB(sidecars[0].PID, "VmRSS")), benchproc.KiB(benchproc.RSSKiB(sidecars[1].PID, "VmRSS")),
		benchproc.KiB(benchproc.RSSKiB(sidecars[2].PID, "VmRSS")))

	// Rate: the stream-on sidecar (its deny-set filled above) against one
	// with the stream off, alternated.
	off, err := startSidecar(sidecarBin, a.Public, a.Admin, "--revocation-events-url", "off")
	if err != nil {
		return err
	}
	defer off.stop()
	on := sidecars[0]
	rate := func(s *sidecar) (float64, error) {
		conns := make([]authv3.AuthorizationClient, o.connections)
		for i := range conns {
			conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			conns[i] = authv3.NewAuthorizationClient(conn)
			for _, tok := range bystanders[:16] { // connect and cache
				_, _ = allowed(conns[i], checkRequest(tok))
			}
		}
		var n, bad atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		start := time.Now()
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := i; !stop.Load(); j++ {
					if ok, err := allowed(c, checkRequest(bystanders[j%16])); err != nil || !ok {
						bad.Add(1)
					}
					n.Add(1)
				}
			}()
		}
		time.Sleep(o.roundTime)
		stop.Store(true)
		wg.Wait()
		if bad.Load() > 0 {
			return 0, fmt.Errorf("%d checks failed", bad.Load())
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	var onSum, offSum float64
	var ratios []float64
	for r := range o.rounds / 2 {
		order := []*sidecar{on, off}
		if r%2 == 1 {
			order = []*sidecar{off, on}
		}
		var got [2]float64
		for k, s := range order {
			v, err := rate(s)
			if err != nil {
				return err
			}
			got[k] = v
		}
		onR, offR := got[0], got[1]
		if order[0] == off {
			onR, offR = got[1], got[0]
		}
		onSum += onR
		offSum += offR
		ratios = append(ratios, onR/offR)
		fmt.Printf("rate round %d: stream on %.0f/s, off %.0f/s (on/off %.3f)\n", r+1, onR, offR, onR/offR)
	}
	slices.Sort(ratios)
	fmt.Printf("check rate, %d connections, cached JWTs: stream on / off = %.3f over %d pairs (median pair %.3f); deny-set of the on sidecar: %s\n",
		o.connections, onSum/offSum, len(ratios), ratios[len(ratios)/2], on.metric("gatehouse_sidecar_revocation_deny_set_size"))
	return nil
}
