package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/mtls"
)

func TestValidateMTLS(t *testing.T) {
	pub, _ := publicJWKS(t)
	tls := func(f func(c *Client)) func(c *Client) {
		return func(c *Client) { c.TokenEndpointAuthMethod = AuthTLSClient; f(c) }
	}
	tests := []struct {
		name string
		mod  func(c *Client)
		msg  string // "" = valid
	}{
		{"subject dn", tls(func(c *Client) { c.TLSClientAuthSubjectDN = "CN=a,O=Acme" }), ""},
		{"san dns", tls(func(c *Client) { c.TLSClientAuthSANDNS = "a.example.com" }), ""},
		{"san uri", tls(func(c *Client) { c.TLSClientAuthSANURI = "spiffe://example.com/a" }), ""},
		{"san ip", tls(func(c *Client) { c.TLSClientAuthSANIP = "2001:db8::1" }), ""},
		{"san email", tls(func(c *Client) { c.TLSClientAuthSANEmail = "a@example.com" }), ""},
		{"none of them", tls(func(c *Client) {}), "exactly one"},
		{"two of them", tls(func(c *Client) { c.TLSClientAuthSANDNS, c.TLSClientAuthSANIP = "a.example", "192.0.2.1" }), "exactly one"},
		{"bad dn", tls(func(c *Client) { c.TLSClientAuthSubjectDN = "just text" }), "tls_client_auth_subject_dn"},
		{"unknown dn attribute", tls(func(c *Client) { c.TLSClientAuthSubjectDN = "FOO=bar" }), "tls_client_auth_subject_dn"},
		{"bad ip", tls(func(c *Client) { c.TLSClientAuthSANIP = "300.1.1.1" }), "tls_client_auth_san_ip"},
		{"relative uri", tls(func(c *Client) { c.TLSClientAuthSANURI = "a/b" }), "tls_client_auth_san_uri"},
		{"bad email", tls(func(c *Client) { c.TLSClientAuthSANEmail = "Ann <a@example.com>" }), "tls_client_auth_san_email"},
		{"bad dns", tls(func(c *Client) { c.TLSClientAuthSANDNS = "https://a.example" }), "tls_client_auth_san_dns"},
		{"san with another method", func(c *Client) { c.TLSClientAuthSANDNS = "a.example" }, "only be set with"},
		{"self signed without keys", func(c *Client) { c.TokenEndpointAuthMethod = AuthSelfSignedTLSClient }, "jwks"},
		{"self signed with jwks", func(c *Client) { c.TokenEndpointAuthMethod = AuthSelfSignedTLSClient; c.JWKS = pub }, ""},
		{"bound tokens", func(c *Client) { c.TLSClientCertificateBoundAccessTokens = true }, ""},
		{"bound tokens with implicit", func(c *Client) {
			c.TLSClientCertificateBoundAccessTokens = true
			c.GrantTypes = []string{GrantImplicit}
			c.ResponseTypes = []string{"token"}
			c.RedirectURIs = []string{"https://a.example/cb"}
		}, "tls_client_certificate_bound_access_tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ID: "c1"}
			tt.mod(c)
			c.ApplyDefaults()
			opts := ValidationOptions{}
			err := opts.Validate(context.Background(), c)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Code != "invalid_client_metadata" || !strings.Contains(ae.Description, tt.msg) {
				t.Fatalf("want invalid_client_metadata about %q, got %v", tt.msg, err)
			}
		})
	}
}

func TestSubjectDNMatch(t *testing.T) {
	subject := pkix.Name{CommonName: "client, one", Organization: []string{"Acme"}, Country: []string{"DE"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "example"}}}
	rdn := subject.ToRDNSequence()
	got := certDN(rdn)
	for _, tc := range []struct {
		dn   string
		want bool
	}{
		{subject.String(), true},
		{`CN=client\, one,O=Acme,C=DE,DC=example`, false}, // order matters: String() puts the extra names first
		{`dc=example , cn = Client\2C One , o=ACME, c=de`, true},
		{`DC=example,CN=client\, one,O=Acme,C=DE`, true},
		{`0.9.2342.19200300.100.1.25=example,2.5.4.3=client\, one,2.5.4.10=Acme,2.5.4.6=DE`, true},
		{`DC=example,CN=client\, one,O=Acme`, false},
		{`DC=example,CN=client\, two,O=Acme,C=DE`, false},
		{`DC=example,CN=client\, one,O=Acme,C=DE,OU=x`, false},
	} {
		want, err := parseDN(tc.dn)
		if err != nil {
			t.Fatalf("%s: %v", tc.dn, err)
		}
		if want.equal(got) != tc.want {
			t.Errorf("%q vs %q: match %v, want %v", tc.dn, subject.String(), !tc.want, tc.want)
		}
	}
	for _, bad := range []string{"", "CN", "CN=a,", "CN=", `CN=a\`, "=a", "XYZ=a"} {
		if _, err := parseDN(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseDN: no registered DN makes the parser panic.
func FuzzParseDN(f *testing.F) {
	for _, s := range []string{"CN=a,O=b", `CN=a\,b+OU=c`, `CN=#0403616263`, `1.2.3=x`, `CN=\41`, "CN=a,", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDN(s)
		if err == nil && len(d) == 0 {
			t.Fatal("a DN without RDNs")
		}
	})
}

// testChain makes a CA and a client certificate it signed.
func testChain(t *testing.T, edit func(*x509.Certificate)) (ca *x509.Certificate, leaf *x509.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client", Organization: []string{"Acme"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return ca, leaf
}

func TestCertAuth(t *testing.T) {
	ca, leaf := testChain(t, func(c *x509.Certificate) {
		c.DNSNames = []string{"client.example.com"}
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/c"}}
		c.IPAddresses = []net.IP{net.ParseIP("192.0.2.1")}
		c.EmailAddresses = []string{"c@example.com"}
	})
	_, foreign := testChain(t, func(c *x509.Certificate) { c.DNSNames = []string{"client.example.com"} })
	_, serverOnly := testChain(t, func(c *x509.Certificate) {
		c.DNSNames = []string{"client.example.com"}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	src, _ := mtls.New(mtls.Options{TLS: true})
	a := &Authenticator{o: AuthenticatorOptions{Certs: src, ClientCAs: pool}, now: time.Now}
	for _, tc := range []struct {
		name string
		c    Client
		cert *x509.Certificate
		ok   bool
	}{
		{"dn", Client{TLSClientAuthSubjectDN: "CN=client,O=Acme"}, leaf, true},
		{"dns", Client{TLSClientAuthSANDNS: "CLIENT.example.com."}, leaf, true},
		{"uri", Client{TLSClientAuthSANURI: "spiffe://example.com/c"}, leaf, true},
		{"ip", Client{TLSClientAuthSANIP: "192.0.2.1"}, leaf, true},
		{"email", Client{TLSClientAuthSANEmail: "c@example.com"}, leaf, true},
		{"wrong dn", Client{TLSClientAuthSubjectDN: "CN=other,O=Acme"}, leaf, false},
		{"wrong dns", Client{TLSClientAuthSANDNS: "other.example.com"}, leaf, false},
		{"wrong ip", Client{TLSClientAuthSANIP: "192.0.2.2"}, leaf, false},
		{"wrong uri", Client{TLSClientAuthSANURI: "spiffe://example.com/d"}, leaf, false},
		{"wrong email", Client{TLSClientAuthSANEmail: "d@example.com"}, leaf, false},
		{"other CA", Client{TLSClientAuthSANDNS: "client.example.com"}, foreign, false},
		{"not for client auth", Client{TLSClientAuthSANDNS: "client.example.com"}, serverOnly, false},
		{"no certificate", Client{TLSClientAuthSANDNS: "client.example.com"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.TokenEndpointAuthMethod = AuthTLSClient
			r := httptest.NewRequest("POST", "/oauth2/token", nil)
			if tc.cert != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
			}
			_, err := a.certAuth(r, &c)
			if tc.ok != (err == nil) {
				t.Fatalf("ok %v, got %v", tc.ok, err)
			}
			var ae *apierr.Error
			if err != nil && (!errors.As(err, &ae) || ae.Code != "invalid_client") {
				t.Fatalf("want invalid_client, got %v", err)
			}
		})
	}
	// Without a CA bundle tls_client_auth fails closed.
	a.o.ClientCAs = nil
	r := httptest.NewRequest("POST", "/oauth2/token", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	if _, err := a.certAuth(r, &Client{TokenEndpointAuthMethod: AuthTLSClient, TLSClientAuthSANDNS: "client.example.com"}); err == nil {
		t.Fatal("tls_client_auth without a CA bundle succeeded")
	}
}
