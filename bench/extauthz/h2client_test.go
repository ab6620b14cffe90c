package main

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeAuthz answers by the token: "good…" OK, "denied" a PERMISSION_DENIED
// CheckResponse, anything else a gRPC UNAVAILABLE error.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	calls atomic.Int64
}

func (f *fakeAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	f.calls.Add(1)
	tok := strings.TrimPrefix(req.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"], "Bearer ")
	switch {
	case strings.HasPrefix(tok, "good"):
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}}, nil
	case tok == "denied":
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}}, nil
	}
	return nil, status.Error(codes.Unavailable, "down")
}

// The lean client is what the benchmark's figures rest on: it must count
// a call as OK only when the sidecar allowed it, and keep working over
// many streams, flow-control windows included.
func TestH2ConnOutcomes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fa := &fakeAuthz{}
	authv3.RegisterAuthorizationServer(srv, fa)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	h, err := dialH2(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()

	big := "good" + strings.Repeat("x", 12000) // several requests fill the 64 KiB window
	calls := []*call{newCall(checkRequest("good")), newCall(checkRequest("denied")), newCall(checkRequest("fail")), newCall(checkRequest(big))}
	const n = 2000
	var i int
	next := func() *call {
		if i == n {
			return nil
		}
		i++
		return calls[i%len(calls)]
	}
	var ok, bad int
	err = h.run(16, next, func() bool { return false }, func(el time.Duration, good bool) {
		if good {
			ok++
		} else {
			bad++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok != n/2 || bad != n/2 || fa.calls.Load() != n {
		t.Fatalf("ok %d, not ok %d, server calls %d; want %d, %d, %d", ok, bad, fa.calls.Load(), n/2, n/2, n)
	}
	// The connection is still usable for another scenario.
	i = n - 10
	ok = 0
	if err := h.run(4, next, func() bool { return false }, func(_ time.Duration, good bool) {
		if good {
			ok++
		}
	}); err != nil || ok != 6 { // calls[3,0,1,2,3,0,1,2,3,0]
		t.Fatalf("second run: %v, %d OK; want 6", err, ok)
	}
}
