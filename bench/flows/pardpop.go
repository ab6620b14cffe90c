package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The flows -mode selects: today's authorization code flow, or the same
// flow with the authorization request pushed to /oauth2/par (RFC 9126)
// and every request to the issuer's direct endpoints carrying a DPoP
// proof (RFC 9449): the proof at PAR binds the code (§10.1), the
// exchange and the refresh get DPoP-bound tokens.
const (
	flowCode    = "code"
	flowPARDPoP = "par-dpop"
)

// parDPoPRatio is the target: a PAR + code + DPoP flow's p50 at most
// 1.3× the code flow's, measured in the same run (issue 18).
const parDPoPRatio = 1.3

func parseMode(m string) ([]string, error) {
	switch m {
	case flowCode, flowPARDPoP:
		return []string{m}, nil
	case "both":
		return []string{flowCode, flowPARDPoP}, nil
	}
	return nil, fmt.Errorf("-mode %q: want code, par-dpop or both", m)
}

// proofFor is the DPoP header of a request to path in mode ("" in the
// code flow, or if signing failed: the issuer then answers the error).
func (b *bench) proofFor(mode, path string) string {
	if mode != flowPARDPoP {
		return ""
	}
	p, _ := b.dpop.Proof(http.MethodPost, b.is.Public+path, "")
	return p
}

// push posts the authorization request q to /oauth2/par as the client
// (client_secret_basic) with a DPoP proof, and returns the authorization
// URL the browser is sent to: client_id and request_uri only.
func (b *bench) push(q url.Values, d *time.Duration) (string, error) {
	t0 := time.Now()
	code, raw, err := b.callProof(b.admin, http.MethodPost, b.is.Public+"/oauth2/par", "application/x-www-form-urlencoded",
		b.client.basic, b.proofFor(flowPARDPoP, "/oauth2/par"), []byte(q.Encode()))
	*d += time.Since(t0)
	if err != nil {
		return "", err
	}
	var out struct {
		RequestURI string `json:"request_uri"`
	}
	if code != http.StatusCreated || json.Unmarshal(raw, &out) != nil || !strings.HasPrefix(out.RequestURI, "urn:") {
		return "", fmt.Errorf("POST /oauth2/par: %d %.300s", code, raw)
	}
	return b.is.Public + "/oauth2/auth?" + url.Values{"client_id": {b.client.ID}, "request_uri": {out.RequestURI}}.Encode(), nil
}

// flowDist is the level's whole-flow latency.
func (lv *level) flowDist() *dist {
	for _, s := range lv.Steps {
		if s.Name == stepFlow {
			return s
		}
	}
	return &dist{Name: stepFlow}
}

// parDPoPTargets compares, at each concurrency where both ran, the PAR +
// DPoP flow's p50 with the code flow's.
func parDPoPTargets(levels []*level) []target {
	var out []target
	code := map[int]*level{}
	for _, lv := range levels {
		if lv.Mode == flowCode {
			code[lv.Concurrency] = lv
		}
	}
	for _, lv := range levels {
		base, ok := code[lv.Concurrency]
		if lv.Mode != flowPARDPoP || !ok {
			continue
		}
		p, c := lv.flowDist(), base.flowDist()
		t := target{Name: fmt.Sprintf("%d concurrent: PAR+DPoP flow p50 / code flow p50", lv.Concurrency),
			Want: fmt.Sprintf("<= %.1f", parDPoPRatio), Got: "no flows"}
		if p.Count > 0 && c.Count > 0 && c.P50 > 0 {
			r := p.P50 / c.P50
			t.Got, t.Met = fmt.Sprintf("%.2f (%.2f/%.2f ms)", r, p.P50, c.P50), r <= parDPoPRatio
		}
		out = append(out, t)
	}
	return out
}
