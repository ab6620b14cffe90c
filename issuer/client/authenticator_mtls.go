package client

import (
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// certAuth implements tls_client_auth (RFC 8705 §2.1) and
// self_signed_tls_client_auth (§2.2) for c, the client named by the
// request's client_id.
func (a *Authenticator) certAuth(r *http.Request, c *Client) (*Client, error) {
	cert, err := a.o.Certs.Certificate(r)
	if err != nil {
		return nil, invalidClient("%w", err)
	}
	if cert == nil {
		return nil, invalidClient("the client uses %s but no client certificate was presented", c.TokenEndpointAuthMethod)
	}
	if c.TokenEndpointAuthMethod == AuthSelfSignedTLSClient {
		return a.selfSignedAuth(r.Context(), c, cert.Leaf)
	}
	// §2.1: the certificate chain is validated against the configured
	// trust anchors ("PKI Mutual-TLS Method").
	if a.o.ClientCAs == nil {
		return nil, invalidClient("tls_client_auth needs a CA bundle (oauth2.mtls.ca_bundle), and none is configured")
	}
	inter := x509.NewCertPool()
	for _, ic := range cert.Chain {
		inter.AddCert(ic)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{
		Roots: a.o.ClientCAs, Intermediates: inter, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, invalidClient("the client certificate does not verify against the CA bundle: %w", err)
	}
	if !certMatches(c, cert.Leaf) {
		return nil, invalidClient("the client certificate's subject or SANs do not match the client's tls_client_auth_* metadata")
	}
	return c, nil
}

// certMatches compares the one tls_client_auth_* value of c with the
// certificate (RFC 8705 §2.1.2): the subject DN as RFC 4514 compares it,
// or one of the SAN entries of the registered type.
func certMatches(c *Client, cert *x509.Certificate) bool {
	switch {
	case c.TLSClientAuthSubjectDN != "":
		want, err := parseDN(c.TLSClientAuthSubjectDN)
		return err == nil && want.equal(certDN(cert.Subject.ToRDNSequence()))
	case c.TLSClientAuthSANDNS != "":
		return slices.ContainsFunc(cert.DNSNames, func(n string) bool {
			return strings.EqualFold(strings.TrimSuffix(n, "."), strings.TrimSuffix(c.TLSClientAuthSANDNS, "."))
		})
	case c.TLSClientAuthSANURI != "":
		return slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == c.TLSClientAuthSANURI })
	case c.TLSClientAuthSANIP != "":
		want := net.ParseIP(c.TLSClientAuthSANIP)
		return want != nil && slices.ContainsFunc(cert.IPAddresses, want.Equal)
	case c.TLSClientAuthSANEmail != "":
		return slices.Contains(cert.EmailAddresses, c.TLSClientAuthSANEmail)
	}
	return false
}

// selfSignedAuth is §2.2: the certificate is not validated against any
// trust anchor; its public key must be one of the client's registered
// keys (jwks or jwks_uri).
func (a *Authenticator) selfSignedAuth(ctx context.Context, c *Client, cert *x509.Certificate) (*Client, error) {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, invalidClient("the client certificate's public key type is not supported")
	}
	found, err := a.withClientKeys(ctx, c, func(set jwk.Set) bool {
		for i := range set.Len() {
			k, _ := set.Key(i)
			var raw any
			if jwk.Export(k, &raw) == nil && pub.Equal(raw) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, invalidClient("the client certificate's public key is not in the client's jwks or jwks_uri")
	}
	return c, nil
}
