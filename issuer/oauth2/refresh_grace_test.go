package oauth2

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestRefreshGraceIntrospectionAgrees: with a rotation grace period, a
// rotated refresh token introspects active exactly while the token
// endpoint accepts it: within the period and below the reuse count. At
// each step the introspection answer is read first, then the token is
// presented, and the two must agree.
func TestRefreshGraceIntrospectionAgrees(t *testing.T) {
	const grace = 30 * time.Second
	type step struct {
		advance time.Duration
		works   bool
	}
	for _, tc := range []struct {
		name  string
		count int
		steps []step
	}{
		// No count: reusable until the period ends, to the instant.
		{"period", 0, []step{{0, true}, {10 * time.Second, true}, {grace - 10*time.Second - time.Microsecond, true}, {time.Microsecond, false}}},
		// Count 2: two reuses, the third is refused at once.
		{"count", 2, []step{{0, true}, {time.Second, true}, {time.Second, false}}},
		// The period ends before the count is reached.
		{"count and period", 5, []step{{0, true}, {grace, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.RefreshTokenRotationGracePeriod, o.RefreshTokenRotationGraceReuseCount = grace, tc.count
			})
			withWebClients(t, e)
			code := e.authorize("web", []string{"code"}, nil).Get("code")
			r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
			rt := r.str("refresh_token")
			refresh := func() *response {
				return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web:web-secret")
			}
			// The first use rotates the token.
			first := refresh()
			if first.status != 200 {
				t.Fatalf("first use: %d %s", first.status, first.body)
			}
			latest := first
			for i, s := range tc.steps {
				e.clk.Advance(s.advance)
				active := e.introspect(rt, "").json["active"] == true
				got := refresh()
				if active != s.works || (got.status == 200) != s.works {
					t.Fatalf("step %d: introspection active=%v, token endpoint %d %s; want both %v", i, active, got.status, got.body, s.works)
				}
				if !s.works {
					wantError(t, got, http.StatusBadRequest, "invalid_grant")
					// A reuse outside the grace revokes the whole chain.
					if e.active(latest.str("access_token")) || e.introspect(latest.str("refresh_token"), "").json["active"] == true {
						t.Fatalf("step %d: the chain survived a reuse outside the grace", i)
					}
					return
				}
				latest = got
			}
			t.Fatal("the steps never reached the end of the grace")
		})
	}
}
