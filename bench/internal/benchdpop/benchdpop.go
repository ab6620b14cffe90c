// Package benchdpop signs ES256 DPoP proofs (RFC 9449 §4.2) for the load
// generators: ahead of a measurement on every core, so that signing does
// not take the measured server's cores.
package benchdpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Key is a client's DPoP key (P-256).
type Key struct {
	priv *ecdsa.PrivateKey
	hdr  string
	// JKT is the key's RFC 7638 thumbprint, the cnf.jkt of its tokens.
	JKT string
}

// NewKey generates a key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pub})
	if err != nil {
		return nil, err
	}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, hdr: base64.RawURLEncoding.EncodeToString(hdr), JKT: base64.RawURLEncoding.EncodeToString(sum)}, nil
}

// Proofs hands out proofs of one key for one method, URL and access
// token (none: no ath), each once: signed ahead, then on the fly if the
// pool runs out (counted in OnTheFly).
type Proofs struct {
	key           *Key
	htm, htu, ath string
	pool          []string
	next          atomic.Int64
	OnTheFly      atomic.Int64
}

// New signs n proofs of a fresh key for htm and htu (no ath).
func New(htm, htu string, n int) (*Proofs, error) {
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	return k.Proofs(htm, htu, "", n)
}

// Proofs signs n proofs for htm and htu, bound to accessToken (ath) when
// it is not empty, on every core.
func (k *Key) Proofs(htm, htu, accessToken string, n int) (*Proofs, error) {
	d := &Proofs{key: k, htm: htm, htu: htu, pool: make([]string, n)}
	if accessToken != "" {
		ath := sha256.Sum256([]byte(accessToken))
		d.ath = base64.RawURLEncoding.EncodeToString(ath[:])
	}
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

// Len is the number of proofs signed ahead.
func (d *Proofs) Len() int { return len(d.pool) }

func (d *Proofs) sign() (string, error) { return d.key.proof(d.htm, d.htu, d.ath) }

// Proof is a proof for a request with method htm to htu, issued now, bound
// to accessToken (ath) when it is not empty.
func (k *Key) Proof(htm, htu, accessToken string) (string, error) {
	var ath string
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		ath = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return k.proof(htm, htu, ath)
}

func (k *Key) proof(htm, htu, ath string) (string, error) {
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": htm, "htu": htu, "iat": time.Now().Unix()}
	if ath != "" {
		c["ath"] = ath
	}
	claims, _ := json.Marshal(c)
	in := k.hdr + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := jwsbb.Sign(k.priv, "ES256", []byte(in), nil)
	if err != nil {
		return "", err
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Take returns an unused proof.
func (d *Proofs) Take() (string, error) {
	if i := d.next.Add(1) - 1; i < int64(len(d.pool)) {
		p := d.pool[i]
		d.pool[i] = ""
		return p, nil
	}
	d.OnTheFly.Add(1)
	return d.sign()
}
