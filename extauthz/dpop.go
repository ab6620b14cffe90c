package extauthz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
)

// Denial reasons of the DPoP binding.
const (
	ReasonDPoPAsBearer = "dpop_bound_token_as_bearer"
	ReasonDPoPUnbound  = "dpop_scheme_unbound_token"
	ReasonDPoPProof    = "dpop_invalid_proof"
	ReasonDPoPKey      = "dpop_key_mismatch"
	ReasonDPoPReplay   = "dpop_replayed_proof"
	ReasonDPoPNonce    = "dpop_nonce_required"
)

// dpopChecker checks the DPoP proofs of requests with DPoP-bound access
// tokens (RFC 9449 §7): the pure proof rules of §4.3 are
// internal/dpop's, shared with the issuer; what needs state (the jti
// replay cache of §11.1, the resource server nonces of §9) is here.
type dpopChecker struct {
	cfg    DPoPConfig
	realm  string
	algs   string // for the challenges' algs attribute (§7.1)
	m      *metrics
	replay *replayCache
	keys   *dpop.HeaderCache
	nonces *nonceSource // nil unless use_nonce

	asBearer, unbound, missing, several, noURL, keyMismatch, replayed, replayFull *Denial
	nonceDenial                                                                   atomic.Pointer[windowDenial]
}

type windowDenial struct {
	window int64
	d      *Denial
}

func newDPoPChecker(cfg DPoPConfig, realm string, m *metrics) (*dpopChecker, error) {
	c := &dpopChecker{cfg: cfg, realm: realm, algs: strings.Join(cfg.Algorithms, " "), m: m,
		replay: newReplayCache(cfg.ReplayCacheSize), keys: dpop.NewHeaderCache(4096)}
	if cfg.UseNonce {
		key := []byte(cfg.NonceSecret)
		if len(key) == 0 {
			key = make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
		}
		c.nonces = &nonceSource{key: key, window: cfg.NonceWindow}
	}
	inv := func(reason, desc string) *Denial { return c.denial(dpop.CodeInvalidProof, reason, desc) }
	tok := func(reason, desc string) *Denial { return c.denial(ErrInvalidToken, reason, desc) }
	// RFC 9449 §7.2: a DPoP-bound token received as a bearer token MUST
	// be rejected.
	c.asBearer = tok(ReasonDPoPAsBearer, "The access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof.")
	// §7.1 defines the DPoP scheme for DPoP-bound tokens: an unbound
	// token sent with it claims a binding that does not exist. Refused,
	// so that a client never believes it is protected when it is not.
	c.unbound = tok(ReasonDPoPUnbound, "The access token is not DPoP-bound: send it with the Bearer scheme.")
	c.missing = inv(ReasonDPoPProof, "The request has no DPoP proof.")
	c.several = inv(ReasonDPoPProof, "The request has more than one DPoP header.")
	c.noURL = inv(ReasonDPoPProof, "The request URL cannot be determined to check the DPoP proof.")
	// §7.1's example: a proof made with another key than the token's is
	// invalid_token ("Invalid DPoP key binding").
	c.keyMismatch = tok(ReasonDPoPKey, "The DPoP proof is not made with the key the access token is bound to.")
	c.replayed = inv(ReasonDPoPReplay, "The DPoP proof was already used.")
	c.replayFull = inv(ReasonDPoPReplay, "The DPoP proof cannot be checked for replay right now; retry with a new proof.")
	return c, nil
}

// denial is a 401 with a DPoP challenge (§7.1).
func (c *dpopChecker) denial(code, reason, desc string) *Denial {
	d := newDenial(c.realm, 401, code, reason, desc, "", c.m)
	d.WWWAuthenticate = challenge(dpop.Scheme, c.realm, code, desc, "", c.algs)
	return d
}

// check enforces §7 for a token bound to jkt ("" when unbound) sent with
// the DPoP scheme or not.
func (c *dpopChecker) check(r *Request, ru *rule, tok string, dpopScheme bool, jkt string, now time.Time) *Denial {
	switch {
	case !dpopScheme:
		return c.asBearer
	case jkt == "":
		return c.unbound
	case len(r.DPoP) == 0:
		return c.missing
	case len(r.DPoP) > 1: // §4.3 item 1
		return c.several
	}
	htu := requestURL(r, ru)
	if htu == "" {
		return c.noURL
	}
	o := dpop.Options{Method: r.Method, URL: htu, Algs: c.cfg.Algorithms, Now: now,
		MaxAge: c.cfg.ProofMaxAge, Leeway: c.cfg.ProofLeeway, AccessToken: tok, Headers: c.keys}
	if c.nonces != nil {
		o.Nonce = func(n string) bool { return c.nonces.valid(n, now) }
	}
	p, err := dpop.VerifyProof(r.DPoP[0], o)
	if err != nil {
		var de *dpop.Error
		switch {
		case errors.As(err, &de) && de.Code == dpop.CodeUseNonce:
			return c.nonceRequired(now)
		case errors.As(err, &de):
			return c.denial(dpop.CodeInvalidProof, ReasonDPoPProof, de.Description)
		}
		return c.noURL // the URL built from the request is not an http(s) URL
	}
	if p.JKT != jkt {
		return c.keyMismatch
	}
	// §11.1: the jti is checked last, so that only proofs signed by the
	// token's key take room in the cache.
	switch c.replay.add(p.JKT, p.JTI, now, c.cfg.ProofMaxAge+c.cfg.ProofLeeway) {
	case replayFull:
		return c.replayFull
	case replaySeen:
		return c.replayed
	}
	return nil
}

// nonceRequired is the use_dpop_nonce denial with the current nonce in
// DPoP-Nonce (§9), rendered once per nonce window.
func (c *dpopChecker) nonceRequired(now time.Time) *Denial {
	w := c.nonces.windowOf(now)
	if cur := c.nonceDenial.Load(); cur != nil && cur.window == w {
		return cur.d
	}
	d := c.denial(dpop.CodeUseNonce, ReasonDPoPNonce, "The resource server requires a nonce in the DPoP proof.")
	d.Headers = []Header{{Name: dpop.NonceHeader, Value: c.nonces.make(w)}}
	c.nonceDenial.Store(&windowDenial{window: w, d: d})
	return d
}

// requestURL is the URL the client called, as htu must name it (§4.3
// item 9, without query and fragment): the rule's external base URL plus
// the path, else the scheme (https when the gateway says nothing), host
// and path the gateway reports. "" when there is no host or the target
// is not origin-form.
func requestURL(r *Request, ru *rule) string {
	p := r.Path
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		p = "/"
	}
	if p[0] != '/' {
		return ""
	}
	if ru.externalBase != "" {
		return ru.externalBase + p
	}
	if r.Host == "" {
		return ""
	}
	scheme := strings.ToLower(r.Scheme)
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + p
}

// credential reads the access token of a request: the DPoP scheme's
// (RFC 9449 §7.1, token68) or else ExtractToken's bearer token.
func (a *Authorizer) credential(r *Request) (tok string, dpopScheme bool, err error) {
	if tok, ok, err := parseScheme(r.Authorization, "dpop", a.cfg.Token.MaxBytes); ok {
		return tok, true, err
	}
	tok, err = ExtractToken(r.Authorization, r.Cookie, a.cfg.Token.Cookie, a.cfg.Token.MaxBytes)
	return tok, false, err
}

// nonceSource makes and checks stateless resource server nonces (§9):
// the window's number and an HMAC of it. A nonce is accepted in its
// window and the next, so none expires the instant after it was sent.
type nonceSource struct {
	key    []byte
	window time.Duration
}

func (n *nonceSource) windowOf(now time.Time) int64 { return now.UnixNano() / int64(n.window) }

func (n *nonceSource) make(w int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(w))
	copy(b[8:], n.mac(b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *nonceSource) mac(w []byte) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write([]byte("gatehouse-sidecar dpop nonce\x00"))
	h.Write(w)
	return h.Sum(nil)[:16]
}

func (n *nonceSource) valid(s string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return false
	}
	w, cur := int64(binary.BigEndian.Uint64(b[:8])), n.windowOf(now)
	return (w == cur || w == cur-1) && hmac.Equal(b[8:], n.mac(b[:8]))
}
