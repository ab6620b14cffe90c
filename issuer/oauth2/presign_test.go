package oauth2

import (
	"net/url"
	"testing"
	"time"
)

// presigns is the cache of the handler's presigner; an empty one when
// presigning is off.
func (e *env) presigns() *presignCache {
	if cp, ok := e.h.presign.(*codePresigner); ok {
		return &cp.cache
	}
	return &presignCache{}
}

// waitPresigned waits until every pending presigned result is minted, so
// that it carries the time of the code's issue before the clock moves.
func (e *env) waitPresigned() int {
	pc := e.presigns()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, p := range pc.m {
		<-p.done
	}
	return len(pc.m)
}

// TestPresignedExpiresInMatchesExp: an exchange that uses tokens minted
// when the code was issued answers expires_in as the seconds left until
// the access token's exp (RFC 6749 §5.1), the exp of the JWT and of
// introspection, not the full lifespan.
func TestPresignedExpiresInMatchesExp(t *testing.T) {
	for _, strategy := range []string{"opaque", "jwt"} {
		t.Run(strategy, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.AccessTokenStrategy = strategy })
			withWebClients(t, e)
			code := e.authorize("web", []string{"code"}, nil).Get("code")
			if e.waitPresigned() != 1 {
				t.Fatal("the exchange's tokens were not minted ahead")
			}
			e.clk.Advance(7 * time.Second)
			r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			now := e.clk.Now().Unix()
			expiresIn := int64(r.json["expires_in"].(float64))
			in := e.introspect(r.str("access_token"), "").json
			exp := int64(in["exp"].(float64))
			if expiresIn != exp-now || expiresIn != int64(e.opts.AccessTokenLifespan/time.Second)-7 {
				t.Fatalf("expires_in %d, but exp - now = %d", expiresIn, exp-now)
			}
			if strategy == "jwt" {
				if claim := int64(e.idClaims(r.str("access_token"))["exp"].(float64)); claim != exp {
					t.Fatalf("JWT exp %d, introspection exp %d", claim, exp)
				}
			}
		})
	}
	// Signed at the exchange, expires_in is the whole lifespan.
	e := newEnv(t)
	withWebClients(t, e)
	r := e.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret")
	if r.status != 200 || int64(r.json["expires_in"].(float64)) != int64(e.opts.AccessTokenLifespan/time.Second) {
		t.Fatalf("client_credentials expires_in: %d %s", r.status, r.body)
	}
}

// TestPresigningOff: with oauth2.presigning.enabled false, issuing a code
// signs nothing and keeps nothing; the exchange signs its tokens.
func TestPresigningOff(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AccessTokenStrategy = "jwt"
		o.Presigning = false
	})
	withWebClients(t, e)
	signatures := func() int {
		e.signer.mu.Lock()
		defer e.signer.mu.Unlock()
		return len(e.signer.sets)
	}
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	if n := e.waitPresigned(); n != 0 || signatures() != 0 {
		t.Fatalf("presigning is off, yet %d results are pending and %d signatures were made", n, signatures())
	}
	e.clk.Advance(3 * time.Second)
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	if r.status != 200 || signatures() != 2 {
		t.Fatalf("exchange: %d %s, %d signatures", r.status, r.body, signatures())
	}
	if iat := int64(e.idClaims(r.str("id_token"))["iat"].(float64)); iat != e.clk.Now().Unix() {
		t.Fatalf("ID token iat %d, exchange at %d", iat, e.clk.Now().Unix())
	}
	if got := int64(r.json["expires_in"].(float64)); got != int64(e.opts.AccessTokenLifespan/time.Second) {
		t.Fatalf("expires_in %d", got)
	}
}

// TestPresignedNotUsedWhenItsLifetimeShrankMuch: with short lifespans a
// presigned result is used only while it is at most a tenth of them old;
// later the exchange signs, so a token never reaches the client with
// much less than its lifespan left.
func TestPresignedNotUsedWhenItsLifetimeShrankMuch(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AccessTokenLifespan = 30 * time.Second })
	withWebClients(t, e)
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	if e.waitPresigned() != 1 {
		t.Fatal("the exchange's tokens were not minted ahead")
	}
	e.clk.Advance(4 * time.Second) // more than 30s / 10
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := int64(r.json["expires_in"].(float64)); got != 30 {
		t.Fatalf("expires_in %d, want 30 (signed at the exchange)", got)
	}
	if iat := int64(e.idClaims(r.str("id_token"))["iat"].(float64)); iat != e.clk.Now().Unix() {
		t.Fatalf("ID token iat %d, exchange at %d", iat, e.clk.Now().Unix())
	}
}

// TestPresignerOnlyWhenEnabled: the presigning component exists only when
// oauth2.presigning.enabled is set; switched off, the handler holds the
// presigner that mints nothing.
func TestPresignerOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		e := newEnv(t, func(o *Options) { o.Presigning = enabled })
		_, built := e.h.presign.(*codePresigner)
		_, off := e.h.presign.(noPresigner)
		if built != enabled || off == enabled {
			t.Errorf("enabled %v: presigner %T", enabled, e.h.presign)
		}
	}
}

// TestPresignCase: a code exchange uses what was minted ahead only when no
// token hook is configured, it binds no client certificate and it names no
// resource; any one of them makes it sign its own tokens.
func TestPresignCase(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    presignCase
		want bool
	}{
		{"plain exchange", presignCase{}, true},
		{"token hook", presignCase{Hooked: true}, false},
		{"certificate-bound", presignCase{CertBound: true}, false},
		{"resource named", presignCase{Narrowed: true}, false},
		{"certificate-bound with a resource", presignCase{CertBound: true, Narrowed: true}, false},
		{"all three", presignCase{Hooked: true, CertBound: true, Narrowed: true}, false},
	} {
		if got := tc.c.usesPresigned(); got != tc.want {
			t.Errorf("%s: usesPresigned %v, want %v", tc.name, got, tc.want)
		}
	}
}
