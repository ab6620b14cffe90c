package gatewaytest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// InternalTokenEdits uncomment the internal-token route (/orders, audience
// orders-api) and the internal_tokens section of examples/nginx/sidecar.yaml.
var InternalTokenEdits = map[string]string{
	"  # - name: orders\n  #   match: {path_prefix: /orders}\n  #   internal_token: {audience: orders-api}\n": "  - name: orders\n    match: {path_prefix: /orders}\n    internal_token: {audience: orders-api}\n",
	"# internal_tokens:\n#   actor: true": "internal_tokens:\n  actor: true",
}

// CheckInternalToken: behind the gateway that start puts in front of a
// stack with the example's internal-token route enabled (and the
// sidecar's own client at the issuer in its environment), the app on
// /orders gets the sidecar's internal token in Authorization (an RFC 8693
// exchange: aud orders-api, the caller's sub, act the sidecar's client),
// and on any other route the client's Authorization unchanged.
func CheckInternalToken(t *testing.T, start func(t *testing.T, o Options) (*Stack, string)) {
	t.Helper()
	is := testbin.StartIssuer(t, nil)
	// The sidecar's own client, for the internal tokens of /orders.
	gwClient := is.RegisterClient(t, map[string]any{
		"grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scope":       "read", "audience": []string{"orders-api"}})
	s, gw := start(t, Options{Issuer: is, Edits: InternalTokenEdits, Env: map[string]string{
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID":     gwClient.ID,
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": gwClient.Secret}})
	client, token := s.Issuer.ClientCredentialsToken(t, "read")
	bearer := "Bearer " + token

	if a := Call(t, "GET", "http://"+gw+"/api/things", map[string]string{"Authorization": bearer}); a.Status != 200 || a.Seen == nil ||
		a.Seen.Headers["authorization"] != bearer {
		t.Fatalf("plain route: %d, the app's Authorization is the client's: %v", a.Status, a.Seen != nil && a.Seen.Headers["authorization"] == bearer)
	}
	a := Call(t, "GET", "http://"+gw+"/orders/1", map[string]string{"Authorization": bearer})
	if a.Status != 200 || a.Seen == nil {
		t.Fatalf("internal-token route: %d (WWW-Authenticate %q)", a.Status, a.Header.Get("WWW-Authenticate"))
	}
	internal, _ := strings.CutPrefix(a.Seen.Headers["authorization"], "Bearer ")
	if internal == "" || internal == token || a.Seen.Headers["x-user-id"] != client.ID {
		t.Fatalf("internal-token route: x-user-id %q, an internal token: %v", a.Seen.Headers["x-user-id"], internal != "" && internal != token)
	}
	parts := strings.Split(internal, ".")
	if len(parts) != 3 {
		t.Fatal("the internal token is not a JWT")
	}
	var claims struct {
		Aud []string       `json:"aud"`
		Sub string         `json:"sub"`
		Act map[string]any `json:"act"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil || len(claims.Aud) != 1 || claims.Aud[0] != "orders-api" ||
		claims.Sub != client.ID || claims.Act["sub"] != gwClient.ID {
		t.Fatalf("internal token claims %s", payload)
	}
	// Without a token the internal-token route is refused as any other.
	if a := Call(t, "GET", "http://"+gw+"/orders/1", nil); a.Status != 401 || a.Seen != nil {
		t.Fatalf("internal-token route without a token: %d, want 401", a.Status)
	}
}
