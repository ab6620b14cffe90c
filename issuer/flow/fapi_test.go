package flow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

func TestValidateFAPI(t *testing.T) {
	s256 := func(r *AuthorizeRequest) { r.CodeChallenge, r.CodeChallengeMethod = "x", "S256" }
	for _, tt := range []struct {
		name     string
		pushed   bool
		rt       []string
		pkce     func(r *AuthorizeRequest)
		redirect string
		code     string // "" = accepted
	}{
		{"pushed code S256 https", true, []string{"code"}, s256, "https://rp.example.com/cb", ""},
		{"loopback redirect", true, []string{"code"}, s256, "http://127.0.0.1:9/cb", ""},
		{"not pushed", false, []string{"code"}, s256, "https://rp.example.com/cb", "invalid_request"},
		{"code id_token", true, []string{"code", "id_token"}, s256, "https://rp.example.com/cb", "unsupported_response_type"},
		{"token", true, []string{"token"}, s256, "https://rp.example.com/cb", "unsupported_response_type"},
		{"no PKCE", true, []string{"code"}, func(*AuthorizeRequest) {}, "https://rp.example.com/cb", "invalid_request"},
		{"PKCE plain", true, []string{"code"}, func(r *AuthorizeRequest) { r.CodeChallenge, r.CodeChallengeMethod = "x", "plain" }, "https://rp.example.com/cb", "invalid_request"},
		{"http redirect", true, []string{"code"}, s256, "http://rp.example.com/cb", "invalid_request"},
		{"private-use redirect", true, []string{"code"}, s256, "com.example.app:/cb", "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &AuthorizeRequest{ResponseTypes: tt.rt}
			tt.pkce(req)
			err := validateFAPI(&authz{req: req, pushed: tt.pushed, redirectURI: tt.redirect})
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

type fixedProof struct {
	jkt string
	err error
}

func (f fixedProof) PARProof(context.Context, *http.Request) (string, error) { return f.jkt, f.err }

// TestBindPushedDPoP: RFC 9449 §10.1 at the PAR endpoint.
func TestBindPushedDPoP(t *testing.T) {
	refused := &apierr.Error{Code: "invalid_dpop_proof", Status: 400}
	for _, tt := range []struct {
		name     string
		checker  ProofChecker
		dpopJKT  string
		wantJKT  string
		wantCode string
	}{
		{"no checker", nil, "", "", ""},
		{"no proof", fixedProof{}, "", "", ""},
		{"no proof, dpop_jkt kept", fixedProof{}, "A", "A", ""},
		{"proof binds", fixedProof{jkt: "A"}, "", "A", ""},
		{"proof and matching dpop_jkt", fixedProof{jkt: "A"}, "A", "A", ""},
		{"proof and another dpop_jkt", fixedProof{jkt: "A"}, "B", "", "invalid_dpop_proof"},
		{"refused proof", fixedProof{err: refused}, "", "", "invalid_dpop_proof"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{dpop: tt.checker}
			a := &authz{req: &AuthorizeRequest{DPoPJKT: tt.dpopJKT}, params: url.Values{}}
			if tt.dpopJKT != "" {
				a.params.Set("dpop_jkt", tt.dpopJKT)
			}
			err := h.bindPushedDPoP(context.Background(), &http.Request{}, a)
			var ae *apierr.Error
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("want %s, got %v", tt.wantCode, err)
				}
			case err != nil:
				t.Fatal(err)
			case a.req.DPoPJKT != tt.wantJKT || a.params.Get("dpop_jkt") != tt.wantJKT:
				t.Fatalf("dpop_jkt %q / stored %q, want %q", a.req.DPoPJKT, a.params.Get("dpop_jkt"), tt.wantJKT)
			}
		})
	}
}
