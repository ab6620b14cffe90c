package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The browser side of the RFC 8628 device authorization grant, with
// Hydra v25's shapes:
//
//	public GET /oauth2/device/verify            the verification_uri: a device challenge
//	                                            (302 to urls.device.verification), then the
//	                                            return of the browser with device_verifier,
//	                                            login_verifier and consent_verifier
//	admin  GET /admin/oauth2/auth/requests/device?device_challenge=
//	admin  PUT /admin/oauth2/auth/requests/device/accept  {"user_code": "..."}
//
// Once the user code is accepted the browser goes through the usual login
// and consent challenges; the consent ends at urls.device.success instead
// of a redirect to the client, and the device's next poll receives the
// tokens (or access_denied when the login or consent app rejected).

// DeviceGrants are the device authorizations (issuer/oauth2.Handler).
type DeviceGrants interface {
	ClaimUserCode(ctx context.Context, userCode, challenge string) (*oauth2.DeviceRequest, error)
	GrantDevice(ctx context.Context, device, requestID string, g oauth2.GrantSession) error
	DenyDevice(ctx context.Context, device string) error
}

// Brute-force limits on user code entry (RFC 8628 §5.1), documented in
// docs/security.md: a device challenge takes at most
// MaxUserCodeFailuresPerChallenge wrong codes, and the network a browser
// comes from (its IPv4 address, its IPv6 /64) at most
// MaxUserCodeFailuresPerIP in each UserCodeFailureWindow, across
// replicas (the count is stored).
const (
	MaxUserCodeFailuresPerChallenge = 5
	MaxUserCodeFailuresPerIP        = 20
	UserCodeFailureWindow           = 10 * time.Minute
)

// deviceFlow is the device part of a flow's state: on the device
// challenge, and carried into its login and consent challenges.
type deviceFlow struct {
	// Network is the hash of the browser's network, for the per-IP limit.
	Network string `json:"network,omitempty"`
	// Failures counts the wrong user codes entered at the challenge.
	Failures int `json:"failures,omitempty"`
	// Device is the device code's signature, RequestID its grant's,
	// once the user code was accepted.
	Device    string `json:"device,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// DeviceUserAuthRequest is Hydra v25's GET .../requests/device answer.
type DeviceUserAuthRequest struct {
	Challenge                    string         `json:"challenge"`
	Client                       *client.Client `json:"client,omitempty"`
	HandledAt                    *time.Time     `json:"handled_at,omitempty"`
	RequestURL                   string         `json:"request_url"`
	RequestedAccessTokenAudience []string       `json:"requested_access_token_audience"`
	RequestedScope               []string       `json:"requested_scope"`
}

// AcceptDeviceUserCode is the PUT .../device/accept body (Hydra's
// acceptDeviceUserCodeRequest).
type AcceptDeviceUserCode struct {
	UserCode string `json:"user_code"`
}

// rejection is the login or consent app's rejection, as the error the
// client (or, in a device flow, the device) receives.
type rejection struct{ e *apierr.Error }

func (r rejection) Error() string { return r.e.Error() }
func (r rejection) Unwrap() error { return r.e }

// deviceVerify is the verification_uri.
func (h *Handler) deviceVerify(w http.ResponseWriter, r *http.Request) {
	form, ok := h.browserForm(w, r)
	if !ok {
		return
	}
	switch {
	case form.Get("device_verifier") != "":
		h.deviceVerified(w, r, form.Get("device_verifier"))
	case form.Get("login_verifier") != "":
		h.loginVerified(w, r, form.Get("login_verifier"))
	case form.Get("consent_verifier") != "":
		h.consentVerified(w, r, form.Get("consent_verifier"))
	default:
		h.startDevice(w, r, form)
	}
}

// startDevice creates the device challenge and sends the browser to the
// operator's user code page with it (and the user code of a
// verification_uri_complete), setting the device CSRF cookie.
func (h *Handler) startDevice(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	userCode, err := httpx.SingleValue(form, "user_code")
	if err != nil || len(userCode) > 256 {
		h.errorPage(w, r, apierr.InvalidRequest("The user_code parameter must appear at most once and be at most 256 characters long"))
		return
	}
	now := h.now().UTC()
	challenge, csrf := newChallenge(), randomToken(24)
	// The user code is not kept in the request URL the apps see.
	st := state{RequestURL: h.opts.PublicURL + oauth2.DeviceVerifyPath, RequestedAt: now,
		CSRF: hashOf(csrf), Device: &deviceFlow{Network: networkOf(r)}}
	f := storage.Flow{Kind: storage.FlowDevice, ID: challenge, Status: statusPending, CreatedAt: now,
		ExpiresAt: now.Add(h.opts.ChallengeLifespan)}
	if err := h.createFlow(ctx, f, &st); err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	if err := h.jar.addCSRF(w, r, h.opts.Cookies.DeviceCSRF, csrf, h.opts.ChallengeLifespan); err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	q := url.Values{"device_challenge": {challenge}}
	if userCode != "" {
		q.Set("user_code", userCode)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withQuery(h.deviceVerificationURL(), q), http.StatusFound)
}

// networkOf is the hash of the network a request comes from: its IPv4
// address or the /64 of its IPv6 address (one host usually has a whole
// /64). It is the TCP peer: behind a reverse proxy, the proxy.
func networkOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
	case ip.To4() != nil:
		host = ip.To4().String()
	default:
		host = ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return hashOf(host)
}

// describeDevice is Hydra's answer to GET .../requests/device.
func (h *Handler) describeDevice(ctx context.Context, f *storage.Flow, st *state) (any, error) {
	d := DeviceUserAuthRequest{Challenge: f.ID, RequestURL: st.RequestURL,
		RequestedScope: []string{}, RequestedAccessTokenAudience: []string{}}
	if st.Request != nil {
		c, err := h.clients.Get(ctx, f.ClientID)
		if err != nil {
			return nil, err
		}
		d.Client = c
		d.RequestedScope, d.RequestedAccessTokenAudience = nonNil(st.Request.Scope), nonNil(st.Request.Audience)
	}
	if !st.HandledAt.IsZero() {
		d.HandledAt = &st.HandledAt
	}
	return d, nil
}

// readAcceptDevice reads PUT .../device/accept: the user code the
// End-User entered must name a device authorization that is pending and
// not entered at another challenge. Wrong codes count against the
// challenge and the browser's network (RFC 8628 §5.1).
func (h *Handler) readAcceptDevice(r *http.Request, challenge string) (*storage.Flow, flowChange, error) {
	ctx := r.Context()
	var body AcceptDeviceUserCode
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, nil, err
	}
	if body.UserCode == "" {
		return nil, nil, apierr.InvalidRequest("Field 'user_code' must not be empty")
	}
	f, st, err := h.loadFlow(ctx, storage.FlowDevice, challenge, false)
	if err != nil {
		return nil, nil, err
	}
	if f.Status == statusUsed {
		return nil, nil, apierr.Conflict("The device request has already been used; the End-User must start again")
	}
	dev := st.Device
	if dev == nil {
		return nil, nil, apierr.ServerError(errors.New("flow: device challenge without its state"))
	}
	if dev.Failures >= MaxUserCodeFailuresPerChallenge {
		return nil, nil, tooManyUserCodes("at this device challenge; the End-User must open the verification URI again")
	}
	if n, err := h.networkFailures(ctx, dev.Network); err != nil {
		return nil, nil, err
	} else if n >= MaxUserCodeFailuresPerIP {
		return nil, nil, tooManyUserCodes("from this network; try again later")
	}
	req, err := h.devices.ClaimUserCode(ctx, body.UserCode, challenge)
	if errors.Is(err, oauth2.ErrUserCode) {
		if err := h.countUserCodeFailure(ctx, challenge, dev.Network); err != nil {
			return nil, nil, err
		}
		return nil, nil, apierr.InvalidRequest("The 'user_code' was not found, has expired or was already used")
	}
	if err != nil {
		return nil, nil, err
	}
	return nil, func(f *storage.Flow, st *state) error {
		if st.Device == nil {
			return apierr.ServerError(errors.New("flow: device challenge without its state"))
		}
		f.Status, f.ClientID = statusAccepted, req.ClientID
		st.Device.Device, st.Device.RequestID = req.Device, req.RequestID
		st.Request = &AuthorizeRequest{ClientID: req.ClientID, Scope: nonNil(req.Scope), Audience: nonNil(req.Audience),
			ResponseTypes: []string{}, MaxAge: -1, ACRValues: []string{}, UILocales: []string{}}
		st.OIDCContext = OIDCContext{ACRValues: []string{}, UILocales: []string{}}
		return nil
	}, nil
}

// tooManyUserCodes is the answer once a brute-force limit is reached.
func tooManyUserCodes(where string) error {
	e := apierr.InvalidRequest("Too many wrong user codes were entered %s", where)
	e.Status = http.StatusTooManyRequests
	return e.WithHeader("Retry-After", strconv.Itoa(int(UserCodeFailureWindow/time.Second)))
}

// failureCounter is the data of a FlowUserCodeFailures row.
type failureCounter struct {
	Failures int `json:"failures"`
}

// counterID is the row counting a network's failures in the current window.
func (h *Handler) counterID(network string) (string, time.Time) {
	window := h.now().UTC().Truncate(UserCodeFailureWindow)
	return network + "." + strconv.FormatInt(window.Unix(), 10), window.Add(UserCodeFailureWindow)
}

// networkFailures is how many wrong user codes came from network in the
// current window.
func (h *Handler) networkFailures(ctx context.Context, network string) (int, error) {
	id, _ := h.counterID(network)
	f, err := h.flows.Get(ctx, storage.FlowUserCodeFailures, id)
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var c failureCounter
	_ = json.Unmarshal(f.Data, &c)
	return c.Failures, nil
}

// countUserCodeFailure records a wrong user code at the challenge and
// for the network.
func (h *Handler) countUserCodeFailure(ctx context.Context, challenge, network string) error {
	_, err := h.flows.Update(ctx, storage.FlowDevice, challenge, func(f *storage.Flow) error {
		var st state
		if err := json.Unmarshal(f.Data, &st); err != nil || st.Device == nil {
			return apierr.ServerError(errors.New("flow: device challenge without its state"))
		}
		st.Device.Failures++
		data, err := json.Marshal(&st)
		f.Data = data
		return err
	})
	if err != nil {
		return err
	}
	h.recent.drop(storage.FlowDevice, challenge)
	id, end := h.counterID(network)
	for attempt := 0; ; attempt++ {
		_, err = h.flows.Update(ctx, storage.FlowUserCodeFailures, id, func(f *storage.Flow) error {
			var c failureCounter
			_ = json.Unmarshal(f.Data, &c)
			c.Failures++
			data, err := json.Marshal(c)
			f.Data = data
			return err
		})
		if !isNotFound(err) {
			return err
		}
		now := h.now().UTC()
		err = h.flows.Create(ctx, storage.Flow{Kind: storage.FlowUserCodeFailures, ID: id, Status: statusPending,
			CreatedAt: now, ExpiresAt: end, Data: json.RawMessage(`{"failures":1}`)})
		// Created by a concurrent failure meanwhile: count on its row.
		if !errors.Is(err, storage.ErrAlreadyExists) || attempt > 0 {
			return err
		}
	}
}

// deviceVerified continues after the app accepted the user code: the
// device challenge is used once, and the login challenge starts.
func (h *Handler) deviceVerified(w http.ResponseWriter, r *http.Request, verifier string) {
	v, a, err := h.loadVerified(r, storage.FlowDevice, verifier, h.opts.Cookies.DeviceCSRF)
	if err == nil {
		err = h.use(r.Context(), w, v, storage.FlowStep{})
	}
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	httpx.Info(r.Context()).ClientID = a.client.ID
	h.startLogin(w, r, a, nil)
}

// deviceGranted finishes a device flow's consent: the consent is
// recorded, the device authorization granted, and the browser sent to
// urls.device.success.
func (h *Handler) deviceGranted(w http.ResponseWriter, r *http.Request, a *authz, v *verified, cs *storage.ConsentSession, g oauth2.GrantSession) {
	ctx := r.Context()
	if err := h.use(ctx, w, v, storage.FlowStep{ConsentSession: cs}); err != nil {
		h.failAfterVerifier(w, r, a, err)
		return
	}
	// The tokens of the grant carry the consent's id as their request id,
	// so revoking the consent revokes them.
	if err := h.devices.GrantDevice(ctx, a.device.Device, v.f.ID, g); err != nil {
		if errors.Is(err, oauth2.ErrUserCode) {
			err = apierr.InvalidRequest("The device authorization has expired or was already decided; start again on the device")
		}
		h.errorPage(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.deviceSuccessURL(), http.StatusFound)
}

// deviceFailed ends a device flow in the browser: the error page, and for
// a rejection by the login or consent app, access_denied for the device.
func (h *Handler) deviceFailed(w http.ResponseWriter, r *http.Request, a *authz, err error) {
	var rj rejection
	if errors.As(err, &rj) && a.device.Device != "" {
		if derr := h.devices.DenyDevice(r.Context(), a.device.Device); derr != nil && !errors.Is(derr, oauth2.ErrUserCode) {
			h.logFlowError("recording the denial of a device authorization failed", derr)
		}
	}
	h.errorPage(w, r, err)
}

// The operator's device pages, or the built-in fallbacks.
func (h *Handler) deviceVerificationURL() string {
	return h.orFallback(h.opts.DeviceVerificationURL, "/oauth2/fallbacks/device")
}
func (h *Handler) deviceSuccessURL() string {
	return h.orFallback(h.opts.DeviceSuccessURL, "/oauth2/fallbacks/device/done")
}

// fallbackDeviceDone is the default page after a device was authorized.
func (h *Handler) fallbackDeviceDone(w http.ResponseWriter, r *http.Request) {
	writePage(w, http.StatusOK, "Your device is connected", "",
		"You have authorized the device. You can close this window and return to it.")
}
