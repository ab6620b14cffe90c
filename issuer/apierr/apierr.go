// Package apierr holds the error values of Gatehouse's HTTP APIs. An Error
// carries the client-facing code and description separately from its
// internal cause: the cause is logged, never sent. Errors are written to the
// wire in exactly one place, httpx.WriteError.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Error is an API error value. The zero Status means 400.
type Error struct {
	// Code is the protocol error code ("invalid_request", "invalid_client", ...).
	Code string `json:"error"`
	// Description is human-readable and safe to show to the client.
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status written with the error.
	Status int `json:"-"`
	// Header holds response headers to add (e.g. WWW-Authenticate).
	Header http.Header `json:"-"`
	// Cause is the internal reason, logged but never written to the wire.
	Cause error `json:"-"`
}

func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// StatusCode returns the HTTP status, defaulting to 400.
func (e *Error) StatusCode() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// WithCause returns a copy of e carrying an internal cause.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Cause = err
	return &c
}

// WithDescription returns a copy of e with a formatted client-facing description.
func (e *Error) WithDescription(format string, args ...any) *Error {
	c := *e
	c.Description = fmt.Sprintf(format, args...)
	return &c
}

// WithHeader returns a copy of e that adds a response header.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Set(key, value)
	return &c
}

func newErr(code string, format string, args ...any) *Error {
	return &Error{Code: code, Status: StatusOf(code), Description: fmt.Sprintf(format, args...)}
}

// statuses is the HTTP status each error code of this package is written
// with.
var statuses = map[string]int{
	"invalid_request":           http.StatusBadRequest,
	"invalid_client":            http.StatusUnauthorized,
	"invalid_grant":             http.StatusBadRequest,
	"unauthorized_client":       http.StatusBadRequest,
	"unsupported_grant_type":    http.StatusBadRequest,
	"unsupported_response_type": http.StatusBadRequest,
	"unsupported_token_type":    http.StatusBadRequest,
	"invalid_scope":             http.StatusBadRequest,
	"invalid_target":            http.StatusBadRequest,
	"access_denied":             http.StatusForbidden,
	"invalid_token":             http.StatusUnauthorized,
	"insufficient_scope":        http.StatusForbidden,
	"invalid_redirect_uri":      http.StatusBadRequest,
	"invalid_client_metadata":   http.StatusBadRequest,
	"login_required":            http.StatusBadRequest,
	"consent_required":          http.StatusBadRequest,
	"interaction_required":      http.StatusBadRequest,
	"request_not_supported":     http.StatusBadRequest,
	"invalid_request_object":    http.StatusBadRequest,
	"not_found":                 http.StatusNotFound,
	"conflict":                  http.StatusConflict,
	"method_not_allowed":        http.StatusMethodNotAllowed,
	"unauthorized":              http.StatusUnauthorized,
	"forbidden":                 http.StatusForbidden,
	"request_too_large":         http.StatusRequestEntityTooLarge,
	"temporarily_unavailable":   http.StatusServiceUnavailable,
	"server_error":              http.StatusInternalServerError,
}

// StatusOf returns the HTTP status an error code is written with: the
// status of this package's error of that code, 400 for any other code.
func StatusOf(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusBadRequest
}

// RFC 6749 §5.2 and §4.1.2.1, RFC 7009, RFC 7591 §3.2.2, RFC 6750 §3.1,
// OpenID Connect Core §3.1.2.6 error constructors.

func InvalidRequest(format string, args ...any) *Error {
	return newErr("invalid_request", format, args...)
}
func InvalidClient(format string, args ...any) *Error {
	return newErr("invalid_client", format, args...)
}
func InvalidGrant(format string, args ...any) *Error {
	return newErr("invalid_grant", format, args...)
}
func UnauthorizedClient(format string, args ...any) *Error {
	return newErr("unauthorized_client", format, args...)
}
func UnsupportedGrantType(format string, args ...any) *Error {
	return newErr("unsupported_grant_type", format, args...)
}
func UnsupportedResponseType(format string, args ...any) *Error {
	return newErr("unsupported_response_type", format, args...)
}
func UnsupportedTokenType(format string, args ...any) *Error {
	return newErr("unsupported_token_type", format, args...)
}
func InvalidScope(format string, args ...any) *Error {
	return newErr("invalid_scope", format, args...)
}

// InvalidTarget is RFC 8707 §2's error for a resource (or audience) that
// is malformed or not one the client may request.
func InvalidTarget(format string, args ...any) *Error {
	return newErr("invalid_target", format, args...)
}
func AccessDenied(format string, args ...any) *Error {
	return newErr("access_denied", format, args...)
}
func InvalidToken(format string, args ...any) *Error {
	return newErr("invalid_token", format, args...)
}
func InsufficientScope(format string, args ...any) *Error {
	return newErr("insufficient_scope", format, args...)
}
func InvalidRedirectURI(format string, args ...any) *Error {
	return newErr("invalid_redirect_uri", format, args...)
}
func InvalidClientMetadata(format string, args ...any) *Error {
	return newErr("invalid_client_metadata", format, args...)
}
func LoginRequired(format string, args ...any) *Error {
	return newErr("login_required", format, args...)
}
func ConsentRequired(format string, args ...any) *Error {
	return newErr("consent_required", format, args...)
}
func InteractionRequired(format string, args ...any) *Error {
	return newErr("interaction_required", format, args...)
}
func RequestNotSupported(format string, args ...any) *Error {
	return newErr("request_not_supported", format, args...)
}
func InvalidRequestObject(format string, args ...any) *Error {
	return newErr("invalid_request_object", format, args...)
}
func NotFound(format string, args ...any) *Error {
	return newErr("not_found", format, args...)
}
func Conflict(format string, args ...any) *Error {
	return newErr("conflict", format, args...)
}
func MethodNotAllowed(format string, args ...any) *Error {
	return newErr("method_not_allowed", format, args...)
}
func Unauthorized(format string, args ...any) *Error {
	return newErr("unauthorized", format, args...)
}
func Forbidden(format string, args ...any) *Error {
	return newErr("forbidden", format, args...)
}
func RequestTooLarge(format string, args ...any) *Error {
	return newErr("request_too_large", format, args...)
}

// Unavailable is a 503 with Retry-After (RFC 9110 §10.2.3): the request
// was fine but the server cannot serve it now, typically because the
// database is unreachable. temporarily_unavailable is RFC 6749 §4.1.2.1's
// code; RFC 7009 §2.2.1 asks revocation clients to retry a 503 after
// Retry-After. The token, introspection, userinfo and admin endpoints use
// the same code and status: RFC 6749 §5.2 defines no code for the case,
// and a 503 is what tells clients and load balancers to retry.
func Unavailable(format string, args ...any) *Error {
	return newErr("temporarily_unavailable", format, args...).
		WithHeader("Retry-After", strconv.Itoa(RetryAfterSeconds))
}

// RetryAfterSeconds is the Retry-After of an Unavailable error.
const RetryAfterSeconds = 3

// ServerError hides cause from the client.
func ServerError(cause error) *Error {
	return &Error{Code: "server_error", Status: StatusOf("server_error"),
		Description: "The server encountered an internal error.", Cause: cause}
}

// From converts any error into an *Error: *Error values pass through,
// storage sentinels become 404/409 (400 for ErrInvalid), an unreachable
// database (also as the cause of a server_error) becomes a 503
// temporarily_unavailable, anything else is a server_error whose cause is
// kept for the log.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Code == "server_error" && errors.Is(e.Cause, storage.ErrUnavailable) {
			return databaseUnavailable(e.Cause)
		}
		return e
	}
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return databaseUnavailable(err)
	case errors.Is(err, storage.ErrNotFound):
		return NotFound("Unable to locate the requested resource").WithCause(err)
	case errors.Is(err, storage.ErrAlreadyExists):
		return Conflict("The resource already exists").WithCause(err)
	case errors.Is(err, storage.ErrInvalid):
		return InvalidRequest("The request carries a value that cannot be stored (a NUL byte, invalid UTF-8, or too long)").WithCause(err)
	case errors.Is(err, storage.ErrConflict):
		return Conflict("The resource was changed concurrently, retry the request").WithCause(err)
	}
	return ServerError(err)
}

func databaseUnavailable(cause error) *Error {
	return Unavailable("The service is temporarily unavailable, retry later").WithCause(cause)
}
