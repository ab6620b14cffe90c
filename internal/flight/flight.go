// Package flight runs work shared by concurrent callers (a
// singleflight.Group) detached from every one of them: the work keeps the
// first caller's context values but not its cancellation or deadline, and
// is bounded by a timeout of its own instead. Each caller still returns as
// soon as its own context is done, without the result; the work goes on
// for the others (and, typically, fills a cache for the next ones).
//
// Sharing the first caller's context, as singleflight.Group.Do does when
// the function closes over it, lets one cancelled request (a client that
// hung up) fail the key reload or fetch that its neighbours were waiting
// for.
package flight

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"golang.org/x/sync/singleflight"
)

// Do runs fn once for all concurrent callers of key on g. fn receives a
// context detached from ctx (context.WithoutCancel) and bounded by
// timeout. Do returns fn's result, or ctx.Err() when ctx is done first.
// A panic in fn is returned to every caller as an error (the work runs on
// a goroutine of its own, where a panic would end the process).
func Do[T any](ctx context.Context, g *singleflight.Group, key string, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("flight: panic in the shared work for %q: %v\n%s", key, p, debug.Stack())
			}
		}()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return fn(wctx)
	})
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		v, _ := r.Val.(T)
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
