package client

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// The stores are storage/memory's; the clock is storage/storetest's.
type clock = storetest.Clock

func newClock() *clock { return storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)) }

// memClients is a client store that counts its Get calls (to observe a
// cache in front).
type memClients struct {
	storage.ClientStore
	gets atomic.Int64
}

func newMemClients() *memClients {
	return &memClients{ClientStore: memory.New(memory.Options{}).Clients()}
}

func (m *memClients) Get(ctx context.Context, id string) (storage.Client, error) {
	m.gets.Add(1)
	return m.ClientStore.Get(ctx, id)
}

// Gets is the number of Get calls so far.
func (m *memClients) Gets() int { return int(m.gets.Load()) }

func newMemNonces(now func() time.Time) storage.NonceStore {
	return memory.New(memory.Options{Now: now}).Nonces()
}
