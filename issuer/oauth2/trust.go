package oauth2

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

const (
	trustPath         = "/admin/trust/grants/jwt-bearer/issuers"
	maxTrustIssuerLen = 2048
	maxTrustScopes    = 100
)

// TrustRequest is the body of POST /admin/trust/grants/jwt-bearer/issuers
// (Hydra v2's trustOAuth2JwtGrantIssuer).
type TrustRequest struct {
	Issuer          string          `json:"issuer"`
	Subject         string          `json:"subject,omitempty"`
	AllowAnySubject bool            `json:"allow_any_subject,omitempty"`
	Scope           *[]string       `json:"scope"`
	JWK             json.RawMessage `json:"jwk"`
	ExpiresAt       time.Time       `json:"expires_at"`
}

// TrustedIssuer is a trust relationship as the API renders it (Hydra v2's
// trustedOAuth2JwtGrantIssuer).
type TrustedIssuer struct {
	ID              string        `json:"id"`
	Issuer          string        `json:"issuer"`
	Subject         string        `json:"subject"`
	AllowAnySubject bool          `json:"allow_any_subject"`
	Scope           []string      `json:"scope"`
	PublicKey       TrustedKeyRef `json:"public_key"`
	ExpiresAt       time.Time     `json:"expires_at"`
	CreatedAt       time.Time     `json:"created_at"`
}

// TrustedKeyRef names the trusted public key: Hydra stores it in a key set
// named after the issuer.
type TrustedKeyRef struct {
	Set string `json:"set"`
	KID string `json:"kid"`
}

func trustView(t storage.TrustedIssuer) TrustedIssuer {
	return TrustedIssuer{
		ID: t.ID, Issuer: t.Issuer, Subject: t.Subject, AllowAnySubject: t.AllowAnySubject,
		Scope:     nonNil(t.Scope),
		PublicKey: TrustedKeyRef{Set: t.KeySet, KID: t.KeyID},
		ExpiresAt: t.ExpiresAt.UTC(), CreatedAt: t.CreatedAt.UTC(),
	}
}

// validateTrust checks a trust request as Hydra does, and more strictly
// on the key: it must be one public signature key (RSA, EC or OKP) with a
// kid; private and symmetric keys are refused.
func (h *Handler) validateTrust(in *TrustRequest) (storage.TrustedIssuer, error) {
	bad := apierr.InvalidRequest
	switch {
	case in.Issuer == "":
		return storage.TrustedIssuer{}, bad("The field 'issuer' is required")
	case len(in.Issuer) > maxTrustIssuerLen:
		return storage.TrustedIssuer{}, bad("The field 'issuer' is longer than %d characters", maxTrustIssuerLen)
	case in.Subject == "" && !in.AllowAnySubject:
		return storage.TrustedIssuer{}, bad("One of 'subject' or 'allow_any_subject' must be set")
	case in.Subject != "" && in.AllowAnySubject:
		return storage.TrustedIssuer{}, bad("'subject' and 'allow_any_subject' cannot both be set")
	case len(in.Subject) > maxTrustIssuerLen:
		return storage.TrustedIssuer{}, bad("The field 'subject' is longer than %d characters", maxTrustIssuerLen)
	case in.ExpiresAt.IsZero():
		return storage.TrustedIssuer{}, bad("The field 'expires_at' is required")
	case !in.ExpiresAt.After(h.now()):
		return storage.TrustedIssuer{}, bad("The field 'expires_at' must be in the future")
	case in.Scope == nil:
		return storage.TrustedIssuer{}, bad("The field 'scope' is required (an array of scopes the issuer may grant)")
	case len(*in.Scope) > maxTrustScopes:
		return storage.TrustedIssuer{}, bad("At most %d scopes may be trusted", maxTrustScopes)
	case len(in.JWK) == 0 || string(in.JWK) == "null":
		return storage.TrustedIssuer{}, bad("The field 'jwk' is required")
	}
	var scope []string
	for _, s := range *in.Scope {
		if !ValidScopeToken(s) || len(s) > maxScopeToken {
			return storage.TrustedIssuer{}, bad("The scope %q is not a valid RFC 6749 §3.3 scope token", truncate(s))
		}
		if !contains(scope, s) {
			scope = append(scope, s)
		}
	}
	set, err := client.ParsePublicJWKS([]byte(`{"keys":[` + string(in.JWK) + `]}`))
	if err != nil || set.Len() != 1 {
		msg := "must be one JSON Web Key"
		if err != nil {
			msg = err.Error()
		}
		return storage.TrustedIssuer{}, bad("The field 'jwk' is not a usable public key: %s", strings.TrimPrefix(msg, "key #1 "))
	}
	key, _ := set.Key(0)
	kid, ok := key.KeyID()
	if !ok || kid == "" {
		return storage.TrustedIssuer{}, bad("The field 'jwk' must contain a JWK with a kid")
	}
	pub, err := json.Marshal(key)
	if err != nil {
		return storage.TrustedIssuer{}, bad("The field 'jwk' could not be encoded").WithCause(err)
	}
	return storage.TrustedIssuer{
		Issuer: in.Issuer, Subject: in.Subject, AllowAnySubject: in.AllowAnySubject,
		Scope: nonNil(scope), KeySet: in.Issuer, KeyID: kid, PublicKey: pub,
		ExpiresAt: in.ExpiresAt.UTC(),
	}, nil
}

func (h *Handler) trustCreate(w http.ResponseWriter, r *http.Request) {
	var in TrustRequest
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	t, err := h.validateTrust(&in)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	t.ID = uuid.NewString()
	t.CreatedAt = h.now().UTC().Truncate(time.Second)
	if err := h.trust.Create(r.Context(), t); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			err = apierr.Conflict("A trust relationship for this issuer, subject and key id already exists").WithCause(err)
		}
		httpx.WriteError(w, r, err)
		return
	}
	h.log.Info("trusted a jwt-bearer issuer", zap.String("trust_id", t.ID), zap.String("issuer", t.Issuer), zap.String("kid", t.KeyID))
	httpx.WriteJSON(w, http.StatusCreated, trustView(t))
}

func trustNotFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return apierr.NotFound("The trust relationship does not exist").WithCause(err)
	}
	return err
}

func (h *Handler) trustGet(w http.ResponseWriter, r *http.Request) {
	t, err := h.trust.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, trustNotFound(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, trustView(t))
}

func (h *Handler) trustDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.trust.Delete(r.Context(), r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, trustNotFound(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// trustList is GET /admin/trust/grants/jwt-bearer/issuers with Hydra's
// issuer filter and page_size/page_token pagination (Link header), ordered
// by id.
func (h *Handler) trustList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := client.DefaultPageSize
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			httpx.WriteError(w, r, apierr.InvalidRequest("page_size must be a positive integer"))
			return
		}
		size = min(n, client.MaxPageSize)
	}
	after, err := httpx.PageToken(q)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	issuer := q.Get("issuer")
	all, err := h.trust.List(r.Context(), issuer)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	slices.SortFunc(all, func(a, b storage.TrustedIssuer) int { return strings.Compare(a.ID, b.ID) })
	out := make([]TrustedIssuer, 0, min(size, len(all)))
	more := false
	for _, t := range all {
		if t.ID <= after {
			continue
		}
		if len(out) == size {
			more = true
			break
		}
		out = append(out, trustView(t))
	}
	link := func(token, rel string) string {
		v := url.Values{}
		v.Set("page_size", strconv.Itoa(size))
		if token != "" {
			v.Set("page_token", token)
		}
		if issuer != "" {
			v.Set("issuer", issuer)
		}
		return "<" + r.URL.Path + "?" + v.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link("", "first")}
	if more {
		links = append(links, link(httpx.NextPageToken(out[len(out)-1].ID), "next"))
	}
	w.Header().Set("Link", strings.Join(links, ","))
	httpx.WriteJSON(w, http.StatusOK, out)
}
