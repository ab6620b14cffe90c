package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// `gatehouse perform device-code` plays an RFC 8628 device: it asks for a
// device authorization, prints the verification URI and the user code,
// polls the token endpoint at the interval (honouring slow_down) until the
// End-User decided, and prints the tokens as `perform authorization-code`
// does.

// deviceFlow is one run's settings.
type deviceFlow struct {
	perform
	deviceURL string
}

// deviceAuthorization is RFC 8628 §3.2's response.
type deviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

func newDeviceCodeCmd() *cobra.Command {
	f := &deviceFlow{}
	cmd := f.command("device-code", "Get tokens with the device authorization grant (RFC 8628), logging in on another device",
		"Requests a device authorization, prints the verification URI and the user code to enter there, then polls\n"+
			"the token endpoint at the interval the issuer asks (5 s more after each slow_down) until the End-User has\n"+
			"decided, and prints the tokens. The client needs the grant type urn:ietf:params:oauth:grant-type:device_code.",
		"until the device code expires or Ctrl-C", f.run)
	cmd.Flags().StringVar(&f.deviceURL, "device-url", "", "device authorization endpoint (default <endpoint>/oauth2/device/auth)")
	return cmd
}

func (f *deviceFlow) run(ctx context.Context, cmd *cobra.Command) error {
	if f.cred.id == "" {
		return errors.New("--client-id is required")
	}
	base, tokenURL, err := f.tokenEndpoint()
	if err != nil {
		return err
	}
	deviceURL := f.deviceURL
	if deviceURL == "" {
		deviceURL = base + "/oauth2/device/auth"
	}
	for _, u := range []struct{ flag, v string }{{"--device-url", deviceURL}, {"--token-url", tokenURL}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s %q is not an http(s) URL", u.flag, u.v)
		}
	}

	// RFC 8628 §3.1.
	v := url.Values{}
	if len(f.scope) > 0 {
		v.Set("scope", strings.Join(f.scope, " "))
	}
	if len(f.audience) > 0 {
		v.Set("audience", strings.Join(f.audience, " "))
	}
	var da deviceAuthorization
	if oerr, err := f.post(ctx, deviceURL, v, &da); err != nil {
		return err
	} else if oerr != nil {
		return fmt.Errorf("the device authorization failed: %s", oerr)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return errors.New("the device authorization endpoint answered without device_code, user_code or verification_uri")
	}
	errw := cmd.ErrOrStderr()
	fmt.Fprintf(errw, "Open %s and enter the code:\n\n    %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(errw, "or open %s\n\n", da.VerificationURIComplete)
	}
	if da.ExpiresIn > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(da.ExpiresIn)*time.Second+time.Second)
		defer cancel()
	}

	// RFC 8628 §3.5: "If no value is provided, clients MUST use 5 as the
	// default"; slow_down adds 5 seconds for this and every later request.
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return fmt.Errorf("no decision before the device code expired or the run ended: %v", context.Cause(ctx))
		}
		var tok tokenResponse
		oerr, err := f.post(ctx, tokenURL, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {da.DeviceCode}}, &tok)
		if err != nil {
			return err
		}
		switch {
		case oerr == nil:
			if tok.AccessToken == "" {
				return errors.New("the token endpoint answered without an access_token")
			}
			return printTokens(cmd, &f.r, &tok)
		case oerr.Code == "authorization_pending":
		case oerr.Code == "slow_down":
			interval += 5 * time.Second
			fmt.Fprintf(errw, "The issuer asked to slow down: polling every %s.\n", interval)
		default:
			return fmt.Errorf("the token endpoint answered %s", oerr)
		}
	}
}

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) String() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// post sends form (with the client's credentials) to u. A JSON error
// answer is returned as an oauthError; err is a transport failure or an
// answer that is neither.
func (f *deviceFlow) post(ctx context.Context, u string, form url.Values, out any) (*oauthError, error) {
	body, auth := f.cred.form(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := f.r.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not reach %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e oauthError
		if json.Unmarshal(raw, &e) == nil && e.Code != "" {
			return &e, nil
		}
		return nil, fmt.Errorf("POST %s failed (HTTP %d)", u, resp.StatusCode)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("unexpected answer from %s: %v", u, err)
	}
	return nil, nil
}
