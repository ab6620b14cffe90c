package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func testCertPEM(t testing.TB) (*x509.Certificate, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestParseHeader(t *testing.T) {
	cert, p := testCertPEM(t)
	esc := url.PathEscape(p)
	for _, tc := range []struct {
		name, format, value string
		ok                  bool
	}{
		{"envoy", FormatEnvoy, `Hash=1;Cert="` + esc + `";Subject="CN=c";URI=spiffe://a;URI=spiffe://b`, true},
		{"envoy unquoted", FormatEnvoy, `Cert=` + esc, true},
		{"envoy with chain", FormatEnvoy, `Cert="` + esc + `";Chain="` + esc + esc + `"`, true},
		{"envoy quoted escapes", FormatEnvoy, `By="a\"b";Cert="` + esc + `"`, true},
		{"nginx", FormatNginx, esc, true},
		{"empty", FormatNginx, " ", true},
		{"two elements", FormatEnvoy, `Cert="` + esc + `",Cert="` + esc + `"`, false},
		{"no cert", FormatEnvoy, `Hash=abc;Subject="CN=c"`, false},
		{"unterminated", FormatEnvoy, `Cert="` + esc, false},
		{"no equals", FormatEnvoy, `Cert`, false},
		{"garbage after quote", FormatEnvoy, `Cert="` + esc + `"x`, false},
		{"repeated field", FormatEnvoy, `Cert="` + esc + `";Cert="` + esc + `"`, false},
		{"bad escape", FormatNginx, "%zz", false},
		{"not pem", FormatNginx, "hello", false},
		{"private key", FormatNginx, url.PathEscape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false},
		{"bad der", FormatNginx, url.PathEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), false},
		{"too long", FormatNginx, strings.Repeat("A", maxHeaderLen+1), false},
		{"too many", FormatNginx, strings.Repeat(esc, maxChain+2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseHeader(tc.format, tc.value)
			if !tc.ok {
				if !errors.Is(err, ErrMalformedHeader) {
					t.Fatalf("want ErrMalformedHeader, got %v, %v", c, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(tc.value) == "" {
				if c != nil {
					t.Fatal("empty header gave a certificate")
				}
				return
			}
			if !c.Leaf.Equal(cert) {
				t.Fatal("wrong leaf")
			}
			if tc.name == "envoy with chain" && len(c.Chain) != 1 {
				t.Fatalf("chain %d, want the leaf dropped from Chain", len(c.Chain))
			}
		})
	}
}

func TestSourceTrust(t *testing.T) {
	cert, p := testCertPEM(t)
	s, err := New(Options{Header: "X-Cert", Format: FormatNginx, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(remote string, hdr ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		r.RemoteAddr = remote
		for _, h := range hdr {
			r.Header.Add("X-Cert", h)
		}
		return r
	}
	if c, err := s.Certificate(req("10.1.2.3:5000", url.PathEscape(p))); err != nil || c == nil || c.Thumbprint() != Thumbprint(cert) {
		t.Fatalf("trusted proxy: %v %v", c, err)
	}
	if c, err := s.Certificate(req("[::ffff:10.1.2.3]:5000", url.PathEscape(p))); err != nil || c == nil {
		t.Fatalf("IPv4-mapped trusted proxy: %v %v", c, err)
	}
	for _, remote := range []string{"192.0.2.1:5000", "@", "", "[::1]:1"} {
		if c, err := s.Certificate(req(remote, url.PathEscape(p))); err != nil || c != nil {
			t.Fatalf("untrusted %q: the header must be ignored, got %v %v", remote, c, err)
		}
	}
	if _, err := s.Certificate(req("10.1.2.3:5000", url.PathEscape(p), url.PathEscape(p))); !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("repeated header: %v", err)
	}
	r := req("192.0.2.1:5000")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	if c, _ := s.Certificate(r); c == nil || !c.Leaf.Equal(cert) {
		t.Fatal("the TLS peer certificate comes first")
	}
	var none *Source
	if c, err := none.Certificate(r); c != nil || err != nil || none.Enabled() {
		t.Fatal("a nil Source finds nothing")
	}
	if _, err := New(Options{Header: "X", Format: "haproxy", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}); err == nil {
		t.Fatal("unknown format accepted")
	}
	if _, err := New(Options{Header: "X", Format: FormatEnvoy}); err == nil {
		t.Fatal("a header without trusted proxies accepted")
	}
}

// FuzzParseHeader: no header value makes the parser panic; a failure is
// always ErrMalformedHeader.
func FuzzParseHeader(f *testing.F) {
	_, p := testCertPEM(f)
	esc := url.PathEscape(p)
	for _, s := range []string{`Cert="` + esc + `"`, `Hash=1;Cert="` + esc + `";URI=x`, esc, `a="\`, `=;,`, `Cert="a\"`, "%", `Cert=""`} {
		f.Add(FormatEnvoy, s)
		f.Add(FormatNginx, s)
	}
	f.Fuzz(func(t *testing.T, format, value string) {
		c, err := ParseHeader(format, value)
		if err != nil && !errors.Is(err, ErrMalformedHeader) {
			t.Fatalf("error %v is not ErrMalformedHeader", err)
		}
		if err == nil && c != nil && c.Leaf == nil {
			t.Fatal("a certificate without a leaf")
		}
	})
}
