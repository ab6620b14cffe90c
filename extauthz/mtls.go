package extauthz

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/netip"
	"net/url"
	"strings"
)

// ReasonMTLS is the denial reason of a certificate-bound token without
// its certificate.
const ReasonMTLS = "mtls_certificate_mismatch"

// mtlsChecker enforces RFC 8705 §3: a token with cnf.x5t#S256 is
// accepted only with the client certificate whose SHA-256 that is.
type mtlsChecker struct {
	header  string
	xfcc    bool
	trusted []netip.Prefix
	// §3: a binding failure is an invalid_token error (RFC 6750 §3.1).
	noCert, mismatch *Denial
}

func newMTLSChecker(cfg MTLSConfig, realm string, m *metrics) *mtlsChecker {
	c := &mtlsChecker{header: cfg.ClientCertHeader, xfcc: cfg.ClientCertHeader == XFCCHeader}
	for _, p := range cfg.TrustedProxies {
		if pp, err := parsePrefix(p); err == nil { // validated with the config
			c.trusted = append(c.trusted, pp)
		}
	}
	c.noCert = newDenial(realm, 401, ErrInvalidToken, ReasonMTLS, "The access token is bound to a client certificate and the request has none.", "", m)
	c.mismatch = newDenial(realm, 401, ErrInvalidToken, ReasonMTLS, "The client certificate is not the one the access token is bound to.", "", m)
	return c
}

func (c *mtlsChecker) check(r *Request, x5t string) *Denial {
	want, err := base64.RawURLEncoding.DecodeString(x5t)
	if err != nil || len(want) != sha256.Size {
		return c.mismatch
	}
	got, ok := c.thumbprint(r)
	if !ok {
		return c.noCert
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return c.mismatch
	}
	return nil
}

// thumbprint is the SHA-256 of the request's client certificate (DER):
// Envoy's source.certificate, else the configured header when it comes
// from a trusted proxy.
func (c *mtlsChecker) thumbprint(r *Request) ([]byte, bool) {
	if r.PeerCertificate != "" {
		return pemThumbprint(r.PeerCertificate)
	}
	if r.CertHeader == "" || !c.trustedSource(r.HeaderSource) {
		return nil, false
	}
	if !c.xfcc {
		return pemThumbprint(r.CertHeader)
	}
	cert, hash := parseXFCC(r.CertHeader)
	switch {
	case cert != "":
		return pemThumbprint(cert)
	case hash != "":
		b, err := hex.DecodeString(hash)
		return b, err == nil && len(b) == sha256.Size
	}
	return nil, false
}

func (c *mtlsChecker) trustedSource(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pemThumbprint decodes a URL-encoded PEM certificate (Envoy's
// source.certificate and XFCC Cert, nginx's $ssl_client_escaped_cert)
// and returns the SHA-256 of its DER (RFC 8705 §3.1).
func pemThumbprint(escaped string) ([]byte, bool) {
	s, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, false
	}
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, false
	}
	sum := sha256.Sum256(b.Bytes)
	return sum[:], true
}

// parseXFCC returns the Cert and Hash fields of the last element of an
// x-forwarded-client-cert value: elements are separated by ",", pairs by
// ";", values may be double-quoted (with \" escapes). The last element is
// the one the proxy nearest to the sidecar added.
func parseXFCC(v string) (cert, hash string) {
	elems := splitQuoted(v, ',')
	if len(elems) == 0 {
		return "", ""
	}
	for _, pair := range splitQuoted(elems[len(elems)-1], ';') {
		k, val, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "cert":
			cert = val
		case "hash":
			hash = val
		}
	}
	return cert, hash
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
