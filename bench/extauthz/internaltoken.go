package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// Scenario (e): issue 20's "an internal-token route with a warm cache
// within 10% of a plain route". One JWT, cached, sent to a plain route
// (/api/orders) and to a route with internal_token (/internal/orders,
// whose exchange is cached after the first check), in alternated rounds
// over the same connections, so that the load of the shared machine
// weighs on both alike.

// tokenEndpoint is a token endpoint for the sidecar's exchanges: it
// answers every request with one internal token (a JWT of the fake
// issuer for orders-api, an hour long) and counts the calls.
type tokenEndpoint struct {
	*httptest.Server
	calls atomic.Int64
	size  int // bytes of the internal token
}

func newTokenEndpoint(is *extauthztest.Issuer, k *extauthztest.Key) *tokenEndpoint {
	tok := is.Token(k, map[string]any{"aud": []string{"orders-api"}, "act": map[string]any{"sub": "bench-gateway"}})
	te := &tokenEndpoint{size: len(tok)}
	body := fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600,"issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}`, tok)
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	return te
}

// internalTokenConfig is the sidecar configuration of the /internal route.
func internalTokenConfig(tokenURL string) string {
	return fmt.Sprintf(`internal_tokens:
  token_endpoint: %s
  client_id: bench-gateway
  client_secret: bench-gateway-secret
rules:
  - name: internal
    match: {path_prefix: /internal}
    internal_token: {audience: orders-api}
`, tokenURL)
}

func internalTokenScenario(o options, is *extauthztest.Issuer, k *extauthztest.Key, te *tokenEndpoint, g *generator, sc *sidecarProc) {
	tok := is.Token(k, nil)
	routes := []struct {
		name string
		req  *call
		res  []result
	}{
		{name: "plain route", req: newCall(checkRequestAt(tok, "/api/orders?page=1"))},
		{name: "internal-token route", req: newCall(checkRequestAt(tok, "/internal/orders?page=1"))},
	}
	// Warm both: the decision cache (a JWT is cached from its second
	// check) and the internal token.
	for _, r := range routes {
		g.load(sc, o.streams, 0, 0, 4, countdown(r.req, 4))
	}
	before := te.calls.Load()
	var ratios, cpuRatios []float64
	for round := range o.pairRounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			req := routes[i].req
			var prof chan error
			if round < 2 && o.profileDir != "" {
				// The sidecar's CPU profile of each route's first round.
				prof = make(chan error, 1)
				go func() {
					prof <- sc.CPUProfile(filepath.Join(o.profileDir, fmt.Sprintf("cpu-internal-token-%d.pprof", i)), o.pairEach)
				}()
			}
			routes[i].res = append(routes[i].res, g.load(sc, o.streams, o.warmup/4, o.pairEach, 0, func() *call { return req }))
			if prof != nil {
				if err := <-prof; err != nil {
					fmt.Fprintln(os.Stderr, "bench/extauthz: sidecar CPU profile:", err)
				}
			}
		}
		ratios = append(ratios, routes[1].res[round].rate()/routes[0].res[round].rate())
		cpuRatios = append(cpuRatios, cpuPerCheck(routes[1].res[round])/cpuPerCheck(routes[0].res[round]))
	}
	for _, r := range routes {
		total := result{}
		for _, x := range r.res {
			total.n += x.n
			total.errs += x.errs
			total.elapsed += x.elapsed
			total.sidecarCPU += x.sidecarCPU
			total.loadCPU += x.loadCPU
			total.lat = append(total.lat, x.lat...)
			if x.err != nil {
				total.err = x.err
			}
		}
		sort.Slice(total.lat, func(a, b int) bool { return total.lat[a] < total.lat[b] })
		total.print(fmt.Sprintf("(e) one JWT repeated (RS256, cache hit), %s, %d rounds of %s", r.name, o.pairRounds, o.pairEach))
		if r.name != "plain route" {
			fmt.Printf("    the internal token: %s, %d bytes\n", o.internalAlg, te.size)
		}
	}
	fmt.Printf("    internal-token / plain rate per round: %s; median %.3f (target ≥ 0.90)\n", fmtRatios(ratios), median(ratios))
	fmt.Printf("    internal-token / plain CPU per check (sidecar + generator) per round: %s; median %.3f\n", fmtRatios(cpuRatios), median(cpuRatios))
	fmt.Printf("    token endpoint calls during the rounds: %d; sidecar RSS %s\n", te.calls.Load()-before, sc.rss())
}

// countdown returns req n times, then nil.
func countdown(req *call, n int) func() *call {
	var left atomic.Int64
	left.Store(int64(n))
	return func() *call {
		if left.Add(-1) < 0 {
			return nil
		}
		return req
	}
}

func fmtRatios(r []float64) string {
	s := ""
	for i, x := range r {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.3f", x)
	}
	return s
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuPerCheck is the CPU the sidecar and the generator spent per check.
func cpuPerCheck(r result) float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.sidecarCPU+r.loadCPU) / float64(r.n)
}
