package oauth2

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
)

// Discovery built from this handler advertises endpoints and grant types
// that work: a client finds the token endpoint through go-oidc, every
// advertised grant type is understood, and the revocation endpoint revokes.
func TestDiscoveryAdvertisesWhatWorks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := e.h.Discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := discovery.New(discovery.Deps{}, discovery.Options{Issuer: e.opts.IssuerURL, Contributions: []discovery.Metadata{m}})
	if err != nil {
		t.Fatal(err)
	}
	d.MountPublic(e.pubMux)
	p, err := oidc.NewProvider(ctx, e.pub.URL)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Grants     []string `json:"grant_types_supported"`
		Revocation string   `json:"revocation_endpoint"`
		Methods    []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: p.Endpoint().TokenURL}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range meta.Grants {
		r := e.post(p.Endpoint().TokenURL, url.Values{"grant_type": {g}}, "svc:svc-secret")
		if r.str("error") == "unsupported_grant_type" {
			t.Fatalf("advertised grant %q is unsupported", g)
		}
	}
	if r := e.post(p.Endpoint().TokenURL, url.Values{"grant_type": {"password"}}, "svc:svc-secret"); r.str("error") != "unsupported_grant_type" {
		t.Fatalf("%s", r.body)
	}
	if r := e.post(meta.Revocation, url.Values{"token": {tok.AccessToken}}, "svc:svc-secret"); r.status != http.StatusOK || e.active(tok.AccessToken) {
		t.Fatalf("revocation endpoint %q: %d %s", meta.Revocation, r.status, r.body)
	}
	if len(meta.Methods) == 0 {
		t.Fatal("no auth methods advertised")
	}
}
