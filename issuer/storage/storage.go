// Package storage defines Gatehouse's persistence contract: one interface per
// aggregate, plain value types and sentinel errors. Backends (package
// storage/sql for SQLite, PostgreSQL and MySQL/MariaDB; storage/memory for
// tests and embedding) map their driver error codes onto the sentinels, and
// run read-modify-write updates through an updater func inside their own
// transaction (or lock), so callers never hold a transaction themselves.
// Every backend runs the conformance suite in storage/conformance.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap driver errors so that errors.Is works.
var (
	// ErrNotFound: the row does not exist (or has expired where noted).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a unique key is taken (duplicate id, replayed jti, ...).
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict: an updater lost a race and the change was not applied.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable: the database cannot be reached or refused to work
	// for now (connection refused or broken, server shutting down or out
	// of connections, SQLite file locked by another process beyond the
	// busy timeout). The request itself was fine: it may succeed later.
	ErrUnavailable = errors.New("storage: database unavailable")
	// ErrInvalid: the backend cannot store or compare a value: text with a
	// NUL byte or invalid UTF-8 (PostgreSQL refuses both, MySQL the
	// latter), or longer than its column. No row can hold such a key, so
	// a lookup by it may answer ErrInvalid where another backend answers
	// ErrNotFound. The API layers refuse such identifiers before they
	// reach storage; this is the defence behind them.
	ErrInvalid = errors.New("storage: invalid value")
	// ErrClosed: the store was closed; nothing was read or written.
	ErrClosed = errors.New("storage: store is closed")
)

// Storage is everything the issuer persists.
type Storage interface {
	Clients() ClientStore
	Keys() KeyStore
	Tokens() TokenStore
	Flows() FlowStore
	LoginSessions() LoginSessionStore
	ConsentSessions() ConsentSessionStore
	Trust() TrustStore
	Nonces() NonceStore
	RevocationEvents() RevocationEventStore

	// Ping answers whether the database can be reached (used by /health/ready).
	Ping(ctx context.Context) error
	// Stats returns connection pool statistics for metrics; nil when unknown.
	Stats() *PoolStats
	Close() error
}

// PoolStats mirrors the parts of database/sql.DBStats exported as metrics.
type PoolStats struct {
	OpenConnections int
	InUse           int
	Idle            int
	WaitCount       int64
	WaitDuration    time.Duration
}

// ---------------------------------------------------------------- clients

// Client is an OAuth 2.0 client as registered through the admin API or
// dynamic client registration. Hydra's metadata names are kept in the JSON
// form the API layer renders; this is the stored shape.
type Client struct {
	ID                  string
	SecretHash          string   // hash of the current secret; empty for public clients
	RotatedSecretHashes []string // hashes still accepted until rotation is finalised
	Name                string
	Owner               string
	// Metadata holds every other client field (redirect_uris, grant_types,
	// scope, jwks, lifespans, ...) as the API layer's JSON document. The
	// storage layer does not interpret it.
	Metadata json.RawMessage
	// RegistrationAccessTokenHash is the hash of the RFC 7592 registration
	// access token, when the client was registered dynamically.
	RegistrationAccessTokenHash string
	CreatedAt                   time.Time
	UpdatedAt                   time.Time
}

// ClientFilter selects clients for listing. Results are ordered by ID.
type ClientFilter struct {
	Name  string // exact client_name match when non-empty
	Owner string // exact owner match when non-empty
	After string // return clients with ID > After (keyset pagination)
	Limit int    // maximum number of results; 0 means backend default (100)
}

type ClientStore interface {
	Create(ctx context.Context, c Client) error // ErrAlreadyExists
	Get(ctx context.Context, id string) (Client, error)
	// Update loads the client, calls fn and stores the result in one
	// transaction. The ID cannot be changed. fn's error aborts the update
	// and is returned as is.
	// ev, when not nil, is called in that transaction with the client
	// before and after fn; the event it returns (nil: none) is recorded
	// with the change (a secret rotated, say).
	Update(ctx context.Context, id string, fn func(*Client) error, ev func(before, after Client) *RevocationEvent) (Client, error)
	// Delete removes the client and records ev (when not nil) with it;
	// nothing is recorded when there was no such client (ErrNotFound).
	Delete(ctx context.Context, id string, ev *RevocationEvent) error
	List(ctx context.Context, f ClientFilter) ([]Client, error)
}

// ---------------------------------------------------------------- keys

// Key is one JSON Web Key of a named set. The private part is stored only as
// ciphertext produced by the keys package (AES-256-GCM under the system
// secret); the storage layer never sees a plaintext private key.
type Key struct {
	Set              string
	KID              string
	Alg              string
	Use              string // "sig" or "enc"
	PublicJWK        json.RawMessage
	PrivateEncrypted []byte // nil for public-only keys (imported via PUT)
	CreatedAt        time.Time
}

type KeyStore interface {
	// Add stores keys in an existing or new set. ErrAlreadyExists if a
	// (set, kid) pair is taken.
	Add(ctx context.Context, keys ...Key) error
	// Init stores keys as the initial content of set only if the set does
	// not exist yet, atomically across replicas: of two processes calling
	// Init at once on one database, exactly one returns created=true and
	// the other created=false with no error.
	Init(ctx context.Context, set string, keys []Key) (created bool, err error)
	// List returns the keys of a set, newest first. ErrNotFound if the set
	// has no keys.
	List(ctx context.Context, set string) ([]Key, error)
	Get(ctx context.Context, set, kid string) (Key, error)
	// Replace atomically replaces the content of a set (PUT /admin/keys/{set})
	// and records the events ev returns (ev may be nil) for the keys whose
	// kid is no longer in the set.
	Replace(ctx context.Context, set string, keys []Key, ev KeyRevocationFunc) error
	// Delete removes one key and records the events ev returns for it
	// (ev may be nil), in one transaction.
	Delete(ctx context.Context, set, kid string, ev KeyRevocationFunc) error
	// DeleteSet removes a set and its keys and records the events ev
	// returns for the keys removed, in one transaction.
	DeleteSet(ctx context.Context, set string, ev KeyRevocationFunc) error
	Sets(ctx context.Context) ([]string, error)
}

// ---------------------------------------------------------------- tokens

// TokenKind separates the token tables' namespaces.
type TokenKind string

const (
	KindAccessToken       TokenKind = "access_token"
	KindRefreshToken      TokenKind = "refresh_token"
	KindAuthorizationCode TokenKind = "authorization_code"
	KindOIDCSession       TokenKind = "oidc"
	KindPKCE              TokenKind = "pkce"
	// KindDeviceCode and KindUserCode are an RFC 8628 device
	// authorization: the device code (its grant, polling and decision)
	// and its user code (signature of the normalised code), both with
	// the request ID of the grant.
	KindDeviceCode TokenKind = "device_code"
	KindUserCode   TokenKind = "user_code"
)

// Token is an issued credential. Signature is the primary key: for opaque
// tokens the HMAC signature part (the token itself is never stored), for JWT
// access tokens a hash of the jti.
type Token struct {
	Kind      TokenKind
	Signature string
	// RequestID ties together every token issued from one grant (a code,
	// its access and refresh tokens and every rotation), so that the whole
	// chain can be revoked at once (RFC 6749 §4.1.2, §10.4).
	RequestID string
	ClientID  string
	Subject   string
	Active    bool
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Data is the grant session owned by the oauth2 package (scopes,
	// audience, extra claims, ...), stored as JSON.
	Data json.RawMessage
}

type TokenStore interface {
	Create(ctx context.Context, t Token) error // ErrAlreadyExists
	Get(ctx context.Context, kind TokenKind, signature string) (Token, error)
	// Update runs a read-modify-write of one token in a transaction (used
	// to mark codes and refresh tokens used exactly once: concurrent
	// callers are serialised, the loser sees the winner's change).
	Update(ctx context.Context, kind TokenKind, signature string, fn func(*Token) error) (Token, error)
	// Redeem is Update followed, in the same transaction and only when
	// r.Update succeeds, by the revocation and the creations r asks for:
	// a code or refresh token is used up and its successors recorded
	// with one commit, all or nothing. It returns the token as r.Update
	// left it; r.Update's error is returned as is.
	Redeem(ctx context.Context, r RedeemRequest) (Token, error)
	Delete(ctx context.Context, kind TokenKind, signature string) error
	// Revoke deactivates one token. ErrNotFound if there is none; a token
	// already inactive is left alone and ev is called with no rows.
	Revoke(ctx context.Context, kind TokenKind, signature string, ev RevocationFunc) error
	// RevokeRequest deactivates every token of every kind with this
	// request ID issued to this client. (Request IDs are unique; the client
	// ID lets one index on (client_id, request_id) serve this and
	// RevokeClient, so a token insert updates one index less.)
	RevokeRequest(ctx context.Context, clientID, requestID string, ev RevocationFunc) error
	// RevokeClient deactivates every token issued to a client. ev is
	// called with no rows (a client may have millions of tokens): its
	// event selects the client's tokens by client and issue time.
	RevokeClient(ctx context.Context, clientID string, ev RevocationFunc) (int64, error)
	// FlushExpired deletes at most limit tokens (FlushLimit: 1000 when
	// limit is not positive) whose expiry is set and before `before`,
	// active or not, and returns how many it deleted: a revoked token is
	// kept until it expires. Callers loop until it returns less than
	// limit; each call is one short transaction so tables are never
	// locked for long.
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// RedeemRequest is what TokenStore.Redeem does: use up one token and
// record what replaces it.
type RedeemRequest struct {
	// Kind and Signature name the token to redeem; ErrNotFound if it
	// does not exist.
	Kind      TokenKind
	Signature string
	// Read, when not nil, is that token as the caller just read it with
	// Get. A backend may run Update on it and store the result only if
	// the token is still stored as read, and otherwise read it again and
	// run Update on what is there (Update may run more than once), which
	// saves it a read. A Read of another token is ignored.
	Read *Token
	// Update changes the token (marks it used, say); its error aborts
	// the redemption and nothing is written. Kind and Signature cannot be
	// changed.
	Update func(*Token) error
	// RevokeRequest, when not empty, is a request ID: every other token
	// with it issued to the redeemed token's client is deactivated (the
	// redeemed token keeps what Update gave it).
	RevokeRequest string
	// Issue are the tokens created with the redemption; if one cannot be
	// (ErrAlreadyExists) nothing of the redemption is written.
	Issue []Token
}

// ---------------------------------------------------------------- flows

// FlowKind is the kind of a login, consent or logout challenge.
type FlowKind string

const (
	FlowLogin   FlowKind = "login"
	FlowConsent FlowKind = "consent"
	FlowLogout  FlowKind = "logout"
	// FlowPushedRequest is an RFC 9126 pushed authorization request; its
	// ID is a hash of the request_uri's random part.
	FlowPushedRequest FlowKind = "par"
	// FlowDevice is the device challenge of RFC 8628 user code entry.
	FlowDevice FlowKind = "device"
	// FlowUserCodeFailures is not a challenge: it counts the failed user
	// code entries of one client IP address in one time window (its ID),
	// so the limit holds across replicas; it expires with the window.
	FlowUserCodeFailures FlowKind = "user_code_failures"
)

// Flow is one challenge handed to the login/consent/logout app. Its ID is the
// challenge. The flow package owns the meaning of Status and Data.
type Flow struct {
	Kind      FlowKind
	ID        string
	ClientID  string
	Subject   string
	SessionID string // login session id (sid)
	Status    string
	CreatedAt time.Time
	ExpiresAt time.Time
	Data      json.RawMessage
}

// FlowStore keeps the challenges. Create and Swap may commit without
// waiting for the write to be durable (PostgreSQL: synchronous_commit off):
// a crash can lose a pending challenge or decision, never more. Writes that
// must survive a crash (a challenge used once, sessions) go through Step.
type FlowStore interface {
	Create(ctx context.Context, f Flow) error
	// Get returns ErrNotFound for unknown challenges of that kind.
	Get(ctx context.Context, kind FlowKind, id string) (Flow, error)
	Update(ctx context.Context, kind FlowKind, id string, fn func(*Flow) error) (Flow, error)
	Delete(ctx context.Context, kind FlowKind, id string) error
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
	// Step applies the writes of one step of a browser flow atomically and
	// with one commit: s.Flow gets s.Status if it is still stored exactly
	// as s.Flow (as Get returned it), and then the sessions and the next
	// flow of s are created. If the flow changed or is gone nothing is
	// written and Step returns ErrConflict; a failing write (e.g.
	// ErrAlreadyExists) undoes the whole step.
	Step(ctx context.Context, s FlowStep) error
	// Swap stores next in place of the flow old (as Get returned it) if
	// that flow is still stored exactly as old, and returns ErrConflict
	// otherwise (changed meanwhile, or gone). next.Kind and next.ID must
	// be old's. An optimistic Update in one statement where the backend
	// allows it.
	Swap(ctx context.Context, old, next Flow) error
}

// FlowStep is what the browser's return from the login or consent app
// writes: the challenge is marked used, and the login session, the consent
// session and the next challenge are recorded, all or nothing.
type FlowStep struct {
	Flow   Flow
	Status string
	// LoginSession, when set, is created; when ReplaceLoginSession is set
	// and a session with its ID exists, that session's subject,
	// authentication time, remember flag and expiry are replaced instead
	// (its data is kept).
	LoginSession        *LoginSession
	ReplaceLoginSession bool
	// ConsentSession, when set, is created.
	ConsentSession *ConsentSession
	// Next, when set, is created.
	Next *Flow
	// Tokens are created too: what the step issues, e.g. the
	// authorization code of a consent (one commit for the consent and its
	// code).
	Tokens []Token
}

// ---------------------------------------------------------------- sessions

// LoginSession is the browser's authentication session at the issuer (the
// OpenID Connect "sid").
type LoginSession struct {
	ID              string
	Subject         string
	AuthenticatedAt time.Time
	Remember        bool
	ExpiresAt       time.Time
	Data            json.RawMessage
}

type LoginSessionStore interface {
	Create(ctx context.Context, s LoginSession) error
	Get(ctx context.Context, id string) (LoginSession, error)
	Update(ctx context.Context, id string, fn func(*LoginSession) error) (LoginSession, error)
	// Delete removes the session and records ev (when not nil) with it;
	// nothing is recorded when there was no such session (ErrNotFound).
	Delete(ctx context.Context, id string, ev *RevocationEvent) error
	ListBySubject(ctx context.Context, subject string) ([]LoginSession, error)
	DeleteBySubject(ctx context.Context, subject string) (int64, error)
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// ConsentSession is a consent granted by a subject to a client.
type ConsentSession struct {
	ID              string // the consent challenge it was granted on
	Subject         string
	ClientID        string
	LoginSessionID  string
	Remember        bool
	GrantedScope    []string
	GrantedAudience []string
	HandledAt       time.Time
	ExpiresAt       time.Time // zero: never (remember_for=0)
	Data            json.RawMessage
}

// ConsentFilter selects consent sessions; empty fields match anything.
type ConsentFilter struct {
	// ID selects one session by its id (the consent request id).
	ID             string
	Subject        string
	ClientID       string
	LoginSessionID string
}

type ConsentSessionStore interface {
	Create(ctx context.Context, c ConsentSession) error
	Get(ctx context.Context, id string) (ConsentSession, error)
	// List returns matching sessions, newest HandledAt first.
	List(ctx context.Context, f ConsentFilter) ([]ConsentSession, error)
	// Revoke removes matching sessions, deactivates the tokens issued on
	// each (its ID is their request ID), calls ev (when not nil) with the
	// sessions removed and the tokens it deactivated, records the event ev
	// returns, all in one transaction, and returns how many sessions it
	// removed. An empty filter removes nothing.
	Revoke(ctx context.Context, f ConsentFilter, ev ConsentRevocationFunc) (int64, error)
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// ---------------------------------------------------------------- trust

// TrustedIssuer is an RFC 7523 JWT bearer grant trust relationship (Hydra's
// /admin/trust/grants/jwt-bearer/issuers).
type TrustedIssuer struct {
	ID              string
	Issuer          string
	Subject         string // empty when AllowAnySubject
	AllowAnySubject bool
	Scope           []string
	KeySet          string
	KeyID           string
	PublicKey       json.RawMessage // the issuer's public JWK
	ExpiresAt       time.Time
	CreatedAt       time.Time
}

type TrustStore interface {
	Create(ctx context.Context, t TrustedIssuer) error // ErrAlreadyExists on (issuer, subject, key id)
	Get(ctx context.Context, id string) (TrustedIssuer, error)
	List(ctx context.Context, issuer string) ([]TrustedIssuer, error) // issuer "" lists all
	Delete(ctx context.Context, id string) error
	// Find returns the unexpired grants for an assertion's issuer and subject
	// (subject matches exactly or the grant allows any subject).
	Find(ctx context.Context, issuer, subject string, now time.Time) ([]TrustedIssuer, error)
}

// ---------------------------------------------------------------- nonces

// NonceStore remembers one-time values (JWT jti of client assertions and
// jwt-bearer grants) until they expire, to reject replays.
type NonceStore interface {
	// Use records key until expiresAt. ErrAlreadyExists if the key was
	// already used and has not expired.
	Use(ctx context.Context, key string, expiresAt time.Time) error
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// ---------------------------------------------------------------- revocation events

// RevocationEvent is one entry of the revocation event log that issuer
// instances stream to the gateways (docs/revocation-events.md). It is
// recorded in the transaction of the change that raises it.
type RevocationEvent struct {
	// Position is given by the backend when the event is recorded: it
	// increases by one per event, in commit order, on every backend (the
	// counter is one row updated in the recording transaction, which
	// serialises event writers), so positions have no gaps.
	Position int64
	Kind     string
	Time     time.Time
	// Until is when every token the event can affect has expired. Left
	// zero, the backend sets it when it records the event to the latest
	// expiry of any stored access token (or Time when there is none):
	// the bound for events that select tokens by subject, client,
	// session or key rather than list them. A backend may settle for a
	// later time (the SQL backends: the latest expiry of any token, when
	// the latest access tokens are buried under over a thousand
	// longer-lived ones), never an earlier one.
	Until time.Time
	// Data is the event's selectors as the API layer renders them (JSON).
	Data json.RawMessage
}

// RevocationFunc builds the event of a token revocation from the tokens
// it deactivated (as they were before: Active true), inside the
// revoking transaction; nil records nothing. Its error undoes the whole
// change. The storage layer does not read the tokens: their formats are
// the oauth2 package's.
type RevocationFunc func(revoked []Token) (*RevocationEvent, error)

// ConsentRevocationFunc is RevocationFunc for ConsentSessionStore.Revoke.
type ConsentRevocationFunc func(removed []ConsentSession, revoked []Token) (*RevocationEvent, error)

// KeyRevocationFunc returns the events of the keys a KeyStore call removes.
type KeyRevocationFunc func(removed []Key) []RevocationEvent

// EventBounds are the ends of the event log.
type EventBounds struct {
	// Head is the last position given (0 when none ever was); events
	// flushed since keep it.
	Head int64
	// Oldest is the first position still kept, 0 when none is.
	Oldest int64
}

type RevocationEventStore interface {
	// List returns at most limit events (100 when not positive) with a
	// position greater than after, in position order.
	List(ctx context.Context, after int64, limit int) ([]RevocationEvent, error)
	Bounds(ctx context.Context) (EventBounds, error)
	// FlushExpired deletes at most limit events (FlushLimit) recorded
	// before `before`, oldest first, and returns how many it deleted.
	FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error)
}

// KeysRemoved returns the keys of before whose kid is not in after, in
// before's order: what a Replace removes.
func KeysRemoved(before, after []Key) []Key {
	kept := make(map[string]bool, len(after))
	for _, k := range after {
		kept[k.KID] = true
	}
	var out []Key
	for _, k := range before {
		if !kept[k.KID] {
			out = append(out, k)
		}
	}
	return out
}
