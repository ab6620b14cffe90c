package extauthz

import (
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// fixedClock is a settable test clock.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is an authorizer wired to a fake issuer with one RS256 key.
type env struct {
	is    *extauthztest.Issuer
	key   *extauthztest.Key
	clock *fixedClock
	a     *Authorizer
	reg   *prometheus.Registry
}

// rsaKeyOnce shares one RSA key between tests: generating 2048-bit keys
// is the slowest part of a test run.
var (
	rsaKeyMu   sync.Mutex
	rsaKeyPool []any
)

func addRSAKey(is *extauthztest.Issuer, n int) *extauthztest.Key {
	rsaKeyMu.Lock()
	for len(rsaKeyPool) <= n {
		k := extauthztest.New()
		rsaKeyPool = append(rsaKeyPool, k.AddKey(jwa.RS256()).Private)
		k.Close()
	}
	priv := rsaKeyPool[n]
	rsaKeyMu.Unlock()
	return is.AddPrivateKey(jwa.RS256(), priv, true)
}

func newEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, mutate, nil)
}

// newEnvWith also lets the test set up the fake issuer before the
// authorizer first loads its keys.
func newEnvWith(t testing.TB, mutate func(*Config), setup func(*extauthztest.Issuer)) *env {
	t.Helper()
	clock := &fixedClock{t: testEpoch}
	is := extauthztest.New()
	t.Cleanup(is.Close)
	is.Now = clock.Now
	if setup != nil {
		setup(is)
	}
	key := addRSAKey(is, 0)
	cfg := Config{Issuers: []IssuerConfig{{Issuer: is.URL}}}
	// Unknown kids are re-fetched without the production rate limit
	// unless a test sets one.
	cfg.JWKS.UnknownKIDInterval = 10 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	a, err := New(cfg, Options{Logger: log, Now: clock.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("authorizer not ready")
	}
	return &env{is: is, key: key, clock: clock, a: a, reg: reg}
}

func bearer(tok string) *Request {
	return &Request{Host: "api.example.com", Method: "GET", Path: "/", Authorization: "Bearer " + tok}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				total += float64(h.GetSampleCount())
			}
		}
	}
	return total
}
