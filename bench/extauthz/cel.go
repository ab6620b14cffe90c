package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// celCondition is the condition of the /cel route in scenario (f), the
// one of extauthz's BenchmarkDecideCEL: a claim against a request
// header, a scope and the method.
const celCondition = `claims.ext.tenant == request.headers["x-tenant"] && "read" in token.scopes && request.method in ["GET", "HEAD"]`

// celRuleYAML is the rule added to the sidecar's configuration when (f)
// runs (an item of the rules list).
const celRuleYAML = `  - name: cel
    match: {path_prefix: /cel}
    conditions:
      - name: tenant
        expression: '` + celCondition + `'
`

// celScenario is (a) on two routes of the same sidecar, paired: a plain
// route (GET /api/orders) and a route with one CEL condition (GET
// /cel/orders), the same cached JWT and the same headers (x-tenant
// included) on both. The two alternate in short slices (ABBA order, so
// that drifts of the shared machine fall on both alike), first with one
// call in flight (the latency of one check: the difference is what the
// condition adds to it), then with -streams in flight (throughput and CPU
// per check).
func celScenario(o options, is *extauthztest.Issuer, k *extauthztest.Key, g *generator, sc *sidecarProc) error {
	tok := is.Token(k, nil) // ext.tenant "acme", scope "read write"
	mk := func(path string) *call {
		req := checkRequest(tok)
		h := req.Attributes.Request.Http
		h.Path, h.Headers[":path"] = path, path
		h.Headers["x-tenant"] = "acme"
		return newCall(req)
	}
	plain, withCEL := mk("/api/orders?page=1"), mk("/cel/orders?page=1")
	rounds := o.celRounds
	slice := max(o.duration/time.Duration(2*rounds), 100*time.Millisecond)
	for _, streams := range []int{1, o.streams} {
		var a, b []result
		for i := range rounds {
			order := []*call{plain, withCEL}
			if i%2 == 1 {
				order = []*call{withCEL, plain}
			}
			for _, c := range order {
				r := g.load(sc, streams, o.warmup/time.Duration(rounds), slice, 0, func() *call { return c })
				if g.failed != nil {
					return g.failed
				}
				if c == plain {
					a = append(a, r)
				} else {
					b = append(b, r)
				}
			}
		}
		ra, rb := merge(a), merge(b)
		ra.print(fmt.Sprintf("(f) %d in flight: plain route, one JWT repeated (RS256, cache hit)", streams))
		rb.print(fmt.Sprintf("(f) %d in flight: route with one CEL condition, the same JWT", streams))
		cpu := func(r result) float64 { return float64(r.sidecarCPU.Nanoseconds()) / float64(max(r.n, 1)) / 1000 }
		// Paired: the difference within each round (adjacent slices),
		// then the median over the rounds.
		dp50, dcpu := make([]float64, rounds), make([]float64, rounds)
		for i := range rounds {
			dp50[i] = float64(b[i].pct(50)-a[i].pct(50)) / 1000
			dcpu[i] = cpu(b[i]) - cpu(a[i])
		}
		fmt.Printf("    CEL route - plain route, all slices: p50 %+.1fµs, p99 %+.1fµs, sidecar CPU per check %+.1fµs, rate %.0f%% of plain\n",
			float64(rb.pct(50)-ra.pct(50))/1000, float64(rb.pct(99)-ra.pct(99))/1000, cpu(rb)-cpu(ra), 100*rb.rate()/ra.rate())
		fmt.Printf("    paired, median over %d rounds of two %s slices: p50 %+.1fµs, sidecar CPU per check %+.1fµs\n",
			rounds, slice, median(dp50), median(dcpu))
	}
	return nil
}

// merge adds up the slices of one side of a paired scenario.
func merge(rs []result) result {
	var m result
	for _, r := range rs {
		m.n += r.n
		m.errs += r.errs
		m.elapsed += r.elapsed
		m.sidecarCPU += r.sidecarCPU
		m.loadCPU += r.loadCPU
		m.lat = append(m.lat, r.lat...)
		if m.err == nil {
			m.err = r.err
		}
	}
	slices.Sort(m.lat)
	return m
}
