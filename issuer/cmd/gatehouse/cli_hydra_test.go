package main_test

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// mustCLI runs the CLI and fails the test on an error.
func mustCLI(t *testing.T, is *testbin.Issuer, args ...string) string {
	t.Helper()
	out, err := cli(t, is, args...)
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestHydraV1TokenClient: `token client` prints the access token alone,
// as Hydra v1 did, so TOKEN=$(gatehouse token client ...) works; --format
// json still gives the whole token response.
func TestHydraV1TokenClient(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")})
	mustCLI(t, is, "clients", "create", "--id", "script", "--secret", "a-long-enough-secret", "-g", "client_credentials", "-a", "read")
	creds := []string{"token", "client", "--client-id", "script", "--client-secret", "a-long-enough-secret", "--scope", "read"}

	out := mustCLI(t, is, creds...)
	if !regexp.MustCompile(`^ory_at_[A-Za-z0-9_.-]+\n$`).MatchString(out) {
		t.Fatalf("token client printed %q, want the access token alone and a newline", out)
	}
	if in := introspect(t, is, strings.TrimSpace(out)); in["active"] != true || in["client_id"] != "script" {
		t.Fatalf("the printed token is not an active token of the client: %v", in)
	}

	out = mustCLI(t, is, append(creds, "--format", "json")...)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || !strings.HasPrefix(tr.AccessToken, "ory_at_") ||
		tr.TokenType != "bearer" || tr.Scope != "read" {
		t.Fatalf("token client --format json: %v %s", err, out)
	}
}

// TestHydraV1KeysCreateAlg: `keys create SET -a ES256` (Hydra v1's short
// form of --alg) creates an ES256 key.
func TestHydraV1KeysCreateAlg(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")})
	mustCLI(t, is, "keys", "create", "my-set", "-a", "ES256", "-u", "sig", "--kid", "k1")
	want := "SET ID  KEY ID  ALGORITHM  USE  TYPE\nmy-set  k1      ES256      sig  EC\n"
	if out := mustCLI(t, is, "keys", "get", "my-set"); out != want {
		t.Fatalf("keys get after keys create -a ES256:\n%s\nwant:\n%s", out, want)
	}
}

// TestListClientsPages: `list clients` pages with --page-size and
// --page-token, printing the next page's token after the table, and
// --format json prints Hydra v2's {items, next_page_token, is_last_page}.
func TestListClientsPages(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")})
	for _, id := range []string{"c1", "c2", "c3"} {
		mustCLI(t, is, "create", "client", "--id", id, "--secret", "a-long-enough-secret", "-g", "client_credentials", "--scope", "s-"+id)
	}
	next := base64.RawURLEncoding.EncodeToString([]byte("c2"))

	out := mustCLI(t, is, "list", "clients", "--page-size", "2")
	want := "CLIENT ID  CLIENT SECRET  GRANT TYPES         RESPONSE TYPES  SCOPE  AUDIENCE  REDIRECT URIS\n" +
		"c1                        client_credentials  code            s-c1             \n" +
		"c2                        client_credentials  code            s-c2             \n" +
		"\nNEXT PAGE TOKEN  " + next + "\n"
	if out != want {
		t.Fatalf("list clients --page-size 2:\n%q\nwant:\n%q", out, want)
	}
	out = mustCLI(t, is, "list", "clients", "--page-size", "2", "--page-token", next)
	want = "CLIENT ID  CLIENT SECRET  GRANT TYPES         RESPONSE TYPES  SCOPE  AUDIENCE  REDIRECT URIS\n" +
		"c3                        client_credentials  code            s-c3             \n"
	if out != want {
		t.Fatalf("list clients, last page:\n%q\nwant:\n%q", out, want)
	}

	type page struct {
		Items []struct {
			ID    string `json:"client_id"`
			Scope string `json:"scope"`
		} `json:"items"`
		Next   *string `json:"next_page_token"`
		IsLast *bool   `json:"is_last_page"`
	}
	var p page
	out = mustCLI(t, is, "list", "clients", "--page-size", "2", "--format", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Items) != 2 || p.Items[0].ID != "c1" || p.Items[1].ID != "c2" ||
		p.Next == nil || *p.Next != next || p.IsLast == nil || *p.IsLast {
		t.Fatalf("list clients --format json, first page: %v\n%s", err, out)
	}
	p = page{}
	out = mustCLI(t, is, "clients", "list", "--page-size", "2", "--page-token", next, "--format", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Items) != 1 || p.Items[0].ID != "c3" || p.Items[0].Scope != "s-c3" ||
		p.Next == nil || *p.Next != "" || p.IsLast == nil || !*p.IsLast {
		t.Fatalf("clients list --format json, last page: %v\n%s", err, out)
	}
}

// TestUpdateClientReplaces: `update client` replaces the client with the
// one its flags describe, as Hydra's does: fields not given return to
// their defaults, the secret is kept unless given.
func TestUpdateClientReplaces(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")})
	mustCLI(t, is, "create", "client", "--id", "app", "--secret", "a-long-enough-secret", "--name", "App",
		"-g", "authorization_code,refresh_token,client_credentials", "--scope", "openid,read", "--audience", "https://api.example.com",
		"--redirect-uri", "https://app.example.com/cb", "--owner", "team-a")

	// Not given: scope (back to the default, Hydra's too), audience,
	// redirect URIs, owner.
	out := mustCLI(t, is, "update", "client", "app", "--name", "App 2", "-g", "client_credentials")
	want := "CLIENT ID       app\nCLIENT SECRET   \nGRANT TYPES     client_credentials\nRESPONSE TYPES  code\n" +
		"SCOPE           offline_access offline openid\nAUDIENCE        \nREDIRECT URIS   \n"
	if out != want {
		t.Fatalf("update client:\n%q\nwant:\n%q", out, want)
	}
	var c struct {
		Name         string   `json:"client_name"`
		Owner        string   `json:"owner"`
		Scope        string   `json:"scope"`
		Audience     []string `json:"audience"`
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, is, "get", "client", "app", "--format", "json")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "App 2" || c.Owner != "" || c.Scope != "offline_access offline openid" || len(c.Audience) != 0 || len(c.RedirectURIs) != 0 || c.AuthMethod != "client_secret_basic" {
		t.Fatalf("after update client with --name and -g only, the client is %+v; want the other fields reset", c)
	}
	// The secret was kept: the client still gets a token with it.
	if out := mustCLI(t, is, "token", "client", "--client-id", "app", "--client-secret", "a-long-enough-secret"); !strings.HasPrefix(out, "ory_at_") {
		t.Fatalf("token client after update: %s", out)
	}

	// The v1 form takes the v1 flag names.
	mustCLI(t, is, "clients", "update", "app", "--grant-types", "authorization_code", "--callbacks", "https://app.example.com/v1")
	c.RedirectURIs = nil
	if err := json.Unmarshal([]byte(mustCLI(t, is, "get", "client", "app", "--format", "json")), &c); err != nil ||
		c.Name != "" || len(c.RedirectURIs) != 1 || c.RedirectURIs[0] != "https://app.example.com/v1" {
		t.Fatalf("clients update --callbacks: %v %+v", err, c)
	}
}
