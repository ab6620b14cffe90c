package main

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/flow"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// flowOptions maps the configuration to the authorization flow's settings.
func flowOptions(cfg *config.Config) flow.Options {
	ck := cfg.Serve.Cookies
	opts := flow.Options{
		IssuerURL: cfg.URLs.Self.Issuer, PublicURL: cfg.PublicURL(),
		LoginURL: cfg.URLs.Login, ConsentURL: cfg.URLs.Consent, LogoutURL: cfg.URLs.Logout,
		ErrorURL: cfg.URLs.Error, PostLogoutRedirectURL: cfg.URLs.PostLogoutRedirect,
		DeviceVerificationURL: cfg.URLs.Device.Verification, DeviceSuccessURL: cfg.URLs.Device.Success,
		ChallengeLifespan: cfg.TTL.LoginConsentRequest, UnrememberedLifespan: cfg.TTL.RefreshToken,
		Scopes: oauth2.ScopeStrategyFor(cfg.Strategies.Scope),
		PKCE: flow.PKCE{Enforced: cfg.OAuth2.PKCE.Enforced, EnforcedForPublicClients: cfg.OAuth2.PKCE.EnforcedForPublicClients,
			AllowPlain: cfg.OAuth2.PKCE.AllowPlain},
		PairwiseSalt: cfg.OIDC.SubjectIdentifiers.Pairwise.Salt,
		SubjectTypes: cfg.OIDC.SubjectIdentifiers.SupportedTypes,
		Cookies: flow.CookieOptions{Session: ck.Names.Session, LoginCSRF: ck.Names.LoginCSRF, ConsentCSRF: ck.Names.ConsentCSRF,
			DeviceCSRF: ck.Names.DeviceCSRF, Domain: ck.Domain, Secure: secureCookies(cfg)},
		PAR: flow.PAR{Required: cfg.OAuth2.PushedAuthorizationRequests.Required,
			Lifespan: cfg.OAuth2.PushedAuthorizationRequests.RequestURILifespan},
		FAPI: fapiEverywhere(cfg),
	}
	opts.RegistrationURL = cfg.URLs.Registration
	switch ck.SameSiteMode {
	case "Strict":
		opts.Cookies.SameSite = http.SameSiteStrictMode
	case "None":
		opts.Cookies.SameSite = http.SameSiteNoneMode
	default:
		opts.Cookies.SameSite = http.SameSiteLaxMode
	}
	return opts
}

// secureCookies decides the Secure attribute of the issuer's cookies:
// serve.cookies.secure when set; else on, except for --dev with a
// plain-http issuer (where a Secure cookie could not come back from a
// non-loopback host). Browsers (and Go's cookie jar) treat loopback hosts
// as secure origins, so Secure cookies work on http://127.0.0.1 too.
func secureCookies(cfg *config.Config) bool {
	if s := cfg.Serve.Cookies.Secure; s != nil {
		return *s
	}
	u, err := url.Parse(cfg.URLs.Self.Issuer)
	if err == nil && u.Scheme == "http" && cfg.Dev {
		return false
	}
	return true
}
