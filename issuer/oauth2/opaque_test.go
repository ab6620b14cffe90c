package oauth2

import (
	"encoding/binary"
	"testing"
)

// The time prefix of an opaque token's key is the handler's clock, not the
// wall clock.
func TestOpaqueTokenTimeIsTheHandlersClock(t *testing.T) {
	e := newEnv(t)
	tok := e.ccToken("svc:svc-secret", nil)
	key, _, ok := splitOpaque(opaqueAccessToken.prefix, tok)
	if !ok {
		t.Fatalf("not an opaque access token: %q", tok)
	}
	if ms := int64(binary.BigEndian.Uint64(key) >> 16); ms != e.clk.Now().UnixMilli() {
		t.Fatalf("token issued at %d ms, the handler's clock says %d", ms, e.clk.Now().UnixMilli())
	}
}
