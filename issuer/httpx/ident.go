package httpx

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// MaxIdentifierLength is the longest identifier (client id, subject,
// challenge, key set, key id, trust relationship id) a request may carry,
// in characters: what the databases' key columns hold.
const MaxIdentifierLength = 255

// CheckIdentifier returns an invalid_request error describing what is
// wrong when v cannot be an identifier: invalid UTF-8, a control character
// (a NUL byte among them), or more than MaxIdentifierLength characters.
// what names the value in the description. The empty string passes:
// callers check presence themselves. Every identifier read from a request
// is checked once, where the request is parsed, so that storage only ever
// sees text every backend can compare (PostgreSQL refuses NUL bytes and
// invalid UTF-8 outright).
func CheckIdentifier(what, v string) *apierr.Error {
	if reason := identifierProblem(v); reason != "" {
		return apierr.InvalidRequest("The %s is not a valid identifier: %s", what, reason)
	}
	return nil
}

func identifierProblem(v string) string {
	if len(v) > utf8.UTFMax*MaxIdentifierLength {
		return "it is too long"
	}
	n := 0
	for i, r := range v {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size == 1 {
				return "it is not valid UTF-8"
			}
		}
		if unicode.IsControl(r) {
			return "it contains a control character"
		}
		n++
	}
	if n > MaxIdentifierLength {
		return "it is too long"
	}
	return ""
}

// Identifiers wraps a handler so that the identifiers of its route are
// checked before it runs: every path wildcard of the route's pattern
// ({id}, {set}, ...) and the named query parameters. A bad one is answered
// with an invalid_request error.
func Identifiers(next http.HandlerFunc, query ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequestIdentifiers(r, query); err != nil {
			WriteError(w, r, err)
			return
		}
		next(w, r)
	}
}

func checkRequestIdentifiers(r *http.Request, query []string) error {
	for rest := r.Pattern; ; {
		_, after, ok := strings.Cut(rest, "{")
		if !ok {
			break
		}
		name, tail, _ := strings.Cut(after, "}")
		name = strings.TrimSuffix(name, "...")
		if err := CheckIdentifier(name+" in the path", r.PathValue(name)); err != nil {
			return err
		}
		rest = tail
	}
	if len(query) == 0 {
		return nil
	}
	q := r.URL.Query()
	for _, name := range query {
		for _, v := range q[name] {
			if err := CheckIdentifier(name+" parameter", v); err != nil {
				return err
			}
		}
	}
	return nil
}

// NextPageToken is the page_token of the admin API's list routes for the
// page after the one whose last identifier is last.
func NextPageToken(last string) string { return base64.RawURLEncoding.EncodeToString([]byte(last)) }

// PageToken decodes the page_token parameter of q (made by NextPageToken):
// the identifier to list after, "" without one.
func PageToken(q url.Values) (string, error) {
	t := q.Get("page_token")
	if t == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) == 0 || identifierProblem(string(b)) != "" {
		return "", apierr.InvalidRequest("page_token is not valid; use the token of a Link header")
	}
	return string(b), nil
}
