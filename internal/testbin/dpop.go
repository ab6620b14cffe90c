package testbin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// DPoPKey is a client's DPoP key (ES256); its proofs are signed with jwx.
type DPoPKey struct {
	priv *ecdsa.PrivateKey
	jwk  map[string]any
	// JKT is the key's RFC 7638 thumbprint (the tokens' cnf.jkt).
	JKT string
}

// Private is the private key; JWK the public one as a JSON object.
func (d *DPoPKey) Private() *ecdsa.PrivateKey { return d.priv }
func (d *DPoPKey) JWK() map[string]any        { return d.jwk }

// NewDPoPKey generates a P-256 DPoP key.
func NewDPoPKey(t testing.TB) *DPoPKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(k)
	d := &DPoPKey{priv: priv}
	_ = json.Unmarshal(raw, &d.jwk)
	sum, _ := k.Thumbprint(crypto.SHA256)
	d.JKT = base64.RawURLEncoding.EncodeToString(sum)
	return d
}

// Proof is an RFC 9449 §4.2 proof for htm and htu with a fresh jti, and
// ath when token is not empty; edit may change its header and claims
// before it is signed.
func (d *DPoPKey) Proof(t testing.TB, htm, htu, token string, edit func(hdr, claims map[string]any)) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	hdr := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": d.jwk}
	claims := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": htm, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if edit != nil {
		edit(hdr, claims)
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sig, err := jwsbb.Sign(d.priv, "ES256", []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// DPoPClient is an HTTP client that adds a fresh proof of key (none when
// key is nil) to every request it sends, for a client library that knows
// nothing of DPoP (golang.org/x/oauth2 takes it from its context). The
// proof's htu is the request's URL without query and fragment (RFC 9449
// §4.2).
func DPoPClient(t testing.TB, key *DPoPKey) *http.Client {
	return &http.Client{Transport: dpopTransport{t: t, key: key}}
}

type dpopTransport struct {
	t   testing.TB
	key *DPoPKey
}

func (d dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if d.key != nil {
		u := *r.URL
		u.RawQuery, u.Fragment = "", ""
		r.Header.Set("DPoP", d.key.Proof(d.t, r.Method, u.String(), "", nil))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// DPoPToken asks the token endpoint for a token bound to key with form
// (as c, client_secret_basic) and fails unless it is a DPoP token.
func (is *Issuer) DPoPToken(t testing.TB, c Client, key *DPoPKey, form url.Values) string {
	t.Helper()
	return is.DPoPTokenWithProof(t, c, form, key.Proof(t, http.MethodPost, is.PublicURL+"/oauth2/token", "", nil))
}

// DPoPTokenWithProof is DPoPToken with a proof the caller made (another
// DPoP client's).
func (is *Issuer) DPoPTokenWithProof(t testing.TB, c Client, form url.Values, proof string) string {
	t.Helper()
	status, raw := is.postToken(t, c, form, map[string]string{"DPoP": proof})
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || status != http.StatusOK || tok.TokenType != "DPoP" || tok.AccessToken == "" {
		t.Fatalf("DPoP token: %d %s", status, raw)
	}
	return tok.AccessToken
}
