package main

import (
	"errors"
	"net/http"
)

// The device flow (RFC 8628, Hydra v25's admin API): the issuer sends the
// browser to /device?device_challenge=...[&user_code=...]; the app asks
// for the code the device shows and accepts it with
// PUT /admin/oauth2/auth/requests/device/accept {"user_code": ...}. The
// browser then goes through the app's own login and consent pages and
// ends at /device/done (the issuer's URLS_DEVICE_SUCCESS).

type devicePage struct {
	Challenge, CSRF, UserCode, Error string
}

func (a *App) deviceGet(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "device")
	if !ok {
		return
	}
	// The code from the device's verification_uri_complete is only a
	// suggestion: the End-User confirms it by submitting the form.
	a.render(w, http.StatusOK, "device.html", devicePage{Challenge: chal, CSRF: a.csrf.token(w, r, chal),
		UserCode: r.URL.Query().Get("user_code")})
}

func (a *App) devicePost(w http.ResponseWriter, r *http.Request) {
	chal, ok := challenge(w, r, a, "device")
	if !ok || !a.checkCSRF(w, r, chal) {
		return
	}
	code := r.PostFormValue("user_code")
	again := func(msg string) {
		a.render(w, http.StatusOK, "device.html", devicePage{Challenge: chal, CSRF: a.csrf.token(w, r, chal), UserCode: code, Error: msg})
	}
	if code == "" {
		again("Enter the code your device shows.")
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	to, err := a.Admin.AcceptUserCode(ctx, chal, code)
	var ae *AdminError
	switch {
	case err == nil:
		http.Redirect(w, r, to, http.StatusFound)
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		a.Log.Info("device: a wrong, expired or used user code")
		again("That code is wrong or has expired. Check the code on your device and try again.")
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		a.fail(w, http.StatusTooManyRequests, "Too many wrong codes were entered. Wait a few minutes, then open the link your device shows again.")
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		a.fail(w, http.StatusConflict, "This code entry page was already used. Open the link your device shows again.")
	default:
		a.adminFailed(w, r, "device", err)
	}
}

func (a *App) deviceDone(w http.ResponseWriter, _ *http.Request) {
	a.render(w, http.StatusOK, "device_done.html", nil)
}
