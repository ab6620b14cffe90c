package client

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// FuzzBasicCredentials: the Basic header parser never panics, and whatever
// it accepts round-trips through the RFC 6749 §2.3.1 encoding.
func FuzzBasicCredentials(f *testing.F) {
	for _, s := range []string{
		"", "Basic", "Basic ", "Basic !!!", "Bearer abc", "basic Zm9vOmJhcg==", "Basic Zm9vOmJhcg",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a%2Fb:c%3Ad")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a:%zz")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":secret")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		id, secret, ok, err := BasicCredentials(h)
		if err != nil {
			if !ok || err.Code != "invalid_client" || err.StatusCode() != 401 {
				t.Fatalf("bad error %v (ok=%v)", err, ok)
			}
			return
		}
		if !ok {
			return
		}
		if id == "" {
			t.Fatal("accepted an empty client_id")
		}
		again, secret2, ok2, err2 := BasicCredentials(basicHeader(id, secret))
		if err2 != nil || !ok2 || again != id || secret2 != secret {
			t.Fatalf("round trip: %q %q -> %q %q %v", id, secret, again, secret2, err2)
		}
	})
}

// FuzzClientDocument: decoding, defaulting and validating any client
// document never panics and fails only with a 4xx API error.
func FuzzClientDocument(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"client_id":"a","redirect_uris":["https://a.example/cb"]}`,
		`{"redirect_uris":["http://x/#f"],"grant_types":["password"]}`,
		`{"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]},"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"jwks":{"keys":[{"kty":"oct","k":"AAAA"}]}}`, `{"metadata":[1,2]}`, `{"metadata":null,"jwks":null}`,
		`{"implicit_grant_id_token_lifespan":"-1h"}`, `{"implicit_grant_id_token_lifespan":3}`,
		`{"response_types":["code id_token token"],"scope":"a b\tc"}`, `{"redirect_uris":"x"}`,
		`{"client_name":"\u0000","owner":"` + strings.Repeat("o", 300) + `"}`,
		`{"allowed_cors_origins":["https://a.example/x"],"subject_type":"pairwise","sector_identifier_uri":"http://x"}`,
	} {
		f.Add([]byte(s))
	}
	o := &ValidationOptions{SupportedSubjectTypes: []string{"public", "pairwise"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeClient(b)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.StatusCode() != 400 {
				t.Fatalf("decode error %v", err)
			}
			return
		}
		if c.ID == "" {
			c.ID = "fuzz"
		}
		c.ApplyDefaults()
		if err := o.Validate(context.Background(), c); err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.StatusCode() != 400 {
				t.Fatalf("validation error %v", err)
			}
			return
		}
		// A valid client survives the storage round trip unchanged.
		sc, err := toStorage(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := fromStorage(sc)
		if err != nil || back.ID != c.ID || back.Scope != c.Scope || len(back.RedirectURIs) != len(c.RedirectURIs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzClientAssertion: any client_assertion is rejected (or accepted) with
// an API error, never a panic or a server error.
func FuzzClientAssertion(f *testing.F) {
	e := newAuthEnv(f)
	f.Add("x.y.z")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJwa2p3dCIsImlzcyI6InBrand0In0.")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJwa2p3dCIsImlzcyI6InBrand0IiwiYXVkIjpbMV19.AAAA")
	f.Add(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`)
	f.Fuzz(func(t *testing.T, assertion string) {
		r := httptest.NewRequest("POST", "/oauth2/token", nil)
		_, err := e.a.Authenticate(context.Background(), r, url.Values{
			"client_assertion_type": {JWTBearerAssertionType}, "client_assertion": {assertion}})
		if err == nil {
			t.Fatalf("accepted %q", assertion)
		}
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.StatusCode() >= 500 {
			t.Fatalf("error %v", err)
		}
	})
}
