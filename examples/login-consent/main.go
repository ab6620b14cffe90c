// Command login-consent is a small login, consent and logout app for the
// Gatehouse issuer (and for Ory Hydra v2: it speaks the same admin API).
//
// The issuer sends the browser to /login?login_challenge=...,
// /consent?consent_challenge=... and /logout?logout_challenge=...; the app
// authenticates a demo user from a JSON file (bcrypt password hashes),
// shows the requested scopes as checkboxes and accepts or rejects each
// challenge through the admin API.
//
//	login-consent --listen 127.0.0.1:3000 --admin-url http://127.0.0.1:4445
//
// Point the issuer at it with URLS_LOGIN=http://127.0.0.1:3000/login,
// URLS_CONSENT=http://127.0.0.1:3000/consent and
// URLS_LOGOUT=http://127.0.0.1:3000/logout.
package main

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

//go:embed users.json
var defaultUsers []byte

// options are the command line, each with an environment fallback.
type options struct {
	listen, adminURL, usersFile, cookieName, csrfSecret string
	cookieSecure                                        bool
	rememberFor                                         time.Duration
}

func parseFlags(args []string, getenv func(string) string) (*options, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("login-consent", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.listen, "listen", env("LISTEN", "127.0.0.1:3000"), "host:port to listen on ($LISTEN)")
	fs.StringVar(&o.adminURL, "admin-url", env("HYDRA_ADMIN_URL", "http://127.0.0.1:4445"), "the issuer's admin API ($HYDRA_ADMIN_URL)")
	fs.StringVar(&o.usersFile, "users", env("USERS_FILE", ""), "demo users JSON file ($USERS_FILE; default: the built-in users.json)")
	fs.StringVar(&o.cookieName, "cookie-name", env("CSRF_COOKIE_NAME", "gatehouse_login_consent_csrf"), "name of the CSRF cookie ($CSRF_COOKIE_NAME)")
	fs.StringVar(&o.csrfSecret, "csrf-secret", "", "hex key signing CSRF tokens, shared by replicas ($CSRF_SECRET; default: random per process)")
	fs.BoolVar(&o.cookieSecure, "cookie-secure", getenv("COOKIE_SECURE") == "true", "mark the CSRF cookie Secure, for HTTPS ($COOKIE_SECURE=true)")
	remember := env("REMEMBER_FOR", "1h")
	fs.Func("remember-for", "how long \"remember me\" keeps a login or consent ($REMEMBER_FOR, default 1h)", func(s string) error {
		remember = s
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(remember)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("--remember-for %q is not a duration", remember)
	}
	o.rememberFor = d
	if o.csrfSecret == "" {
		o.csrfSecret = getenv("CSRF_SECRET")
	}
	if u, err := url.Parse(o.adminURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin-url %q is not an http(s) URL", o.adminURL)
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, fmt.Errorf("--listen %q: %v", o.listen, err)
	}
	return o, nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "login-consent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	users, err := ParseUsers(defaultUsers)
	if o.usersFile != "" {
		users, err = LoadUsers(o.usersFile)
	}
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if o.csrfSecret != "" {
		if key, err = hex.DecodeString(o.csrfSecret); err != nil || len(key) < 16 {
			return errors.New("--csrf-secret must be at least 16 bytes in hex")
		}
	} else if _, err := randRead(key); err != nil {
		return err
	}
	app := &App{
		Admin:        &Admin{BaseURL: o.adminURL, HTTP: &http.Client{Timeout: 10 * time.Second}},
		Users:        users,
		Log:          log,
		CSRFKey:      key,
		CookieName:   o.cookieName,
		CookieSecure: o.cookieSecure,
		RememberFor:  o.rememberFor,
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("login and consent app listening", zap.String("url", "http://"+ln.Addr().String()), zap.String("admin_url", o.adminURL))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
