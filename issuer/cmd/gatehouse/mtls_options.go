package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/flow"
	"github.com/gatehouse-dev/gatehouse/issuer/mtls"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// mtlsOptions maps serve.public.tls.client_auth and oauth2.mtls to where
// client certificates come from (RFC 8705) and the CA bundle that
// tls_client_auth certificates must chain to (nil without one).
func mtlsOptions(cfg *config.Config) (oauth2.MTLSOptions, *x509.CertPool, error) {
	m := cfg.OAuth2.MTLS
	prefixes, err := m.TrustedPrefixes()
	if err != nil {
		return oauth2.MTLSOptions{}, nil, fmt.Errorf("OAUTH2_MTLS_TRUSTED_PROXIES: %w", err)
	}
	pub := cfg.Serve.Public
	src, err := mtls.New(mtls.Options{
		TLS:    pub.TLS.Effective(cfg.Serve.TLS).Enabled() && pub.TLS.ClientAuth == config.ClientAuthRequest,
		Header: m.Header, Format: m.HeaderFormat, TrustedProxies: prefixes,
	})
	if err != nil {
		return oauth2.MTLSOptions{}, nil, err
	}
	var pool *x509.CertPool
	if m.CABundle != "" {
		pem, err := os.ReadFile(m.CABundle)
		if err != nil {
			return oauth2.MTLSOptions{}, nil, fmt.Errorf("OAUTH2_MTLS_CA_BUNDLE: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return oauth2.MTLSOptions{}, nil, errors.New("OAUTH2_MTLS_CA_BUNDLE: no PEM certificate in the file")
		}
	}
	o := oauth2.MTLSOptions{Certs: src, AliasURL: strings.TrimRight(m.AliasURL, "/")}
	if o.AliasURL != "" {
		// RFC 9126 §2: PAR authenticates clients like the token endpoint.
		o.AliasEndpoints = map[string]string{"pushed_authorization_request_endpoint": o.AliasURL + flow.PARPath}
	}
	return o, pool, nil
}
