package extauthz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/valyala/fastjson"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

var b64 = base64.RawURLEncoding

func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64.EncodeToString(b)
}

// rawJWT builds a compact JWS by hand with sign computing the signature
// over the signing input.
func rawJWT(hdr, claims map[string]any, sign func(input []byte) []byte) string {
	input := segment(hdr) + "." + segment(claims)
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

// rawHeaderJWT is rawJWT with the protected header given as JSON text.
func rawHeaderJWT(hdr string, claims map[string]any, sign func(input []byte) []byte) string {
	input := b64.EncodeToString([]byte(hdr)) + "." + segment(claims)
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

// TestJWTAttacks is the attack suite: each hostile or invalid token is
// denied with the right status, RFC 6750 error and metrics reason.
func TestJWTAttacks(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Rules = []Rule{
			{Name: "aud", Match: Match{PathPrefix: "/aud"}, Audiences: []string{"billing"}},
			{Name: "scope", Match: Match{PathPrefix: "/admin"}, Scopes: []string{"admin", "read"}},
		}
	})
	claims := e.is.Claims()
	valid := e.is.Sign(e.key, claims, nil)
	rsaPriv := e.key.Private.(*rsa.PrivateKey)
	rs256 := func(in []byte) []byte {
		h := sha256.Sum256(in)
		s, _ := rsa.SignPKCS1v15(nil, rsaPriv, crypto.SHA256, h[:])
		return s
	}

	// A JWKS server the attacker controls, which must never be contacted.
	var attackerHits atomic.Int64
	attackerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWK, _ := jwk.PublicKeyOf(attackerKey)
	_ = attackerJWK.Set(jwk.KeyIDKey, "attacker")
	_ = attackerJWK.Set(jwk.AlgorithmKey, jwa.ES256())
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		set := jwk.NewSet()
		_ = set.AddKey(attackerJWK)
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer attacker.Close()
	attackerIssuer := &extauthztest.Issuer{Now: e.clock.Now, URL: e.is.URL}
	ak := attackerIssuer.AddPrivateKey(jwa.ES256(), attackerKey, true)
	ak.KID = "attacker"

	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaPriv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	parts := strings.Split(valid, ".")
	tamperedClaims := e.is.Claims()
	tamperedClaims["sub"] = "admin"
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherIssuer := &extauthztest.Issuer{Now: e.clock.Now, URL: e.is.URL}
	otherKey := otherIssuer.AddPrivateKey(jwa.RS256(), otherRSA, true)
	otherKey.KID = e.key.KID // kid of the real key, signature of another key

	withClaims := func(over map[string]any) string { return e.is.Token(e.key, over) }
	now := e.clock.Now()

	tests := []struct {
		name   string
		req    *Request
		status int
		code   string // RFC 6750 error ("" for none)
		reason string
	}{
		{"valid token", bearer(valid), 200, "", ""},
		{"scheme is case-insensitive", &Request{Path: "/", Authorization: "bEaReR " + valid}, 200, "", ""},
		{"no token", &Request{Path: "/"}, 401, "", ReasonMissingToken},
		{"other scheme", &Request{Path: "/", Authorization: "Basic dXNlcjpwYXNz"}, 401, "", ReasonMissingToken},
		{"token in query string ignored", &Request{Path: "/?access_token=" + valid}, 401, "", ReasonMissingToken},
		{"alg none", bearer(rawJWT(map[string]any{"alg": "none", "typ": "at+jwt", "kid": e.key.KID}, claims,
			func([]byte) []byte { return nil })), 401, ErrInvalidToken, ReasonAlgorithm},
		{"alg none without signature part", bearer(segment(map[string]any{"alg": "none"}) + "." + segment(claims) + "."), 401, ErrInvalidToken, ReasonAlgorithm},
		{"HS256 signed with the public key (PEM)", bearer(rawJWT(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": e.key.KID}, claims,
			hs256(pubPEM))), 401, ErrInvalidToken, ReasonAlgorithm},
		{"HS256 signed with the public key (DER)", bearer(rawJWT(map[string]any{"alg": "HS256", "kid": e.key.KID}, claims,
			hs256(pubDER))), 401, ErrInvalidToken, ReasonAlgorithm},
		{"PS256 on a key published for RS256", bearer(rawJWT(map[string]any{"alg": "PS256", "typ": "at+jwt", "kid": e.key.KID}, claims,
			func(in []byte) []byte {
				h := sha256.Sum256(in)
				s, _ := rsa.SignPSS(rand.Reader, rsaPriv, 5, h[:], nil)
				return s
			})), 401, ErrInvalidToken, ReasonAlgorithm},
		{"wrong kid", bearer(e.is.Sign(e.key, claims, map[string]any{"kid": "no-such-key"})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"kid path injection", bearer(e.is.Sign(e.key, claims, map[string]any{"kid": "../../../../dev/null"})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"kid SQL injection", bearer(e.is.Sign(e.key, claims, map[string]any{"kid": "x' UNION SELECT 'secret"})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"kid of a real key, signed by another key", bearer(otherIssuer.Sign(otherKey, claims, nil)), 401, ErrInvalidToken, ReasonBadSignature},
		{"jku pointing at the attacker's JWKS", bearer(attackerIssuer.Sign(ak, claims, map[string]any{"jku": attacker.URL})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"x5u pointing at the attacker", bearer(attackerIssuer.Sign(ak, claims, map[string]any{"x5u": attacker.URL})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"embedded jwk header", bearer(attackerIssuer.Sign(ak, claims, map[string]any{"jwk": attackerJWK})), 401, ErrInvalidToken, ReasonUnknownKey},
		{"embedded jwk with the real kid", bearer(attackerIssuer.Sign(&extauthztest.Key{KID: e.key.KID, Alg: jwa.ES256(), Private: attackerKey}, claims,
			map[string]any{"jwk": attackerJWK})), 401, ErrInvalidToken, ReasonAlgorithm},
		{"unknown crit", bearer(e.is.Sign(e.key, claims, map[string]any{"crit": []string{"exp-ext"}, "exp-ext": 1})), 401, ErrInvalidToken, ReasonCritical},
		{"expired", bearer(withClaims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), 401, ErrInvalidToken, ReasonExpired},
		{"expired just now, inside the skew", bearer(withClaims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), 200, "", ""},
		{"expired beyond the skew", bearer(withClaims(map[string]any{"exp": now.Add(-31 * time.Second).Unix()})), 401, ErrInvalidToken, ReasonExpired},
		{"no exp", bearer(withClaims(map[string]any{"exp": nil})), 401, ErrInvalidToken, ReasonInvalidClaims},
		{"exp not a number", bearer(withClaims(map[string]any{"exp": "tomorrow"})), 401, ErrInvalidToken, ReasonInvalidClaims},
		{"nbf in the future", bearer(withClaims(map[string]any{"nbf": now.Add(time.Hour).Unix()})), 401, ErrInvalidToken, ReasonNotYetValid},
		{"nbf inside the skew", bearer(withClaims(map[string]any{"nbf": now.Add(20 * time.Second).Unix()})), 200, "", ""},
		{"iat in the future", bearer(withClaims(map[string]any{"iat": now.Add(time.Hour).Unix()})), 401, ErrInvalidToken, ReasonNotYetValid},
		{"wrong iss", bearer(withClaims(map[string]any{"iss": "https://evil.example.com"})), 401, ErrInvalidToken, ReasonWrongIssuer},
		{"iss with trailing slash", bearer(withClaims(map[string]any{"iss": e.is.URL + "/"})), 401, ErrInvalidToken, ReasonWrongIssuer},
		{"no iss", bearer(withClaims(map[string]any{"iss": nil})), 401, ErrInvalidToken, ReasonWrongIssuer},
		{"wrong aud", &Request{Path: "/aud/x", Authorization: "Bearer " + valid}, 403, ErrInsufficientScope, ReasonAudience},
		{"right aud", &Request{Path: "/aud/x", Authorization: "Bearer " + withClaims(map[string]any{"aud": []string{"api", "billing"}})}, 200, "", ""},
		{"aud as a string", &Request{Path: "/aud", Authorization: "Bearer " + withClaims(map[string]any{"aud": "billing"})}, 200, "", ""},
		{"missing scope", &Request{Path: "/admin", Authorization: "Bearer " + valid}, 403, ErrInsufficientScope, ReasonScope},
		{"scopes from scp only", &Request{Path: "/admin", Authorization: "Bearer " + withClaims(map[string]any{"scope": nil, "scp": []string{"read", "admin"}})}, 200, "", ""},
		{"tampered payload", bearer(parts[0] + "." + segment(tamperedClaims) + "." + parts[2]), 401, ErrInvalidToken, ReasonBadSignature},
		{"tampered header", bearer(segment(map[string]any{"alg": "RS256", "kid": e.key.KID, "typ": "AT+JWT"}) + "." + parts[1] + "." + parts[2]), 401, ErrInvalidToken, ReasonBadSignature},
		{"truncated signature", bearer(valid[:len(valid)-10]), 401, ErrInvalidToken, ReasonBadSignature},
		{"truncated to two parts", bearer(parts[0] + "." + parts[1]), 401, ErrInvalidToken, ReasonInactive},
		{"empty signature", bearer(parts[0] + "." + parts[1] + "."), 401, ErrInvalidToken, ReasonBadSignature},
		{"header not JSON", bearer(b64.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2]), 401, ErrInvalidToken, ReasonMalformed},
		{"payload not JSON", bearer(rawJWT(map[string]any{"alg": "RS256", "typ": "at+jwt"}, nil, func([]byte) []byte { return []byte("x") })), 401, ErrInvalidToken, ReasonBadSignature},
		{"huge token", bearer(strings.Repeat("a", 100_000)), 401, ErrInvalidToken, ReasonTooLarge},
		{"bearer without token", &Request{Path: "/", Authorization: "Bearer "}, 401, ErrInvalidToken, ReasonMalformed},
		{"token with spaces", &Request{Path: "/", Authorization: "Bearer a b"}, 401, ErrInvalidToken, ReasonMalformed},
		{"two bearer headers", &Request{Path: "/", Authorization: "Bearer " + valid + ",Bearer " + valid}, 401, ErrInvalidToken, ReasonMalformed},
		{"typ of another kind of JWT", bearer(e.is.Sign(e.key, claims, map[string]any{"typ": "logout+jwt"})), 401, ErrInvalidToken, ReasonType},
		{"typ JWT refused by default", bearer(e.is.Sign(e.key, claims, map[string]any{"typ": "JWT"})), 401, ErrInvalidToken, ReasonType},
		{"no typ refused by default", bearer(e.is.Sign(e.key, claims, map[string]any{"typ": nil})), 401, ErrInvalidToken, ReasonType},
		{"typ application/at+jwt", bearer(e.is.Sign(e.key, claims, map[string]any{"typ": "application/AT+JWT"})), 200, "", ""},
		{"sub not a string", bearer(withClaims(map[string]any{"sub": 42})), 401, ErrInvalidToken, ReasonInvalidClaims},
		// The compact JWS parser (compact.go).
		{"alg repeated in the header", bearer(rawHeaderJWT(`{"alg":"RS256","kid":"`+e.key.KID+`","alg":"HS256"}`, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"kid repeated in the header", bearer(rawHeaderJWT(`{"alg":"RS256","kid":"`+e.key.KID+`","kid":"other"}`, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"b64 header", bearer(rawJWT(map[string]any{"alg": "RS256", "kid": e.key.KID, "b64": false}, claims, rs256)), 401, ErrInvalidToken, ReasonCritical},
		{"crit and b64 headers", bearer(rawJWT(map[string]any{"alg": "RS256", "kid": e.key.KID, "b64": false, "crit": []string{"b64"}}, claims, rs256)), 401, ErrInvalidToken, ReasonCritical},
		{"kid not a string", bearer(rawJWT(map[string]any{"alg": "RS256", "kid": 42}, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"typ not a string", bearer(rawJWT(map[string]any{"alg": "RS256", "kid": e.key.KID, "typ": true}, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"alg not a string", bearer(rawJWT(map[string]any{"alg": []string{"RS256"}, "kid": e.key.KID}, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"header a JSON array", bearer(rawHeaderJWT(`["alg","RS256"]`, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"header with trailing garbage", bearer(rawHeaderJWT(`{"alg":"RS256","kid":"`+e.key.KID+`"}x`, claims, rs256)), 401, ErrInvalidToken, ReasonMalformed},
		{"header in standard base64", bearer(strings.NewReplacer("-", "+", "_", "/").Replace(segment(map[string]any{"alg": "RS256", "kid": e.key.KID, "typ": "at+jwt", "x": "??????>>>>>>"})) + "." + parts[1] + "." + parts[2]), 401, ErrInvalidToken, ReasonMalformed},
		{"payload not base64url", bearer(parts[0] + ".e+30." + parts[2]), 401, ErrInvalidToken, ReasonMalformed},
		{"padded signature", bearer(valid + "=="), 401, ErrInvalidToken, ReasonBadSignature},
		{"signed with the right key, valid payload, signature of another token", bearer(parts[0] + "." + parts[1] + "." + strings.Split(withClaims(map[string]any{"sub": "other"}), ".")[2]), 401, ErrInvalidToken, ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.a.Decide(context.Background(), tc.req)
			if d.Err != nil {
				t.Fatalf("unexpected error: %v", d.Err)
			}
			if tc.status == 200 {
				if d.Denial != nil {
					t.Fatalf("denied (%s), want allowed", d.Denial.Reason)
				}
				return
			}
			if d.Denial == nil {
				t.Fatalf("allowed, want %d %s", tc.status, tc.reason)
			}
			if d.Denial.Status != tc.status || d.Denial.Error != tc.code || d.Denial.Reason != tc.reason {
				t.Fatalf("got %d %q %s, want %d %q %s", d.Denial.Status, d.Denial.Error, d.Denial.Reason, tc.status, tc.code, tc.reason)
			}
			wantChallenge := "Bearer"
			if tc.code != "" {
				wantChallenge = `Bearer error="` + tc.code + `"`
			}
			if !strings.HasPrefix(d.Denial.WWWAuthenticate, wantChallenge) {
				t.Fatalf("WWW-Authenticate %q, want prefix %q", d.Denial.WWWAuthenticate, wantChallenge)
			}
			if tc.code == "" && strings.Contains(d.Denial.WWWAuthenticate, "error") {
				t.Fatalf("no token was sent: WWW-Authenticate %q must not carry an error", d.Denial.WWWAuthenticate)
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Fatalf("the attacker's JWKS was fetched %d times", n)
	}
}

// TestIDTokensAreNotAccessTokens: the typ policy in every mode. By
// default only at+jwt passes; with accept_typ_jwt (or the older
// jwt.require_at_jwt_typ: false) a typ JWT or untyped token passes only
// with an access token's claims, so ID tokens of Gatehouse and Hydra (typ
// JWT, signed by a key of the same JWKS) are refused in every mode, with
// the 401 invalid_token every bad token gets.
func TestIDTokensAreNotAccessTokens(t *testing.T) {
	no := false
	modes := []struct {
		name   string
		mutate func(*Config)
		typJWT bool
	}{
		{"default", nil, false},
		{"require_at_jwt_typ true", func(c *Config) { yes := true; c.JWT.RequireATJWTType = &yes }, false},
		{"accept_typ_jwt", func(c *Config) { c.Issuers[0].AcceptTypJWT = true }, true},
		{"require_at_jwt_typ false", func(c *Config) { c.JWT.RequireATJWTType = &no }, true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.mutate)
			typJWT := map[string]any{"typ": "JWT"}
			hydraAT := e.is.Claims()
			delete(hydraAT, "scope")
			gatehouseID := e.is.IDTokenClaims("web")
			gatehouseID["azp"], gatehouseID["nonce"] = "web", "n-0S6_WzA2Mj"
			implicitID := e.is.IDTokenClaims("web") // response_type id_token: nonce, no at_hash
			delete(implicitID, "at_hash")
			implicitID["nonce"] = "n-0S6_WzA2Mj"
			scopedID := e.is.IDTokenClaims("web")
			scopedID["scope"], scopedID["client_id"] = "openid", "web"
			for _, tc := range []struct {
				name    string
				typ     map[string]any
				claims  map[string]any
				allowed bool
			}{
				{"at+jwt access token", nil, e.is.Claims(), true},
				{"application/at+jwt access token", map[string]any{"typ": "application/at+jwt"}, e.is.Claims(), true},
				{"Hydra typ JWT access token", typJWT, hydraAT, m.typJWT},
				{"typ jwt in lower case", map[string]any{"typ": "jwt"}, hydraAT, m.typJWT},
				{"untyped access token", map[string]any{"typ": nil}, e.is.Claims(), m.typJWT},
				{"Hydra ID token", typJWT, e.is.IDTokenClaims("web"), false},
				{"Gatehouse ID token", typJWT, gatehouseID, false},
				{"untyped ID token", map[string]any{"typ": nil}, e.is.IDTokenClaims("web"), false},
				{"implicit flow ID token", typJWT, implicitID, false},
				{"ID token with scope and client_id claims", typJWT, scopedID, false},
				{"ID token typed at+jwt is the issuer's word", nil, e.is.IDTokenClaims("web"), true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					d := e.a.Decide(context.Background(), bearer(e.is.Sign(e.key, tc.claims, tc.typ)))
					if tc.allowed {
						if !d.Allowed() {
							t.Fatalf("denied (%+v), want allowed", d.Denial)
						}
						return
					}
					if d.Denial == nil {
						t.Fatalf("allowed as %+v, want 401 invalid_token", d.Identity)
					}
					if d.Denial.Status != 401 || d.Denial.Reason != ReasonType ||
						!strings.HasPrefix(d.Denial.WWWAuthenticate, `Bearer error="invalid_token"`) {
						t.Fatalf("denial %d %s %q, want 401 %s invalid_token", d.Denial.Status, d.Denial.Reason, d.Denial.WWWAuthenticate, ReasonType)
					}
				})
			}
		})
	}
}

// TestTypJWTPerIssuer: accept_typ_jwt is one issuer's setting; the
// other issuer's typ JWT tokens are still refused.
func TestTypJWTPerIssuer(t *testing.T) {
	other := extauthztest.New()
	t.Cleanup(other.Close)
	other.Now = func() time.Time { return testEpoch }
	otherKey := addRSAKey(other, 1)
	e := newEnv(t, func(c *Config) {
		c.Issuers = append(c.Issuers, IssuerConfig{Issuer: other.URL, AcceptTypJWT: true})
	})
	typJWT := map[string]any{"typ": "JWT"}
	if d := e.a.Decide(context.Background(), bearer(other.Sign(otherKey, other.Claims(), typJWT))); !d.Allowed() {
		t.Errorf("typ JWT access token of the accepting issuer denied: %+v", d.Denial)
	}
	if d := e.a.Decide(context.Background(), bearer(other.Sign(otherKey, other.IDTokenClaims("web"), typJWT))); d.Allowed() {
		t.Error("ID token of the accepting issuer allowed")
	}
	if d := e.a.Decide(context.Background(), bearer(e.is.Sign(e.key, e.is.Claims(), typJWT))); d.Allowed() || d.Denial.Reason != ReasonType {
		t.Errorf("typ JWT access token of the other issuer: %+v, want denied %s", d.Denial, ReasonType)
	}
	if d := e.a.Decide(context.Background(), bearer(e.is.Sign(e.key, e.is.Claims(), nil))); !d.Allowed() {
		t.Errorf("at+jwt access token of the other issuer denied: %+v", d.Denial)
	}
}

// TestAccessTokenClaims is the rule for typ JWT and untyped tokens, on
// both claims decoders.
func TestAccessTokenClaims(t *testing.T) {
	for _, tc := range []struct {
		claims string
		want   bool
	}{
		{`{"client_id":"c"}`, true},
		{`{"scope":""}`, true},
		{`{"scp":[]}`, true},
		{`{"sub":"u","aud":["api"],"client_id":"c","scp":["read"],"jti":"j","ext":{}}`, true},
		{`{}`, false},
		{`{"sub":"u","aud":["web"]}`, false},
		{`{"client_id":null,"scope":null,"scp":null}`, false},
		{`{"client_id":"c","nonce":"n"}`, false},
		{`{"scope":"openid","at_hash":"h"}`, false},
		{`{"scp":["a"],"c_hash":"h"}`, false},
		{`{"client_id":"c","s_hash":"h"}`, false},
		{`{"client_id":"c","nonce":null}`, true},
		{`{"client_id":"c","auth_time":1700000000,"acr":"1","amr":["pwd"],"sid":"s"}`, true}, // RFC 9068 §2.2.1
		{`{"client_id":"c","nonce":"\u006e"}`, false},                                        // encoding/json's path
	} {
		m, err := parseClaimsStd([]byte(tc.claims))
		if err != nil {
			t.Fatal(err)
		}
		if got := accessTokenClaims(mapClaims(m)); got != tc.want {
			t.Errorf("%s: encoding/json %v, want %v", tc.claims, got, tc.want)
		}
		var p fastjson.Parser
		var fc fastClaims
		if fc.parse(&p, []byte(tc.claims), nil) {
			if got := accessTokenClaims(&fc); got != tc.want {
				t.Errorf("%s: fastjson %v, want %v", tc.claims, got, tc.want)
			}
		}
	}
}

// TestAlgorithmComesFromTheKey: without a JWK "alg" the key type decides;
// an ES256 key never verifies an RS256 header and vice versa.
func TestAlgorithmComesFromTheKey(t *testing.T) {
	e := newEnv(t, nil)
	ec := e.is.AddKey(jwa.ES256())
	ed := e.is.AddKey(jwa.EdDSA())
	claims := e.is.Claims()
	for _, k := range []*extauthztest.Key{ec, ed} {
		if d := e.a.Decide(context.Background(), bearer(e.is.Sign(k, claims, nil))); !d.Allowed() {
			t.Fatalf("%s token denied: %+v", k.Alg, d.Denial)
		}
	}
	// ES256 header on the RSA key's kid, signed with the EC key.
	forged := e.is.Sign(&extauthztest.Key{KID: e.key.KID, Alg: jwa.ES256(), Private: ec.Private}, claims, nil)
	if d := e.a.Decide(context.Background(), bearer(forged)); d.Allowed() || d.Denial.Reason != ReasonAlgorithm {
		t.Fatalf("ES256 on an RS256 key: %+v", d.Denial)
	}
	// A key published without alg accepts what its type allows.
	noAlg, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k := e.is.AddPrivateKey(jwa.ES384(), noAlg, false)
	if d := e.a.Decide(context.Background(), bearer(e.is.Sign(k, claims, nil))); !d.Allowed() {
		t.Fatalf("ES384 token on a key without alg denied: %+v", d.Denial)
	}
}
