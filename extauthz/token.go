package extauthz

import (
	"errors"
	"strings"
)

// Errors from token extraction. A request without any bearer credential is
// not an error: ExtractToken returns "", nil.
var (
	errMalformedAuthorization = errors.New("the Authorization header is not a well-formed Bearer credential")
	errTokenTooLong           = errors.New("the token exceeds the size limit")
)

// ExtractToken returns the bearer token of a request from its
// Authorization header value (all values joined by ",", as Envoy and Go
// present repeated headers) or, when there is no Bearer credential there,
// from the cookie named cookieName in the Cookie header. Query parameters
// are never read (RFC 6750 §2.3 is not supported: URLs end up in logs).
//
// It returns "", nil when the request carries no bearer token at all, and
// an error when it carries one that is malformed or longer than maxBytes.
func ExtractToken(authorization, cookieHeader, cookieName string, maxBytes int) (string, error) {
	if authorization != "" {
		tok, isBearer, err := parseBearer(authorization, maxBytes)
		if isBearer {
			return tok, err
		}
		// Another scheme (Basic, DPoP, ...): not our credential; fall
		// through to the cookie.
	}
	if cookieName == "" || cookieHeader == "" {
		return "", nil
	}
	v, ok := CookieValue(cookieHeader, cookieName)
	if !ok || v == "" {
		return "", nil
	}
	if len(v) > maxBytes {
		return "", errTokenTooLong
	}
	if !isB64Token(v) {
		return "", errMalformedAuthorization
	}
	return v, nil
}

// parseBearer parses `Bearer <b64token>` (RFC 6750 §2.1; the scheme is
// case-insensitive per RFC 9110 §11.1). isBearer reports whether the
// header uses the Bearer scheme at all.
func parseBearer(h string, maxBytes int) (tok string, isBearer bool, err error) {
	return parseScheme(h, "bearer", maxBytes)
}

// parseScheme parses `<scheme> <b64token>` for a lower-case scheme
// (Bearer, or DPoP whose token68 has the same characters, RFC 9449
// §7.1); ok reports whether the header uses that scheme at all.
func parseScheme(h, scheme string, maxBytes int) (tok string, ok bool, err error) {
	h = strings.TrimLeft(h, " \t")
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false, nil
	}
	rest := h[len(scheme):]
	if rest == "" {
		return "", true, errMalformedAuthorization
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		// "Bearerx": another scheme name that merely starts with this one.
		return "", false, nil
	}
	rest = strings.Trim(rest, " \t")
	if rest == "" {
		return "", true, errMalformedAuthorization
	}
	if len(rest) > maxBytes {
		return "", true, errTokenTooLong
	}
	if !isB64Token(rest) {
		// Includes "Bearer a, Bearer b" (repeated headers) and spaces.
		return "", true, errMalformedAuthorization
	}
	return rest, true, nil
}

// b64TokenChar holds b64token's characters before the trailing "="s; a
// table, as every check scans the whole token.
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// isB64Token reports whether s matches RFC 6750 §2.1's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// CookieValue returns the value of the first cookie called name in a
// Cookie header (RFC 6265 §4.2.1: pairs separated by ";", optional
// whitespace, values optionally in double quotes). Several Cookie headers
// joined by "; " or ", " are handled too: a cookie-octet is never ";" nor
// ",", so both separate pairs.
func CookieValue(header, name string) (string, bool) {
	for header != "" {
		var pair string
		if i := strings.IndexAny(header, ";,"); i >= 0 {
			pair, header = header[:i], header[i+1:]
		} else {
			pair, header = header, ""
		}
		eq := strings.IndexByte(pair, '=')
		if eq < 0 || strings.Trim(pair[:eq], " \t") != name {
			continue
		}
		v := strings.Trim(pair[eq+1:], " \t")
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}
