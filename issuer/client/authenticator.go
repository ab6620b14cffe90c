package client

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-dev/gatehouse/issuer/jwtclaims"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/flight"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/mtls"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// JWTBearerAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2).
const JWTBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Authenticator defaults.
const (
	DefaultSecretCacheTTL        = 10 * time.Minute
	DefaultSecretCacheMaxEntries = 100_000
	DefaultMaxAssertionLifetime  = time.Hour
	DefaultClockSkew             = 30 * time.Second
	DefaultJWKSCacheTTL          = time.Minute
	// jwksMinRefresh bounds how often an unknown kid may trigger a refetch
	// of a jwks_uri.
	jwksMinRefresh = 10 * time.Second
	// jwksFetchTimeout bounds a shared jwks_uri fetch (remoteJWKS), on top
	// of the HTTP client's own limits.
	jwksFetchTimeout   = 10 * time.Second
	maxAssertionLength = 16 << 10
	maxJTILength       = 512
	basicRealm         = `Basic realm="gatehouse"`
)

// AuthenticatorOptions are the Authenticator's dependencies and settings.
type AuthenticatorOptions struct {
	Manager *Manager
	// Nonces records the jti of private_key_jwt assertions until they
	// expire, to reject replays (RFC 7523 §3 item 7).
	Nonces storage.NonceStore
	// HTTP fetches jwks_uri; nil means a client without the SSRF guard
	// (set it to the guarded client in production).
	HTTP   *safehttp.Client
	Logger *zap.Logger
	Now    func() time.Time
	// TokenEndpoint and Issuer are the accepted values of an assertion's
	// aud (RFC 7523 §3 item 3); at least one must be set.
	TokenEndpoint string
	Issuer        string
	// ExtraAudiences are further accepted aud values (e.g. the revocation
	// or introspection endpoint URLs, where clients authenticate too).
	ExtraAudiences []string

	// SecretCacheTTL is how long a successful secret verification is
	// remembered (oauth2.client_secret_cache.ttl); default 10m; negative
	// disables the cache (oauth2.client_secret_cache.enabled: false).
	SecretCacheTTL time.Duration
	// SecretCacheMaxEntries bounds the remembered verifications.
	SecretCacheMaxEntries int64
	// MaxAssertionLifetime bounds exp minus now (and exp minus iat) of a
	// client assertion; default 1h.
	MaxAssertionLifetime time.Duration
	// ClockSkew is the leeway applied to exp, nbf and iat; default 30s.
	ClockSkew time.Duration
	// FAPI applies the FAPI 2.0 profile to every client (fapi.go): the
	// clock skew of FAPI clients' assertions is at most FAPIMaxClockSkew.
	FAPI bool
	// JWKSCacheTTL is how long a fetched jwks_uri document is used; default 1m.
	JWKSCacheTTL time.Duration

	// Certs finds a request's client certificate for tls_client_auth and
	// self_signed_tls_client_auth (RFC 8705 §2); nil: none is ever found.
	Certs *mtls.Source
	// ClientCAs verify tls_client_auth certificates (RFC 8705 §2.1); nil:
	// tls_client_auth always fails.
	ClientCAs *x509.CertPool
}

// Authenticator authenticates clients at the token, revocation and
// introspection endpoints (RFC 6749 §2.3, RFC 7523 §2.2, OpenID Connect
// Core §9): client_secret_basic, client_secret_post, private_key_jwt and
// none. Exactly one method may be used per request, and it must be the
// client's registered token_endpoint_auth_method.
type Authenticator struct {
	o   AuthenticatorOptions
	log *zap.Logger
	now func() time.Time

	// Secret verification cache: see docs/security.md, "Client secret
	// verification cache". macKey lives only in this process.
	macKey      []byte
	secretCache *ristretto.Cache[string, time.Time]
	// dummyHash is a hash of a random, forgotten secret, made with the
	// Manager's hasher (algorithm and cost of real secrets): refusals that
	// need no real verification verify it instead (secretAuth).
	dummyHash string

	jwksCache *ristretto.Cache[string, *jwksEntry]
	jwksGroup singleflight.Group
}

type jwksEntry struct {
	set     jwk.Set
	fetched time.Time
}

// NewAuthenticator returns an Authenticator. Close releases its caches.
func NewAuthenticator(o AuthenticatorOptions) (*Authenticator, error) {
	if o.Manager == nil {
		return nil, errors.New("client: AuthenticatorOptions.Manager is required")
	}
	if o.Nonces == nil {
		return nil, errors.New("client: AuthenticatorOptions.Nonces is required (jti replay protection)")
	}
	if o.TokenEndpoint == "" && o.Issuer == "" {
		return nil, errors.New("client: AuthenticatorOptions needs TokenEndpoint or Issuer (assertion audience)")
	}
	if o.HTTP == nil {
		h, err := safehttp.New(safehttp.Options{})
		if err != nil {
			return nil, err
		}
		o.HTTP = h
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SecretCacheTTL == 0 {
		o.SecretCacheTTL = DefaultSecretCacheTTL
	}
	if o.SecretCacheMaxEntries <= 0 {
		o.SecretCacheMaxEntries = DefaultSecretCacheMaxEntries
	}
	if o.MaxAssertionLifetime <= 0 {
		o.MaxAssertionLifetime = DefaultMaxAssertionLifetime
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if o.ClockSkew < 0 {
		o.ClockSkew = 0
	}
	if o.JWKSCacheTTL <= 0 {
		o.JWKSCacheTTL = DefaultJWKSCacheTTL
	}
	a := &Authenticator{o: o, log: o.Logger, now: o.Now}
	dummy, err := GenerateSecret()
	if err != nil {
		return nil, err
	}
	if a.dummyHash, err = o.Manager.Hasher().Hash(dummy); err != nil {
		return nil, err
	}
	if o.SecretCacheTTL > 0 {
		a.macKey = make([]byte, 32)
		if _, err := rand.Read(a.macKey); err != nil {
			return nil, err
		}
		c, err := ristretto.NewCache(&ristretto.Config[string, time.Time]{
			NumCounters: o.SecretCacheMaxEntries * 10,
			MaxCost:     o.SecretCacheMaxEntries,
			BufferItems: 64,
		})
		if err != nil {
			return nil, err
		}
		a.secretCache = c
	}
	jc, err := ristretto.NewCache(&ristretto.Config[string, *jwksEntry]{
		NumCounters: 10_000, MaxCost: 1_000, BufferItems: 64,
	})
	if err != nil {
		return nil, err
	}
	a.jwksCache = jc
	return a, nil
}

// Close releases the caches.
func (a *Authenticator) Close() {
	if a.secretCache != nil {
		a.secretCache.Close()
	}
	a.jwksCache.Close()
}

// ClientAuthFailed is the client-facing description of every failed client
// authentication (RFC 6749 §5.2 invalid_client). Whether the client
// exists, which method it is registered for and what was wrong with the
// credentials or the assertion would tell an attacker who the clients are
// and how to reach them, so it goes to the log only, as the error's cause.
const ClientAuthFailed = "Client authentication failed: the client is unknown, sent no or wrong credentials, or did not use the authentication method it is registered for"

// invalidClient is an invalid_client error with the one client-facing
// description; format and args (%w allowed) are its internal cause.
func invalidClient(format string, args ...any) *apierr.Error {
	return apierr.InvalidClient(ClientAuthFailed).WithCause(fmt.Errorf(format, args...))
}

// Authenticate authenticates the client of a token-endpoint style request.
// form holds the request's body parameters (already parsed, e.g. with
// httpx.ParseForm and r.PostForm). On failure it returns an *apierr.Error:
// invalid_client (401, with WWW-Authenticate: Basic when Basic credentials
// were sent, RFC 6749 §5.2) or invalid_request (400) for a malformed
// request such as two authentication methods at once.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, form url.Values) (*Client, error) {
	c, err := a.authenticate(ctx, r, form)
	if err != nil {
		return nil, err
	}
	httpx.Info(ctx).ClientID = c.ID
	return c, nil
}

func (a *Authenticator) authenticate(ctx context.Context, r *http.Request, form url.Values) (*Client, error) {
	basicID, basicSecret, hasBasic, berr := BasicCredentials(r.Header.Get("Authorization"))
	if berr != nil {
		return nil, berr.WithHeader("WWW-Authenticate", basicRealm)
	}
	var vals [4]string
	for i, name := range []string{"client_id", "client_secret", "client_assertion_type", "client_assertion"} {
		v, err := httpx.SingleValue(form, name)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	formID, formSecret, assertionType, assertion := vals[0], vals[1], vals[2], vals[3]
	for _, id := range []string{basicID, formID} {
		if err := httpx.CheckIdentifier("client_id", id); err != nil {
			return nil, err
		}
	}

	// RFC 6749 §2.3: "The client MUST NOT use more than one authentication
	// method in each request."
	methods := 0
	for _, used := range []bool{hasBasic, formSecret != "", assertion != "" || assertionType != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return nil, apierr.InvalidRequest("Exactly one client authentication method may be used, but the request presents several (for example HTTP Basic and client_secret in the body)")
	}

	switch {
	case hasBasic:
		if formID != "" && formID != basicID {
			return nil, apierr.InvalidRequest("The client_id in the body does not match the one in the Authorization header")
		}
		c, err := a.secretAuth(ctx, basicID, basicSecret, AuthClientSecretBasic)
		if err != nil {
			var ae *apierr.Error
			if errors.As(err, &ae) && ae.Code == "invalid_client" {
				return nil, ae.WithHeader("WWW-Authenticate", basicRealm)
			}
			return nil, err
		}
		return c, nil
	case formSecret != "":
		if formID == "" {
			return nil, apierr.InvalidRequest("client_secret was sent without client_id")
		}
		return a.secretAuth(ctx, formID, formSecret, AuthClientSecretPost)
	case assertion != "" || assertionType != "":
		return a.assertionAuth(ctx, formID, assertionType, assertion)
	}
	if formID == "" {
		return nil, invalidClient("the request carries no client credentials and no client_id")
	}
	c, err := a.lookup(ctx, formID)
	if err != nil {
		return nil, err
	}
	switch c.TokenEndpointAuthMethod {
	case AuthNone:
		return c, nil
	case AuthTLSClient, AuthSelfSignedTLSClient:
		// RFC 8705 §2: client_id and the TLS client certificate.
		return a.certAuth(r, c)
	}
	return nil, methodMismatch(c, AuthNone)
}

// lookup loads a client, turning "not found" into invalid_client.
func (a *Authenticator) lookup(ctx context.Context, id string) (*Client, error) {
	c, err := a.o.Manager.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, invalidClient("unknown client: %w", err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func methodMismatch(c *Client, used string) error {
	return invalidClient("the client is registered with token_endpoint_auth_method %q, but the request used %q", c.TokenEndpointAuthMethod, used)
}

// BasicCredentials parses an HTTP Basic Authorization header carrying
// client credentials. RFC 6749 §2.3.1: the client identifier and secret
// are encoded with application/x-www-form-urlencoded before being used as
// the Basic user name and password, so both are decoded with
// url.QueryUnescape (a client that does not encode them and uses '+' or
// '%' in its secret will not authenticate). ok is false when the header
// is absent or uses another scheme; err is an invalid_client error for a
// malformed Basic header.
func BasicCredentials(header string) (id, secret string, ok bool, err *apierr.Error) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	rest = strings.TrimSpace(rest)
	raw, derr := base64.StdEncoding.DecodeString(rest)
	if derr != nil {
		// Some clients drop the padding.
		raw, derr = base64.RawStdEncoding.DecodeString(rest)
	}
	if derr != nil {
		return "", "", true, invalidClient("the HTTP Basic credentials are not valid base64")
	}
	user, pass, hasColon := strings.Cut(string(raw), ":")
	if !hasColon {
		return "", "", true, invalidClient("the HTTP Basic credentials must be client_id:client_secret")
	}
	id, e1 := url.QueryUnescape(user)
	secret, e2 := url.QueryUnescape(pass)
	if e1 != nil || e2 != nil {
		return "", "", true, invalidClient("the HTTP Basic credentials are not form-urlencoded as RFC 6749 §2.3.1 requires")
	}
	if id == "" {
		return "", "", true, invalidClient("the HTTP Basic credentials carry an empty client_id")
	}
	return id, secret, true, nil
}

// secretAuth implements client_secret_basic and client_secret_post.
// Every refusal costs one hash verification at least, as a wrong secret
// does: an unknown client, a client registered for another method and a
// client without a secret are refused after verifying the secret against
// a dummy hash (dummyHash), so the answer's timing does not tell them
// apart from a known client with a wrong secret.
func (a *Authenticator) secretAuth(ctx context.Context, id, secret, method string) (*Client, error) {
	c, err := a.lookup(ctx, id)
	if err != nil {
		a.verifyDummy(secret)
		return nil, err
	}
	if c.TokenEndpointAuthMethod != method {
		a.verifyDummy(secret)
		return nil, methodMismatch(c, method)
	}
	if secret == "" || c.SecretHash == "" {
		a.verifyDummy(secret)
		return nil, invalidClient("wrong client secret (empty secret, or the client has none)")
	}
	if err := a.verifySecret(c, secret); err != nil {
		return nil, err
	}
	return c, nil
}

// verifyDummy spends the time of one secret verification, against a hash
// no secret matches.
func (a *Authenticator) verifyDummy(secret string) {
	_ = verifyHash(a.dummyHash, secret)
}

// verifySecret checks secret against the current and each rotated hash,
// remembering a success (never a failure) in the verification cache.
func (a *Authenticator) verifySecret(c *Client, secret string) error {
	var key string
	now := a.now()
	if a.secretCache != nil {
		key = a.secretCacheKey(c, secret)
		if exp, ok := a.secretCache.Get(key); ok && now.Before(exp) {
			return nil
		}
	}
	for _, h := range append([]string{c.SecretHash}, c.RotatedSecretHashes...) {
		err := verifyHash(h, secret)
		if err == nil {
			if a.secretCache != nil {
				a.secretCache.SetWithTTL(key, now.Add(a.o.SecretCacheTTL), 1, a.o.SecretCacheTTL)
			}
			return nil
		}
		if !errors.Is(err, ErrSecretMismatch) {
			a.log.Error("unreadable client secret hash", zap.String("client_id", c.ID), zap.Error(err))
		}
	}
	return invalidClient("wrong client secret")
}

// verifyHash is VerifySecret; tests count calls through it.
var verifyHash = VerifySecret

// secretCacheKey is HMAC-SHA256(process key, client_id || 0x00 || secret
// || 0x00 || version), version being the client's UpdatedAt and a digest
// of its secret hashes: any change of the client, or of its secrets, makes
// earlier entries unreachable.
func (a *Authenticator) secretCacheKey(c *Client, secret string) string {
	mac := hmac.New(sha256.New, a.macKey)
	mac.Write([]byte(c.ID))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	mac.Write([]byte{0})
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(c.UpdatedAt.UnixNano()))
	mac.Write(ts[:])
	mac.Write([]byte(c.SecretHash))
	for _, h := range c.RotatedSecretHashes {
		mac.Write([]byte{0})
		mac.Write([]byte(h))
	}
	return string(mac.Sum(nil))
}

// ---------------------------------------------------------------- private_key_jwt

// assertionAuth implements private_key_jwt (RFC 7523 §2.2 and §3, OpenID
// Connect Core §9).
func (a *Authenticator) assertionAuth(ctx context.Context, formID, typ, assertion string) (*Client, error) {
	if typ == "" || assertion == "" {
		return nil, apierr.InvalidRequest("client_assertion and client_assertion_type must be sent together")
	}
	if typ != JWTBearerAssertionType {
		return nil, invalidClient("client_assertion_type %q is not supported (%s)", truncate(typ), JWTBearerAssertionType)
	}
	if len(assertion) > maxAssertionLength {
		return nil, invalidClient("client_assertion is too long")
	}
	msg, err := jws.Parse([]byte(assertion), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, invalidClient("client_assertion is not a compact signed JWT (%v)", err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || !slices.Contains(asymmetricAlgs, alg.String()) {
		// Never "none" or an HMAC: the key material is public.
		return nil, invalidClient("client_assertion must be signed with an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)")
	}
	// Unverified claims, used only to find the client whose keys verify it.
	var unverified assertionClaims
	if err := json.Unmarshal(msg.Payload(), &unverified); err != nil {
		return nil, invalidClient("client_assertion has an unreadable claims set: %w", err)
	}
	// RFC 7523 §3 items 1 and 2: iss and sub are the client_id.
	if unverified.Sub == "" || unverified.Iss != unverified.Sub {
		return nil, invalidClient("client_assertion must have iss and sub both equal to the client_id")
	}
	// RFC 7521 §4.2: client_id, when sent, must identify the same client.
	if formID != "" && formID != unverified.Sub {
		return nil, invalidClient("client_id does not match the client_assertion's sub")
	}
	c, err := a.lookup(ctx, unverified.Sub)
	if err != nil {
		return nil, err
	}
	if c.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		return nil, methodMismatch(c, AuthPrivateKeyJWT)
	}
	if c.TokenEndpointAuthSigningAlg != "" && c.TokenEndpointAuthSigningAlg != alg.String() {
		return nil, invalidClient("client_assertion must be signed with %s", c.TokenEndpointAuthSigningAlg)
	}
	kid, _ := hdr.KeyID()
	payload, err := a.verifyAssertion(ctx, c, []byte(assertion), alg, kid)
	if err != nil {
		return nil, err
	}
	var claims assertionClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, invalidClient("client_assertion has an unreadable claims set: %w", err)
	}
	exp, err := a.checkClaims(c, &claims)
	if err != nil {
		return nil, err
	}
	// RFC 7523 §3 item 7: reject a replayed jti until the assertion expires.
	sum := sha256.Sum256([]byte(c.ID + "\x00" + claims.Jti))
	if err := a.o.Nonces.Use(ctx, "client_assertion:"+hex.EncodeToString(sum[:]), exp); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, invalidClient("client_assertion was already used (jti replay)")
		}
		return nil, err
	}
	return c, nil
}

// verifyAssertion checks the signature with a key of the client's jwks or
// jwks_uri. The algorithm must match the key: a key with "alg" accepts only
// that algorithm, and jwx refuses algorithms that do not fit the key type.
func (a *Authenticator) verifyAssertion(ctx context.Context, c *Client, token []byte, alg jwa.SignatureAlgorithm, kid string) ([]byte, error) {
	try := func(set jwk.Set) ([]byte, bool) {
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			if kk, ok := k.KeyID(); kid != "" && (!ok || kk != kid) {
				continue
			}
			if ka, ok := k.Algorithm(); ok && ka.String() != alg.String() {
				continue
			}
			if use, ok := k.KeyUsage(); ok && use != "sig" {
				continue
			}
			if k.KeyType() == jwa.OctetSeq() {
				continue
			}
			if payload, err := jws.Verify(token, jws.WithKey(alg, k)); err == nil {
				return payload, true
			}
		}
		return nil, false
	}
	var payload []byte
	ok, err := a.withClientKeys(ctx, c, func(set jwk.Set) bool {
		var found bool
		payload, found = try(set)
		return found
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalidClient("client_assertion signature verification failed")
	}
	return payload, nil
}

// withClientKeys calls match with the client's jwks, or with the key set
// at its jwks_uri, until match reports success: a remote set that does
// not match is refetched once (rate limited), since the client may have
// rotated its keys. err is invalid_client for unusable keys.
func (a *Authenticator) withClientKeys(ctx context.Context, c *Client, match func(jwk.Set) bool) (bool, error) {
	if len(c.JWKS) > 0 {
		set, err := ParsePublicJWKS(c.JWKS)
		if err != nil {
			return false, invalidClient("the client's registered jwks cannot be used: %w", err)
		}
		return match(set), nil
	}
	if c.JWKSURI == "" {
		return false, invalidClient("the client has neither jwks nor jwks_uri")
	}
	set, fetched, err := a.remoteJWKS(ctx, c.JWKSURI, false)
	if err != nil {
		return false, invalidClient("the client's jwks_uri could not be fetched: %w", err)
	}
	if match(set) {
		return true, nil
	}
	if a.now().Sub(fetched) >= jwksMinRefresh {
		if set, _, err = a.remoteJWKS(ctx, c.JWKSURI, true); err == nil {
			return match(set), nil
		}
	}
	return false, nil
}

// remoteJWKS returns the key set at uri, cached for JWKSCacheTTL.
// Concurrent callers share one fetch, which belongs to none of them: it
// runs to its end (at most jwksFetchTimeout) even when the request that
// started it is cancelled, and each caller stops waiting when its own
// context is done.
func (a *Authenticator) remoteJWKS(ctx context.Context, uri string, refresh bool) (jwk.Set, time.Time, error) {
	now := a.now()
	if !refresh {
		if e, ok := a.jwksCache.Get(uri); ok && now.Sub(e.fetched) < a.o.JWKSCacheTTL && !now.Before(e.fetched) {
			return e.set, e.fetched, nil
		}
	}
	e, err := flight.Do(ctx, &a.jwksGroup, uri, jwksFetchTimeout, func(ctx context.Context) (*jwksEntry, error) {
		body, err := a.o.HTTP.GetBody(ctx, uri, "application/jwk-set+json, application/json")
		if err != nil {
			return nil, err
		}
		set, err := ParsePublicJWKS(body)
		if err != nil {
			return nil, fmt.Errorf("jwks_uri document: %w", err)
		}
		e := &jwksEntry{set: set, fetched: a.now()}
		a.jwksCache.SetWithTTL(uri, e, 1, a.o.JWKSCacheTTL)
		a.jwksCache.Wait() // fetches are rare: make the entry visible at once
		return e, nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return e.set, e.fetched, nil
}

// checkClaims applies RFC 7523 §3 to a verified assertion and returns its
// expiry.
func (a *Authenticator) checkClaims(c *Client, cl *assertionClaims) (time.Time, error) {
	now := a.now()
	skew := a.o.ClockSkew
	if c.FAPI(a.o.FAPI) {
		skew = min(skew, FAPIMaxClockSkew)
	}
	if cl.Iss != c.ID || cl.Sub != c.ID {
		return time.Time{}, invalidClient("client_assertion must have iss and sub both equal to the client_id")
	}
	if !a.audienceOK(cl.Aud) {
		return time.Time{}, invalidClient("client_assertion aud must contain the token endpoint URL or the issuer")
	}
	if cl.Exp == nil {
		return time.Time{}, invalidClient("client_assertion must have an exp claim")
	}
	exp := cl.Exp.Time()
	if !now.Before(exp.Add(skew)) {
		return time.Time{}, invalidClient("client_assertion has expired")
	}
	if exp.Sub(now) > a.o.MaxAssertionLifetime {
		return time.Time{}, invalidClient("client_assertion expires too far in the future (at most %s)", a.o.MaxAssertionLifetime)
	}
	if cl.Nbf != nil && now.Add(skew).Before(cl.Nbf.Time()) {
		return time.Time{}, invalidClient("client_assertion is not valid yet (nbf)")
	}
	if cl.Iat != nil {
		iat := cl.Iat.Time()
		if now.Add(skew).Before(iat) {
			return time.Time{}, invalidClient("client_assertion was issued in the future (iat)")
		}
		if exp.Sub(iat) > a.o.MaxAssertionLifetime {
			return time.Time{}, invalidClient("client_assertion lifetime exp - iat exceeds %s", a.o.MaxAssertionLifetime)
		}
	}
	if cl.Jti == "" {
		return time.Time{}, invalidClient("client_assertion must have a jti claim")
	}
	if len(cl.Jti) > maxJTILength {
		return time.Time{}, invalidClient("client_assertion jti is too long")
	}
	// Remember the jti at least until the assertion can no longer be used.
	return exp.Add(skew), nil
}

func (a *Authenticator) audienceOK(aud jwtclaims.Audience) bool {
	accepted := append([]string{}, a.o.ExtraAudiences...)
	if a.o.TokenEndpoint != "" {
		accepted = append(accepted, a.o.TokenEndpoint)
	}
	if a.o.Issuer != "" {
		iss := strings.TrimSuffix(a.o.Issuer, "/")
		accepted = append(accepted, iss, iss+"/")
	}
	for _, v := range aud {
		if slices.Contains(accepted, v) {
			return true
		}
	}
	return false
}

type assertionClaims = jwtclaims.Registered
