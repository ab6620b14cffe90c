package extauthz

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
)

// BindingConfig configures the checks of sender-constrained tokens: DPoP
// (RFC 9449) for tokens with cnf.jkt, mutual TLS (RFC 8705) for tokens
// with cnf.x5t#S256. Bound tokens are always checked; these settings only
// say how.
type BindingConfig struct {
	DPoP DPoPConfig `yaml:"dpop"`
	MTLS MTLSConfig `yaml:"mtls"`
}

// DPoPConfig configures the DPoP proof checks (RFC 9449 §4.3, §7).
type DPoPConfig struct {
	// Algorithms accepted for proofs (asymmetric only). Default: ES256
	// ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// ProofMaxAge is how old a proof's iat may be; it is also how long its
	// jti is remembered (the replay window). Default 60s.
	ProofMaxAge time.Duration `yaml:"proof_max_age"`
	// ProofLeeway is how far in the future iat may be. Default 5s.
	ProofLeeway time.Duration `yaml:"proof_leeway"`
	// ReplayCacheSize bounds the remembered jti values; once full of
	// proofs still inside the window, new proofs are refused (fail
	// closed). Size it to the window times the peak proof rate.
	// Default 1048576.
	ReplayCacheSize int `yaml:"replay_cache_size"`
	// UseNonce requires a server nonce in every proof (§9): a proof
	// without a current one is refused with use_dpop_nonce and a
	// DPoP-Nonce header carrying one.
	UseNonce bool `yaml:"use_nonce"`
	// NonceSecret is the HMAC key nonces are made with (at least 32
	// characters). Replicas that should accept each other's nonces need
	// the same secret. Empty: a random key per process.
	NonceSecret string `yaml:"nonce_secret"`
	// NonceWindow is how long one nonce is handed out; a nonce is
	// accepted during its window and the next. Default 60s.
	NonceWindow time.Duration `yaml:"nonce_window"`
}

// MTLSConfig says where the client certificate of a request comes from
// (RFC 8705 §3). Envoy's own attribute (source.certificate, sent with
// include_peer_certificate: true) is always read; a header is read only
// from the addresses listed in TrustedProxies.
type MTLSConfig struct {
	// ClientCertHeader names the header a gateway puts the client
	// certificate in. "x-forwarded-client-cert" (the default) is read as
	// Envoy's XFCC (its Cert= field); any other name as a URL-encoded PEM
	// certificate (nginx's $ssl_client_escaped_cert).
	ClientCertHeader string `yaml:"client_cert_header"`
	// TrustedProxies are the addresses or CIDR prefixes the header is
	// believed from: on gRPC the request's source address
	// (attributes.source.address), on /auth the address calling the
	// sidecar. None: the header is never read.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// XFCCHeader is Envoy's x-forwarded-client-cert.
const XFCCHeader = "x-forwarded-client-cert"

func (c BindingConfig) defaults() BindingConfig {
	d := &c.DPoP
	if len(d.Algorithms) == 0 {
		d.Algorithms = slices.Clone(dpop.Algs)
	}
	if d.ProofMaxAge == 0 {
		d.ProofMaxAge = time.Minute
	}
	if d.ProofLeeway == 0 {
		d.ProofLeeway = 5 * time.Second
	}
	if d.ReplayCacheSize == 0 {
		d.ReplayCacheSize = 1 << 20
	}
	if d.NonceWindow == 0 {
		d.NonceWindow = time.Minute
	}
	if c.MTLS.ClientCertHeader == "" {
		c.MTLS.ClientCertHeader = XFCCHeader
	}
	return c
}

func (c BindingConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("binding.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	d := c.DPoP
	for i, a := range d.Algorithms {
		if !slices.Contains(dpop.Algs, a) {
			bad(fmt.Sprintf("dpop.algorithms[%d]", i), "%q is not an asymmetric signature algorithm (one of %s)", a, strings.Join(dpop.Algs, " "))
		}
	}
	if d.ProofMaxAge <= 0 || d.ProofMaxAge > time.Hour {
		bad("dpop.proof_max_age", "must be between 1ns and 1h, got %s", d.ProofMaxAge)
	}
	if d.ProofLeeway < 0 || d.ProofLeeway > 5*time.Minute {
		bad("dpop.proof_leeway", "must be between 0s and 5m, got %s", d.ProofLeeway)
	}
	if d.ReplayCacheSize < 1024 || d.ReplayCacheSize > 1<<26 {
		bad("dpop.replay_cache_size", "must be between 1024 and 67108864, got %d", d.ReplayCacheSize)
	}
	if d.NonceSecret != "" && len(d.NonceSecret) < 32 {
		bad("dpop.nonce_secret", "must be at least 32 characters")
	}
	if d.NonceWindow <= 0 {
		bad("dpop.nonce_window", "must be positive, got %s", d.NonceWindow)
	}
	if err := checkHeaderName(c.MTLS.ClientCertHeader); err != nil {
		bad("mtls.client_cert_header", "%v", err)
	}
	for i, p := range c.MTLS.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad(fmt.Sprintf("mtls.trusted_proxies[%d]", i), "%q is not an IP address or CIDR prefix", p)
		}
	}
	return errs
}

// parsePrefix reads an address ("10.0.0.1") or a prefix ("10.0.0.0/8").
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkExternalBaseURL validates a rule's external_base_url: an absolute
// http(s) URL without query, fragment or user information.
func checkExternalBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%q is not an absolute http(s) URL without query or fragment", s)
	}
	return nil
}
