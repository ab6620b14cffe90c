package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

func get(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestServeHealthAndSeparation: the real binary serves health on both
// listeners, the admin API only on the admin one, JSON errors everywhere.
func TestServeHealthAndSeparation(t *testing.T) {
	is := testbin.StartIssuer(t, nil)
	for _, u := range []string{is.PublicURL + "/health/alive", is.PublicURL + "/health/ready", is.AdminURL + "/health/ready",
		is.AdminURL + "/admin/health/ready", is.AdminURL + "/admin/version"} {
		if code, _, body := get(t, u); code != 200 {
			t.Fatalf("GET %s = %d %s", u, code, body)
		}
	}
	for _, path := range []string{"/admin/keys/hydra.openid.id-token", "/keys/hydra.openid.id-token", "/admin/clients", "/clients", "/admin/metrics/prometheus"} {
		code, h, body := get(t, is.PublicURL+path)
		if code != 404 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Fatalf("public listener GET %s = %d %s %s, want a JSON 404", path, code, h.Get("Content-Type"), body)
		}
	}
	code, _, body := get(t, is.AdminURL+"/admin/metrics/prometheus")
	if code != 200 || !strings.Contains(string(body), "gatehouse_http_requests_total") || !strings.Contains(string(body), "gatehouse_db_") {
		t.Fatalf("metrics: %d\n%.500s", code, body)
	}
	code, _, _ = get(t, is.AdminURL+"/.well-known/jwks.json")
	if code != 404 {
		t.Fatalf("public route answered on the admin listener: %d", code)
	}
	// SIGTERM drains and exits cleanly.
	if err := is.Stop(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

type jwks struct {
	Keys []map[string]any `json:"keys"`
}

func adminKeys(t *testing.T, is *testbin.Issuer, set string) jwks {
	t.Helper()
	code, _, body := get(t, is.AdminURL+"/admin/keys/"+set)
	if code != 200 {
		t.Fatalf("GET keys %s = %d %s", set, code, body)
	}
	var k jwks
	if err := json.Unmarshal(body, &k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeySetsEncryptedAndRotation covers acceptance item 3 on a SQLite file.
func TestKeySetsEncryptedAndRotation(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "gatehouse.sqlite")
	env := map[string]string{"DSN": "sqlite://" + dbPath, "SECRETS_SYSTEM": "old-secret-0123456789abcdef"}
	is := testbin.StartIssuer(t, env)
	kids := map[string]string{}
	for _, set := range []string{"hydra.openid.id-token", "hydra.jwt.access-token"} {
		k := adminKeys(t, is, set)
		if len(k.Keys) != 1 {
			t.Fatalf("%s: %d keys", set, len(k.Keys))
		}
		key := k.Keys[0]
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := key[private]; ok {
				t.Fatalf("GET %s returned the private parameter %q", set, private)
			}
		}
		if key["alg"] != "RS256" || key["kid"] == "" || key["use"] != "sig" {
			t.Fatalf("%s: %v", set, key)
		}
		kids[set] = key["kid"].(string)
	}
	if err := is.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The database holds ciphertext only.
	st, err := sqlstore.Open(context.Background(), "sqlite://"+dbPath, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.DB().Query("SELECT private_encrypted FROM jwks")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var ct []byte
		if err := rows.Scan(&ct); err != nil {
			t.Fatal(err)
		}
		n++
		if len(ct) < 100 || strings.Contains(string(ct), `"d"`) || strings.Contains(string(ct), "kty") || json.Valid(ct) {
			t.Fatalf("private key stored in the clear: %.80q", ct)
		}
	}
	rows.Close()
	st.Close()
	if n != 2 {
		t.Fatalf("%d private keys stored, want 2", n)
	}

	// Rotated secret list: the old keys still load and sign.
	env["SECRETS_SYSTEM"] = "new-secret-0123456789abcdef,old-secret-0123456789abcdef"
	is = testbin.StartIssuer(t, env)
	for set, kid := range kids {
		k := adminKeys(t, is, set)
		if len(k.Keys) != 1 || k.Keys[0]["kid"] != kid {
			t.Fatalf("%s after rotation: %v, want kid %s", set, k.Keys, kid)
		}
	}
	code, _, body := get(t, is.PublicURL+"/.well-known/jwks.json")
	if code != 200 || !strings.Contains(string(body), kids["hydra.openid.id-token"]) {
		t.Fatalf("jwks.json: %d %s", code, body)
	}
	is.Stop(10 * time.Second)

	// Without the old secret the keys cannot be decrypted: start-up refuses.
	env["SECRETS_SYSTEM"] = "new-secret-0123456789abcdef"
	p := testbin.Start(t, testbin.Build(t, "./issuer/cmd/gatehouse"), env, "serve", "all")
	if exited, _ := p.Wait(30 * time.Second); !exited {
		t.Fatal("started with signing keys it cannot decrypt")
	}
}

func runToExit(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	p := testbin.Start(t, testbin.Build(t, "./issuer/cmd/gatehouse"), env, args...)
	exited, err := p.Wait(60 * time.Second)
	if !exited {
		t.Fatalf("gatehouse %v did not exit:\n%s", args, p.Output.String())
	}
	return p.Output.String(), err
}

func baseEnv(t *testing.T) map[string]string {
	return map[string]string{
		"DSN": "memory", "SECRETS_SYSTEM": testbin.TestSecret, "URLS_SELF_ISSUER": "http://127.0.0.1:4444",
		"SERVE_PUBLIC_PORT": "0", "SERVE_ADMIN_PORT": "0", "SERVE_PUBLIC_HOST": "127.0.0.1", "SERVE_ADMIN_HOST": "127.0.0.1",
	}
}

// TestStartupRefusals covers acceptance item 4 and the production rules.
func TestStartupRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad ttl", map[string]string{"TTL_ACCESS_TOKEN": "banana"}, nil, []string{"TTL_ACCESS_TOKEN"}},
		{"bad strategy", map[string]string{"STRATEGIES_ACCESS_TOKEN": "magic"}, nil, []string{"STRATEGIES_ACCESS_TOKEN"}},
		{"no system secret", map[string]string{"SECRETS_SYSTEM": ""}, nil, []string{"SECRETS_SYSTEM"}},
		{"short system secret", map[string]string{"SECRETS_SYSTEM": "tooshort"}, nil, []string{"SECRETS_SYSTEM"}},
		{"http issuer off loopback", map[string]string{"URLS_SELF_ISSUER": "http://auth.example.com"}, nil, []string{"dangerous-force-http"}},
		{"bad dsn", map[string]string{"DSN": "oracle://x"}, nil, []string{"DSN"}},
		{"request_uri lifespan over 10m", map[string]string{"OAUTH2_PUSHED_AUTHORIZATION_REQUESTS_REQUEST_URI_LIFESPAN": "11m"}, nil,
			[]string{"OAUTH2_PUSHED_AUTHORIZATION_REQUESTS_REQUEST_URI_LIFESPAN"}},
		{"tracing without a collector", map[string]string{"TRACING_PROVIDER": "otel"}, nil, []string{"TRACING_PROVIDERS_OTLP_SERVER_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(t)
			for k, v := range tc.env {
				env[k] = v
			}
			args := tc.args
			if args == nil {
				args = []string{"serve", "all"}
			}
			out, err := runToExit(t, env, args...)
			if err == nil {
				t.Fatalf("exited 0:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
}

func freshPostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_POSTGRES")
	if base == "" {
		if os.Getenv("REQUIRE_DATABASES") == "1" {
			t.Fatal("TEST_DATABASE_POSTGRES not set")
		}
		t.Skip("TEST_DATABASE_POSTGRES not set")
	}
	admin, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "gh_cmd_" + hex.EncodeToString(b[:])
	if _, err := admin.DB().Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := sqlstore.Open(context.Background(), base, sqlstore.Options{}); err == nil {
			_, _ = a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresMigrateThenServe: serve refuses an unmigrated PostgreSQL
// database with the command to run; migrate sql applies; two replicas then
// start together on it and agree on one key set.
func TestPostgresMigrateThenServe(t *testing.T) {
	dsn := freshPostgresDSN(t)
	env := baseEnv(t)
	env["DSN"] = dsn
	out, err := runToExit(t, env, "serve", "all")
	if err == nil || !strings.Contains(out, "gatehouse migrate sql") {
		t.Fatalf("unmigrated database: err=%v\n%s", err, out)
	}
	out, err = runToExit(t, env, "migrate", "status", "-e")
	if err != nil || !strings.Contains(out, "00001_init.sql") || !strings.Contains(out, "pending") {
		t.Fatalf("migrate status: %v\n%s", err, out)
	}
	out, err = runToExit(t, env, "migrate", "sql", "--yes", "-e")
	if err != nil || !strings.Contains(out, "Successfully applied") {
		t.Fatalf("migrate sql: %v\n%s", err, out)
	}
	if strings.Contains(out, "postgres://postgres:") {
		t.Fatal("a password-bearing DSN was printed")
	}
	out, err = runToExit(t, env, "migrate", "sql", "--yes", dsn)
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}

	// Two replicas at once on the freshly migrated database.
	a := testbin.StartIssuer(t, map[string]string{"DSN": dsn})
	b := testbin.StartIssuer(t, map[string]string{"DSN": dsn})
	for _, set := range []string{"hydra.openid.id-token", "hydra.jwt.access-token"} {
		ka, kb := adminKeys(t, a, set), adminKeys(t, b, set)
		if len(ka.Keys) != 1 || len(kb.Keys) != 1 || ka.Keys[0]["kid"] != kb.Keys[0]["kid"] {
			t.Fatalf("%s: replicas disagree: %v vs %v", set, ka.Keys, kb.Keys)
		}
	}
}
