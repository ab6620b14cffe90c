package oauth2

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The RFC 8628 device authorization grant, token side: the device
// authorization endpoint (§3.1, §3.2), and what the flow package's user
// code entry and consent call (ClaimUserCode, GrantDevice, DenyDevice).
// The token endpoint's grant is in device_code.go.
//
// A device authorization is two rows of the token store with one request
// ID: the device code (KindDeviceCode, keyed like an opaque token by its
// MAC, never the code itself) holding the request, the polling state and
// the user's decision; and the user code (KindUserCode, keyed by the MAC
// of the normalised code) naming its device code and the device
// challenge that claimed it.

// DevicePath is the device authorization endpoint; DeviceVerifyPath is
// the verification_uri, served by the flow package.
const (
	DevicePath       = "/oauth2/device/auth"
	DeviceVerifyPath = "/oauth2/device/verify"
)

var opaqueDeviceCode = opaqueKind{prefix: "ory_dc_", purpose: "oauth2/device_code", kind: storage.KindDeviceCode}

func init() { opaqueKinds = append(opaqueKinds, opaqueDeviceCode) }

// userCodePurpose separates the MACs of user codes from every other MAC.
const userCodePurpose = "oauth2/user_code"

// DeviceOptions are the device authorization grant's settings.
type DeviceOptions struct {
	// Lifespan is the lifetime of device and user codes (default 10m);
	// Interval the minimum polling interval (default 5s, whole seconds).
	Lifespan time.Duration
	Interval time.Duration
	// UserCodeLength characters drawn from UserCodeAlphabet (default 8
	// of BCDFGHJKLMNPQRSTVWXZ, RFC 8628 §6.1). The alphabet is used upper
	// case: codes are compared case-insensitively.
	UserCodeLength   int
	UserCodeAlphabet string
}

// Device statuses (deviceState.Status).
const (
	devicePending = "pending"
	deviceGranted = "granted"
	deviceDenied  = "denied"
)

// deviceState is the device part of a device code's session.
type deviceState struct {
	Status string `json:"status"`
	// Interval is the polling interval in seconds, grown by slow_down.
	Interval int64 `json:"interval"`
	// LastPoll is when the device last polled (zero: never).
	LastPoll time.Time `json:"last_poll,omitzero"`
	// Scope and Audience are what the device asked for.
	Scope    []string `json:"scope"`
	Audience []string `json:"audience"`
	// GrantRequest is the request ID of the tokens the grant issues: the
	// consent's, so that revoking the consent revokes them.
	GrantRequest string `json:"grant_request,omitempty"`
}

// userCodeData is a user code row's data.
type userCodeData struct {
	// Device is the signature of the device code.
	Device   string   `json:"device"`
	Scope    []string `json:"scope"`
	Audience []string `json:"audience"`
	// ClaimedBy is the device challenge the code was entered at.
	ClaimedBy string `json:"claimed_by,omitempty"`
}

// deviceAuthorizationResponse is RFC 8628 §3.2's response.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// deviceDefaults fills the zero DeviceOptions.
func (o *DeviceOptions) defaults() error {
	if o.Lifespan <= 0 {
		o.Lifespan = 10 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Interval%time.Second != 0 {
		return fmt.Errorf("oauth2: Options.Device.Interval must be whole seconds, got %s", o.Interval)
	}
	if o.UserCodeAlphabet == "" {
		o.UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	}
	o.UserCodeAlphabet = strings.ToUpper(o.UserCodeAlphabet)
	if o.UserCodeLength <= 0 {
		o.UserCodeLength = 8
	}
	if len([]rune(o.UserCodeAlphabet)) < 2 {
		return errors.New("oauth2: Options.Device.UserCodeAlphabet needs at least 2 characters")
	}
	return nil
}

// deviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1): the client authenticates as at the token endpoint (a public
// client sends its client_id), and receives a device code to poll with
// and a user code for the End-User to enter at the verification URI.
func (h *Handler) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	resp, err := h.handleDeviceAuthorization(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (h *Handler) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) (*deviceAuthorizationResponse, error) {
	ctx := r.Context()
	if err := httpx.ParseForm(w, r); err != nil {
		return nil, err
	}
	rawScope, err := httpx.SingleValue(r.PostForm, "scope")
	if err != nil {
		return nil, err
	}
	scope, err := parseScope(rawScope)
	if err != nil {
		return nil, err
	}
	audience, err := parseAudience(r.PostForm["audience"])
	if err != nil {
		return nil, err
	}
	c, err := h.auth.Authenticate(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	// RFC 8628 §3.1 leaves the client's permission to the server; as for
	// the token endpoint, the client must be allowed the grant.
	if !c.HasGrantType(client.GrantDeviceCode) {
		return nil, apierr.UnauthorizedClient("The OAuth 2.0 Client is not allowed to use the authorization grant %q", client.GrantDeviceCode)
	}
	if err := checkScopes(h.scopes, c.Scopes(), scope, "The OAuth 2.0 Client"); err != nil {
		return nil, err
	}
	if _, err := AllowedTargets(c, audience); err != nil {
		return nil, err
	}
	o := h.opts.Device
	now := h.now().UTC().Truncate(time.Second)
	exp := now.Add(o.Lifespan)
	requestID := newTimeOrderedID()
	deviceCode, deviceSig, err := newOpaque(h.mac, opaqueDeviceCode, h.now())
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	data, err := json.Marshal(session{Scope: nonNil(scope), Audience: nonNil(audience), TokenUse: "device_code",
		GrantType: client.GrantDeviceCode, Format: formatOpaque,
		Device: &deviceState{Status: devicePending, Interval: int64(o.Interval / time.Second), Scope: nonNil(scope), Audience: nonNil(audience)}})
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	ucData, err := json.Marshal(userCodeData{Device: deviceSig, Scope: nonNil(scope), Audience: nonNil(audience)})
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	// The user code is recorded first: a code already handed out (a
	// collision, likelier the shorter the codes) is drawn again.
	var userCode string
	for attempt := 0; ; attempt++ {
		userCode, err = randomUserCode(o.UserCodeLength, o.UserCodeAlphabet)
		if err != nil {
			return nil, apierr.ServerError(err)
		}
		err = h.tokens.Create(ctx, storage.Token{Kind: storage.KindUserCode, Signature: h.userCodeSignature(userCode),
			RequestID: requestID, ClientID: c.ID, Active: true, IssuedAt: now, ExpiresAt: exp, Data: ucData})
		if !errors.Is(err, storage.ErrAlreadyExists) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return nil, apierr.ServerError(fmt.Errorf("oauth2: recording the user code: %w", err))
	}
	if err := h.tokens.Create(ctx, storage.Token{Kind: storage.KindDeviceCode, Signature: deviceSig, RequestID: requestID,
		ClientID: c.ID, Active: true, IssuedAt: now, ExpiresAt: exp, Data: data}); err != nil {
		return nil, apierr.ServerError(fmt.Errorf("oauth2: recording the device code: %w", err))
	}
	verify := h.opts.PublicURL + DeviceVerifyPath
	return &deviceAuthorizationResponse{
		DeviceCode: deviceCode, UserCode: userCode, VerificationURI: verify,
		VerificationURIComplete: verify + "?" + url.Values{"user_code": {userCode}}.Encode(),
		ExpiresIn:               int64(o.Lifespan / time.Second), Interval: int64(o.Interval / time.Second),
	}, nil
}

// randomUserCode draws n characters of alphabet uniformly.
func randomUserCode(n int, alphabet string) (string, error) {
	runes := []rune(alphabet)
	max := big.NewInt(int64(len(runes)))
	var b strings.Builder
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteRune(runes[i.Int64()])
	}
	return b.String(), nil
}

// NormalizeUserCode is a user code as compared: upper case, without the
// separators (dashes, spaces and other punctuation) people type or the
// device displays (RFC 8628 §6.1: "case-insensitive", "ignore any
// separator characters"). Codes longer than 64 characters normalise to "".
func NormalizeUserCode(s string) string {
	if len(s) > 256 {
		return ""
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	if b.Len() > 64 {
		return ""
	}
	return b.String()
}

// userCodeSignature is the stored key of a user code: the MAC of the
// normalised code, so the database holds nothing a person could type.
func (h *Handler) userCodeSignature(code string) string {
	return b64.EncodeToString(h.mac.MAC(userCodePurpose, []byte(NormalizeUserCode(code))))
}

// DeviceRequest is a device authorization as the End-User's browser sees
// it once the user code was entered.
type DeviceRequest struct {
	// Device is the device code's signature, RequestID the grant's.
	Device    string
	RequestID string
	ClientID  string
	Scope     []string
	Audience  []string
}

// ErrUserCode is the answer to a user code that is unknown, expired,
// already entered at another device challenge, or whose device was
// already decided. The four are not told apart (RFC 8628 §5.1).
var ErrUserCode = errors.New("oauth2: unknown, expired or used user code")

// ClaimUserCode binds the device authorization of userCode to the device
// challenge: a user code is entered at one challenge only (entering it
// again at the same challenge is allowed: the app may accept again).
func (h *Handler) ClaimUserCode(ctx context.Context, userCode, challenge string) (*DeviceRequest, error) {
	norm := NormalizeUserCode(userCode)
	if norm == "" {
		return nil, ErrUserCode
	}
	var ud userCodeData
	t, err := h.tokens.Update(ctx, storage.KindUserCode, h.userCodeSignature(norm), func(t *storage.Token) error {
		if !t.Active || !h.now().Before(t.ExpiresAt) {
			return ErrUserCode
		}
		if err := json.Unmarshal(t.Data, &ud); err != nil {
			return err
		}
		if ud.ClaimedBy != "" && ud.ClaimedBy != challenge {
			return ErrUserCode
		}
		ud.ClaimedBy = challenge
		var err error
		t.Data, err = json.Marshal(ud)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalid) {
		return nil, ErrUserCode
	}
	if err != nil {
		return nil, err
	}
	return &DeviceRequest{Device: ud.Device, RequestID: t.RequestID, ClientID: t.ClientID,
		Scope: ud.Scope, Audience: ud.Audience}, nil
}

// GrantDevice records what the End-User granted the device: its next
// poll receives the tokens, with requestID (the consent's) as their
// request ID. ErrUserCode if the device authorization expired or was
// decided before.
func (h *Handler) GrantDevice(ctx context.Context, device, requestID string, g GrantSession) error {
	return h.decideDevice(ctx, device, func(s *session) {
		s.Device.Status, s.Device.GrantRequest, s.Grant = deviceGranted, requestID, &g
		s.Scope, s.Audience = nonNil(g.GrantedScope), nonNil(g.GrantedAudience)
	})
}

// DenyDevice records that the End-User (the login or consent app)
// rejected the device's request: its next poll receives access_denied.
func (h *Handler) DenyDevice(ctx context.Context, device string) error {
	return h.decideDevice(ctx, device, func(s *session) { s.Device.Status = deviceDenied })
}

func (h *Handler) decideDevice(ctx context.Context, device string, decide func(*session)) error {
	_, err := h.tokens.Update(ctx, storage.KindDeviceCode, device, func(t *storage.Token) error {
		s, err := decodeSession(t.Data)
		if err != nil {
			return err
		}
		if s.Device == nil || s.Device.Status != devicePending || !t.Active || !h.now().Before(t.ExpiresAt) {
			return ErrUserCode
		}
		decide(s)
		t.Subject = ""
		if s.Grant != nil {
			t.Subject = s.Grant.Subject
		}
		t.Data, err = json.Marshal(s)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrUserCode
	}
	return err
}
