package gatewaytest

import "testing"

// sourceEdits add a route whose CEL condition admits only calls from
// loopback (the address the gateway saw) to examples/nginx/sidecar.yaml.
var sourceEdits = map[string]string{
	"rules:\n": "rules:\n  - name: loopback-only\n    match: {path_prefix: /loopback}\n    conditions:\n" +
		"      - name: from-loopback\n        expression: 'source.address == \"127.0.0.1\"'\n",
}

// CheckSourceAddress: behind the gateway that start puts in front of a
// stack, a CEL condition on source.address sees the client's address as
// the gateway saw it (loopback here), whatever X-Forwarded-For the
// client sends: a client cannot pass a network rule by naming another
// address, nor fail one on purpose.
func CheckSourceAddress(t *testing.T, start func(t *testing.T, o Options) (*Stack, string)) {
	t.Helper()
	s, gw := start(t, Options{Edits: sourceEdits})
	_, token := s.Issuer.ClientCredentialsToken(t, "read")
	for _, xff := range []string{"", "10.9.9.9", "127.0.0.1, 10.9.9.9", "not-an-address"} {
		hdr := map[string]string{"Authorization": "Bearer " + token}
		if xff != "" {
			hdr["X-Forwarded-For"] = xff
		}
		if a := Call(t, "GET", "http://"+gw+"/loopback/x", hdr); a.Status != 200 || a.Seen == nil {
			t.Errorf("X-Forwarded-For %q: %d, want 200 from the app (the sidecar must see the gateway's view, 127.0.0.1)", xff, a.Status)
		}
	}
}
