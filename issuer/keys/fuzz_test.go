package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// fuzzAPI is an admin mux over a fresh store; the signing sets are
// ensured so that their protection rules are exercised too.
func fuzzAPI(f *testing.F) *http.ServeMux {
	e := newEnv()
	m := e.manager(f, keyring(f))
	if err := m.EnsureSets(context.Background(), SetIDToken); err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(m, "").MountAdmin(mux)
	return mux
}

func fuzzSeeds(f *testing.F) [][]byte {
	ec := ecJWK(f, "ec", "ES256", "P-256", true)
	ecPub := ecJWK(f, "ec-pub", "ES384", "P-384", false)
	ed := edJWK(f, "ed", true)
	rsaPub := jwkJSON(f, testRSA(f, 2048), "rsa", "PS256", false, nil)
	set := func(ks ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": ks})
		return b
	}
	return [][]byte{
		set(ec), set(ec, ecPub, ed, rsaPub), set(ecPub), set(),
		[]byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"s","alg":"HS256"}]}`),
		[]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"x","alg":"ES256","d":"AA"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"x","alg":"RS256"}]}`),
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"","kid":"x","alg":"EdDSA"}]}`),
		[]byte(`{"keys":null}`), []byte(`{"keys":[null]}`), []byte(`[]`), []byte(`"x"`), []byte(`{`),
		ec, ed,
	}
}

// checkAnswer fails on a 5xx, and on any success that shows a private key.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	if rec.Code != http.StatusOK {
		var e map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == nil {
			t.Fatalf("status %d without a JSON error: %s", rec.Code, rec.Body)
		}
		return
	}
	set, err := jwk.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("200 with an unparseable body: %s", rec.Body)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if priv, _ := jwk.IsPrivateKey(k); priv {
			t.Fatalf("answer reveals a private key: %s", rec.Body)
		}
	}
}

// FuzzPutKeySet sends arbitrary bodies to PUT /admin/keys/{set}: never a
// panic or a 5xx, and never a private key in the answer.
func FuzzPutKeySet(f *testing.F) {
	mux := fuzzAPI(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, signingSet bool) {
		path := "/admin/keys/fuzz"
		if signingSet {
			path = "/admin/keys/" + SetIDToken
		}
		req := httptest.NewRequest("PUT", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
	})
}

// FuzzPutKey does the same for PUT /admin/keys/{set}/{kid}.
func FuzzPutKey(f *testing.F) {
	mux := fuzzAPI(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PUT", "/admin/keys/fuzz/ec", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
	})
}
