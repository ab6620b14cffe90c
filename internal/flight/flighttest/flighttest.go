// Package flighttest helps tests of code built on internal/flight.
package flighttest

import (
	"context"
	"sync"
)

// Waiter returns a context that is never done, and a channel closed the
// first time the context's Done method is called. flight.Do calls Done
// only once the caller has joined the shared work, so a test that passes
// the context to a second caller knows, once the channel is closed, that
// this caller is waiting for the work already in flight (and did not
// start work of its own).
func Waiter() (context.Context, <-chan struct{}) {
	w := &waiter{Context: context.Background(), joined: make(chan struct{})}
	return w, w.joined
}

type waiter struct {
	context.Context
	once   sync.Once
	joined chan struct{}
}

func (w *waiter) Done() <-chan struct{} {
	w.once.Do(func() { close(w.joined) })
	return nil
}
