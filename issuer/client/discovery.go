package client

import (
	"context"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
)

// AuthMethods returns the client authentication methods Authenticator
// accepts without client certificates, for
// token_endpoint_auth_methods_supported and its revocation counterpart.
func AuthMethods() []string { return slices.Clone(baseAuthMethods) }

// MTLSAuthMethods returns the mutual-TLS methods of RFC 8705 §2, which
// Authenticator accepts when client certificates can reach it.
func MTLSAuthMethods() []string { return slices.Clone(mtlsAuthMethods) }

// AssertionAlgs returns the JWS algorithms Authenticator accepts for
// private_key_jwt assertions, for the *_auth_signing_alg_values_supported
// members: asymmetricAlgs by their RFC 7518 and RFC 8037 names, that is
// without Ed25519, which is EdDSA over an Ed25519 key.
func AssertionAlgs() []string {
	return slices.DeleteFunc(slices.Clone(asymmetricAlgs), func(a string) bool { return a == "Ed25519" })
}

var _ discovery.Contributor = (*Handler)(nil)

// Discovery advertises registration_endpoint when dynamic client
// registration is enabled, and nothing otherwise.
func (h *Handler) Discovery(context.Context) (discovery.Metadata, error) {
	if !h.reg.Enabled {
		return discovery.Metadata{}, nil
	}
	return discovery.Metadata{RegistrationEndpoint: strings.TrimSuffix(h.reg.PublicURL, "/") + registrationPath}, nil
}
