package flight

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/flight/flighttest"
)

type ctxKey struct{}

// TestFirstCallerCancelsOthersGetTheResult: the caller whose call started
// the work gives up; the work goes on, the second caller gets its result,
// and the work saw the first caller's values but not its cancellation.
func TestFirstCallerCancelsOthersGetTheResult(t *testing.T) {
	var g singleflight.Group
	started, release := make(chan struct{}), make(chan struct{})
	work := func(ctx context.Context) (string, error) {
		close(started)
		<-release
		if err := ctx.Err(); err != nil {
			return "", err
		}
		return ctx.Value(ctxKey{}).(string), nil
	}
	ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "value of the first caller"))
	first := make(chan error, 1)
	go func() {
		_, err := Do(ctx1, &g, "k", time.Minute, work)
		first <- err
	}()
	<-started
	ctx2, joined := flighttest.Waiter()
	second := make(chan string, 1)
	go func() {
		v, err := Do(ctx2, &g, "k", time.Minute, func(context.Context) (string, error) {
			return "", errors.New("second caller ran its own work")
		})
		if err != nil {
			v = err.Error()
		}
		second <- v
	}()
	<-joined
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled at once", err)
	}
	close(release)
	if v := <-second; v != "value of the first caller" {
		t.Fatalf("second caller: %q", v)
	}
}

func TestTimeoutBoundsTheWork(t *testing.T) {
	var g singleflight.Group
	_, err := Do(context.Background(), &g, "k", 10*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestPanicBecomesAnError(t *testing.T) {
	var g singleflight.Group
	_, err := Do(context.Background(), &g, "k", time.Second, func(context.Context) (*int, error) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
}
