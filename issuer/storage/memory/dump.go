package memory

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Dump is a copy of every row of a Store, each table in the order of its
// key: what a dump of an SQL database would show. Tests use it to check
// what is stored (a secret must never be) and how much.
type Dump struct {
	Clients         []storage.Client         // by ID
	Keys            []storage.Key            // by set, then kid
	Tokens          []storage.Token          // by kind, then signature
	Flows           []storage.Flow           // by kind, then ID
	LoginSessions   []storage.LoginSession   // by ID
	ConsentSessions []storage.ConsentSession // by ID
	Trust           []storage.TrustedIssuer  // by ID
	Nonces          map[string]time.Time     // key -> expiry (zero: never)
}

// Dump returns a copy of every row; after Close it is empty.
func (s *Store) Dump() Dump {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := Dump{
		Clients: rows(s.clients.rows, copyClient, func(c *storage.Client) string { return c.ID }),
		Tokens: rows(s.tokens.rows, copyToken, func(t *storage.Token) string {
			return string(t.Kind) + "\x00" + t.Signature
		}),
		Flows:           rows(s.flows.rows, copyFlow, func(f *storage.Flow) string { return string(f.Kind) + "\x00" + f.ID }),
		LoginSessions:   rows(s.logins.rows, copyLogin, func(l *storage.LoginSession) string { return l.ID }),
		ConsentSessions: rows(s.consents.rows, copyConsent, func(c *storage.ConsentSession) string { return c.ID }),
		Trust:           rows(s.trust.rows, copyTrust, func(t *storage.TrustedIssuer) string { return t.ID }),
		Nonces:          make(map[string]time.Time, len(s.nonces)),
	}
	for _, keys := range s.keySets {
		for _, k := range keys {
			d.Keys = append(d.Keys, copyKey(k))
		}
	}
	slices.SortFunc(d.Keys, func(a, b storage.Key) int {
		return cmp.Or(strings.Compare(a.Set, b.Set), strings.Compare(a.KID, b.KID))
	})
	for k, exp := range s.nonces {
		d.Nonces[k] = storage.FromUnixMicro(exp)
	}
	return d
}

// rows returns copies of the values of m ordered by key.
func rows[K comparable, V any](m map[K]V, cp func(V) V, key func(*V) string) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, cp(v))
	}
	slices.SortFunc(out, func(a, b V) int { return strings.Compare(key(&a), key(&b)) })
	return out
}
