package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Client certificate requests of serve.public.tls.client_auth.
const (
	ClientAuthRequest = "request"
	ClientAuthNone    = "none"
)

// validateTLS checks serve.*.tls and oauth2.mtls.
func (c *Config) validateTLS(add func(*Error)) {
	for _, l := range []struct {
		name string
		l    *Listener
	}{{"serve.public", &c.Serve.Public}, {"serve.admin", &c.Serve.Admin}} {
		t := &l.l.TLS
		allowed := []string{ClientAuthRequest, ClientAuthNone}
		if l.name == "serve.admin" {
			allowed = []string{ClientAuthNone}
		}
		if !slices.Contains(allowed, t.ClientAuth) {
			add(keyErr(l.name+".tls.client_auth", "must be one of %s, got %q", strings.Join(allowed, ", "), t.ClientAuth))
		}
		pair := t.Effective(c.Serve.TLS)
		if pair.Cert.Set() != pair.Key.Set() {
			add(keyErr(l.name+".tls", "needs both a certificate and a key (cert.path or cert.base64, key.path or key.base64)"))
		}
		for _, p := range []struct {
			key string
			s   PEMSource
		}{{"cert", pair.Cert}, {"key", pair.Key}} {
			if p.s.Path != "" && p.s.Base64 != "" {
				add(keyErr(l.name+".tls."+p.key, "set path or base64, not both"))
			}
		}
	}
	m := &c.OAuth2.MTLS
	if m.Header != "" {
		if !slices.Contains([]string{"envoy", "nginx"}, m.HeaderFormat) {
			add(keyErr("oauth2.mtls.client_certificate_header_format", "must be envoy or nginx, got %q", m.HeaderFormat))
		}
		if len(m.TrustedProxies) == 0 {
			add(keyErr("oauth2.mtls.trusted_proxies", "must list the gateway's addresses (CIDR) when oauth2.mtls.client_certificate_header is set"))
		}
	}
	if _, err := m.TrustedPrefixes(); err != nil {
		add(keyErr("oauth2.mtls.trusted_proxies", "%s", err.Error()))
	}
}

// TrustedPrefixes parses trusted_proxies (a bare address is a /32 or /128).
func (m MTLS) TrustedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range m.TrustedProxies {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Read returns the PEM bytes.
func (p PEMSource) Read() ([]byte, error) {
	if p.Base64 != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p.Base64))
		if err != nil {
			return nil, fmt.Errorf("base64: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(p.Path)
}
