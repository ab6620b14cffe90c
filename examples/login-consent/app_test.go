package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAdmin is the admin API of Hydra v2 for a few challenges: GET
// answers the stored request, PUT records the body and answers
// redirect_to; a handled challenge answers 410 with redirect_to as Hydra's
// does.
type fakeAdmin struct {
	mu       sync.Mutex
	requests map[string]any // "<kind>:<challenge>" → request JSON
	handled  map[string]string
	puts     []put
}

type put struct {
	Kind, Action, Challenge string
	Body                    map[string]any
}

func newFakeAdmin() *fakeAdmin {
	return &fakeAdmin{requests: map[string]any{}, handled: map[string]string{}}
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/oauth2/auth/requests/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	kind, action, _ := strings.Cut(rest, "/")
	chal := r.URL.Query().Get(kind + "_challenge")
	key := kind + ":" + chal
	w.Header().Set("Content-Type", "application/json")
	req, known := f.requests[key]
	if !known {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":"Not Found","error_description":"Unable to locate the requested resource"}`)
		return
	}
	if to, done := f.handled[key]; done {
		w.WriteHeader(410)
		_ = json.NewEncoder(w).Encode(map[string]string{"redirect_to": to})
		return
	}
	switch {
	case r.Method == http.MethodGet && action == "":
		_ = json.NewEncoder(w).Encode(req)
	case r.Method == http.MethodPut && (action == "accept" || action == "reject"):
		var body map[string]any
		if r.ContentLength > 0 {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				w.WriteHeader(400)
				return
			}
		}
		f.puts = append(f.puts, put{kind, action, chal, body})
		// The issuer's answers to user codes: WRONG is unknown, MANY one
		// too many.
		switch body["user_code"] {
		case "WRONG":
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"The 'user_code' was not found"}`)
			return
		case "MANY":
			w.WriteHeader(429)
			_, _ = io.WriteString(w, `{"error":"invalid_request","error_description":"Too many wrong user codes"}`)
			return
		}
		to := "http://issuer.test/oauth2/auth?" + kind + "_verifier=v-" + chal + "-" + action
		f.handled[key] = to
		if kind == "logout" && action == "reject" {
			w.WriteHeader(204)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"redirect_to": to})
	default:
		w.WriteHeader(405)
	}
}

func (f *fakeAdmin) add(kind, chal string, req any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[kind+":"+chal] = req
}

func (f *fakeAdmin) calls() []put {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

type env struct {
	t     *testing.T
	admin *fakeAdmin
	app   *httptest.Server
	c     *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fa := newFakeAdmin()
	as := httptest.NewServer(fa)
	t.Cleanup(as.Close)
	users, err := ParseUsers(defaultUsers)
	if err != nil {
		t.Fatal(err)
	}
	app := &App{Admin: &Admin{BaseURL: as.URL}, Users: users, CSRFKey: []byte("0123456789abcdef0123456789abcdef"), RememberFor: time.Hour}
	s := httptest.NewServer(app.Handler())
	t.Cleanup(s.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{t: t, admin: fa, app: s, c: c}
}

func (e *env) get(path string) (*http.Response, string) {
	e.t.Helper()
	resp, err := e.c.Get(e.app.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// post submits a form the way a browser on the app's own page does.
func (e *env) post(path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.app.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := hiddenRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

func loginReq(chal string) map[string]any {
	return map[string]any{"challenge": chal, "client": map[string]any{"client_id": "demo", "client_name": "Demo App"},
		"requested_scope": []string{"openid"}, "skip": false, "subject": "", "request_url": "http://issuer.test/oauth2/auth?x"}
}

func TestLoginFlow(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		remember   bool
		wantAccept bool
		wantSub    string
	}{
		{"right password", "alice", "wonderland", false, true, "alice"},
		{"username is case-insensitive, remember me", "Alice", "wonderland", true, true, "alice"},
		{"second user", "bob", "builder", false, true, "bob"},
		{"wrong password", "alice", "builder", false, false, ""},
		{"unknown user", "mallory", "wonderland", false, false, ""},
		{"empty password", "alice", "", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.admin.add("login", "c1", loginReq("c1"))
			resp, page := e.get("/login?login_challenge=c1")
			if resp.StatusCode != 200 || !strings.Contains(page, "Demo App") || !strings.Contains(page, `name="password"`) {
				t.Fatalf("GET /login = %d\n%s", resp.StatusCode, page)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Fatalf("security headers missing: %v", resp.Header)
			}
			form := url.Values{"login_challenge": {"c1"}, "csrf_token": {csrfOf(t, page)}, "username": {tt.user}, "password": {tt.pass}, "action": {"accept"}}
			if tt.remember {
				form.Set("remember", "1")
			}
			resp, page = e.post("/login", form, nil)
			calls := e.admin.calls()
			if !tt.wantAccept {
				if resp.StatusCode != 200 || !strings.Contains(page, "username or password is wrong") || len(calls) != 0 {
					t.Fatalf("bad credentials: %d, calls %v\n%s", resp.StatusCode, calls, page)
				}
				if !strings.Contains(page, `value="`+tt.user+`"`) || strings.Contains(page, tt.pass+`"`) && tt.pass != "" {
					t.Fatalf("the form should keep the username and drop the password:\n%s", page)
				}
				return
			}
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://issuer.test/oauth2/auth?login_verifier=v-c1-accept" {
				t.Fatalf("POST /login = %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
			}
			if len(calls) != 1 || calls[0].Kind != "login" || calls[0].Action != "accept" {
				t.Fatalf("calls = %v", calls)
			}
			b := calls[0].Body
			if b["subject"] != tt.wantSub || b["remember"] != tt.remember {
				t.Fatalf("accept body = %v", b)
			}
			if tt.remember && b["remember_for"] != float64(3600) {
				t.Fatalf("remember_for = %v", b["remember_for"])
			}
		})
	}
}

func TestLoginSkipAcceptsWithoutForm(t *testing.T) {
	e := newEnv(t)
	r := loginReq("s1")
	r["skip"], r["subject"] = true, "bob"
	e.admin.add("login", "s1", r)
	resp, _ := e.get("/login?login_challenge=s1")
	if resp.StatusCode != 302 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	calls := e.admin.calls()
	if len(calls) != 1 || calls[0].Action != "accept" || calls[0].Body["subject"] != "bob" {
		t.Fatalf("calls = %v", calls)
	}
}

func TestLoginDenyRejects(t *testing.T) {
	e := newEnv(t)
	e.admin.add("login", "d1", loginReq("d1"))
	_, page := e.get("/login?login_challenge=d1")
	resp, _ := e.post("/login", url.Values{"login_challenge": {"d1"}, "csrf_token": {csrfOf(t, page)}, "action": {"deny"}}, nil)
	calls := e.admin.calls()
	if resp.StatusCode != 302 || len(calls) != 1 || calls[0].Action != "reject" || calls[0].Body["error"] != "access_denied" {
		t.Fatalf("%d %v", resp.StatusCode, calls)
	}
}

// TestCSRF: a form without the right token, or sent from another site,
// never reaches the admin API.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	e.admin.add("login", "x1", loginReq("x1"))
	e.admin.add("login", "x2", loginReq("x2"))
	_, page := e.get("/login?login_challenge=x1")
	tok := csrfOf(t, page)
	good := func() url.Values {
		return url.Values{"login_challenge": {"x1"}, "csrf_token": {tok}, "username": {"alice"}, "password": {"wonderland"}}
	}
	tests := []struct {
		name   string
		form   func(url.Values)
		hdr    map[string]string
		nojar  bool
		status int
	}{
		{"no token", func(v url.Values) { v.Del("csrf_token") }, nil, false, 403},
		{"wrong token", func(v url.Values) { v.Set("csrf_token", "AAAA"+tok[4:]) }, nil, false, 403},
		{"token of another challenge", func(v url.Values) { v.Set("login_challenge", "x2") }, nil, false, 403},
		{"no cookie", nil, nil, true, 403},
		{"cross-site browser POST", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}, false, 403},
		{"cross-origin Origin header", nil, map[string]string{"Sec-Fetch-Site": "", "Origin": "http://evil.test"}, false, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good()
			if tt.form != nil {
				tt.form(v)
			}
			c := e.c
			if tt.nojar {
				e.c = &http.Client{CheckRedirect: c.CheckRedirect}
			}
			resp, body := e.post("/login", v, tt.hdr)
			e.c = c
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tt.status, body)
			}
			if n := len(e.admin.calls()); n != 0 {
				t.Fatalf("%d admin calls", n)
			}
		})
	}
	// And the genuine form still works.
	resp, _ := e.post("/login", good(), nil)
	if resp.StatusCode != 302 {
		t.Fatalf("genuine form: %d", resp.StatusCode)
	}
}

func TestAdminErrors(t *testing.T) {
	e := newEnv(t)
	e.admin.add("login", "h1", loginReq("h1"))
	e.admin.mu.Lock()
	e.admin.handled["login:h1"] = "http://issuer.test/continue"
	e.admin.mu.Unlock()
	resp, _ := e.get("/login?login_challenge=h1")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://issuer.test/continue" {
		t.Fatalf("handled challenge: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/login?login_challenge=nope", "/consent?consent_challenge=nope", "/logout?logout_challenge=nope"} {
		resp, page := e.get(p)
		if resp.StatusCode != 404 || !strings.Contains(page, "unknown, was already used or has expired") {
			t.Fatalf("GET %s = %d\n%s", p, resp.StatusCode, page)
		}
	}
	for _, p := range []string{"/login", "/consent", "/logout"} {
		if resp, _ := e.get(p); resp.StatusCode != 400 {
			t.Fatalf("GET %s without challenge = %d", p, resp.StatusCode)
		}
	}
	// An unreachable admin API is a 502 page, not a crash.
	app := &App{Admin: &Admin{BaseURL: "http://127.0.0.1:1"}, Users: &Users{}, CSRFKey: []byte("k")}
	rec := httptest.NewRecorder()
	app.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/login?login_challenge=z", nil))
	if rec.Code != 502 {
		t.Fatalf("unreachable admin API: %d", rec.Code)
	}
}

func consentReq(chal string, scopes ...string) map[string]any {
	return map[string]any{"challenge": chal, "client": map[string]any{"client_id": "demo", "client_name": "Demo App"},
		"requested_scope": scopes, "requested_access_token_audience": []string{"https://api.example.com"},
		"skip": false, "subject": "alice", "login_challenge": "l", "login_session_id": "sid"}
}

func TestConsentFlow(t *testing.T) {
	tests := []struct {
		name      string
		tick      []string
		remember  bool
		wantScope []string
		wantClaim map[string]any
	}{
		{"all", []string{"openid", "offline_access", "email", "profile"}, true, []string{"openid", "offline_access", "email", "profile"},
			map[string]any{"email": "alice@example.com", "email_verified": true, "name": "Alice Liddell", "preferred_username": "alice"}},
		{"unticked email and profile", []string{"openid", "offline_access"}, false, []string{"openid", "offline_access"}, map[string]any{}},
		{"a scope that was not requested is dropped", []string{"openid", "admin", "openid"}, false, []string{"openid"}, map[string]any{}},
		{"nothing ticked", nil, false, []string{}, map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.admin.add("consent", "k1", consentReq("k1", "openid", "offline_access", "email", "profile"))
			resp, page := e.get("/consent?consent_challenge=k1")
			if resp.StatusCode != 200 {
				t.Fatalf("GET /consent = %d", resp.StatusCode)
			}
			for _, s := range []string{"openid", "offline_access", "email", "profile"} {
				if !strings.Contains(page, `name="grant_scope" value="`+s+`" checked`) {
					t.Fatalf("no checkbox for %s:\n%s", s, page)
				}
			}
			if !strings.Contains(page, "Alice Liddell") || !strings.Contains(page, "https://api.example.com") {
				t.Fatalf("consent page lacks the user or audience:\n%s", page)
			}
			form := url.Values{"consent_challenge": {"k1"}, "csrf_token": {csrfOf(t, page)}, "action": {"accept"}, "grant_scope": tt.tick}
			if tt.remember {
				form.Set("remember", "1")
			}
			resp, _ = e.post("/consent", form, nil)
			calls := e.admin.calls()
			if resp.StatusCode != 302 || len(calls) != 1 || calls[0].Action != "accept" {
				t.Fatalf("%d %v", resp.StatusCode, calls)
			}
			b := calls[0].Body
			got, _ := json.Marshal(b["grant_scope"])
			want, _ := json.Marshal(tt.wantScope)
			if string(got) != string(want) {
				t.Fatalf("grant_scope = %s, want %s", got, want)
			}
			if aud, _ := json.Marshal(b["grant_access_token_audience"]); string(aud) != `["https://api.example.com"]` {
				t.Fatalf("audience = %s", aud)
			}
			if b["remember"] != tt.remember {
				t.Fatalf("remember = %v", b["remember"])
			}
			sess := b["session"].(map[string]any)
			gotC, _ := json.Marshal(sess["id_token"])
			wantC, _ := json.Marshal(tt.wantClaim)
			if string(gotC) != string(wantC) {
				t.Fatalf("id_token claims = %s, want %s", gotC, wantC)
			}
		})
	}
}

func TestConsentSkipAndDeny(t *testing.T) {
	e := newEnv(t)
	r := consentReq("sk", "openid", "email")
	r["skip"] = true
	e.admin.add("consent", "sk", r)
	trusted := consentReq("tr", "openid")
	trusted["client"] = map[string]any{"client_id": "first-party", "skip_consent": true}
	e.admin.add("consent", "tr", trusted)
	for _, c := range []string{"sk", "tr"} {
		if resp, _ := e.get("/consent?consent_challenge=" + c); resp.StatusCode != 302 {
			t.Fatalf("%s: status %d", c, resp.StatusCode)
		}
	}
	calls := e.admin.calls()
	if len(calls) != 2 || calls[0].Action != "accept" {
		t.Fatalf("calls %v", calls)
	}
	if g, _ := json.Marshal(calls[0].Body["grant_scope"]); string(g) != `["openid","email"]` {
		t.Fatalf("skip grant = %s", g)
	}
	e.admin.add("consent", "dn", consentReq("dn", "openid"))
	_, page := e.get("/consent?consent_challenge=dn")
	resp, _ := e.post("/consent", url.Values{"consent_challenge": {"dn"}, "csrf_token": {csrfOf(t, page)}, "action": {"deny"}}, nil)
	calls = e.admin.calls()
	if resp.StatusCode != 302 || calls[2].Action != "reject" || calls[2].Body["error"] != "access_denied" {
		t.Fatalf("%d %v", resp.StatusCode, calls)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	lr := map[string]any{"challenge": "o1", "subject": "alice", "sid": "s", "rp_initiated": true, "client": map[string]any{"client_id": "wiki", "client_name": "Wiki"}}
	e.admin.add("logout", "o1", lr)
	e.admin.add("logout", "o2", lr)
	resp, page := e.get("/logout?logout_challenge=o1")
	if resp.StatusCode != 200 || !strings.Contains(page, "Alice Liddell") || !strings.Contains(page, "Wiki") {
		t.Fatalf("GET /logout = %d\n%s", resp.StatusCode, page)
	}
	resp, _ = e.post("/logout", url.Values{"logout_challenge": {"o1"}, "csrf_token": {csrfOf(t, page)}, "action": {"accept"}}, nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://issuer.test/oauth2/auth?logout_verifier=v-o1-accept" {
		t.Fatalf("accept: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = e.get("/logout?logout_challenge=o2")
	resp, page = e.post("/logout", url.Values{"logout_challenge": {"o2"}, "csrf_token": {csrfOf(t, page)}, "action": {"deny"}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "still signed in") {
		t.Fatalf("reject: %d\n%s", resp.StatusCode, page)
	}
	calls := e.admin.calls()
	if len(calls) != 2 || calls[0].Action != "accept" || calls[1].Action != "reject" {
		t.Fatalf("calls %v", calls)
	}
}

// TestTemplatesEscape: values from the admin API (client names chosen by
// whoever registered the client) are HTML-escaped.
func TestTemplatesEscape(t *testing.T) {
	e := newEnv(t)
	r := loginReq("e1")
	r["client"] = map[string]any{"client_id": "x", "client_name": `<script>alert(1)</script>`}
	e.admin.add("login", "e1", r)
	_, page := e.get("/login?login_challenge=e1")
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Fatalf("client name not escaped:\n%s", page)
	}
}

func TestParseUsers(t *testing.T) {
	good := `{"users":[{"username":"a","password_bcrypt":"$2a$10$H.1l/RyvX/ctmqLAMUEgOuZBtfh/599sb0fgh0DYzKFqg8SsQ.h3e","subject":"s"}]}`
	tests := []struct {
		name, doc, err string
	}{
		{"good", good, ""},
		{"no users", `{"users":[]}`, "no users"},
		{"unknown key", `{"users":[],"x":1}`, "unknown field"},
		{"plain password", strings.Replace(good, `$2a$10$H.1l/RyvX/ctmqLAMUEgOuZBtfh/599sb0fgh0DYzKFqg8SsQ.h3e`, "secret", 1), "not a bcrypt hash"},
		{"no subject", strings.Replace(good, `"subject":"s"`, `"subject":""`, 1), "subject is empty"},
		{"duplicate", `{"users":[` + good[10:len(good)-2] + `,` + good[10:len(good)-2] + `]}`, "duplicate"},
		{"not JSON", `users:`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUsers([]byte(tt.doc))
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
	// The shipped users.json file is the built-in default and parses.
	p := filepath.Join(".", "users.json")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsers(p); err != nil {
		t.Fatal(err)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	o, err := parseFlags(nil, getenv)
	if err != nil || o.listen != "127.0.0.1:3000" || o.adminURL != "http://127.0.0.1:4445" || o.rememberFor != time.Hour {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	env["HYDRA_ADMIN_URL"], env["LISTEN"] = "http://127.0.0.1:9445", "127.0.0.1:3999"
	o, _ = parseFlags(nil, getenv)
	if o.adminURL != "http://127.0.0.1:9445" || o.listen != "127.0.0.1:3999" {
		t.Fatalf("env: %+v", o)
	}
	o, _ = parseFlags([]string{"--admin-url", "http://127.0.0.1:1", "--remember-for", "2m"}, getenv)
	if o.adminURL != "http://127.0.0.1:1" || o.rememberFor != 2*time.Minute {
		t.Fatalf("flags win: %+v", o)
	}
	for _, bad := range [][]string{{"--admin-url", "ftp://x"}, {"--listen", "nope"}, {"--remember-for", "soon"}, {"extra"}} {
		if _, err := parseFlags(bad, getenv); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// FuzzCSRF: no token an attacker can send validates without the cookie's
// signature, and nothing panics.
func FuzzCSRF(f *testing.F) {
	f.Add("AAAA", "chal", "tok")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, cookie, chal, token string) {
		c := &csrf{key: []byte("k"), name: "n"}
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(&http.Cookie{Name: "n", Value: url.QueryEscape(cookie)})
		if c.valid(r, chal, token) && token != c.sign(c.cookie(r), chal) {
			t.Fatal("a token that is not the signature validated")
		}
	})
}

// TestDeviceFlow: the code entry page (prefilled from user_code), a wrong
// code shows the form again, too many an error page, the right one is
// accepted through the admin API and the browser sent on; /device/done
// is the success page.
func TestDeviceFlow(t *testing.T) {
	e := newEnv(t)
	e.admin.add("device", "d1", map[string]any{"challenge": "d1", "request_url": "http://issuer.test/oauth2/device/verify"})
	resp, page := e.get("/device?device_challenge=d1&user_code=BCDF-GHJK")
	if resp.StatusCode != 200 || !strings.Contains(page, `name="user_code" value="BCDF-GHJK"`) {
		t.Fatalf("GET /device = %d:\n%s", resp.StatusCode, page)
	}
	form := url.Values{"device_challenge": {"d1"}, "csrf_token": {csrfOf(t, page)}, "user_code": {"WRONG"}}
	resp, page = e.post("/device", form, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="device-error"`) {
		t.Fatalf("wrong code = %d:\n%s", resp.StatusCode, page)
	}
	form.Set("user_code", "MANY")
	if resp, page = e.post("/device", form, nil); resp.StatusCode != 429 {
		t.Fatalf("too many = %d:\n%s", resp.StatusCode, page)
	}
	form.Set("user_code", "bcdf-ghjk")
	resp, _ = e.post("/device", form, nil)
	calls := e.admin.calls()
	last := calls[len(calls)-1]
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://issuer.test/oauth2/auth?device_verifier=v-d1-accept" ||
		last.Kind != "device" || last.Action != "accept" || last.Body["user_code"] != "bcdf-ghjk" {
		t.Fatalf("accept = %d %s %v", resp.StatusCode, resp.Header.Get("Location"), last)
	}
	// Without the form's token the code is not sent.
	form.Set("csrf_token", "forged")
	if resp, _ = e.post("/device", form, nil); resp.StatusCode != 403 || len(e.admin.calls()) != len(calls) {
		t.Fatalf("forged form = %d", resp.StatusCode)
	}
	if resp, page = e.get("/device/done"); resp.StatusCode != 200 || !strings.Contains(page, `id="device-done"`) {
		t.Fatalf("GET /device/done = %d:\n%s", resp.StatusCode, page)
	}
}
