package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type wireErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Status      int    `json:"status_code"`
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		header string
	}{
		{"api error", apierr.InvalidScope("scope %q is not allowed", "admin"), 400, "invalid_scope", ""},
		{"with header", apierr.InvalidClient("bad").WithHeader("WWW-Authenticate", `Basic realm="x"`), 401, "invalid_client", `Basic realm="x"`},
		{"not found sentinel", storage.ErrNotFound, 404, "not_found", ""},
		{"conflict sentinel", storage.ErrAlreadyExists, 409, "conflict", ""},
		{"internal cause hidden", errors.New("pq: password authentication failed for user secret"), 500, "server_error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			WriteError(rec, req, tc.err)
			var e wireErr
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("not JSON: %s", rec.Body)
			}
			if rec.Code != tc.status || e.Error != tc.code || e.Status != tc.status {
				t.Fatalf("got %d %+v", rec.Code, e)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("headers %v", rec.Header())
			}
			if tc.header != "" && rec.Header().Get("WWW-Authenticate") != tc.header {
				t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(rec.Body.String(), "password") {
				t.Fatal("internal cause leaked to the client")
			}
		})
	}
}

type sample struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		ok             bool
		want           string // substring of the description
	}{
		{"valid", "application/json", `{"name":"a","count":2,"tags":["x"]}`, true, ""},
		{"charset", "application/json; charset=utf-8", `{"name":"a"}`, true, ""},
		{"vendor json", "application/merge-patch+json", `{}`, true, ""},
		{"wrong type", "text/plain", `{}`, false, "Content-Type"},
		{"syntax", "application/json", `{"name":`, false, ""},
		{"type mismatch", "application/json", `{"count":"many"}`, false, "count"},
		{"two documents", "application/json", `{} {}`, false, "single JSON document"},
		{"empty", "application/json", ``, false, ""},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			var v sample
			err := DecodeJSON(req, &v)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				e := apierr.From(err)
				if e.StatusCode() >= 500 || !strings.Contains(e.Description, tc.want) {
					t.Fatalf("error %d %q", e.StatusCode(), e.Description)
				}
			}
		})
	}
}

func TestParseForm(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		status         int
	}{
		{"valid", "application/x-www-form-urlencoded", "a=1&b=2", 0},
		{"json body", "application/json", `{"a":1}`, 400},
		{"bad escape", "application/x-www-form-urlencoded", "a=%zz", 400},
		{"too large", "application/x-www-form-urlencoded", "a=" + strings.Repeat("b", MaxBodyBytes+10), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			err := ParseForm(httptest.NewRecorder(), req)
			if tc.status == 0 {
				if err != nil || req.PostForm.Get("a") != "1" {
					t.Fatalf("err %v form %v", err, req.PostForm)
				}
				return
			}
			if err == nil || apierr.From(err).StatusCode() != tc.status {
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
		})
	}
	v, err := SingleValue(map[string][]string{"scope": {"a", "b"}}, "scope")
	if err == nil {
		t.Fatalf("a repeated parameter was accepted: %q", v)
	}
}

// FuzzDecodeJSON: any body gives a decoded value or a 4xx error value,
// never a panic or a 5xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":1,"tags":["x","y"]}`, `{`, `[]`, `null`, `{"count":1e400}`, `{"tags":{}}`, "\x00", `{} x`} {
		f.Add(s, "application/json")
	}
	f.Add(`{}`, "application/json; charset=\x00")
	f.Fuzz(func(t *testing.T, body, ct string) {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		var v sample
		if err := DecodeJSON(req, &v); err != nil {
			if s := apierr.From(err).StatusCode(); s < 400 || s >= 500 {
				t.Fatalf("status %d for %q", s, body)
			}
			rec := httptest.NewRecorder()
			WriteError(rec, req, err)
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("error body is not JSON: %q", rec.Body)
			}
		}
	})
}

// FuzzParseForm: any form body is parsed or refused with a 4xx.
func FuzzParseForm(f *testing.F) {
	for _, s := range []string{"a=1", "a=%", "a=%zz&b", "&&&", "a=1;b=2", "grant_type=client_credentials&scope=a+b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := ParseForm(httptest.NewRecorder(), req); err != nil {
			if s := apierr.From(err).StatusCode(); s < 400 || s >= 500 {
				t.Fatalf("status %d for %q", s, body)
			}
		}
	})
}
