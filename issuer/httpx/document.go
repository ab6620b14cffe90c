package httpx

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// ETag returns a strong entity tag (RFC 9110 §8.8.3) for a document: a
// quoted, truncated SHA-256 of its bytes.
func ETag(doc []byte) string {
	sum := sha256.Sum256(doc)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// ServeDocument answers GET/HEAD with a pre-encoded JSON document: the
// given Cache-Control (none when empty) and ETag, and 304 Not Modified
// when If-None-Match names the ETag (RFC 9110 §13.1.2). Public documents
// that every gateway and verifier fetches (discovery, JWKS) are encoded
// once and served from bytes.
func ServeDocument(w http.ResponseWriter, r *http.Request, doc []byte, etag, cacheControl string) {
	hd := w.Header()
	if cacheControl != "" {
		hd.Set("Cache-Control", cacheControl)
	}
	hd.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(doc)
	}
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatches(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.TrimPrefix(v, "W/") == etag {
			return true
		}
	}
	return false
}
