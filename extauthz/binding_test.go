package extauthz

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRequestURL(t *testing.T) {
	plain, ext := &rule{}, &rule{externalBase: "https://public.example.com/svc"}
	for _, tc := range []struct {
		r    Request
		ru   *rule
		want string
	}{
		{Request{Host: "api.example.com", Path: "/orders?page=2", Scheme: "https"}, plain, "https://api.example.com/orders"},
		{Request{Host: "api.example.com:8443", Path: "/a#frag"}, plain, "https://api.example.com:8443/a"},
		{Request{Host: "api.example.com", Path: "/", Scheme: "HTTP"}, plain, "http://api.example.com/"},
		{Request{Host: "api.example.com", Path: ""}, plain, "https://api.example.com/"},
		{Request{Host: "", Path: "/a"}, plain, ""},
		{Request{Host: "h", Path: "*"}, plain, ""},
		{Request{Host: "internal:8080", Path: "/ext/items?x", Scheme: "http"}, ext, "https://public.example.com/svc/ext/items"},
	} {
		if got := requestURL(&tc.r, tc.ru); got != tc.want {
			t.Errorf("requestURL(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestReplayCache(t *testing.T) {
	c := newReplayCache(1024) // 16 per shard
	now := testEpoch
	const ttl = time.Minute
	if c.add("k", "a", now, ttl) != replayNew || c.add("k", "a", now.Add(30*time.Second), ttl) != replaySeen {
		t.Fatal("a jti must be refused again within the window")
	}
	if c.add("other", "a", now, ttl) != replayNew {
		t.Fatal("the same jti of another key is another proof")
	}
	if c.add("k", "a", now.Add(ttl+time.Second), ttl) != replayNew {
		t.Fatal("after the window the jti is forgotten (iat is too old by then anyway)")
	}
	// Fill one shard: it refuses rather than forget a proof in the window.
	full := newReplayCache(1024)
	var refused bool
	for i := range 64 * 17 {
		if full.add("k", strings.Repeat("x", i+1), now, ttl) == replayFull {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("a full cache must refuse new proofs")
	}
	for i := range 200 {
		if full.add("k2", strings.Repeat("y", i+1), now.Add(2*ttl), ttl) != replayNew {
			t.Fatalf("expired entries must make room (entry %d)", i)
		}
	}
}

func TestNonceSource(t *testing.T) {
	n := &nonceSource{key: []byte("0123456789abcdef0123456789abcdef"), window: time.Minute}
	now := testEpoch
	v := n.make(n.windowOf(now))
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{now, true}, {now.Add(time.Minute), true}, {now.Add(2 * time.Minute), false}, {now.Add(-time.Minute), false}} {
		if got := n.valid(v, tc.at); got != tc.want {
			t.Errorf("valid at %s = %v, want %v", tc.at.Sub(now), got, tc.want)
		}
	}
	other := &nonceSource{key: []byte("another-key-another-key-another-key"), window: time.Minute}
	for _, bad := range []string{"", "x", other.make(other.windowOf(now)), v[:len(v)-2] + "AA"} {
		if n.valid(bad, now) {
			t.Errorf("nonce %q must be refused", bad)
		}
	}
}

func TestParseXFCC(t *testing.T) {
	for _, tc := range []struct{ in, cert, hash string }{
		{`Hash=abc;Cert="-----BEGIN%20CERTIFICATE-----"`, "-----BEGIN%20CERTIFICATE-----", "abc"},
		{`By=spiffe://a;Hash=1;Subject="CN=a,O=b;c";Cert=c1,By=spiffe://b;Hash=2;Cert="c2"`, "c2", "2"},
		{`hash=9`, "", "9"},
		{`Subject="CN=\"x,y\"";Cert=z`, "z", ""},
		{``, "", ""},
	} {
		cert, hash := parseXFCC(tc.in)
		if cert != tc.cert || hash != tc.hash {
			t.Errorf("parseXFCC(%q) = %q, %q; want %q, %q", tc.in, cert, hash, tc.cert, tc.hash)
		}
	}
}

func FuzzParseXFCC(f *testing.F) {
	for _, s := range []string{`Hash=abc;Cert="x"`, `By=a;Subject="a,b\";";Cert=c,Hash=d`, `"`, `\`, `;;,,==`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cert, hash := parseXFCC(s)
		if len(cert) > len(s) || len(hash) > len(s) {
			t.Fatal("fields longer than the input")
		}
		_, _ = pemThumbprint(cert)
	})
}

func TestBindingConfigValidate(t *testing.T) {
	cfg := Config{Issuers: []IssuerConfig{{Issuer: "https://issuer.example.com"}},
		Rules: []Rule{{Name: "r", ExternalBaseURL: "https://x.example.com/a?q"}}}
	cfg.Binding.DPoP = DPoPConfig{Algorithms: []string{"HS256"}, ReplayCacheSize: 10, NonceSecret: "short", ProofMaxAge: -1}
	cfg.Binding.MTLS = MTLSConfig{ClientCertHeader: "Bad Header", TrustedProxies: []string{"10.0.0.0/8", "nope"}}
	err := cfg.Defaults().Validate()
	for _, key := range []string{"binding.dpop.algorithms[0]", "binding.dpop.replay_cache_size", "binding.dpop.nonce_secret",
		"binding.dpop.proof_max_age", "binding.mtls.client_cert_header", "binding.mtls.trusted_proxies[1]", "rules[0].external_base_url"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate must name %s: %v", key, err)
		}
	}
	if strings.Contains(err.Error(), "trusted_proxies[0]") {
		t.Errorf("a CIDR prefix is valid: %v", err)
	}
	ok := Config{Issuers: cfg.Issuers}.Defaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if ok.Binding.DPoP.ProofMaxAge != time.Minute || ok.Binding.MTLS.ClientCertHeader != XFCCHeader || len(ok.Binding.DPoP.Algorithms) != 10 {
		t.Errorf("defaults: %+v", ok.Binding)
	}
}

// TestReplayCacheConcurrent: of proofs with one jti sent at once, exactly
// one is accepted.
func TestReplayCacheConcurrent(t *testing.T) {
	c := newReplayCache(4096)
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.add("k", "same", testEpoch, time.Minute) == replayNew {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 1 {
		t.Fatalf("%d accepted, want 1", accepted.Load())
	}
}
