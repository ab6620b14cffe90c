// Command revocation measures how long a revocation made at one issuer
// takes to reach a revocation event stream (GET /admin/revocations/events)
// served by another issuer on the same database: the issuer's share of
// issue 21's "revoke → denied at every gateway" target. It builds the real
// gatehouse binary and starts two issuers (loopback ports, LOG_LEVEL=warn,
// one system secret) on one SQLite file and, when -postgres (default
// $TEST_DATABASE_POSTGRES) is set, on one fresh PostgreSQL schema. It opens
// a stream at the second, then -n times: gets a client_credentials token
// at the first, waits a random part of the poll interval, revokes the
// token there (RFC 7009), and measures from the moment
// the revocation request is sent to the moment the stream delivers its
// frame. It prints p50/p90/p99/max per database. Run from the repository
// root:
//
//	go run ./bench/revocation [-n 300] [-poll 150ms] [-postgres DSN] [-json]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
)

type options struct {
	n        int
	poll     time.Duration
	postgres string
	jsonOut  bool
}

// Dist is a latency distribution in milliseconds.
type Dist struct {
	Database string  `json:"database"`
	N        int     `json:"n"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 300, "revocations measured per database")
	flag.DurationVar(&o.poll, "poll", 150*time.Millisecond, "revocation_events.poll_interval of the issuers")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("TEST_DATABASE_POSTGRES"), "PostgreSQL DSN to create a schema in (empty: SQLite only)")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON document instead of the table")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "revocation:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "gatehouse-bench-revocation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	progress("building the issuer")
	bin, err := benchproc.BuildIssuer(dir, false)
	if err != nil {
		return err
	}
	var out []Dist
	dbs := []struct{ name, dsn string }{{"sqlite", "sqlite://" + filepath.Join(dir, "gh.sqlite")}}
	if o.postgres != "" {
		dsn, drop, err := benchproc.FreshMigrated(o.postgres, "gh_bench_rev_", bin)
		if err != nil {
			return err
		}
		defer drop()
		dbs = append(dbs, struct{ name, dsn string }{"postgres", dsn})
	}
	for _, db := range dbs {
		d, err := measure(o, bin, dir, db.name, db.dsn)
		if err != nil {
			return fmt.Errorf("%s: %w", db.name, err)
		}
		out = append(out, d)
	}
	if o.jsonOut {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"machine": benchproc.CPUModel(), "load": benchproc.LoadAvg(),
			"poll_interval": o.poll.String(), "results": out})
	}
	fmt.Printf("machine: %s; load %s; poll_interval %s\n", benchproc.CPUModel(), benchproc.LoadAvg(), o.poll)
	fmt.Printf("%-9s %5s %8s %8s %8s %8s\n", "database", "n", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, d := range out {
		fmt.Printf("%-9s %5d %8.1f %8.1f %8.1f %8.1f\n", d.Database, d.N, d.P50, d.P90, d.P99, d.Max)
	}
	return nil
}

func measure(o options, bin, dir, name, dsn string) (Dist, error) {
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	env := []string{"DSN=" + dsn, "SECRETS_SYSTEM=" + hex.EncodeToString(secret), "REVOCATION_EVENTS_POLL_INTERVAL=" + o.poll.String()}
	start := func(sub string, extra ...string) (*benchproc.Process, error) {
		d := filepath.Join(dir, name+"-"+sub)
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
		return benchproc.StartIssuer(bin, d, append(append([]string{}, env...), extra...), false)
	}
	progress("starting two issuers on " + name)
	a, err := start("a")
	if err != nil {
		return Dist{}, err
	}
	defer a.Stop()
	// One issuer URL for both, as replicas behind one name have.
	b, err := start("b", "URLS_SELF_ISSUER="+a.Public)
	if err != nil {
		return Dist{}, err
	}
	defer b.Stop()
	hc := &http.Client{Timeout: 30 * time.Second}
	id, secretStr, err := register(hc, a.Admin)
	if err != nil {
		return Dist{}, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.Admin+"/admin/revocations/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Dist{}, err
	}
	defer resp.Body.Close()
	frames := make(chan time.Time, 16)
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: revocation" {
				frames <- time.Now()
			}
		}
	}()

	progress(fmt.Sprintf("%d revocations at one issuer, streamed by the other", o.n))
	lat := make([]time.Duration, 0, o.n)
	for i := 0; i < o.n+10; i++ {
		tok, err := token(hc, a.Public, id, secretStr)
		if err != nil {
			return Dist{}, err
		}
		// A random pause, so the revocations fall anywhere in the poll
		// cycle (back to back, each would start just after the tick that
		// delivered the previous one, and wait a whole interval).
		time.Sleep(mrand.N(o.poll))
		t0 := time.Now()
		if err := revoke(hc, a.Public, id, secretStr, tok); err != nil {
			return Dist{}, err
		}
		select {
		case at, ok := <-frames:
			if !ok {
				return Dist{}, fmt.Errorf("the stream ended")
			}
			if i >= 10 { // the first ten warm up
				lat = append(lat, at.Sub(t0))
			}
		case <-time.After(10 * time.Second):
			return Dist{}, fmt.Errorf("no event within 10s")
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	return Dist{Database: name, N: len(lat), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: q(1)}, nil
}

func register(hc *http.Client, admin string) (id, secret string, err error) {
	resp, err := hc.Post(admin+"/admin/clients", "application/json", strings.NewReader(
		`{"grant_types":["client_credentials"],"scope":"read","token_endpoint_auth_method":"client_secret_basic"}`))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || c.ID == "" {
		return "", "", fmt.Errorf("registering a client: %d %v", resp.StatusCode, err)
	}
	return c.ID, c.Secret, nil
}

func post(hc *http.Client, u, id, secret string, form url.Values) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %d %s", u, resp.StatusCode, body)
	}
	return body, nil
}

func token(hc *http.Client, public, id, secret string) (string, error) {
	body, err := post(hc, public+"/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if err != nil {
		return "", err
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	return t.AccessToken, json.Unmarshal(body, &t)
}

func revoke(hc *http.Client, public, id, secret, tok string) error {
	_, err := post(hc, public+"/oauth2/revoke", id, secret, url.Values{"token": {tok}})
	return err
}

func progress(s string) { fmt.Fprintln(os.Stderr, "==", s) }
