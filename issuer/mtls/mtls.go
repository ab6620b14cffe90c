// Package mtls finds the client certificate of a request for OAuth 2.0
// mutual-TLS client authentication and certificate-bound access tokens
// (RFC 8705): from the TLS connection when the issuer terminates TLS
// itself, or from a header set by a TLS-terminating gateway (Envoy's
// x-forwarded-client-cert, nginx's $ssl_client_escaped_cert), which is
// read only on requests from the configured trusted proxy addresses.
package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Header formats.
const (
	// FormatEnvoy is Envoy's x-forwarded-client-cert: one element of
	// key=value pairs separated by ';', whose Cert (and optional Chain)
	// value is the URL-encoded PEM certificate.
	FormatEnvoy = "envoy"
	// FormatNginx is a header carrying URL-encoded PEM, as nginx's
	// $ssl_client_escaped_cert writes it (the leaf; further PEM blocks,
	// if any, are taken as its chain).
	FormatNginx = "nginx"
)

// maxHeaderLen bounds the certificate header a proxy may send.
const maxHeaderLen = 32 << 10

// maxChain bounds the certificates a header may carry.
const maxChain = 10

// ErrMalformedHeader is returned for a client certificate header from a
// trusted proxy that cannot be read.
var ErrMalformedHeader = errors.New("mtls: the client certificate header is malformed")

// Options configure a Source.
type Options struct {
	// TLS reports that the listener itself asks clients for a
	// certificate (serve.public.tls with client_auth request).
	TLS bool
	// Header is the name of the header a gateway puts the client
	// certificate in; empty: no header is read.
	Header string
	// Format is FormatEnvoy or FormatNginx.
	Format string
	// TrustedProxies are the addresses the header is accepted from;
	// from any other address it is ignored.
	TrustedProxies []netip.Prefix
}

// Source finds requests' client certificates. A nil *Source finds none.
type Source struct{ o Options }

// New checks o and returns a Source.
func New(o Options) (*Source, error) {
	if o.Header != "" {
		if o.Format != FormatEnvoy && o.Format != FormatNginx {
			return nil, fmt.Errorf("mtls: header format %q is not %q or %q", o.Format, FormatEnvoy, FormatNginx)
		}
		if len(o.TrustedProxies) == 0 {
			return nil, errors.New("mtls: a client certificate header needs at least one trusted proxy address")
		}
	}
	return &Source{o: o}, nil
}

// Enabled reports whether client certificates can be received at all.
func (s *Source) Enabled() bool { return s != nil && (s.o.TLS || s.o.Header != "") }

// Certificate is a client certificate and the intermediates sent with it.
type Certificate struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
}

// Thumbprint is the certificate's x5t#S256 (RFC 8705 §3.1): the
// base64url SHA-256 of its DER encoding, without padding.
func (c *Certificate) Thumbprint() string { return Thumbprint(c.Leaf) }

// Thumbprint is the x5t#S256 of cert (RFC 8705 §3.1).
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Certificate returns the client certificate of r: the TLS peer
// certificate, else the configured header's when r comes from a trusted
// proxy. It returns nil, nil when there is none (a header from an
// untrusted address is ignored), and ErrMalformedHeader for a header from
// a trusted proxy that cannot be read.
func (s *Source) Certificate(r *http.Request) (*Certificate, error) {
	if s == nil {
		return nil, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return &Certificate{Leaf: r.TLS.PeerCertificates[0], Chain: r.TLS.PeerCertificates[1:]}, nil
	}
	if s.o.Header == "" || !s.trusted(r.RemoteAddr) {
		return nil, nil
	}
	values := r.Header.Values(s.o.Header)
	switch {
	case len(values) == 0:
		return nil, nil
	case len(values) > 1:
		return nil, fmt.Errorf("%w: the header is repeated", ErrMalformedHeader)
	}
	return ParseHeader(s.o.Format, values[0])
}

// trusted reports whether remoteAddr (host:port) is a trusted proxy's.
func (s *Source) trusted(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.o.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParseHeader reads a client certificate header of the given format. An
// empty header is no certificate (nil, nil).
func ParseHeader(format, value string) (*Certificate, error) {
	if len(value) > maxHeaderLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHeader, maxHeaderLen)
	}
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	switch format {
	case FormatEnvoy:
		return parseXFCC(value)
	case FormatNginx:
		return parseEscapedPEM(value, "")
	}
	return nil, fmt.Errorf("%w: unknown format %q", ErrMalformedHeader, format)
}

// parseXFCC reads Envoy's x-forwarded-client-cert. Several elements
// (separated by ',') mean the header was appended to by several proxies:
// refused, since only the one added by the trusted proxy could be
// believed; configure Envoy with forward_client_cert_details SANITIZE_SET.
func parseXFCC(value string) (*Certificate, error) {
	elems, err := splitXFCC(value)
	if err != nil {
		return nil, err
	}
	if len(elems) != 1 {
		return nil, fmt.Errorf("%w: %d elements, expected one (forward_client_cert_details: SANITIZE_SET)", ErrMalformedHeader, len(elems))
	}
	cert, chain := elems[0]["cert"], elems[0]["chain"]
	if cert == "" {
		// Envoy sets Hash, Subject, URI... without Cert when
		// set_current_client_cert_details does not ask for it.
		return nil, fmt.Errorf("%w: no Cert field (set_current_client_cert_details: cert: true)", ErrMalformedHeader)
	}
	return parseEscapedPEM(cert, chain)
}

// splitXFCC splits an XFCC value into elements of lower-cased keys and
// unquoted values. Values may be double-quoted, with backslash escapes.
func splitXFCC(value string) ([]map[string]string, error) {
	var elems []map[string]string
	cur := map[string]string{}
	i := 0
	for {
		// key
		j := strings.IndexByte(value[i:], '=')
		if j < 0 {
			return nil, fmt.Errorf("%w: a field has no '='", ErrMalformedHeader)
		}
		key := strings.ToLower(strings.TrimSpace(value[i : i+j]))
		if key == "" || strings.ContainsAny(key, ",;\"") {
			return nil, fmt.Errorf("%w: a field has no valid name", ErrMalformedHeader)
		}
		i += j + 1
		var val strings.Builder
		if i < len(value) && value[i] == '"' {
			i++
			closed := false
			for i < len(value) {
				c := value[i]
				if c == '\\' && i+1 < len(value) {
					val.WriteByte(value[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("%w: an unterminated quoted value", ErrMalformedHeader)
			}
		} else {
			k := strings.IndexAny(value[i:], ";,")
			if k < 0 {
				k = len(value) - i
			}
			val.WriteString(value[i : i+k])
			i += k
		}
		if _, dup := cur[key]; dup && key != "uri" && key != "dns" {
			return nil, fmt.Errorf("%w: the field %s is repeated", ErrMalformedHeader, key)
		}
		cur[key] = val.String()
		if i >= len(value) {
			break
		}
		switch value[i] {
		case ';':
		case ',':
			elems = append(elems, cur)
			cur = map[string]string{}
		default:
			return nil, fmt.Errorf("%w: text after a quoted value", ErrMalformedHeader)
		}
		i++
	}
	return append(elems, cur), nil
}

// parseEscapedPEM reads URL-encoded PEM: leaf (whose further blocks, if
// any, are intermediates) and optionally a separate chain.
func parseEscapedPEM(leaf, chain string) (*Certificate, error) {
	certs, err := escapedPEM(leaf)
	if err != nil {
		return nil, err
	}
	if chain != "" {
		more, err := escapedPEM(chain)
		if err != nil {
			return nil, err
		}
		// Envoy's Chain starts with the leaf itself.
		if len(more) > 0 && more[0].Equal(certs[0]) {
			more = more[1:]
		}
		certs = append(certs, more...)
	}
	if len(certs) > maxChain {
		return nil, fmt.Errorf("%w: more than %d certificates", ErrMalformedHeader, maxChain)
	}
	return &Certificate{Leaf: certs[0], Chain: certs[1:]}, nil
}

func escapedPEM(s string) ([]*x509.Certificate, error) {
	// PathUnescape: '+' (a base64 character) stays '+'.
	raw, err := url.PathUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not URL-encoded PEM", ErrMalformedHeader)
	}
	rest := []byte(raw)
	var out []*x509.Certificate
	for len(out) <= maxChain {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: a PEM block of type %q", ErrMalformedHeader, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrMalformedHeader)
	}
	return out, nil
}
