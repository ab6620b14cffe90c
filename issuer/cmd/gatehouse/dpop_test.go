package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestDPoPClientCredentials: a client_credentials request with a proof
// gets token_type DPoP and a token bound to the proof's key: cnf.jkt in
// the JWT and in introspection, for JWT and opaque tokens (RFC 9449 §5,
// §6.1, §6.2); without a proof the token stays a bearer token.
func TestDPoPClientCredentials(t *testing.T) {
	is := testbin.StartIssuer(t, nil)
	tokenURL := is.PublicURL + "/oauth2/token"
	key := newDPoPKey(t)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	for _, strategy := range []string{"jwt", "opaque"} {
		t.Run(strategy, func(t *testing.T) {
			c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
				"token_endpoint_auth_method": "client_secret_basic", "access_token_strategy": strategy})
			a := postDPoP(t, tokenURL, c, form, key.proof(t, "POST", tokenURL, nil))
			mustf(t, a.status == 200 && a.json["token_type"] == "DPoP", "with a proof: %d %v", a.status, a.json)
			at := a.json["access_token"].(string)
			if strategy == "jwt" {
				cnf, _ := jwtClaims(t, at)["cnf"].(map[string]any)
				mustf(t, cnf["jkt"] == key.jkt, "JWT cnf %v, want jkt %s", cnf, key.jkt)
			}
			in := introspectToken(t, is, at)
			cnf, _ := in["cnf"].(map[string]any)
			mustf(t, in["active"] == true && in["token_type"] == "DPoP" && cnf["jkt"] == key.jkt, "introspection: %v", in)

			a = postDPoP(t, tokenURL, c, form)
			mustf(t, a.status == 200 && a.json["token_type"] == "bearer", "without a proof: %d %v", a.status, a.json)
			in = introspectToken(t, is, a.json["access_token"].(string))
			mustf(t, in["active"] == true && in["cnf"] == nil && in["token_type"] == "Bearer", "bearer introspection: %v", in)
		})
	}
	// The discovery document names the algorithms (§5.1).
	_, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration")
	var d struct {
		Algs []string `json:"dpop_signing_alg_values_supported"`
	}
	_ = json.Unmarshal(raw, &d)
	for _, want := range []string{"ES256", "PS256", "RS256", "EdDSA"} {
		mustf(t, strings.Contains(strings.Join(d.Algs, " "), want), "dpop_signing_alg_values_supported %v lacks %s", d.Algs, want)
	}
}

// TestDPoPProofErrors: every malformed proof at the token endpoint gets
// 400 invalid_dpop_proof in the JSON error body (RFC 9449 §5), never a
// 5xx, and so does a client registered with dpop_bound_access_tokens
// that sends none (§5.2).
func TestDPoPProofErrors(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"OAUTH2_DPOP_PROOF_MAX_AGE": "1m", "OAUTH2_DPOP_CLOCK_SKEW": "10s"})
	tokenURL := is.PublicURL + "/oauth2/token"
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
		"token_endpoint_auth_method": "client_secret_basic"})
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	key := newDPoPKey(t)
	other := newDPoPKey(t)
	set := func(k string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { c[k] = v }
	}
	del := func(k string) func(h, c map[string]any) {
		return func(h, c map[string]any) { delete(c, k); delete(h, k) }
	}
	hdr := func(k string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { h[k] = v }
	}
	replayed := key.proof(t, "POST", tokenURL, nil)
	first := postDPoP(t, tokenURL, c, form, replayed)
	mustf(t, first.status == 200, "first use of the proof: %d %v", first.status, first.json)
	privJWK := func() map[string]any {
		k, _ := jwk.Import(key.priv)
		raw, _ := json.Marshal(k)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}()
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"not a JWT", []string{"not-a-jwt"}},
		{"empty", []string{""}},
		{"garbage", []string{"a.b.c"}},
		{"oversize", []string{strings.Repeat("a", 9000)}},
		{"two DPoP headers", []string{key.proof(t, "POST", tokenURL, nil), key.proof(t, "POST", tokenURL, nil)}},
		{"typ JWT", []string{key.proof(t, "POST", tokenURL, hdr("typ", "JWT"))}},
		{"no typ", []string{key.proof(t, "POST", tokenURL, del("typ"))}},
		{"alg none", []string{strings.Join(strings.Split(key.proof(t, "POST", tokenURL, hdr("alg", "none")), ".")[:2], ".") + "."}},
		{"alg HS256", []string{key.proof(t, "POST", tokenURL, hdr("alg", "HS256"))}},
		{"alg RS256 with an EC key", []string{key.proof(t, "POST", tokenURL, hdr("alg", "RS256"))}},
		{"no jwk", []string{key.proof(t, "POST", tokenURL, del("jwk"))}},
		{"private jwk", []string{key.proof(t, "POST", tokenURL, hdr("jwk", privJWK))}},
		{"jwk of another key", []string{key.proof(t, "POST", tokenURL, hdr("jwk", other.jwk))}},
		{"bad signature", []string{key.proof(t, "POST", tokenURL, nil)[:40] + "xx" + key.proof(t, "POST", tokenURL, nil)[42:]}},
		{"htm GET", []string{key.proof(t, "POST", tokenURL, set("htm", "GET"))}},
		{"htu of another endpoint", []string{key.proof(t, "POST", is.PublicURL+"/oauth2/revoke", nil)}},
		{"htu of another host", []string{key.proof(t, "POST", "https://evil.example/oauth2/token", nil)}},
		{"no jti", []string{key.proof(t, "POST", tokenURL, del("jti"))}},
		{"no htm", []string{key.proof(t, "POST", tokenURL, del("htm"))}},
		{"no htu", []string{key.proof(t, "POST", tokenURL, del("htu"))}},
		{"no iat", []string{key.proof(t, "POST", tokenURL, del("iat"))}},
		{"iat a string", []string{key.proof(t, "POST", tokenURL, set("iat", "now"))}},
		{"iat too old", []string{key.proof(t, "POST", tokenURL, set("iat", time.Now().Add(-2*time.Minute).Unix()))}},
		{"iat in the future", []string{key.proof(t, "POST", tokenURL, set("iat", time.Now().Add(time.Minute).Unix()))}},
		{"jti too long", []string{key.proof(t, "POST", tokenURL, set("jti", strings.Repeat("j", 300)))}},
		{"replayed", []string{replayed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := postDPoP(t, tokenURL, c, form, tc.proofs...)
			mustf(t, a.status == 400 && a.json["error"] == "invalid_dpop_proof" && a.json["error_description"] != "",
				"%d %v", a.status, a.json)
		})
	}
	// §4.3: htu is compared after normalisation (case of scheme and host,
	// default port; query ignored).
	u, _ := url.Parse(tokenURL)
	variant := "HTTP://" + strings.ToUpper(u.Hostname()) + ":" + u.Port() + u.Path + "?x=1"
	a := postDPoP(t, tokenURL, c, form, key.proof(t, "POST", variant, nil))
	mustf(t, a.status == 200 && a.json["token_type"] == "DPoP", "normalised htu %s: %d %v", variant, a.status, a.json)

	// §5.2: dpop_bound_access_tokens refuses a request without a proof.
	bound := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
		"token_endpoint_auth_method": "client_secret_basic", "dpop_bound_access_tokens": true})
	mustf(t, bound.Metadata["dpop_bound_access_tokens"] == true, "registered: %v", bound.Metadata)
	a = postDPoP(t, tokenURL, bound, form)
	mustf(t, a.status == 400 && a.json["error"] == "invalid_dpop_proof", "bound client without a proof: %d %v", a.status, a.json)
	a = postDPoP(t, tokenURL, bound, form, key.proof(t, "POST", tokenURL, nil))
	mustf(t, a.status == 200 && a.json["token_type"] == "DPoP", "bound client with a proof: %d %v", a.status, a.json)
}

// TestDPoPAcrossInstances: two instances on one database, on every
// backend. A proof one accepted is refused by the other (the jti is in
// the shared nonce store, §11.1), and with server nonces on (§8) a nonce
// handed out by one is accepted by the other; a proof without one, or
// with a forged one, gets use_dpop_nonce and a DPoP-Nonce header.
func TestDPoPAcrossInstances(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			env := map[string]string{"DSN": dsn, "OAUTH2_DPOP_REQUIRE_NONCE": "true"}
			a := testbin.StartIssuer(t, env)
			env["URLS_SELF_ISSUER"] = a.PublicURL
			b := testbin.StartIssuer(t, env)
			htu := a.PublicURL + "/oauth2/token"
			onB := "http://127.0.0.1:" + b.Env["SERVE_PUBLIC_PORT"] + "/oauth2/token"
			c := a.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
				"token_endpoint_auth_method": "client_secret_basic"})
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
			key := newDPoPKey(t)

			ans := postDPoP(t, htu, c, form, key.proof(t, "POST", htu, nil))
			nonce := ans.header.Get("DPoP-Nonce")
			mustf(t, ans.status == 400 && ans.json["error"] == "use_dpop_nonce" && nonce != "" && len(ans.header.Values("DPoP-Nonce")) == 1,
				"no nonce: %d %v %v", ans.status, ans.json, ans.header)
			ans = postDPoP(t, onB, c, form, key.proof(t, "POST", htu, set1("nonce", "forged-"+nonce)))
			mustf(t, ans.status == 400 && ans.json["error"] == "use_dpop_nonce" && ans.header.Get("DPoP-Nonce") != "",
				"forged nonce: %d %v", ans.status, ans.json)

			proof := key.proof(t, "POST", htu, set1("nonce", nonce))
			ans = postDPoP(t, onB, c, form, proof)
			mustf(t, ans.status == 200 && ans.json["token_type"] == "DPoP" && ans.header.Get("DPoP-Nonce") != "",
				"a's nonce at b: %d %v", ans.status, ans.json)
			ans = postDPoP(t, htu, c, form, proof)
			mustf(t, ans.status == 400 && ans.json["error"] == "invalid_dpop_proof", "b's proof replayed at a: %d %v", ans.status, ans.json)
		})
	}
}

func set1(k string, v any) func(h, c map[string]any) {
	return func(_, c map[string]any) { c[k] = v }
}

// TestDPoPCodeFlow: golang.org/x/oauth2 (proofs added by its HTTP client)
// through a code flow with dpop_jkt (RFC 9449 §10), a public client's
// bound refresh token (§5), a confidential client's unbound one, and
// userinfo with the DPoP scheme (§7.1, §7.2).
func TestDPoPCodeFlow(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	key, other := newDPoPKey(t), newDPoPKey(t)
	pub := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "none", "client_secret": nil})
	delete(pub, "client_secret")
	rp := newRP(t, is, pub, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	grantErr := func(err error) string {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return re.ErrorCode
		}
		return ""
	}

	// A dpop_jkt that is no thumbprint is refused at the authorization endpoint.
	at, _, body := newBrowser(t, is).visit(rp.conf.AuthCodeURL(randomState(), oauth2.SetAuthURLParam("dpop_jkt", "not-a-thumbprint"),
		oauth2.S256ChallengeOption(randomState()+randomState())))
	mustf(t, at != nil && at.Query().Get("error") == "invalid_request", "bad dpop_jkt: %v %s", at, body)

	q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "alice", oauth2.SetAuthURLParam("dpop_jkt", key.jkt))
	code := q.Get("code")
	_, err := rp.conf.Exchange(dpopContext(t, other), code, oauth2.VerifierOption(verifier))
	mustf(t, grantErr(err) == "invalid_grant", "code exchanged with another key: %v", err)
	_, err = rp.conf.Exchange(dpopContext(t, nil), code, oauth2.VerifierOption(verifier))
	mustf(t, grantErr(err) == "invalid_grant", "code exchanged without a proof: %v", err)
	tok, err := rp.conf.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
	mustf(t, err == nil && tok.TokenType == "DPoP" && tok.RefreshToken != "", "code exchanged with its key: %v %+v", err, tok)

	// The public client's refresh token is bound to the key.
	refresh := func(ctx context.Context, rt string) (*oauth2.Token, error) {
		return rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	_, err = refresh(dpopContext(t, other), tok.RefreshToken)
	mustf(t, grantErr(err) == "invalid_grant", "refresh with another key: %v", err)
	_, err = refresh(dpopContext(t, nil), tok.RefreshToken)
	mustf(t, grantErr(err) == "invalid_grant", "refresh without a proof: %v", err)
	tok, err = refresh(dpopContext(t, key), tok.RefreshToken)
	mustf(t, err == nil && tok.TokenType == "DPoP", "refresh with the key: %v %+v", err, tok)
	in := introspectToken(t, is, tok.RefreshToken)
	cnf, _ := in["cnf"].(map[string]any)
	mustf(t, cnf["jkt"] == key.jkt, "the new refresh token is bound too: %v", in)

	// Userinfo (§7.1).
	ui := is.PublicURL + "/userinfo"
	call := func(auth string, proofs ...string) httpAnswer {
		req, _ := http.NewRequest(http.MethodGet, ui, nil)
		req.Header.Set("Authorization", auth)
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		return doJSON(t, req)
	}
	ath := set1("ath", dpopAth(tok.AccessToken))
	a := call("DPoP "+tok.AccessToken, key.proof(t, "GET", ui, ath))
	mustf(t, a.status == 200 && a.json["sub"] == "alice", "userinfo with DPoP: %d %v", a.status, a.json)
	for _, tc := range []struct {
		name, auth, err string
		proofs          []string
	}{
		{"no ath", "DPoP " + tok.AccessToken, "invalid_dpop_proof", []string{key.proof(t, "GET", ui, nil)}},
		{"ath of another token", "DPoP " + tok.AccessToken, "invalid_dpop_proof", []string{key.proof(t, "GET", ui, set1("ath", dpopAth("x")))}},
		{"htu of the token endpoint", "DPoP " + tok.AccessToken, "invalid_dpop_proof", []string{key.proof(t, "GET", is.PublicURL+"/oauth2/token", ath)}},
		{"htm POST", "DPoP " + tok.AccessToken, "invalid_dpop_proof", []string{key.proof(t, "POST", ui, ath)}},
		{"no proof", "DPoP " + tok.AccessToken, "invalid_dpop_proof", nil},
		{"another key", "DPoP " + tok.AccessToken, "invalid_token", []string{other.proof(t, "GET", ui, ath)}},
		{"bound token as Bearer", "Bearer " + tok.AccessToken, "invalid_token", nil},
	} {
		a := call(tc.auth, tc.proofs...)
		challenge := a.header.Get("WWW-Authenticate")
		scheme := strings.Fields(tc.auth)[0]
		mustf(t, a.status == 401 && a.json["error"] == tc.err && strings.HasPrefix(challenge, scheme+" error=\""+tc.err+"\""),
			"%s: %d %v %q", tc.name, a.status, a.json, challenge)
		mustf(t, (scheme == "DPoP") == strings.Contains(challenge, `algs="ES256 `), "%s: challenge %q", tc.name, challenge)
	}

	// A confidential client's refresh token is not bound (§5): it is
	// refreshed without a proof, and then gets a bearer token.
	conf := newFlowClient(t, is, nil)
	crp := newRP(t, is, conf, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	q, verifier = codeFlow(t, is, newBrowser(t, is), crp, "bob")
	ctok, err := crp.conf.Exchange(dpopContext(t, key), q.Get("code"), oauth2.VerifierOption(verifier))
	mustf(t, err == nil && ctok.TokenType == "DPoP", "confidential exchange: %v %+v", err, ctok)
	in = introspectToken(t, is, ctok.RefreshToken)
	mustf(t, in["cnf"] == nil, "a confidential client's refresh token is not bound: %v", in)
	ctok, err = crp.conf.TokenSource(dpopContext(t, nil), &oauth2.Token{RefreshToken: ctok.RefreshToken}).Token()
	mustf(t, err == nil && strings.EqualFold(ctok.TokenType, "bearer"), "confidential refresh without a proof: %v %+v", err, ctok)
}

func dpopAth(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
