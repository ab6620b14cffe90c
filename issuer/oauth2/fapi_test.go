package oauth2

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

func TestCheckFAPI(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := &Handler{now: func() time.Time { return now }}
	pkj := &client.Client{ID: "c", TokenEndpointAuthMethod: client.AuthPrivateKeyJWT}
	proof := func(ahead time.Duration) *dpop.Proof { return &dpop.Proof{JKT: "k", IssuedAt: now.Add(ahead)} }
	for _, tt := range []struct {
		name string
		req  tokenRequest
		code string // "" = accepted
	}{
		{"private_key_jwt with DPoP", tokenRequest{Client: pkj, DPoP: proof(0)}, ""},
		{"proof 10 s ahead", tokenRequest{Client: pkj, DPoP: proof(10 * time.Second)}, ""},
		{"proof 11 s ahead", tokenRequest{Client: pkj, DPoP: proof(11 * time.Second)}, dpop.CodeInvalidProof},
		{"no proof", tokenRequest{Client: pkj}, dpop.CodeInvalidProof},
		{"certificate-bound", tokenRequest{Client: pkj, X5T: "x5t"}, ""},
		{"tls_client_auth", tokenRequest{Client: &client.Client{TokenEndpointAuthMethod: client.AuthTLSClientAuth}, DPoP: proof(0)}, ""},
		{"self_signed_tls_client_auth", tokenRequest{Client: &client.Client{TokenEndpointAuthMethod: client.AuthSelfSignedTLSClientAuth}, DPoP: proof(0)}, ""},
		{"client_secret_basic", tokenRequest{Client: &client.Client{TokenEndpointAuthMethod: client.AuthClientSecretBasic}, DPoP: proof(0)}, "invalid_client"},
		{"none", tokenRequest{Client: &client.Client{TokenEndpointAuthMethod: client.AuthNone}, DPoP: proof(0)}, "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := h.checkFAPI(&tt.req)
			var ae *apierr.Error
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("want accepted, got %v", err)
			case tt.code != "" && (!errors.As(err, &ae) || ae.Code != tt.code):
				t.Fatalf("want %s, got %v", tt.code, err)
			}
		})
	}
}

func TestCodeLifespan(t *testing.T) {
	fapi := &client.Client{FAPIProfile: client.FAPI2}
	other := &client.Client{}
	for _, tt := range []struct {
		configured time.Duration
		global     bool
		c          *client.Client
		want       time.Duration
	}{
		{10 * time.Minute, false, other, 10 * time.Minute},
		{10 * time.Minute, false, fapi, time.Minute},
		{10 * time.Minute, true, other, time.Minute},
		{30 * time.Second, false, fapi, 30 * time.Second},
	} {
		h := &Handler{opts: Options{AuthorizationCodeLifespan: tt.configured, FAPI: tt.global}}
		if got := h.codeLifespan(tt.c); got != tt.want {
			t.Errorf("codeLifespan(%s, global %v, fapi_profile %q) = %s, want %s", tt.configured, tt.global, tt.c.FAPIProfile, got, tt.want)
		}
	}
}

func TestRotatesRefreshTokens(t *testing.T) {
	fapi := &client.Client{FAPIProfile: client.FAPI2, TokenEndpointAuthMethod: client.AuthPrivateKeyJWT}
	public := &client.Client{FAPIProfile: client.FAPI2, TokenEndpointAuthMethod: client.AuthNone}
	plain := &client.Client{TokenEndpointAuthMethod: client.AuthClientSecretBasic}
	for _, tt := range []struct {
		name             string
		c                *client.Client
		global, rotation bool
		want             bool
	}{
		{"confidential FAPI client", fapi, false, false, false},
		{"confidential FAPI client, rotation on", fapi, false, true, true},
		{"public FAPI client", public, false, false, true},
		{"other client", plain, false, false, true},
		{"other client, global profile", plain, true, false, false},
	} {
		h := &Handler{opts: Options{FAPI: tt.global, FAPIRefreshTokenRotation: tt.rotation}}
		if got := h.rotatesRefreshTokens(tt.c); got != tt.want {
			t.Errorf("%s: rotates %v, want %v", tt.name, got, tt.want)
		}
	}
}
