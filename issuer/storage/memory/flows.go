package memory

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type flowStore struct{ s *Store }

var _ storage.FlowStore = flowStore{}

func (fs flowStore) Create(ctx context.Context, f storage.Flow) error {
	return create(ctx, fs.s, fs.s.flows, flowKey{f.Kind, f.ID}, f, copyFlow)
}

func (fs flowStore) Get(ctx context.Context, kind storage.FlowKind, id string) (storage.Flow, error) {
	return get(ctx, fs.s, fs.s.flows, flowKey{kind, id}, copyFlow)
}

func (fs flowStore) Update(ctx context.Context, kind storage.FlowKind, id string, fn func(*storage.Flow) error) (storage.Flow, error) {
	return update(ctx, fs.s, fs.s.flows, flowKey{kind, id}, copyFlow, func(f *storage.Flow) { f.Kind, f.ID = kind, id }, fn)
}

func (fs flowStore) Delete(ctx context.Context, kind storage.FlowKind, id string) error {
	return remove(ctx, fs.s, fs.s.flows, flowKey{kind, id})
}

func (fs flowStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, fs.s, fs.s.flows, func(f storage.Flow) time.Time { return f.ExpiresAt }, before, limit)
}

// unchanged returns the key of the flow old if it is still stored as
// old, by the columns the SQL backends' conditional updates compare
// (status and data, byte for byte), and ErrConflict if it changed or is
// gone. Called under the lock.
func (fs flowStore) unchanged(old *storage.Flow) (flowKey, error) {
	k := flowKey{old.Kind, old.ID}
	cur, ok := fs.s.flows[k]
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
	fs.s.flows[k] = copyFlow(next)
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
		if _, ok := s.flows[flowKey{n.Kind, n.ID}]; ok {
			return storage.ErrAlreadyExists
		}
	}
	tokens := tokenStore{s}
	if err := tokens.insertable(st.Tokens); err != nil {
		return err
	}

	f := s.flows[k]
	f.Status = st.Status
	s.flows[k] = f
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
		s.flows[flowKey{n.Kind, n.ID}] = copyFlow(*n)
	}
	tokens.insert(st.Tokens)
	return nil
}
