package tracing

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// One wrapper per store interface. Each embeds the store it wraps, so a
// method added to a storage interface still compiles here (untraced) until
// it is wrapped; TestEveryMethodIsTraced fails until then.

type store struct {
	storage.Storage // Stats and Close pass through
	op
	clients  clients
	keys     keys
	tokens   tokens
	flows    flows
	logins   loginSessions
	consents consentSessions
	trust    trust
	nonces   nonces
	events   events
}

var _ storage.Storage = (*store)(nil)

func (s *store) Clients() storage.ClientStore                   { return s.clients }
func (s *store) Keys() storage.KeyStore                         { return s.keys }
func (s *store) Tokens() storage.TokenStore                     { return s.tokens }
func (s *store) Flows() storage.FlowStore                       { return s.flows }
func (s *store) LoginSessions() storage.LoginSessionStore       { return s.logins }
func (s *store) ConsentSessions() storage.ConsentSessionStore   { return s.consents }
func (s *store) Trust() storage.TrustStore                      { return s.trust }
func (s *store) Nonces() storage.NonceStore                     { return s.nonces }
func (s *store) RevocationEvents() storage.RevocationEventStore { return s.events }

func (s *store) Ping(ctx context.Context) error {
	return tracedErr(ctx, s.op, "Ping", s.Storage.Ping)
}

// ---------------------------------------------------------------- clients

type clients struct {
	storage.ClientStore
	op
}

func (s clients) Create(ctx context.Context, c storage.Client) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.ClientStore.Create(ctx, c) })
}

func (s clients) Get(ctx context.Context, id string) (storage.Client, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.Client, error) { return s.ClientStore.Get(ctx, id) })
}

func (s clients) Update(ctx context.Context, id string, fn func(*storage.Client) error, ev func(before, after storage.Client) *storage.RevocationEvent) (storage.Client, error) {
	return traced(ctx, s.op, "Update", func(ctx context.Context) (storage.Client, error) { return s.ClientStore.Update(ctx, id, fn, ev) })
}

func (s clients) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.ClientStore.Delete(ctx, id, ev) })
}

func (s clients) List(ctx context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	return traced(ctx, s.op, "List", func(ctx context.Context) ([]storage.Client, error) { return s.ClientStore.List(ctx, f) })
}

// ---------------------------------------------------------------- keys

type keys struct {
	storage.KeyStore
	op
}

func (s keys) Add(ctx context.Context, ks ...storage.Key) error {
	return tracedErr(ctx, s.op, "Add", func(ctx context.Context) error { return s.KeyStore.Add(ctx, ks...) })
}

func (s keys) Init(ctx context.Context, set string, ks []storage.Key) (bool, error) {
	return traced(ctx, s.op, "Init", func(ctx context.Context) (bool, error) { return s.KeyStore.Init(ctx, set, ks) })
}

func (s keys) List(ctx context.Context, set string) ([]storage.Key, error) {
	return traced(ctx, s.op, "List", func(ctx context.Context) ([]storage.Key, error) { return s.KeyStore.List(ctx, set) })
}

func (s keys) Get(ctx context.Context, set, kid string) (storage.Key, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.Key, error) { return s.KeyStore.Get(ctx, set, kid) })
}

func (s keys) Replace(ctx context.Context, set string, ks []storage.Key, ev storage.KeyRevocationFunc) error {
	return tracedErr(ctx, s.op, "Replace", func(ctx context.Context) error { return s.KeyStore.Replace(ctx, set, ks, ev) })
}

func (s keys) Delete(ctx context.Context, set, kid string, ev storage.KeyRevocationFunc) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.KeyStore.Delete(ctx, set, kid, ev) })
}

func (s keys) DeleteSet(ctx context.Context, set string, ev storage.KeyRevocationFunc) error {
	return tracedErr(ctx, s.op, "DeleteSet", func(ctx context.Context) error { return s.KeyStore.DeleteSet(ctx, set, ev) })
}

func (s keys) Sets(ctx context.Context) ([]string, error) {
	return traced(ctx, s.op, "Sets", s.KeyStore.Sets)
}

// ---------------------------------------------------------------- tokens

type tokens struct {
	storage.TokenStore
	op
}

func (s tokens) Create(ctx context.Context, tok storage.Token) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.TokenStore.Create(ctx, tok) })
}

func (s tokens) Get(ctx context.Context, kind storage.TokenKind, sig string) (storage.Token, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.Token, error) { return s.TokenStore.Get(ctx, kind, sig) })
}

func (s tokens) Update(ctx context.Context, kind storage.TokenKind, sig string, fn func(*storage.Token) error) (storage.Token, error) {
	return traced(ctx, s.op, "Update", func(ctx context.Context) (storage.Token, error) { return s.TokenStore.Update(ctx, kind, sig, fn) })
}

func (s tokens) Redeem(ctx context.Context, r storage.RedeemRequest) (storage.Token, error) {
	return traced(ctx, s.op, "Redeem", func(ctx context.Context) (storage.Token, error) { return s.TokenStore.Redeem(ctx, r) })
}

func (s tokens) Delete(ctx context.Context, kind storage.TokenKind, sig string) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.TokenStore.Delete(ctx, kind, sig) })
}

func (s tokens) Revoke(ctx context.Context, kind storage.TokenKind, sig string, ev storage.RevocationFunc) error {
	return tracedErr(ctx, s.op, "Revoke", func(ctx context.Context) error { return s.TokenStore.Revoke(ctx, kind, sig, ev) })
}

func (s tokens) RevokeRequest(ctx context.Context, clientID, requestID string, ev storage.RevocationFunc) error {
	return tracedErr(ctx, s.op, "RevokeRequest", func(ctx context.Context) error { return s.TokenStore.RevokeRequest(ctx, clientID, requestID, ev) })
}

func (s tokens) RevokeClient(ctx context.Context, clientID string, ev storage.RevocationFunc) (int64, error) {
	return traced(ctx, s.op, "RevokeClient", func(ctx context.Context) (int64, error) { return s.TokenStore.RevokeClient(ctx, clientID, ev) })
}

func (s tokens) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) { return s.TokenStore.FlushExpired(ctx, before, limit) })
}

// ---------------------------------------------------------------- flows

type flows struct {
	storage.FlowStore
	op
}

func (s flows) Create(ctx context.Context, f storage.Flow) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.FlowStore.Create(ctx, f) })
}

func (s flows) Get(ctx context.Context, kind storage.FlowKind, id string) (storage.Flow, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.Flow, error) { return s.FlowStore.Get(ctx, kind, id) })
}

func (s flows) Update(ctx context.Context, kind storage.FlowKind, id string, fn func(*storage.Flow) error) (storage.Flow, error) {
	return traced(ctx, s.op, "Update", func(ctx context.Context) (storage.Flow, error) { return s.FlowStore.Update(ctx, kind, id, fn) })
}

func (s flows) Delete(ctx context.Context, kind storage.FlowKind, id string) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.FlowStore.Delete(ctx, kind, id) })
}

func (s flows) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) { return s.FlowStore.FlushExpired(ctx, before, limit) })
}

func (s flows) Step(ctx context.Context, st storage.FlowStep) error {
	return tracedErr(ctx, s.op, "Step", func(ctx context.Context) error { return s.FlowStore.Step(ctx, st) })
}

func (s flows) Swap(ctx context.Context, old, next storage.Flow) error {
	return tracedErr(ctx, s.op, "Swap", func(ctx context.Context) error { return s.FlowStore.Swap(ctx, old, next) })
}

// ---------------------------------------------------------------- sessions

type loginSessions struct {
	storage.LoginSessionStore
	op
}

func (s loginSessions) Create(ctx context.Context, ls storage.LoginSession) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.LoginSessionStore.Create(ctx, ls) })
}

func (s loginSessions) Get(ctx context.Context, id string) (storage.LoginSession, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.LoginSession, error) { return s.LoginSessionStore.Get(ctx, id) })
}

func (s loginSessions) Update(ctx context.Context, id string, fn func(*storage.LoginSession) error) (storage.LoginSession, error) {
	return traced(ctx, s.op, "Update", func(ctx context.Context) (storage.LoginSession, error) {
		return s.LoginSessionStore.Update(ctx, id, fn)
	})
}

func (s loginSessions) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.LoginSessionStore.Delete(ctx, id, ev) })
}

func (s loginSessions) ListBySubject(ctx context.Context, subject string) ([]storage.LoginSession, error) {
	return traced(ctx, s.op, "ListBySubject", func(ctx context.Context) ([]storage.LoginSession, error) {
		return s.LoginSessionStore.ListBySubject(ctx, subject)
	})
}

func (s loginSessions) DeleteBySubject(ctx context.Context, subject string) (int64, error) {
	return traced(ctx, s.op, "DeleteBySubject", func(ctx context.Context) (int64, error) { return s.LoginSessionStore.DeleteBySubject(ctx, subject) })
}

func (s loginSessions) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) { return s.LoginSessionStore.FlushExpired(ctx, before, limit) })
}

type consentSessions struct {
	storage.ConsentSessionStore
	op
}

func (s consentSessions) Create(ctx context.Context, c storage.ConsentSession) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.ConsentSessionStore.Create(ctx, c) })
}

func (s consentSessions) Get(ctx context.Context, id string) (storage.ConsentSession, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.ConsentSession, error) { return s.ConsentSessionStore.Get(ctx, id) })
}

func (s consentSessions) List(ctx context.Context, f storage.ConsentFilter) ([]storage.ConsentSession, error) {
	return traced(ctx, s.op, "List", func(ctx context.Context) ([]storage.ConsentSession, error) { return s.ConsentSessionStore.List(ctx, f) })
}

func (s consentSessions) Revoke(ctx context.Context, f storage.ConsentFilter, ev storage.ConsentRevocationFunc) (int64, error) {
	return traced(ctx, s.op, "Revoke", func(ctx context.Context) (int64, error) { return s.ConsentSessionStore.Revoke(ctx, f, ev) })
}

func (s consentSessions) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) {
		return s.ConsentSessionStore.FlushExpired(ctx, before, limit)
	})
}

// ---------------------------------------------------------------- trust

type trust struct {
	storage.TrustStore
	op
}

func (s trust) Create(ctx context.Context, ti storage.TrustedIssuer) error {
	return tracedErr(ctx, s.op, "Create", func(ctx context.Context) error { return s.TrustStore.Create(ctx, ti) })
}

func (s trust) Get(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	return traced(ctx, s.op, "Get", func(ctx context.Context) (storage.TrustedIssuer, error) { return s.TrustStore.Get(ctx, id) })
}

func (s trust) List(ctx context.Context, issuer string) ([]storage.TrustedIssuer, error) {
	return traced(ctx, s.op, "List", func(ctx context.Context) ([]storage.TrustedIssuer, error) { return s.TrustStore.List(ctx, issuer) })
}

func (s trust) Delete(ctx context.Context, id string) error {
	return tracedErr(ctx, s.op, "Delete", func(ctx context.Context) error { return s.TrustStore.Delete(ctx, id) })
}

func (s trust) Find(ctx context.Context, issuer, subject string, now time.Time) ([]storage.TrustedIssuer, error) {
	return traced(ctx, s.op, "Find", func(ctx context.Context) ([]storage.TrustedIssuer, error) {
		return s.TrustStore.Find(ctx, issuer, subject, now)
	})
}

// ---------------------------------------------------------------- nonces

type nonces struct {
	storage.NonceStore
	op
}

func (s nonces) Use(ctx context.Context, key string, expiresAt time.Time) error {
	return tracedErr(ctx, s.op, "Use", func(ctx context.Context) error { return s.NonceStore.Use(ctx, key, expiresAt) })
}

func (s nonces) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) { return s.NonceStore.FlushExpired(ctx, before, limit) })
}

// ---------------------------------------------------------------- revocation events

type events struct {
	storage.RevocationEventStore
	op
}

func (s events) List(ctx context.Context, after int64, limit int) ([]storage.RevocationEvent, error) {
	return traced(ctx, s.op, "List", func(ctx context.Context) ([]storage.RevocationEvent, error) {
		return s.RevocationEventStore.List(ctx, after, limit)
	})
}

func (s events) Bounds(ctx context.Context) (storage.EventBounds, error) {
	return traced(ctx, s.op, "Bounds", s.RevocationEventStore.Bounds)
}

func (s events) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return traced(ctx, s.op, "FlushExpired", func(ctx context.Context) (int64, error) {
		return s.RevocationEventStore.FlushExpired(ctx, before, limit)
	})
}
