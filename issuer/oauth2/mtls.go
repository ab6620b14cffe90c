package oauth2

import (
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
	"github.com/gatehouse-dev/gatehouse/issuer/mtls"
)

// MTLSOptions are the mutual-TLS settings of RFC 8705.
type MTLSOptions struct {
	// Certs finds a request's client certificate; nil: none is received,
	// and the mutual-TLS methods and bound tokens are not advertised.
	Certs *mtls.Source
	// AliasURL, when set, is the base URL of an address serving mutual
	// TLS other than PublicURL: discovery names its endpoints in
	// mtls_endpoint_aliases (RFC 8705 §5).
	AliasURL string
	// AliasEndpoints are further mtls_endpoint_aliases members of
	// endpoints other handlers serve (e.g. the PAR endpoint), by name.
	AliasEndpoints map[string]string
}

// certBinding returns the x5t#S256 the client's access tokens are bound
// to: the presented certificate's when the client registered
// tls_client_certificate_bound_access_tokens (RFC 8705 §3), which then
// requires one, and "" otherwise.
func (h *Handler) certBinding(r *http.Request, c *client.Client) (string, error) {
	if !c.TLSClientCertificateBoundAccessTokens {
		return "", nil
	}
	cert, err := h.opts.MTLS.Certs.Certificate(r)
	if err != nil {
		return "", apierr.InvalidRequest("The client certificate header cannot be read").WithCause(err)
	}
	if cert == nil {
		return "", apierr.InvalidRequest("The OAuth 2.0 Client requires certificate-bound access tokens (tls_client_certificate_bound_access_tokens): the token request must be made with a client certificate (mutual TLS)")
	}
	return cert.Thumbprint(), nil
}

// checkCertBinding is RFC 8705 §3: a certificate-bound access token is
// accepted only over a connection authenticated with that certificate.
// bound is the token's x5t#S256 ("" for an unbound token).
func (h *Handler) checkCertBinding(r *http.Request, bound string) error {
	if bound == "" {
		return nil
	}
	cert, err := h.opts.MTLS.Certs.Certificate(r)
	if err != nil || cert == nil {
		return errors.New("The access token is bound to a client certificate (RFC 8705 §3); present it with the request")
	}
	if subtle.ConstantTimeCompare([]byte(cert.Thumbprint()), []byte(bound)) != 1 {
		return errors.New("The access token is bound to another client certificate")
	}
	return nil
}

// mtlsDiscovery adds RFC 8705's members when client certificates can be
// received: the mutual-TLS client authentication methods (§2.1.1,
// §2.2.1), tls_client_certificate_bound_access_tokens (§3.3) and, with an
// alias address, mtls_endpoint_aliases (§5).
func (h *Handler) mtlsDiscovery(m *discovery.Metadata) {
	if !h.opts.MTLS.Certs.Enabled() {
		return
	}
	m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, client.MTLSAuthMethods()...)
	m.RevocationEndpointAuthMethodsSupported = append(m.RevocationEndpointAuthMethodsSupported, client.MTLSAuthMethods()...)
	m.TLSClientCertificateBoundAccessTokens = true
	if base := strings.TrimSuffix(h.opts.MTLS.AliasURL, "/"); base != "" {
		aliases := map[string]string{
			"token_endpoint":      base + "/oauth2/token",
			"revocation_endpoint": base + "/oauth2/revoke",
			"userinfo_endpoint":   base + "/userinfo",
		}
		maps.Copy(aliases, h.opts.MTLS.AliasEndpoints)
		m.Extra = map[string]any{"mtls_endpoint_aliases": aliases}
	}
}
