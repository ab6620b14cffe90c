package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// deviceCodeGrant is RFC 8628 §3.4: the device polls with its device code
// until the End-User decided. Each poll is recorded on the device code
// (one read-modify-write of its row), so the polling interval holds
// across replicas.
type deviceCodeGrant struct{ h *Handler }

var _ grantHandler = (*deviceCodeGrant)(nil)

// slowDownStep is RFC 8628 §3.5: on slow_down "the interval MUST be
// increased by 5 seconds for this and all subsequent requests".
const slowDownStep = 5

// pollSlack is how much earlier than the interval a poll may arrive
// without being too fast: a device that waits the interval between
// requests sees its requests arrive a little early or late.
const pollSlack = 250 * time.Millisecond

// RFC 8628 §3.5 error responses. They are RFC 6749 §5.2 errors (400);
// access_denied keeps the 403 it has everywhere else, as in Hydra.
func deviceError(code, description string) *apierr.Error {
	return &apierr.Error{Code: code, Status: http.StatusBadRequest, Description: description}
}

// Outcomes of a poll's update that write nothing.
var (
	errDeviceDenied  = errors.New("oauth2: device denied")
	errDeviceExpired = errors.New("oauth2: device code expired")
)

func (g *deviceCodeGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	h := g.h
	c := req.Client
	sig, err := h.grantSignature(opaqueDeviceCode, req.DeviceCode, "device_code", "device code")
	if err != nil {
		return nil, err
	}
	var granted *session
	var requestID string
	var slowDown bool
	// One write per poll: the poll is recorded (slow_down needs the
	// previous one) and the state read in the same transaction.
	t, err := h.tokens.Update(ctx, storage.KindDeviceCode, sig, func(t *storage.Token) error {
		granted, slowDown = nil, false
		if t.ClientID != c.ID {
			return apierr.InvalidGrant("The device code was issued to another client")
		}
		s, err := decodeSession(t.Data)
		if err != nil || s.Device == nil {
			return apierr.ServerError(errors.New("oauth2: unreadable device code session"))
		}
		now := h.now().UTC()
		switch {
		case s.Used:
			return apierr.InvalidGrant("The device code has already been used")
		case !t.Active:
			return apierr.InvalidGrant("The device code was revoked")
		case !now.Before(t.ExpiresAt):
			return errDeviceExpired
		case s.Device.Status == deviceDenied:
			return errDeviceDenied
		case s.Device.Status == deviceGranted:
			// Redeemed below, with the tokens it issues.
			granted, requestID = s, t.RequestID
			if s.Device.GrantRequest != "" {
				requestID = s.Device.GrantRequest
			}
			return errGranted
		}
		d := s.Device
		interval := time.Duration(d.Interval) * time.Second
		slowDown = !d.LastPoll.IsZero() && now.Sub(d.LastPoll) < interval-pollSlack
		if slowDown {
			d.Interval += slowDownStep
		}
		d.LastPoll = now
		t.Data, err = json.Marshal(s)
		return err
	})
	switch {
	case errors.Is(err, errGranted):
		return g.redeem(ctx, req, sig, granted, requestID)
	case errors.Is(err, errDeviceExpired):
		return nil, deviceError("expired_token", "The device code has expired; start a new device authorization")
	case errors.Is(err, errDeviceDenied):
		return nil, apierr.AccessDenied("The End-User denied the authorization request")
	case errors.Is(err, storage.ErrNotFound):
		return nil, apierr.InvalidGrant("The device code is unknown or has expired")
	case err != nil:
		return nil, apierr.From(err)
	}
	// The poll is recorded; now it is answered.
	if slowDown {
		s, _ := decodeSession(t.Data)
		return nil, deviceError("slow_down", fmt.Sprintf("The device polls faster than its interval; wait %d seconds between requests", s.Device.Interval))
	}
	return nil, deviceError("authorization_pending", "The End-User has not yet completed the authorization")
}

// errGranted ends the poll's update without a write: the device code is
// redeemed with the tokens instead.
var errGranted = errors.New("oauth2: device granted")

// redeem issues the tokens of a granted device code, as the code flow
// does for its code: access token, refresh token with offline_access and
// ID token with openid, recorded in the transaction that uses the device
// code up (single use, RFC 8628 §3.5 leaves reuse to RFC 6749 §4.1.2's
// rule: it is refused).
func (g *deviceCodeGrant) redeem(ctx context.Context, req *tokenRequest, sig string, s *session, requestID string) (*tokenResponse, error) {
	h := g.h
	c := req.Client
	grant := s.Grant
	if grant == nil {
		return nil, apierr.ServerError(errors.New("oauth2: granted device code without a grant"))
	}
	httpx.Info(ctx).Subject = grant.Subject
	gt := &grantTokens{
		GrantType: client.GrantDeviceCode, Client: c, Grant: grant, Scope: grant.GrantedScope, RequestID: requestID,
		AccessLifespan:  c.DeviceAuthorizationGrantAccessTokenLifespan.Get(h.opts.AccessTokenLifespan),
		IDLifespan:      c.DeviceAuthorizationGrantIDTokenLifespan.Get(h.opts.IDTokenLifespan),
		RefreshLifespan: c.DeviceAuthorizationGrantRefreshTokenLifespan.Get(h.opts.RefreshTokenLifespan),
	}
	return h.issueGrantTokens(ctx, gt, func(issue []storage.Token) error {
		_, err := h.tokens.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindDeviceCode, Signature: sig,
			Update: h.useUp, Issue: issue})
		switch {
		case errors.Is(err, errAlreadyUsed):
			return apierr.InvalidGrant("The device code has already been used")
		case errors.Is(err, errRevoked):
			return apierr.InvalidGrant("The device code was revoked")
		case err != nil:
			return apierr.ServerError(err)
		}
		return nil
	})
}
