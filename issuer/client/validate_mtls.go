package client

import (
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// validateMTLS checks the metadata of RFC 8705: tls_client_auth names
// exactly one expected certificate subject or SAN (§2.1.2),
// self_signed_tls_client_auth has keys to match (§2.2.2), and
// certificate-bound access tokens never come from the authorization
// endpoint, where no client certificate is presented (§3).
func validateMTLS(c *Client) error {
	fields := []struct{ name, value string }{
		{"tls_client_auth_subject_dn", c.TLSClientAuthSubjectDN},
		{"tls_client_auth_san_dns", c.TLSClientAuthSANDNS},
		{"tls_client_auth_san_uri", c.TLSClientAuthSANURI},
		{"tls_client_auth_san_ip", c.TLSClientAuthSANIP},
		{"tls_client_auth_san_email", c.TLSClientAuthSANEmail},
	}
	var set []string
	for _, f := range fields {
		if f.value != "" {
			set = append(set, f.name)
		}
		if len(f.value) > maxURILength {
			return metaErr("%s is longer than %d characters", f.name, maxURILength)
		}
	}
	switch c.TokenEndpointAuthMethod {
	case AuthTLSClient:
		// §2.1.2: "A client using the tls_client_auth authentication
		// method MUST use exactly one of the below metadata parameters".
		if len(set) != 1 {
			return metaErr("token_endpoint_auth_method tls_client_auth requires exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip, tls_client_auth_san_email (got %d)", len(set))
		}
	case AuthSelfSignedTLSClient:
		if len(c.JWKS) == 0 && c.JWKSURI == "" {
			return metaErr("token_endpoint_auth_method self_signed_tls_client_auth requires jwks or jwks_uri holding the certificate's public key")
		}
	}
	if len(set) > 0 && c.TokenEndpointAuthMethod != AuthTLSClient {
		return metaErr("%s may only be set with token_endpoint_auth_method tls_client_auth", set[0])
	}
	if v := c.TLSClientAuthSubjectDN; v != "" {
		if _, err := parseDN(v); err != nil {
			return metaErr("tls_client_auth_subject_dn is not an RFC 4514 distinguished name: %s", err.Error())
		}
	}
	if v := c.TLSClientAuthSANDNS; v != "" && (strings.ContainsAny(v, " /:@") || strings.Trim(v, ".") == "") {
		return metaErr("tls_client_auth_san_dns must be a DNS name")
	}
	if v := c.TLSClientAuthSANURI; v != "" {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() {
			return metaErr("tls_client_auth_san_uri must be an absolute URI")
		}
	}
	if v := c.TLSClientAuthSANIP; v != "" {
		if _, err := netip.ParseAddr(v); err != nil {
			return metaErr("tls_client_auth_san_ip must be an IPv4 or IPv6 address")
		}
	}
	if v := c.TLSClientAuthSANEmail; v != "" {
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v {
			return metaErr("tls_client_auth_san_email must be an e-mail address")
		}
	}
	if c.TLSClientCertificateBoundAccessTokens && (c.HasGrantType(GrantImplicit) || slices.ContainsFunc(c.ResponseTypes, func(rt string) bool {
		return slices.Contains(strings.Fields(rt), "token")
	})) {
		return metaErr("tls_client_certificate_bound_access_tokens cannot be combined with the implicit grant or a response type returning an access token")
	}
	return nil
}
