package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/bench/internal/dpopsign"
)

// dpopProofMaxAge is the oauth2.dpop.proof_max_age of the issuers this
// program starts: proofs are signed before a scenario's window (so that
// the generator's signatures do not take the issuer's cores), and must
// still be accepted at its end.
const dpopProofMaxAge = "10m"

// dpopProofs hands out ES256 DPoP proofs (RFC 9449 §4.2) for one URL,
// each once: signed ahead on every core, then on the fly if the pool runs
// out (counted).
type dpopProofs struct {
	signer   *dpopsign.Signer
	htu      string
	pool     []string
	next     atomic.Int64
	onTheFly atomic.Int64
}

func newDPoPProofs(htu string, n int) (*dpopProofs, error) {
	signer, err := dpopsign.New()
	if err != nil {
		return nil, err
	}
	d := &dpopProofs{signer: signer, htu: htu, pool: make([]string, n)}
	var wg sync.WaitGroup
	var failed atomic.Value
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				p, err := d.sign()
				if err != nil {
					failed.Store(err)
					return
				}
				d.pool[i] = p
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return nil, err
	}
	return d, nil
}

func (d *dpopProofs) sign() (string, error) { return d.signer.Proof(http.MethodPost, d.htu) }

func (d *dpopProofs) take() (string, error) {
	if i := d.next.Add(1) - 1; i < int64(len(d.pool)) {
		p := d.pool[i]
		d.pool[i] = ""
		return p, nil
	}
	d.onTheFly.Add(1)
	return d.sign()
}

// dpopScenario is client_credentials for a JWT access token (wantAlg) with
// an ES256 DPoP proof on every request: the token endpoint checks the
// proof and records its jti, and the token carries cnf.jkt. It compares
// with jwt-<alg>, the same request without the proof.
func dpopScenario(o options, is *issuerProc, name, wantAlg string) (*scenario, error) {
	cl, err := is.createClient("jwt")
	if err != nil {
		return nil, err
	}
	htu := is.Public + "/oauth2/token"
	proofs, err := newDPoPProofs(htu, o.dpopProofs)
	if err != nil {
		return nil, err
	}
	mk := dpopTarget(is, cl, proofs)
	// Check once that the token is DPoP-bound and signed as claimed.
	req, err := mk()
	if err != nil {
		return nil, err
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := do(req, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("DPoP token request: %w", err)
	}
	if out.TokenType != "DPoP" {
		return nil, fmt.Errorf("token_type %q, want DPoP", out.TokenType)
	}
	note, err := checkToken(is, out.AccessToken, "jwt", wantAlg)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(jwtPayload(out.AccessToken)), `"cnf":{"jkt":`) {
		return nil, fmt.Errorf("the DPoP token has no cnf.jkt")
	}
	s := load(o, name, is, mk)
	s.Note = note + fmt.Sprintf("; ES256 DPoP proof per request, %d signed ahead, %d on the fly", len(proofs.pool), proofs.onTheFly.Load())
	return s, nil
}

func dpopTarget(is *issuerProc, cl client, proofs *dpopProofs) target {
	base := tokenTarget(is, cl)
	return func() (*http.Request, error) {
		req, err := base()
		if err != nil {
			return nil, err
		}
		p, err := proofs.take()
		if err != nil {
			return nil, err
		}
		req.Header.Set("DPoP", p)
		return req, nil
	}
}

func jwtPayload(tok string) []byte {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return b
}
