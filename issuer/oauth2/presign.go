package oauth2

import (
	"context"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Presigning the code exchange's tokens.
//
// Everything the code exchange issues (RFC 6749 §4.1.4, OpenID Connect
// Core §3.1.3.3) is fixed when the code is minted: the grant, the nonce,
// the client and its lifespans. Only the ID token's signature is
// expensive (about a millisecond of CPU with RS256), so when a code is
// issued for an openid grant the access token and the ID token are minted
// on a spare core right away, while the browser carries the code to the
// client and the client sends it back; the exchange then only records
// them. Nothing minted ahead is stored or handed out unless the exchange
// succeeds through every check it makes anyway, and a result is used only
// if the client's settings that shaped it are still the same and it is at
// most presignMaxAge old (its iat/exp are the minting time's, so the
// response's expires_in is counted from them: the seconds left until the
// access token's exp, RFC 6749 §5.1); otherwise, on another instance, or
// when too many are pending, the exchange signs itself. The code's row is
// kept with them, so the exchange checks the code (client, redirect_uri,
// PKCE: all fixed at minting) as this process recorded it instead of
// reading it back; its use and revocation are checked on the stored row
// by Redeem, which marks it used. All of it lives only in this process's
// memory, keyed by the code's signature, for the few seconds until the
// exchange.
//
// Issuing and exchanging codes see presigning only through the presigner
// interface: New builds a codePresigner when Options.Presigning is set,
// else noPresigner, which mints nothing and hands nothing over, so that
// the exchange signs every token itself.

// presignCase is what decides whether a code exchange may use what was
// minted for it ahead: the exchange signs its own tokens in each of these
// cases.
type presignCase struct {
	// Hooked: a token hook is configured. It decides the exchange's claims
	// at the exchange (tokenhook.go), so New builds no presigner at all.
	Hooked bool
	// CertBound: the exchange binds the access token to a client
	// certificate (RFC 8705 §3); minted ahead, it is a bearer or
	// DPoP-bound token.
	CertBound bool
	// Narrowed: the exchange names resources, which narrow the access
	// token's audience (RFC 8707 §2.2); minted ahead, it carries every
	// granted target.
	Narrowed bool
}

// usesPresigned reports whether none of c's cases holds. What the result
// itself must match (the DPoP key, the client's settings, its age) is
// checked by usableFor.
func (c presignCase) usesPresigned() bool { return !c.Hooked && !c.CertBound && !c.Narrowed }

// presigner is what issuing and exchanging codes ask of presigning.
type presigner interface {
	// codeIssued is called once a code, recorded as code, is handed out;
	// gt is what its exchange would issue.
	codeIssued(ctx context.Context, code storage.Token, gt *grantTokens)
	// take removes and returns what was minted ahead for the code with
	// signature sig; nil if nothing was.
	take(sig string) *presigned
}

var (
	_ presigner = (*codePresigner)(nil)
	_ presigner = noPresigner{}
)

// noPresigner is presigning switched off.
type noPresigner struct{}

func (noPresigner) codeIssued(context.Context, storage.Token, *grantTokens) {}
func (noPresigner) take(string) *presigned                                  { return nil }

// codePresigner mints the exchange's tokens with the handler's own minting
// (newAccessToken, signIDToken) and keeps them in cache until the exchange.
type codePresigner struct {
	h     *Handler
	cache presignCache
}

func newCodePresigner(h *Handler) *codePresigner { return &codePresigner{h: h} }

func (cp *codePresigner) take(sig string) *presigned { return cp.cache.take(sig) }

const (
	// presignMaxAge bounds how old a presigned result may be when used,
	// and so how far its iat may precede the exchange.
	presignMaxAge = 10 * time.Second
	// presignMaxPending bounds the results waiting for their exchange; a
	// code issued beyond it is simply signed at its exchange.
	presignMaxPending = 4096
)

// presigned is the code exchange's access token and ID token, minted when
// the code was issued: an opaque access token at once, a JWT one and the
// ID token on another goroutine. accessDone is closed once resp and row
// are set (both nil if minting failed), done once idToken or err is.
type presigned struct {
	// by is the presigner that minted it (its clock, its signer).
	by               *codePresigner
	accessDone, done chan struct{}
	created          time.Time
	// shape is what must still hold at the exchange for the result to be
	// the one the exchange would mint.
	shape presignShape

	// code is the authorization code's row as recorded.
	code storage.Token
	resp *tokenResponse
	row  storage.Token

	idToken string
	err     error
}

type presignShape struct {
	// JKT is the DPoP key the tokens are bound to ("": bearer tokens).
	ClientID, RequestID, Strategy, JKT          string
	AccessLifespan, IDLifespan, RefreshLifespan time.Duration
}

// presignCache holds the pending presigned results.
type presignCache struct {
	mu sync.Mutex
	m  map[string]*presigned
}

// reserve registers a pending result for code signature sig, or returns
// nil when too many are pending (after dropping the stale ones).
func (pc *presignCache) reserve(sig string, now time.Time, shape presignShape) *presigned {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m == nil {
		pc.m = map[string]*presigned{}
	}
	if len(pc.m) >= presignMaxPending {
		for k, p := range pc.m {
			if now.Sub(p.created) > presignMaxAge {
				delete(pc.m, k)
			}
		}
		if len(pc.m) >= presignMaxPending {
			return nil
		}
	}
	p := &presigned{accessDone: make(chan struct{}), done: make(chan struct{}), created: now, shape: shape}
	pc.m[sig] = p
	return p
}

// take removes and returns the result for code signature sig, if any.
func (pc *presignCache) take(sig string) *presigned {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p := pc.m[sig]
	delete(pc.m, sig)
	return p
}

// shapeOf is the presignShape of what gt issues.
func (cp *codePresigner) shapeOf(gt *grantTokens) presignShape {
	return presignShape{
		ClientID: gt.Client.ID, RequestID: gt.RequestID, Strategy: cp.h.accessTokenStrategy(gt.Client), JKT: gt.JKT,
		AccessLifespan: gt.AccessLifespan, IDLifespan: gt.IDLifespan, RefreshLifespan: gt.RefreshLifespan,
	}
}

// codeIssued starts minting the exchange's tokens for the code recorded
// as code, when the grant has an ID token to sign.
func (cp *codePresigner) codeIssued(ctx context.Context, code storage.Token, gt *grantTokens) {
	h := cp.h
	if !gt.Grant.HasScope("openid") || !gt.Client.HasGrantType(client.GrantAuthorizationCode) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	mint := func() (*tokenResponse, storage.Token, error) { return h.newAccessToken(ctx, gt.accessGrant()) }
	// An opaque access token is cheap (random bytes and a MAC), so it is
	// minted here: the exchange can record it at once, while the ID
	// token's signature may still be running. A JWT access token is
	// signed on the goroutine, and the exchange waits for it.
	opaque := h.accessTokenStrategy(gt.Client) != formatJWT
	var resp *tokenResponse
	var row storage.Token
	if opaque {
		var err error
		if resp, row, err = mint(); err != nil {
			return
		}
	}
	p := cp.cache.reserve(code.Signature, h.now(), cp.shapeOf(gt))
	if p == nil {
		return
	}
	p.by, p.code = cp, code
	if opaque {
		p.resp, p.row = resp, row
		close(p.accessDone)
	}
	go func() {
		defer close(p.done)
		if !opaque {
			resp, row, err := mint()
			if err == nil {
				p.resp, p.row = resp, row
			}
			close(p.accessDone)
			if err != nil {
				p.err = err
				return
			}
		}
		p.idToken, p.err = h.signIDToken(ctx, gt.Client, gt.Grant, gt.Nonce, p.resp.AccessToken, "", gt.IDLifespan)
	}()
}

// usableFor returns p (taken from its presigner; nil is fine) if it is
// usable for gt, an exchange that presignCase allows to use it, once its
// access token is there; its ID token may still be being signed
// (awaitIDToken waits for it). It is not when it is older
// than presignMaxAge or than a tenth of the shorter token lifespan: its
// tokens must keep nearly the lifetime freshly signed ones would have.
func (p *presigned) usableFor(ctx context.Context, gt *grantTokens) *presigned {
	// Presigned tokens are bound to the code's dpop_jkt, or bearer
	// tokens: an exchange with another DPoP key (or none) mints its own.
	if p == nil || p.shape != p.by.shapeOf(gt) {
		return nil
	}
	age := p.by.h.now().Sub(p.created)
	if age > presignMaxAge || age*10 > min(gt.AccessLifespan, gt.IDLifespan) {
		return nil
	}
	select {
	case <-p.accessDone:
	case <-ctx.Done():
		return nil
	}
	if p.resp == nil {
		return nil
	}
	return p
}

// awaitIDToken waits for the presigned ID token; if its signature failed,
// it is signed again now.
func (p *presigned) awaitIDToken(ctx context.Context, gt *grantTokens) (string, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return "", apierr.ServerError(ctx.Err())
	}
	if p.err != nil {
		return p.by.h.signIDToken(ctx, gt.Client, gt.Grant, gt.Nonce, p.resp.AccessToken, "", gt.IDLifespan)
	}
	return p.idToken, nil
}
