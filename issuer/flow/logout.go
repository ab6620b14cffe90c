package flow

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// backchannelEvent is the events member of a logout token (OpenID Connect
// Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logout is the end_session_endpoint (OpenID Connect RP-Initiated Logout
// 1.0 §2, GET and POST): it checks the request, then hands the End-User
// to the logout app with a logout challenge. The same endpoint receives the
// browser back with a logout_verifier and ends the session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, ok := h.browserForm(w, r)
	if !ok {
		return
	}
	for _, p := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_verifier"} {
		if _, err := httpx.SingleValue(form, p); err != nil {
			h.errorPage(w, r, err)
			return
		}
	}
	if v := form.Get("logout_verifier"); v != "" {
		h.logoutVerified(w, r, v)
		return
	}
	hint, redirect, rpState, clientID := form.Get("id_token_hint"), form.Get("post_logout_redirect_uri"), form.Get("state"), form.Get("client_id")
	var hintSub, hintSID string
	if hint != "" {
		claims, err := h.verifyIDTokenHint(ctx, hint)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		hintSub, _ = claims["sub"].(string)
		hintSID, _ = claims["sid"].(string)
		aud := audiences(claims["aud"])
		// §2: "if both client_id and id_token_hint are present, the OP
		// MUST verify that the Client Identifier matches the one used when
		// issuing the ID Token".
		if clientID != "" && !slices.Contains(aud, clientID) {
			h.errorPage(w, r, apierr.InvalidRequest("The client_id does not match the audience of the id_token_hint"))
			return
		}
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
			if azp, _ := claims["azp"].(string); azp != "" {
				clientID = azp
			}
		}
	}
	var c *client.Client
	if clientID != "" {
		var err error
		c, err = h.clients.Get(ctx, clientID)
		if err != nil {
			h.errorPage(w, r, apierr.InvalidRequest("The client of this logout request does not exist"))
			return
		}
	}
	if redirect != "" {
		// §3: the URI must exactly match a registered
		// post_logout_redirect_uri of the client identified by the
		// request; without a client it cannot be trusted.
		if c == nil {
			h.errorPage(w, r, apierr.InvalidRequest("A post_logout_redirect_uri needs an id_token_hint or client_id identifying its client"))
			return
		}
		if !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			h.errorPage(w, r, apierr.InvalidRequest("The post_logout_redirect_uri is not registered for this client"))
			return
		}
	}
	// The session to end: the one the id_token_hint names (as Hydra does,
	// so that logout works where the browser withholds the issuer's
	// cookie), else the browser's remembered session.
	var sess *storage.LoginSession
	if hintSID != "" {
		s, err := h.loginSessions.Get(ctx, hintSID)
		if err != nil && !isNotFound(err) {
			h.errorPage(w, r, apierr.ServerError(err))
			return
		}
		if err == nil && s.Subject != "" && (s.ExpiresAt.IsZero() || h.now().Before(s.ExpiresAt)) {
			sess = &s
		}
	}
	if sess == nil {
		cur, err := h.currentSession(r)
		if err != nil {
			h.errorPage(w, r, apierr.ServerError(err))
			return
		}
		if cur != nil && hint != "" {
			// The hint is about another session: make sure it is about
			// the same End-User before logging that End-User out here.
			sub, err := h.idTokenSubject(c, cur.Subject, "")
			if err != nil || sub != hintSub {
				h.errorPage(w, r, apierr.InvalidRequest("The id_token_hint does not belong to the End-User logged in at this browser"))
				return
			}
		}
		sess = cur
	}
	if sess == nil {
		// Nobody is logged in: nothing to end.
		h.jar.clear(w, h.opts.Cookies.Session)
		http.Redirect(w, r, h.afterLogoutURL(redirect, rpState), http.StatusFound)
		return
	}
	now := h.now().UTC()
	challenge := newChallenge()
	st := state{Request: &AuthorizeRequest{}, RequestURL: h.opts.PublicURL + "/oauth2/sessions/logout?" + form.Encode(),
		RequestedAt: now, RPInitiated: hint != "" || clientID != "", PostLogoutRedirectURI: redirect, LogoutState: rpState}
	f := storage.Flow{Kind: storage.FlowLogout, ID: challenge, Subject: sess.Subject, SessionID: sess.ID,
		Status: statusPending, CreatedAt: now, ExpiresAt: now.Add(h.opts.ChallengeLifespan)}
	if c != nil {
		f.ClientID = c.ID
	}
	if c != nil && c.SkipLogoutConsent {
		// Hydra's skip_logout_consent: no logout screen for this client.
		f.Status = statusUsed
		if err := h.createFlow(ctx, f, &st); err != nil {
			h.errorPage(w, r, apierr.ServerError(err))
			return
		}
		h.finishLogout(w, r, &f, &st)
		return
	}
	if err := h.createFlow(ctx, f, &st); err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	http.Redirect(w, r, withQuery(h.logoutURL(), url.Values{"logout_challenge": {challenge}}), http.StatusFound)
}

// afterLogoutURL is where the browser goes once logged out: the client's
// post_logout_redirect_uri with state (RP-Initiated Logout §3), else
// urls.post_logout_redirect.
func (h *Handler) afterLogoutURL(redirect, state string) string {
	if redirect == "" {
		return h.postLogoutURL()
	}
	if state == "" {
		return redirect
	}
	return withQuery(redirect, url.Values{"state": {state}})
}

// describeLogout is Hydra's answer to GET .../requests/logout; the client
// is left out when it no longer exists.
func (h *Handler) describeLogout(ctx context.Context, f *storage.Flow, st *state) (any, error) {
	lr := LogoutRequest{Challenge: f.ID, Subject: f.Subject, SessionID: f.SessionID, RequestURL: st.RequestURL,
		RPInitiated: st.RPInitiated}
	if f.ClientID != "" {
		if c, err := h.clients.Get(ctx, f.ClientID); err == nil {
			lr.Client = c
		}
	}
	return lr, nil
}

// logoutDoneURL is where the browser of a used logout challenge goes.
func (h *Handler) logoutDoneURL(st *state) string {
	return h.afterLogoutURL(st.PostLogoutRedirectURI, st.LogoutState)
}

// logoutEndpointURL is where the browser continues with a logout
// verifier.
func (h *Handler) logoutEndpointURL(*state) string {
	return h.opts.PublicURL + "/oauth2/sessions/logout"
}

// logoutVerified ends the session once the logout app accepted.
func (h *Handler) logoutVerified(w http.ResponseWriter, r *http.Request, verifier string) {
	ctx := r.Context()
	challenge, secret, ok := splitVerifier(verifier)
	if !ok {
		h.errorPage(w, r, apierr.InvalidRequest("The logout verifier is malformed"))
		return
	}
	unusable := func() {
		h.errorPage(w, r, apierr.InvalidRequest("The logout verifier is unknown, expired or was already used"))
	}
	f, err := h.flows.Get(ctx, storage.FlowLogout, challenge)
	if isNotFound(err) {
		unusable()
		return
	}
	if err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	var st state
	if err := json.Unmarshal(f.Data, &st); err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	if st.Verifier == "" || hashOf(secret) != st.Verifier || f.Status != statusAccepted {
		unusable()
		return
	}
	if !h.now().Before(f.ExpiresAt) {
		h.errorPage(w, r, apierr.InvalidRequest("The logout request has expired"))
		return
	}
	// Used once (Step, which commits synchronously): only if the flow is
	// still as read.
	err = h.flows.Step(ctx, storage.FlowStep{Flow: f, Status: statusUsed})
	if errors.Is(err, storage.ErrConflict) {
		unusable()
		return
	}
	if err != nil {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	h.finishLogout(w, r, &f, &st)
}

// finishLogout ends the login session, notifies the clients that took
// part in it (back-channel now, front-channel through the browser) and
// sends the browser on.
func (h *Handler) finishLogout(w http.ResponseWriter, r *http.Request, f *storage.Flow, st *state) {
	ctx := r.Context()
	sid := f.SessionID
	clients, err := h.sessionClients(ctx, sid)
	if err != nil {
		h.logFlowError("logout: listing the clients of a session", err)
	}
	if err := h.loginSessions.Delete(ctx, sid, h.sessionEnded(sid, f.Subject)); err != nil && !isNotFound(err) {
		h.errorPage(w, r, apierr.ServerError(err))
		return
	}
	h.jar.clear(w, h.opts.Cookies.Session)
	h.notifyBackchannel(ctx, sid, clients)
	next := h.afterLogoutURL(st.PostLogoutRedirectURI, st.LogoutState)
	var frames []string
	for _, sc := range clients {
		if sc.client.FrontchannelLogoutURI == "" {
			continue
		}
		// Front-Channel Logout §2: iss and sid as query parameters (always
		// added, as Hydra does; required when the client registered
		// frontchannel_logout_session_required).
		frames = append(frames, withQuery(sc.client.FrontchannelLogoutURI, url.Values{"iss": {h.opts.IssuerURL}, "sid": {sid}}))
	}
	if len(frames) == 0 {
		http.Redirect(w, r, next, http.StatusFound)
		return
	}
	writeFrontchannelPage(w, frames, next)
}

// sessionClient is a client that received tokens in a login session, with
// the subject identifier it knows the End-User by.
type sessionClient struct {
	client  *client.Client
	subject string
}

// sessionClients returns the clients that were granted consent in the
// login session sid.
func (h *Handler) sessionClients(ctx context.Context, sid string) ([]sessionClient, error) {
	list, err := h.consentSessions.List(ctx, storage.ConsentFilter{LoginSessionID: sid})
	if err != nil || sid == "" {
		return nil, err
	}
	var out []sessionClient
	for _, cs := range list {
		if slices.ContainsFunc(out, func(s sessionClient) bool { return s.client.ID == cs.ClientID }) {
			continue
		}
		c, err := h.clients.Get(ctx, cs.ClientID)
		if err != nil {
			continue
		}
		var d consentData
		_ = json.Unmarshal(cs.Data, &d)
		sub := d.IDTokenSubject
		if sub == "" {
			sub = cs.Subject
		}
		out = append(out, sessionClient{client: c, subject: sub})
	}
	return out, nil
}

// backchannelLogout notifies the clients of session sid (admin session
// revocation).
func (h *Handler) backchannelLogout(ctx context.Context, sid string) {
	clients, err := h.sessionClients(ctx, sid)
	if err != nil {
		h.logFlowError("logout: listing the clients of a session", err)
		return
	}
	h.notifyBackchannel(ctx, sid, clients)
}

// notifyBackchannel posts a logout token to every client of the session
// with a backchannel_logout_uri, all at once, and waits for them within a
// bounded time (Back-Channel Logout §2.5: the OP sends, the RP answers 200;
// failures are logged, they never block the End-User's logout).
func (h *Handler) notifyBackchannel(ctx context.Context, sid string, clients []sessionClient) {
	if h.outbound == nil {
		return
	}
	var wg sync.WaitGroup
	// Detached from the browser's request, bounded by our own timeout.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*h.opts.BackchannelTimeout)
	defer cancel()
	for _, sc := range clients {
		if sc.client.BackchannelLogoutURI == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.sendLogoutToken(bctx, sc, sid); err != nil {
				h.logger.Warn("back-channel logout failed", zap.String("client_id", sc.client.ID), zap.Error(err))
			}
		}()
	}
	wg.Wait()
}

// sendLogoutToken signs a logout token (Back-Channel Logout §2.4) and POSTs
// it (§2.5) with retries on network errors and 5xx answers.
func (h *Handler) sendLogoutToken(ctx context.Context, sc sessionClient, sid string) error {
	now := h.now().UTC()
	claims := map[string]any{
		"iss": h.opts.IssuerURL, "aud": []string{sc.client.ID}, "iat": now.Unix(),
		// §2.4: short-lived; two minutes as the spec suggests.
		"exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString(),
		"events": map[string]any{backchannelEvent: map[string]any{}},
		"sub":    sc.subject,
	}
	if sid != "" {
		claims["sid"] = sid
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	// §2.4 (and RFC 8417): typ logout+jwt keeps it from being taken for an ID token.
	tok, err := h.keys.Sign(ctx, oauth2.IDTokenKeySet, "logout+jwt", payload)
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {tok}}.Encode()
	var last error
	for attempt := 0; attempt < h.opts.BackchannelAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return last
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		actx, cancel := context.WithTimeout(ctx, h.opts.BackchannelTimeout)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, sc.client.BackchannelLogoutURI, strings.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := h.outbound.Do(req)
		if err != nil {
			cancel()
			last = err
			if strings.Contains(err.Error(), "safehttp") {
				return err // refused by the SSRF guard: no retry
			}
			continue
		}
		resp.Body.Close()
		cancel()
		switch {
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
			return nil
		case resp.StatusCode >= 500:
			last = &apierr.Error{Code: "backchannel_logout_failed", Description: resp.Status}
			continue
		default:
			// §2.8: a 400 means the RP refused the token: no retry.
			return &apierr.Error{Code: "backchannel_logout_refused", Description: resp.Status}
		}
	}
	return last
}

var frontchannelTmpl = template.Must(template.New("frontchannel").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing out</title></head>
<body><p>Signing you out of every application&hellip;</p>
{{range .Frames}}<iframe src="{{.}}" style="display:none" width="0" height="0"></iframe>
{{end}}<p><a id="next" href="{{.Next}}">Continue</a></p>
<script>
(function () {
  var next = document.getElementById("next").href, left = {{len .Frames}}, done = false;
  function go() { if (!done) { done = true; window.location.replace(next); } }
  Array.prototype.forEach.call(document.getElementsByTagName("iframe"), function (f) {
    f.addEventListener("load", function () { if (--left <= 0) { go(); } });
  });
  setTimeout(go, 5000);
})();
</script></body></html>
`))

// writeFrontchannelPage renders the OP's logout page with one hidden
// iframe per client frontchannel_logout_uri (Front-Channel Logout §4),
// then moves on once they have loaded (or after 5 seconds).
func writeFrontchannelPage(w http.ResponseWriter, frames []string, next string) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	urls := make([]template.URL, len(frames))
	for i, f := range frames {
		urls[i] = template.URL(f)
	}
	_ = frontchannelTmpl.Execute(w, struct {
		Frames []template.URL
		Next   template.URL
	}{urls, template.URL(next)})
}
