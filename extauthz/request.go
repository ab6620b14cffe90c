package extauthz

import (
	"net"
	"net/netip"
	"path"
	"strings"
)

// Request is what the authorizer needs to know about the original HTTP
// request, as reported by the gateway.
type Request struct {
	// Host is the authority (":authority" or Host), a port is ignored.
	Host string
	// Method is the HTTP method.
	Method string
	// Path is the request target; a query string is ignored.
	Path string
	// Authorization is the Authorization header (several values joined
	// by ",").
	Authorization string
	// Cookie is the Cookie header (several values joined by "; ").
	Cookie string

	// What the binding checks read (binding.go). Scheme is the scheme
	// the client used ("https"); DPoP the DPoP header values (RFC 9449
	// §4.1); PeerCertificate the URL-encoded PEM client certificate the
	// gateway saw (Envoy's source.certificate); CertHeader the value of
	// the configured client certificate header, believed only when
	// HeaderSource is a trusted proxy.
	Scheme          string
	DPoP            []string
	PeerCertificate string
	CertHeader      string
	HeaderSource    netip.Addr

	// What CEL conditions read besides the above (cel.go): the request's
	// headers and the client's address.
	headers headerView
	source  netip.Addr
}

// NormalizePath turns a request target into the path rules match
// against: the query and fragment are dropped, percent-encoded octets
// are decoded except "/" (%2F) and "\" (%5C), which stay encoded as most
// routers keep them inside a segment, dot segments are resolved (RFC
// 3986 §5.2.4) and repeated slashes merged. A trailing slash is kept.
// A target that is not origin-form (no leading "/") is returned as is and
// matches no path rule.
func NormalizePath(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if target == "" {
		return "/"
	}
	if target[0] != '/' {
		return target
	}
	if isCleanPath(target) {
		return target
	}
	p := percentDecode(target)
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	p = path.Clean(p)
	if trailing && p != "/" {
		p += "/"
	}
	return p
}

// isCleanPath reports whether p needs no normalization: no "%", no "//",
// and no "." or ".." segment.
func isCleanPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			if i+1 < len(p) && p[i+1] == '.' {
				rest := p[i+1:]
				if rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
					return false
				}
			}
		}
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentDecode decodes %XX octets except %2F and %5C, which are kept
// (upper-cased); malformed escapes are kept as they are.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				c := h<<4 | l
				if c == '/' || c == '\\' {
					b.WriteByte('%')
					b.WriteString(strings.ToUpper(s[i+1 : i+3]))
				} else {
					b.WriteByte(c)
				}
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// NormalizeHost lower-cases an authority and drops its port and a
// trailing dot.
func NormalizeHost(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
