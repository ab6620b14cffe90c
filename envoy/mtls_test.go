package envoy_test

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// TestIssuerMTLSBootstrap: mtls/issuer-mtls.yaml is a Bootstrap Envoy
// would accept that requests (without requiring) client certificates,
// lets self-signed ones through to the issuer, and forwards the
// certificate as one x-forwarded-client-cert element with its PEM
// (SANITIZE_SET replaces whatever the client sent), the form the issuer's
// oauth2.mtls.client_certificate_header_format envoy reads.
func TestIssuerMTLSBootstrap(t *testing.T) {
	const file = "mtls/issuer-mtls.yaml"
	bs := loadBootstrap(t, file)
	m := hcm(t, bs)
	if m.ForwardClientCertDetails != hcmv3.HttpConnectionManager_SANITIZE_SET {
		t.Fatalf("forward_client_cert_details %v, want SANITIZE_SET", m.ForwardClientCertDetails)
	}
	if d := m.SetCurrentClientCertDetails; d == nil || !d.Cert {
		t.Fatal("set_current_client_cert_details.cert must be true: the issuer reads the Cert field")
	}
	var tc tlsv3.DownstreamTlsContext
	if err := bs.StaticResources.Listeners[0].FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(&tc); err != nil {
		t.Fatal(err)
	}
	if tc.RequireClientCertificate.GetValue() {
		t.Fatal("client certificates must be requested, not required: ordinary clients use the same listener")
	}
	if v := tc.CommonTlsContext.GetValidationContext(); v == nil || v.TrustChainVerification != tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
		t.Fatal("self-signed client certificates (self_signed_tls_client_auth) must reach the issuer: trust_chain_verification ACCEPT_UNTRUSTED")
	}
	clusterPort(t, bs, "gatehouse_public")
}
