package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

func sqliteDSN(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "gatehouse.sqlite")
}

// allBackends are the databases the binary's tests run on: each gives a
// fresh, migrated database (PostgreSQL and MariaDB when configured).
var allBackends = []struct {
	name string
	dsn  func(*testing.T) string
}{{"sqlite", sqliteDSN}, {"postgres", migratedPostgres}, {"mariadb", migratedMariaDB}}

// TestAuthorizationCodeFlow: a relying party built on golang.org/x/oauth2
// and go-oidc logs a user in through the real binary (login and consent
// accepted through the admin API), on SQLite and PostgreSQL.
func TestAuthorizationCodeFlow(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t)}))
			testCodeFlow(t, is)
		})
	}
}

// migratedPostgres returns a fresh, migrated PostgreSQL schema.
func migratedPostgres(t *testing.T) string {
	dsn := freshPostgresDSN(t)
	env := baseEnv(t)
	env["DSN"] = dsn
	if out, err := runToExit(t, env, "migrate", "sql", "--yes", "-e"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return dsn
}

// migratedMariaDB returns a fresh, migrated MariaDB/MySQL database.
func migratedMariaDB(t *testing.T) string {
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
	defer admin.Close()
	name := "gh_flow_" + randomHex()
	if _, err := admin.DB().Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
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
	if out, err := runToExit(t, map[string]string{"DSN": dsn}, "migrate", "sql", "--yes", "-e"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return dsn
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func testCodeFlow(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "profile")
	b := newBrowser(t, is)

	verifier, _ := pkcePair()
	state, nonce := randomState(), randomState()
	at, _, _ := b.visit(rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	loginReq, to := acceptLogin(t, is, at, map[string]any{"subject": "alice", "remember": true, "remember_for": 3600,
		"acr": "urn:acr:pwd", "amr": []string{"pwd"}, "context": map[string]any{"k": "v"}})
	mustf(t, loginReq["skip"] == false && loginReq["subject"] == "" && loginReq["session_id"] != "", "login request: %v", loginReq)
	mustf(t, slices.Equal(toStrings(loginReq["requested_scope"]), []string{"openid", "offline_access", "profile"}), "requested_scope: %v", loginReq["requested_scope"])
	mustf(t, loginReq["client"].(map[string]any)["client_id"] == c["client_id"], "client: %v", loginReq["client"])
	if _, ok := loginReq["client"].(map[string]any)["client_secret"]; ok {
		t.Fatal("the login request exposes the client secret")
	}

	hasKeys(t, "login request", loginReq, "challenge", "client", "oidc_context", "request_url", "requested_access_token_audience",
		"requested_scope", "session_id", "skip", "subject")
	at, _, _ = b.visit(to)
	consentReq, to := acceptConsent(t, is, at, grantAll(true))
	hasKeys(t, "consent request", consentReq, "acr", "amr", "challenge", "client", "context", "login_challenge", "login_session_id",
		"oidc_context", "request_url", "requested_access_token_audience", "requested_scope", "skip", "subject")
	mustf(t, consentReq["subject"] == "alice" && consentReq["skip"] == false && consentReq["acr"] == "urn:acr:pwd", "consent request: %v", consentReq)
	mustf(t, consentReq["login_session_id"] == loginReq["session_id"], "login_session_id %v vs %v", consentReq["login_session_id"], loginReq["session_id"])
	mustf(t, consentReq["context"].(map[string]any)["k"] == "v", "context: %v", consentReq["context"])

	at, _, body := b.visit(to)
	mustf(t, at != nil && at.Path == "/callback", "callback: %v %s", at, body)
	mustf(t, at.Query().Get("state") == state, "state: %v", at.Query())
	code := at.Query().Get("code")

	// A wrong verifier fails; the right one succeeds.
	if _, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(pkceVerifierOther())); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("wrong PKCE verifier: %v", err)
	}
	tok, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	mustf(t, idt.Subject == "alice" && idt.Nonce == nonce, "id token: sub %q nonce %q", idt.Subject, idt.Nonce)
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	mustf(t, claims["email"] == "alice@example.com" && claims["acr"] == "urn:acr:pwd" && claims["sid"] == loginReq["session_id"] &&
		claims["azp"] == c["client_id"] && claims["auth_time"] != nil, "claims: %v", claims)
	mustf(t, tok.RefreshToken != "", "no refresh token")

	// The code is single-use: a replay fails and revokes what it gave.
	if _, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("code replay: %v", err)
	}
	mustf(t, introspectToken(t, is, tok.AccessToken)["active"] == false, "access token survived a code replay")

	// A second flow in the same browser reuses the remembered session.
	q, verifier2 := codeFlowRemembered(t, is, b, rp, "alice")
	tok, err = rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier2))
	if err != nil {
		t.Fatalf("exchange 2: %v", err)
	}
	in := introspectToken(t, is, tok.AccessToken)
	mustf(t, in["active"] == true && in["sub"] == "alice" && in["ext"].(map[string]any)["tenant"] == "acme", "introspection: %v", in)

	// userinfo, as go-oidc calls it.
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uic map[string]any
	_ = ui.Claims(&uic)
	mustf(t, ui.Subject == "alice" && ui.Email == "alice@example.com" && uic["name"] == "Alice", "userinfo: %v", uic)
	code401, hdr, _ := bearerGet(t, is.PublicURL+"/userinfo", "ory_at_bogus.bogus")
	mustf(t, code401 == 401 && hdr.Get("WWW-Authenticate") != "", "userinfo with a bad token: %d %v", code401, hdr)

	// Refresh rotates; reusing the old refresh token revokes the chain.
	rt1 := tok.RefreshToken
	tok2, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	mustf(t, tok2.RefreshToken != "" && tok2.RefreshToken != rt1 && tok2.AccessToken != tok.AccessToken, "no rotation")
	idt2, err := rp.verifier.Verify(ctx, tok2.Extra("id_token").(string))
	if err != nil || idt2.Subject != "alice" {
		t.Fatalf("refreshed ID token: %v", err)
	}
	mustf(t, introspectToken(t, is, tok.AccessToken)["active"] == false, "the old access token survived a refresh")
	mustf(t, introspectToken(t, is, tok2.AccessToken)["active"] == true, "the new access token is inactive")
	if _, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh token reuse: %v", err)
	}
	mustf(t, introspectToken(t, is, tok2.AccessToken)["active"] == false, "the chain survived a refresh token reuse")
	if _, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh with a revoked chain: %v", err)
	}
}

// codeFlowRemembered runs a flow whose login is skipped thanks to the
// remembered session (the login app confirms with skip=true).
func codeFlowRemembered(t *testing.T, is *testbin.Issuer, b *browser, rp *relyingParty, subject string) (url.Values, string) {
	t.Helper()
	verifier, _ := pkcePair()
	state := randomState()
	at, _, _ := b.visit(rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(randomState())))
	req, to := acceptLogin(t, is, at, map[string]any{"subject": subject})
	mustf(t, req["skip"] == true && req["subject"] == subject, "remembered login: %v", req)
	at, _, _ = b.visit(to)
	creq, to := acceptConsent(t, is, at, grantAll(true))
	mustf(t, creq["skip"] == true, "remembered consent not skipped: %v", creq)
	at, _, body := b.visit(to)
	mustf(t, at != nil && at.Path == "/callback" && at.Query().Get("code") != "", "callback: %v %s", at, body)
	return at.Query(), verifier
}

// hasKeys checks that a Hydra v2 admin answer carries every member of
// Hydra's wire format.
func hasKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s lacks %q: %v", what, k, m)
		}
	}
}

func pkceVerifierOther() string { v, _ := pkcePair(); return v }

// toStrings is a decoded JSON array of strings (nil for anything else).
func toStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func bearerGet(t testing.TB, u, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, resp.Header, string(b[:n])
}

// TestConcurrentFlows: 16 authorization code flows at once, each in its
// own browser, all complete with valid tokens (Hydra deadlocks here on
// SQLite), on SQLite and PostgreSQL.
func TestConcurrentFlows(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t)}))
			c := newFlowClient(t, is, nil)
			rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
			const n = 16
			var wg sync.WaitGroup
			var ok atomic.Int32
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ft := &flowT{T: t}
					func() {
						defer func() { _ = recover() }()
						ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
						defer cancel()
						b := newBrowser(ft, is)
						q, verifier := codeFlow(ft, is, b, rp, "user-"+string(rune('a'+i)))
						tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
						if err != nil {
							ft.Errorf("exchange: %v", err)
							return
						}
						idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
						if err != nil || idt.Nonce != q.Get("nonce") {
							ft.Errorf("id token: %v", err)
							return
						}
						if _, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
							ft.Errorf("refresh: %v", err)
							return
						}
						ok.Add(1)
					}()
					if ft.err != nil {
						errs <- ft.err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if ok.Load() != n {
				t.Fatalf("%d of %d concurrent flows completed", ok.Load(), n)
			}
		})
	}
}

// flowT lets a goroutine use the helpers' Fatalf: it records the first
// failure and unwinds the goroutine with a panic its caller recovers.
type flowT struct {
	*testing.T
	mu  sync.Mutex
	err error
}

func (f *flowT) Helper() {}

func (f *flowT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = errors.New(sprintf(format, args...))
	}
}

func (f *flowT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(f.err)
}

func (f *flowT) Fatal(args ...any) { f.Fatalf("%v", args...) }
