package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// `gatehouse perform authorization-code` (and the Hydra v1 form `gatehouse
// token user`) plays an OAuth2 client on the user's machine, like `hydra
// perform authorization-code`: it listens for the redirect on 127.0.0.1,
// prints the authorization URL to open in a browser, and exchanges the
// code (with PKCE S256) for tokens, which it prints.

// authCodeFlow is one run: its settings and the values it generated.
type authCodeFlow struct {
	perform
	port     int
	redirect string
	authURL  string
	prompt   string
	maxAge   int

	state, verifier, nonce string
}

func newAuthorizationCodeCmd() *cobra.Command {
	return authCodeCmd("authorization-code", "Get tokens with the authorization code grant and PKCE, logging in with a browser")
}

// newTokenUserCmd is the Hydra v1 form, `token user`.
func newTokenUserCmd() *cobra.Command {
	return authCodeCmd("user", "Hydra v1 form of `perform authorization-code`")
}

func authCodeCmd(use, short string) *cobra.Command {
	f := &authCodeFlow{}
	cmd := f.command(use, short,
		"Starts a callback listener on 127.0.0.1:--port, prints the URL to open in a browser, and when the\n"+
			"browser comes back with a code exchanges it (PKCE S256, RFC 7636) at the token endpoint and prints the tokens.\n"+
			"The client must have the redirect URI (default http://127.0.0.1:<port>/callback) registered.",
		"wait until Ctrl-C", f.run)
	fl := cmd.Flags()
	fl.IntVar(&f.port, "port", 4446, "port of the callback listener on 127.0.0.1")
	fl.StringVar(&f.redirect, "redirect", "", "redirect URI sent to the issuer (default http://127.0.0.1:<port>/callback)")
	fl.StringVar(&f.authURL, "auth-url", "", "authorization endpoint (default <endpoint>/oauth2/auth)")
	fl.StringVar(&f.prompt, "prompt", "", "OpenID Connect prompt: none, login, consent or select_account")
	fl.IntVar(&f.maxAge, "max-age", 0, "OpenID Connect max_age in seconds (0: not sent)")
	return cmd
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pkceS256 is the RFC 7636 §4.2 code challenge:
// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))).
func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// endpoints resolves the authorization and token endpoints and the
// redirect URI from the flags.
func (f *authCodeFlow) endpoints() (authURL, tokenURL, redirect string, err error) {
	if f.cred.id == "" {
		return "", "", "", errors.New("--client-id is required")
	}
	if f.port <= 0 || f.port > 65535 {
		return "", "", "", fmt.Errorf("--port %d is not a port", f.port)
	}
	base, tokenURL, err := f.tokenEndpoint()
	if err != nil {
		return "", "", "", err
	}
	authURL, redirect = f.authURL, f.redirect
	if authURL == "" {
		authURL = base + "/oauth2/auth"
	}
	if redirect == "" {
		redirect = "http://127.0.0.1:" + strconv.Itoa(f.port) + "/callback"
	}
	for _, u := range []struct{ flag, v string }{{"--auth-url", authURL}, {"--token-url", tokenURL}, {"--redirect", redirect}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Fragment != "" {
			return "", "", "", fmt.Errorf("%s %q is not an http(s) URL", u.flag, u.v)
		}
	}
	return authURL, tokenURL, redirect, nil
}

// authorizationURL builds the RFC 6749 §4.1.1 request with PKCE and an
// OpenID Connect nonce.
func (f *authCodeFlow) authorizationURL(authURL, redirect string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.cred.id},
		"redirect_uri":          {redirect},
		"state":                 {f.state},
		"nonce":                 {f.nonce},
		"code_challenge":        {pkceS256(f.verifier)},
		"code_challenge_method": {"S256"},
	}
	if len(f.scope) > 0 {
		q.Set("scope", strings.Join(f.scope, " "))
	}
	if len(f.audience) > 0 {
		q.Set("audience", strings.Join(f.audience, " "))
	}
	if f.prompt != "" {
		q.Set("prompt", f.prompt)
	}
	if f.maxAge > 0 {
		q.Set("max_age", strconv.Itoa(f.maxAge))
	}
	sep := "?"
	if strings.Contains(authURL, "?") {
		sep = "&"
	}
	return authURL + sep + q.Encode()
}

// callbackResult is what the redirect brought back.
type callbackResult struct {
	code string
	err  error
}

func (f *authCodeFlow) run(ctx context.Context, cmd *cobra.Command) error {
	authURL, tokenURL, redirect, err := f.endpoints()
	if err != nil {
		return err
	}
	// RFC 7636 §4.1: a high-entropy verifier of 43 to 128 unreserved
	// characters; 32 random bytes give 43.
	f.state, f.verifier, f.nonce = randomToken(24), randomToken(32), randomToken(24)
	full := f.authorizationURL(authURL, redirect)
	ru, _ := url.Parse(redirect)
	cbPath := ru.EscapedPath()
	if cbPath == "" {
		cbPath = "/"
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port)))
	if err != nil {
		return fmt.Errorf("callback listener: %v", err)
	}
	results := make(chan callbackResult, 1)
	srv := &http.Server{Handler: f.callbackHandler(cbPath, full, results, cmd), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	errw := cmd.ErrOrStderr()
	fmt.Fprintf(errw, "Listening for the callback on http://%s%s\n", ln.Addr(), cbPath)
	fmt.Fprintf(errw, "Open this URL in a browser to log in (or http://%s/ which redirects there):\n\n%s\n\n", ln.Addr(), full)

	var res callbackResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return fmt.Errorf("no authorization came back: %v", context.Cause(ctx))
	}
	if res.err != nil {
		return res.err
	}

	// RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5).
	v := url.Values{"grant_type": {"authorization_code"}, "code": {res.code}, "redirect_uri": {redirect}, "code_verifier": {f.verifier}}
	body, auth := f.cred.form(v)
	tr, path, err := f.tokenRemote(tokenURL)
	if err != nil {
		return err
	}
	var tok tokenResponse
	if err := tr.do(ctx, http.MethodPost, path, strings.NewReader(body), "application/x-www-form-urlencoded", &tok, auth); err != nil {
		return err
	}
	if tok.AccessToken == "" {
		return errors.New("the token endpoint answered without an access_token")
	}
	return printTokens(cmd, &f.r, &tok)
}

// printTokens prints a token response in the --format asked for (the
// table: one field a line, as Hydra's perform commands print it).
func printTokens(cmd *cobra.Command, r *remote, tok *tokenResponse) error {
	exp := ""
	if tok.ExpiresIn > 0 {
		exp = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	}
	return r.print(cmd, tok, table{
		head:     []string{"ACCESS TOKEN", "REFRESH TOKEN", "ID TOKEN", "EXPIRY", "SCOPE", "TOKEN TYPE"},
		rows:     [][]string{{tok.AccessToken, tok.RefreshToken, tok.IDToken, exp, tok.Scope, tok.TokenType}},
		vertical: true,
	})
}

// tokenRemote returns a remote for the token endpoint's origin and the
// path (with query) to post to, keeping the TLS and format flags.
func (f *authCodeFlow) tokenRemote(tokenURL string) (*remote, string, error) {
	u, err := url.Parse(tokenURL)
	if err != nil {
		return nil, "", err
	}
	tr := f.r
	tr.endpoint = u.Scheme + "://" + u.Host
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return &tr, path, nil
}

// callbackHandler serves the redirect URI (and "/" redirecting to the
// authorization URL). A callback with the wrong state is answered 400 and
// ignored, so that a forged redirect can neither inject a code (RFC 6749
// §10.12) nor end the run; an error from the issuer ends it.
func (f *authCodeFlow) callbackHandler(cbPath, authorizationURL string, results chan<- callbackResult, cmd *cobra.Command) http.Handler {
	page := func(w http.ResponseWriter, status int, title, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title></head>"+
			"<body style=\"font-family:sans-serif;max-width:40rem;margin:3rem auto\"><h1 id=\"result\">%s</h1><p>%s</p></body></html>",
			html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != cbPath {
			if r.URL.Path == "/" {
				http.Redirect(w, r, authorizationURL, http.StatusFound)
				return
			}
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
			fmt.Fprintln(cmd.ErrOrStderr(), "Ignored a callback whose state does not match this run.")
			page(w, http.StatusBadRequest, "Unexpected callback", "The state parameter does not match this login. Start again from the URL printed in the terminal.")
			return
		}
		res := callbackResult{code: q.Get("code")}
		switch {
		case q.Get("error") != "":
			// RFC 6749 §4.1.2.1 error response.
			res = callbackResult{err: fmt.Errorf("the authorization server answered %s: %s", q.Get("error"), q.Get("error_description"))}
			page(w, http.StatusOK, "Authorization failed", q.Get("error")+": "+q.Get("error_description"))
		case res.code == "":
			res = callbackResult{err: errors.New("the callback carries neither code nor error")}
			page(w, http.StatusBadRequest, "Authorization failed", "The callback carries neither a code nor an error.")
		default:
			page(w, http.StatusOK, "Authorization succeeded", "The code is being exchanged; the tokens are printed in the terminal. You can close this window.")
		}
		select {
		case results <- res:
		default: // a second callback after the first: ignored
		}
	})
	return mux
}
