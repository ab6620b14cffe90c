// Command upstream is a tiny app to put behind a gateway: it renders the
// identity headers the gateway passed (x-user-id, x-client-id,
// x-user-scopes, ... as gatehouse-sidecar sets them), as JSON for API
// clients and as a page for browsers.
//
//	upstream --listen 127.0.0.1:8081
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/gatehouse-dev/gatehouse/examples/internal/serve"
)

// DefaultHeaders are the sidecar's default identity headers plus the
// claims header and the bearer token Envoy's oauth2 filter forwards.
var DefaultHeaders = []string{"x-user-id", "x-client-id", "x-user-scopes", "x-user-claims"}

// Echo is the app.
type Echo struct {
	// Name is shown on the page and in the JSON ("upstream").
	Name string
	// Headers are the identity headers to render, lower case. Any other
	// header starting with "x-user-" or "x-client-" is shown too.
	Headers []string
}

// Identity is what the app saw.
type Identity struct {
	App     string            `json:"app"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
	// Authenticated is true when x-user-id or x-client-id is non-empty.
	Authenticated bool `json:"authenticated"`
}

func (e *Echo) identity(r *http.Request) Identity {
	id := Identity{App: e.Name, Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Headers: map[string]string{}}
	for _, h := range e.Headers {
		id.Headers[strings.ToLower(h)] = r.Header.Get(h)
	}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-user-") || strings.HasPrefix(lk, "x-client-") {
			id.Headers[lk] = strings.Join(v, ", ")
		}
	}
	id.Authenticated = id.Headers["x-user-id"] != "" || id.Headers["x-client-id"] != ""
	return id
}

// wantsHTML reports whether the client prefers a page: a browser's Accept
// lists text/html; curl's */* and API clients' application/json get JSON.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.TrimSpace(mt) {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.App}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;color:#1d2330}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #dde1e8;padding:.45rem;text-align:left;vertical-align:top}
code{word-break:break-all}.empty{color:#8a93a3}</style></head>
<body><h1>{{.App}}</h1>
<p id="who">{{if index .Headers "x-user-id"}}Hello, <strong id="user">{{index .Headers "x-user-id"}}</strong>.{{else if .Authenticated}}Called by client <strong>{{index .Headers "x-client-id"}}</strong>.{{else}}No identity was passed to this app.{{end}}</p>
<p>{{.Method}} <code>{{.Path}}</code> on <code>{{.Host}}</code></p>
<table><tr><th>Header</th><th>Value</th></tr>
{{range $k := .Keys}}<tr><td><code>{{$k}}</code></td><td>{{with index $.Headers $k}}<code id="h-{{$k}}">{{.}}</code>{{else}}<span class="empty">(not set)</span>{{end}}</td></tr>
{{end}}</table></body></html>
`))

func (e *Echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	id := e.identity(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")
	if wantsHTML(r) {
		keys := make([]string, 0, len(id.Headers))
		for k := range id.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_ = page.Execute(w, struct {
			Identity
			Keys []string
		}{id, keys})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(id)
}

func main() {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := serve.ListenFlag(fs, "127.0.0.1:8081")
	name := fs.String("name", serve.EnvOr("APP_NAME", "upstream"), "name shown on the page ($APP_NAME)")
	headers := fs.String("headers", serve.EnvOr("IDENTITY_HEADERS", strings.Join(DefaultHeaders, ",")), "identity headers to show ($IDENTITY_HEADERS)")
	serve.ParseFlags(fs)
	e := &Echo{Name: *name}
	for _, h := range strings.Split(*headers, ",") {
		if h = strings.TrimSpace(h); h != "" {
			e.Headers = append(e.Headers, strings.ToLower(h))
		}
	}
	serve.ListenAndServe("upstream", *listen, e, func(a net.Addr) string {
		return fmt.Sprintf("upstream %q listening on http://%s", *name, a)
	})
}
