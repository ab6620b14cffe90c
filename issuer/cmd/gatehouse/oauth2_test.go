package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// cli runs the gatehouse binary as an operator would and returns stdout.
func cli(t *testing.T, is *testbin.Issuer, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testbin.Build(t, "./issuer/cmd/gatehouse"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HYDRA_ADMIN_URL=" + is.AdminURL, "HYDRA_PUBLIC_URL=" + is.PublicURL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

type createdClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func createClient(t *testing.T, is *testbin.Issuer, extra ...string) createdClient {
	t.Helper()
	args := append([]string{"create", "client", "--format", "json", "-g", "client_credentials", "--scope", "read,write,orders.*", "--audience", "https://api.example.com"}, extra...)
	out, err := cli(t, is, args...)
	if err != nil {
		t.Fatalf("create client: %v\n%s", err, out)
	}
	var c createdClient
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("create client output: %v %s", err, out)
	}
	return c
}

func introspect(t *testing.T, is *testbin.Issuer, token string) map[string]any {
	t.Helper()
	resp, err := http.PostForm(is.AdminURL+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return m
}

// clientCredentialsFlow is what a machine-to-machine user does: a client
// from the CLI, tokens through x/oauth2 both ways of authenticating,
// a JWT verified by go-oidc against discovery and JWKS, introspection,
// revocation.
func clientCredentialsFlow(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	opaque := createClient(t, is)
	post := createClient(t, is, "--token-endpoint-auth-method", "client_secret_post")
	for _, c := range []struct {
		createdClient
		style oauth2.AuthStyle
	}{{opaque, oauth2.AuthStyleInHeader}, {post, oauth2.AuthStyleInParams}} {
		style := c.style
		cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: is.PublicURL + "/oauth2/token",
			Scopes: []string{"read", "orders.create"}, AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("auth style %v: %v", style, err)
		}
		if !strings.HasPrefix(tok.AccessToken, "ory_at_") || tok.TokenType != "bearer" || tok.Expiry.IsZero() {
			t.Fatalf("opaque token %+v", tok)
		}
		in := introspect(t, is, tok.AccessToken)
		if in["active"] != true || in["client_id"] != c.ID || in["scope"] != "read orders.create" || in["token_use"] != "access_token" {
			t.Fatalf("introspection %v", in)
		}
	}

	// JWT strategy per client: verified by a standard library from discovery.
	jwtClient := createClient(t, is, "--access-token-strategy", "jwt")
	cc := clientcredentials.Config{ClientID: jwtClient.ID, ClientSecret: jwtClient.Secret, TokenURL: is.PublicURL + "/oauth2/token",
		Scopes: []string{"write"}, EndpointParams: url.Values{"audience": {"https://api.example.com"}}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, is.PublicURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("go-oidc rejected the JWT access token: %v", err)
	}
	var claims struct {
		ClientID string   `json:"client_id"`
		Scope    string   `json:"scope"`
		Scp      []string `json:"scp"`
		JTI      string   `json:"jti"`
	}
	if err := idt.Claims(&claims); err != nil || claims.ClientID != jwtClient.ID || claims.Scope != "write" || len(claims.Scp) != 1 || claims.JTI == "" {
		t.Fatalf("claims %+v %v", claims, err)
	}
	if idt.Subject != jwtClient.ID || !containsStr(idt.Audience, "https://api.example.com") {
		t.Fatalf("sub %q aud %v", idt.Subject, idt.Audience)
	}
	if in := introspect(t, is, tok.AccessToken); in["active"] != true || in["iss"] != is.PublicURL {
		t.Fatalf("JWT introspection %v", in)
	}

	// Revocation through the CLI (client-authenticated), then inactive.
	if out, err := cli(t, is, "revoke", "token", "--client-id", jwtClient.ID, "--client-secret", jwtClient.Secret, tok.AccessToken); err != nil {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if in := introspect(t, is, tok.AccessToken); in["active"] != false || len(in) != 1 {
		t.Fatalf("revoked token still active: %v", in)
	}

	// The CLI's own flow and introspection verbs, v2 and v1 forms.
	out, err := cli(t, is, "perform", "client-credentials", "--client-id", opaque.ID, "--client-secret", opaque.Secret, "--scope", "read", "--format", "json")
	if err != nil {
		t.Fatalf("perform client-credentials: %v %s", err, out)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(out), &tr)
	if out, err := cli(t, is, "token", "introspect", tr.AccessToken, "--format", "json"); err != nil || !strings.Contains(out, `"active":true`) {
		t.Fatalf("token introspect: %v %s", err, out)
	}
	if out, err := cli(t, is, "clients", "create", "--id", "v1-client", "--secret", "a-long-enough-secret", "-g", "client_credentials", "--scope", "a,b", "--format", "json"); err != nil || !strings.Contains(out, `"client_id":"v1-client"`) {
		t.Fatalf("clients create: %v %s", err, out)
	}
	if out, err := cli(t, is, "token", "client", "--client-id", "v1-client", "--client-secret", "a-long-enough-secret", "--scope", "a"); err != nil || !strings.Contains(out, "ory_at_") {
		t.Fatalf("token client: %v %s", err, out)
	}
	// Bulk revocation by client.
	req, _ := http.NewRequest(http.MethodDelete, is.AdminURL+"/admin/oauth2/tokens?client_id="+opaque.ID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE tokens: %v %v", err, resp)
	}
	if in := introspect(t, is, tr.AccessToken); in["active"] != false {
		t.Fatal("token active after DELETE /admin/oauth2/tokens")
	}
}

func containsStr(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func TestClientCredentialsSQLite(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")})
	clientCredentialsFlow(t, is)
}

// migratedIssuer migrates dsn with the CLI, then serves on it.
func migratedIssuer(t *testing.T, dsn string) *testbin.Issuer {
	out, err := runToExit(t, map[string]string{"DSN": dsn}, "migrate", "sql", "--yes", "-e")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return testbin.StartIssuer(t, map[string]string{"DSN": dsn})
}

func TestClientCredentialsPostgres(t *testing.T) {
	clientCredentialsFlow(t, migratedIssuer(t, freshPostgresDSN(t)))
}

func TestClientCredentialsMariaDB(t *testing.T) {
	base := os.Getenv("TEST_DATABASE_MYSQL")
	if base == "" {
		if os.Getenv("REQUIRE_DATABASES") == "1" {
			t.Fatal("TEST_DATABASE_MYSQL not set")
		}
		t.Skip("TEST_DATABASE_MYSQL not set")
	}
	admin, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "gh_cmd_" + hex.EncodeToString(b[:])
	if _, err := admin.DB().Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	t.Cleanup(func() {
		if a, err := sqlstore.Open(context.Background(), base, sqlstore.Options{}); err == nil {
			_, _ = a.DB().Exec("DROP DATABASE " + name)
			a.Close()
		}
	})
	head, params, _ := strings.Cut(base, "?")
	dsn := head[:strings.LastIndex(head, "/")+1] + name
	if params != "" {
		dsn += "?" + params
	}
	clientCredentialsFlow(t, migratedIssuer(t, dsn))
}

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// TestTokenEndpointErrors: every refusal in RFC 6749 §5.2's format.
func TestTokenEndpointErrors(t *testing.T) {
	is := testbin.StartIssuer(t, nil)
	c := createClient(t, is)
	tokenURL := is.PublicURL + "/oauth2/token"
	post := func(form url.Values, user, pass string) (*http.Response, oauthErr) {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e oauthErr
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp, e
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		err        string
	}{
		{"wrong secret", cc, c.ID, "wrong", 401, "invalid_client"},
		{"unknown client", cc, "nobody", "x", 401, "invalid_client"},
		{"no client", cc, "", "", 401, "invalid_client"},
		{"scope not allowed", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, c.ID, c.Secret, 400, "invalid_scope"},
		{"audience not allowed", url.Values{"grant_type": {"client_credentials"}, "audience": {"https://evil.example"}}, c.ID, c.Secret, 400, "invalid_target"},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, c.ID, c.Secret, 400, "unsupported_grant_type"},
		{"missing grant", url.Values{}, c.ID, c.Secret, 400, "invalid_request"},
		{"grant not allowed for client", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}}, c.ID, c.Secret, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, e := post(tc.form, tc.user, tc.pass)
			if resp.StatusCode != tc.status || (tc.err != "" && e.Error != tc.err) || e.Error == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, e, tc.status, tc.err)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			if tc.status == 401 && tc.user != "" && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 after Basic without WWW-Authenticate: %v", resp.Header)
			}
		})
	}
	resp, err := http.Get(tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET /oauth2/token = %d", resp.StatusCode)
	}
	// The CLI reports a failure in one line with a non-zero exit.
	out, err := cli(t, is, "get", "client", "does-not-exist")
	if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "404") {
		t.Fatalf("CLI error: %v %q", err, out)
	}
}
