// Command device measures what polling devices cost the token endpoint
// (issue 17's target: 1,000 devices polling at their interval while 16
// connections mint client_credentials tokens, the minting rate within 10%
// of the rate without polling). It builds and starts the real gatehouse
// binary on the embedded SQLite default, registers a client_credentials
// client and a public device client, requests -devices device
// authorizations (RFC 8628 §3.1), and then alternates two kinds of window
// of -duration each, -pairs times:
//
//	quiet     -connections workers mint client_credentials opaque tokens
//	          (one request in flight each, bench/internal/h1 keep-alive)
//	polling   the same, while every device polls the token endpoint with
//	          its device code every -interval (the issuer's polling
//	          interval), each from its own goroutine, first polls spread
//	          over one interval; the window starts after one interval of
//	          polling
//
// It prints the minting rate of each window, the sums' ratio (polling /
// quiet: the target is at least 0.90), the polls answered per second and
// how (authorization_pending is the only right answer: a slow_down means
// the issuer judged a device too fast), and the issuer's CPU per window.
// Run from the repository root:
//
//	go run ./bench/device [-duration 10s] [-pairs 3] [-devices 1000] [-connections 16] [-interval 5s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/h1"
)

type options struct {
	duration    time.Duration
	pairs       int
	devices     int
	connections int
	interval    time.Duration
	bin         string
	profileDir  string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each window")
	flag.IntVar(&o.pairs, "pairs", 3, "quiet/polling window pairs, alternated so that a drift of the machine's speed falls on both")
	flag.IntVar(&o.devices, "devices", 1000, "devices polling in the polling windows")
	flag.IntVar(&o.connections, "connections", 16, "keep-alive connections minting client_credentials tokens, one request in flight each")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "the issuer's polling interval (OAUTH2_DEVICE_AUTHORIZATION_TOKEN_POLLING_INTERVAL), at which the devices poll")
	flag.StringVar(&o.bin, "issuer", "", "gatehouse binary to start (default: go build ./issuer/cmd/gatehouse)")
	flag.StringVar(&o.profileDir, "profile", "", "build the issuer with the loopback pprof overlay and write a CPU profile of each window to this directory")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/device:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "gatehouse-bench-device-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		if bin, err = benchproc.BuildIssuer(dir, o.profileDir != ""); err != nil {
			return err
		}
	}
	is, err := benchproc.StartIssuer(bin, dir, []string{"DSN=sqlite://" + dir + "/gatehouse.sqlite",
		"OAUTH2_DEVICE_AUTHORIZATION_TOKEN_POLLING_INTERVAL=" + o.interval.String(), "TTL_DEVICE_USER_CODE=24h"}, o.profileDir != "")
	if err != nil {
		return err
	}
	defer is.Stop()

	cc, err := createClient(is.Admin, map[string]any{"client_secret": "bench-client-secret-0123456789",
		"grant_types": []string{"client_credentials"}, "scope": "read", "token_endpoint_auth_method": "client_secret_basic"})
	if err != nil {
		return err
	}
	dev, err := createClient(is.Admin, map[string]any{"grant_types": []string{"urn:ietf:params:oauth:grant-type:device_code"},
		"token_endpoint_auth_method": "none", "scope": "openid"})
	if err != nil {
		return err
	}
	codes, err := deviceCodes(is.Public, dev, o.devices)
	if err != nil {
		return err
	}

	fmt.Printf("== machine: %d cores, %s, load %s\n", runtime.NumCPU(), benchproc.CPUModel(), benchproc.LoadAvg())
	fmt.Printf("== %d devices polling every %s; %d connections minting; %d pairs of %s windows\n",
		o.devices, o.interval, o.connections, o.pairs, o.duration)

	// The minting workers run from the first window to the last; each
	// window reads their counter at its edges.
	var minted, mintErrors atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	mintClient := &http.Client{Transport: &h1.Transport{Timeout: 30 * time.Second}}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	var workers sync.WaitGroup
	for range o.connections {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, is.Public+"/oauth2/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(cc, "bench-client-secret-0123456789")
				resp, err := mintClient.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mintErrors.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					minted.Add(1)
				} else {
					mintErrors.Add(1)
				}
			}
		}()
	}
	defer workers.Wait()
	defer stop()
	time.Sleep(time.Second) // warm-up: the connections open

	var quiet, polling window
	var pollCount int64
	for i := range o.pairs {
		q := measure(o.duration, is, &minted, o.profileDir, fmt.Sprintf("quiet-%d.pprof", i+1))
		quiet.add(q)
		fmt.Printf("pair %d  quiet    %8.1f tokens/s   CPU issuer %4.0f%% generator %4.0f%% other %4.0f%%\n", i+1, q.rate(), q.pct(q.cpu.Server), q.pct(q.cpu.Self), q.other())
		p, polls := pollingWindow(o, is, dev, codes, &minted, fmt.Sprintf("polling-%d.pprof", i+1))
		polling.add(p)
		pollCount += polls.total()
		fmt.Printf("pair %d  polling  %8.1f tokens/s   CPU issuer %4.0f%% generator %4.0f%% other %4.0f%%   polls %.1f/s %s\n", i+1, p.rate(),
			p.pct(p.cpu.Server), p.pct(p.cpu.Self), p.other(), float64(polls.total())/p.elapsed.Seconds(), polls)
	}
	ratio := polling.rate() / quiet.rate()
	fmt.Printf("\nquiet %.1f tokens/s, polling %.1f tokens/s: ratio %.3f (target >= 0.90)  mint errors %d\n",
		quiet.rate(), polling.rate(), ratio, mintErrors.Load())
	// The issuer's CPU per request, polls included: what a poll costs
	// when the cores are not also taken by the generator or others.
	fmt.Printf("issuer CPU per request: quiet %.1f µs, polling %.1f µs (polls counted as requests)\n",
		quiet.cpu.Server.Seconds()*1e6/float64(quiet.minted), polling.cpu.Server.Seconds()*1e6/float64(polling.minted+pollCount))
	return nil
}

// window is what one measured window saw.
type window struct {
	minted  int64
	elapsed time.Duration
	cpu     benchproc.CPUSample
}

func (w *window) add(o window) {
	w.minted += o.minted
	w.elapsed += o.elapsed
	w.cpu = w.cpu.Add(o.cpu)
}

func (w window) rate() float64 { return float64(w.minted) / w.elapsed.Seconds() }

// pct is a CPU time in percent of one core over the window.
func (w window) pct(d time.Duration) float64 { return 100 * d.Seconds() / w.elapsed.Seconds() }

// other is the CPU the rest of the machine (other processes, irq) used.
func (w window) other() float64 { return w.pct(w.cpu.Machine - w.cpu.Server - w.cpu.Self) }

// measure counts the tokens minted during d (and profiles the issuer
// meanwhile when profileDir is set).
func measure(d time.Duration, is *benchproc.Process, minted *atomic.Int64, profileDir, profile string) window {
	c0, n0, t0 := benchproc.SampleCPU(is.PID), minted.Load(), time.Now()
	if profileDir != "" {
		if err := is.CPUProfile(filepath.Join(profileDir, profile), d); err != nil {
			fmt.Fprintln(os.Stderr, "bench/device: profile:", err)
		}
	} else {
		time.Sleep(d)
	}
	return window{minted: minted.Load() - n0, elapsed: time.Since(t0), cpu: benchproc.SampleCPU(is.PID).Sub(c0)}
}

// pollOutcomes counts the token endpoint's answers to polls.
type pollOutcomes struct {
	pending, slowDown, other, failed atomic.Int64
}

func (p *pollOutcomes) total() int64 {
	return p.pending.Load() + p.slowDown.Load() + p.other.Load() + p.failed.Load()
}

func (p *pollOutcomes) String() string {
	return fmt.Sprintf("(authorization_pending %d, slow_down %d, other %d, failed %d)",
		p.pending.Load(), p.slowDown.Load(), p.other.Load(), p.failed.Load())
}

// pollingWindow starts every device polling, lets one interval pass, and
// measures a window; the devices stop at its end.
func pollingWindow(o options, is *benchproc.Process, clientID string, codes []string, minted *atomic.Int64, profile string) (window, *pollOutcomes) {
	public := is.Public
	ctx, stop := context.WithCancel(context.Background())
	// Devices share a pool of keep-alive connections, each request
	// written and read on its device's goroutine (bench/internal/h1), so
	// that the generator takes as little CPU from the issuer as it can.
	hc := &http.Client{Transport: &h1.Transport{Timeout: 30 * time.Second}}
	var counting atomic.Bool
	out := &pollOutcomes{}
	var wg sync.WaitGroup
	for _, code := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// RFC 8628 §3.5: a device waits the interval between requests.
			wait := time.Duration(rand.Int64N(int64(o.interval)))
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = o.interval
				outcome := poll(ctx, hc, public, clientID, code)
				if !counting.Load() || ctx.Err() != nil {
					continue
				}
				switch outcome {
				case "authorization_pending":
					out.pending.Add(1)
				case "slow_down":
					out.slowDown.Add(1)
					wait += 5 * time.Second
				case "":
					out.failed.Add(1)
				default:
					out.other.Add(1)
				}
			}
		}()
	}
	time.Sleep(o.interval)
	counting.Store(true)
	w := measure(o.duration, is, minted, o.profileDir, profile)
	counting.Store(false)
	stop()
	wg.Wait()
	return w, out
}

// poll is one device access token request; it returns the error code
// ("" for a transport failure, "ok" for tokens).
func poll(ctx context.Context, hc *http.Client, public, clientID, code string) string {
	body := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {code},
		"client_id": {clientID}}.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, public+"/oauth2/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode == http.StatusOK {
		return "ok"
	}
	return e.Error
}

// createClient registers a client through the admin API and returns its id.
func createClient(admin string, c map[string]any) (string, error) {
	b, _ := json.Marshal(c)
	resp, err := http.Post(admin+"/admin/clients", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"client_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create client: %d %v", resp.StatusCode, err)
	}
	return out.ID, nil
}

// deviceCodes requests n device authorizations for the public client.
func deviceCodes(public, clientID string, n int) ([]string, error) {
	codes := make([]string, n)
	errs := make(chan error, 8)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				resp, err := http.PostForm(public+"/oauth2/device/auth", url.Values{"client_id": {clientID}, "scope": {"openid"}})
				if err != nil {
					errs <- err
					return
				}
				var da struct {
					DeviceCode string `json:"device_code"`
				}
				err = json.NewDecoder(resp.Body).Decode(&da)
				resp.Body.Close()
				if err != nil || da.DeviceCode == "" {
					errs <- errors.New("device authorization: no device_code")
					return
				}
				codes[i] = da.DeviceCode
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return codes, nil
}
