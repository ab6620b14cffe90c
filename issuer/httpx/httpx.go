// Package httpx holds the HTTP plumbing shared by the issuer's public and
// admin routers: JSON and form decoding with size limits, the single place
// where API errors are written, and the middleware chain (panic recovery,
// request logging, metrics, body limits).
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// MaxBodyBytes bounds every request body (JSON documents and forms).
const MaxBodyBytes = 1 << 20

type ctxKey struct{}

// RequestInfo is filled in while a request is served and read by the logging
// middleware: handlers never log the request themselves.
type RequestInfo struct {
	// Err is the error written to the client, if any (its cause is logged).
	Err *apierr.Error
	// ClientID and Subject are added by handlers that authenticated them.
	ClientID string
	Subject  string
}

// Info returns the request's RequestInfo (a throwaway one outside the middleware).
func Info(ctx context.Context) *RequestInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*RequestInfo); ok {
		return ri
	}
	return &RequestInfo{}
}

// WithInfo returns a context carrying ri.
func WithInfo(ctx context.Context, ri *RequestInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, ri)
}

// WriteJSON writes v as JSON with status. Responses of the APIs are never cached
// unless a handler sets its own Cache-Control first.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
	}
	w.WriteHeader(status)
	if v != nil && status != http.StatusNoContent {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
	}
}

// WriteError is the one place where an API error reaches the wire:
// {"error": "...", "error_description": "..."} with the right status. The
// internal cause is recorded for the request log and never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierr.From(err)
	Info(r.Context()).Err = e
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	WriteJSON(w, e.StatusCode(), struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
		StatusCode       int    `json:"status_code,omitempty"`
	}{e.Code, e.Description, e.StatusCode()})
}

// DecodeJSON reads a JSON document of at most MaxBodyBytes into v. Any
// decoding problem becomes an invalid_request with a precise description.
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apierr.InvalidRequest("Content-Type must be application/json").WithCause(err)
		}
	}
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apierr.InvalidRequest("The request body must contain a single JSON document")
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var (
		maxErr   *http.MaxBytesError
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		apiError *apierr.Error
	)
	switch {
	case errors.As(err, &apiError):
		return apiError
	case errors.As(err, &maxErr):
		return apierr.RequestTooLarge("The request body exceeds %d bytes", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return apierr.InvalidRequest("The request body is empty, a JSON document was expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.InvalidRequest("The request body is truncated JSON")
	case errors.As(err, &syntax):
		return apierr.InvalidRequest("The request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(document)"
		}
		return apierr.InvalidRequest("The field %q must be of JSON type %s", field, jsonType(typeErr.Type.Kind().String()))
	}
	return apierr.InvalidRequest("The request body could not be decoded").WithCause(err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return "number"
}

// ParseForm parses an application/x-www-form-urlencoded body (and the query)
// with the body bounded by MaxBodyBytes. RFC 6749 §3.2: parameters sent
// without a value are treated as omitted, and request and response
// parameters must not be included more than once (the caller checks with
// SingleValue).
func ParseForm(w http.ResponseWriter, r *http.Request) error {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	if r.Method == http.MethodPost {
		ct := r.Header.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "" && mt != "application/x-www-form-urlencoded" {
			return apierr.InvalidRequest("Content-Type must be application/x-www-form-urlencoded")
		}
	}
	if err := r.ParseForm(); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return apierr.RequestTooLarge("The request body exceeds %d bytes", MaxBodyBytes)
		}
		return apierr.InvalidRequest("The request body is not a valid form").WithCause(err)
	}
	return nil
}

// SingleValue returns a form parameter that must appear at most once.
func SingleValue(form url.Values, name string) (string, error) {
	vs := form[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", apierr.InvalidRequest("The parameter %q must not be included more than once", name)
}

// MethodNotAllowed answers with a JSON error and an Allow header.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	WriteError(w, r, apierr.MethodNotAllowed("The method %s is not allowed here", r.Method))
}

// NotFoundHandler answers every unknown route with a JSON 404.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apierr.NotFound("The requested route %s does not exist", pathForError(r.URL)))
	})
}

func pathForError(u *url.URL) string {
	p := u.EscapedPath()
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return fmt.Sprintf("%q", p)
}
