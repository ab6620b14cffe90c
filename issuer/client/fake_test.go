package client

import (
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// The in-memory doubles live in storage/storetest.
type (
	memClients = storetest.Clients
	memNonces  = storetest.Nonces
	clock      = storetest.Clock
)

func newMemClients() *memClients                   { return storetest.NewClients() }
func newMemNonces(now func() time.Time) *memNonces { return storetest.NewNonces(now) }
func newClock() *clock                             { return storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)) }
