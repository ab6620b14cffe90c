package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestOrdersCallsTheAPIWithAnExchangedToken runs the app against the real
// issuer: the caller's token is exchanged, with the orders client as the
// actor, for a token whose audience is the API, and the API gets that token.
func TestOrdersCallsTheAPIWithAnExchangedToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the issuer")
	}
	is := testbin.StartIssuer(t, nil)

	var apiGot string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiGot = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"app":"api","path":"` + r.URL.Path + `"}`))
	}))
	defer api.Close()

	caller, subject := is.ClientCredentialsToken(t, "read")
	orders := is.RegisterClient(t, map[string]any{
		"grant_types":                []string{"client_credentials", grantTokenExchange},
		"audience":                   []string{api.URL},
		"scope":                      "read",
		"token_endpoint_auth_method": "client_secret_basic",
	})
	app := httptest.NewServer(&App{TokenURL: is.PublicURL + "/oauth2/token", IntrospectionURL: is.AdminURL + "/admin/oauth2/introspect",
		ClientID: orders.ID, ClientSecret: orders.Secret, APIURL: api.URL})
	defer app.Close()

	get := func(hdr string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, app.URL+"/orders", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	status, body := get("Bearer " + subject)
	if status != http.StatusOK {
		t.Fatalf("GET /orders: %d %s", status, body)
	}
	var ans Answer
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	if ans.Incoming["sub"] != caller.ID || ans.Incoming["client_id"] != caller.ID {
		t.Errorf("incoming = %v, want the caller's token", ans.Incoming)
	}
	ex := ans.Exchanged
	if ex["active"] != true || ex["sub"] != caller.ID || ex["client_id"] != orders.ID {
		t.Errorf("exchanged = %v, want active, sub %s, client_id %s", ex, caller.ID, orders.ID)
	}
	if act, _ := ex["act"].(map[string]any); act == nil || act["sub"] != orders.ID {
		t.Errorf("exchanged act = %v, want sub %s", ex["act"], orders.ID)
	}
	if aud, _ := ex["aud"].([]any); len(aud) != 1 || aud[0] != api.URL {
		t.Errorf("exchanged aud = %v, want [%s]", ex["aud"], api.URL)
	}
	if apiGot == "" || apiGot == "Bearer "+subject {
		t.Errorf("the API got Authorization %q, want the exchanged token", apiGot)
	}
	var apiAns map[string]any
	if err := json.Unmarshal(ans.API, &apiAns); err != nil || apiAns["path"] != "/things" {
		t.Errorf("api = %s, want the API's answer", ans.API)
	}

	for _, tt := range []struct{ name, hdr string }{
		{"no token", ""},
		{"not bearer", "Basic Zm9vOmJhcg=="},
		{"inactive token", "Bearer not-a-token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := get(tt.hdr); status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", status, body)
			}
		})
	}
}
