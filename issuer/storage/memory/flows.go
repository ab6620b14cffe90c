package memory

import (
	"bytes"
	"context"
	"errors"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type flowStore struct {
	*byKind[storage.FlowKind, storage.Flow]
}

var _ storage.FlowStore = flowStore{}

// unchanged returns the key of the flow old if it is still stored as
// old, by the columns the SQL backends' conditional updates compare
// (status and data, byte for byte), and ErrConflict if it changed or is
// gone. Called under the lock.
func (fs flowStore) unchanged(old *storage.Flow) (flowKey, error) {
	k := flowKey{old.Kind, old.ID}
	cur, ok := fs.rows[k]
	if !ok || cur.Status != old.Status || !bytes.Equal(cur.Data, old.Data) {
		return k, storage.ErrConflict
	}
	return k, nil
}

func (fs flowStore) Swap(ctx context.Context, old, next storage.Flow) error {
	if next.Kind != old.Kind || next.ID != old.ID {
		return errors.New("storage: Swap cannot change a flow's kind or id")
	}
	unlock, err := fs.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	k, err := fs.unchanged(&old)
	if err != nil {
		return err
	}
	fs.rows[k] = copyFlow(next)
	return nil
}

// Step checks every write of the step before it makes any, in the order
// the SQL backends run them, so that a failing one leaves everything as
// it was.
func (fs flowStore) Step(ctx context.Context, st storage.FlowStep) error {
	unlock, err := fs.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	k, err := fs.unchanged(&st.Flow)
	if err != nil {
		return err
	}
	s := fs.s
	l, replace := st.LoginSession, false
	if l != nil {
		_, exists := s.logins.rows[l.ID]
		if exists && !st.ReplaceLoginSession {
			return storage.ErrAlreadyExists
		}
		replace = exists
	}
	if c := st.ConsentSession; c != nil {
		if _, ok := s.consents.rows[c.ID]; ok {
			return storage.ErrAlreadyExists
		}
	}
	if n := st.Next; n != nil {
		if _, ok := s.flows.rows[flowKey{n.Kind, n.ID}]; ok {
			return storage.ErrAlreadyExists
		}
	}
	tokens := tokenStore{&s.tokens}
	if err := tokens.insertable(st.Tokens); err != nil {
		return err
	}

	f := s.flows.rows[k]
	f.Status = st.Status
	s.flows.rows[k] = f
	switch {
	case replace:
		cur := s.logins.rows[l.ID]
		cur.Subject, cur.AuthenticatedAt, cur.Remember, cur.ExpiresAt = l.Subject, stored(l.AuthenticatedAt), l.Remember, stored(l.ExpiresAt)
		s.logins.rows[l.ID] = cur
	case l != nil:
		s.logins.rows[l.ID] = copyLogin(*l)
	}
	if c := st.ConsentSession; c != nil {
		s.consents.rows[c.ID] = copyConsent(*c)
	}
	if n := st.Next; n != nil {
		s.flows.rows[flowKey{n.Kind, n.ID}] = copyFlow(*n)
	}
	tokens.insert(st.Tokens)
	return nil
}
