package sidecar

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// running is an in-process sidecar on loopback ports.
type running struct {
	s          *Server
	grpc, http string
	stop       context.CancelFunc
	done       chan error
}

func runServer(t *testing.T, issuer string, mutate func(*Config)) *running {
	t.Helper()
	cfg, err := LoadConfig(nil, Overrides{Issuer: issuer, GRPCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Serve.DrainTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	addrs := make(chan [2]string, 1)
	s, err := New(cfg, Options{Logger: zaptest.NewLogger(t), Version: "test",
		OnListening: func(g, h string) { addrs <- [2]string{g, h} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	select {
	case a := <-addrs:
		r.grpc, r.http = a[0], a[1]
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func getStatus(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestReadyOnceKeysAreLoaded: with the issuer down at start the sidecar
// is alive but not ready (HTTP 503, gRPC NOT_SERVING); once the issuer
// answers, both turn ready without a restart.
func TestReadyOnceKeysAreLoaded(t *testing.T) {
	is := extauthztest.New()
	t.Cleanup(is.Close)
	is.AddKey(jwa.ES256())
	is.SetDown(true)
	r := runServer(t, is.URL, nil)

	conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	health := func() healthpb.HealthCheckResponse_ServingStatus {
		res, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: AuthorizationService})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetStatus()
	}
	if code, _ := getStatus(t, "http://"+r.http+"/health/alive"); code != 200 {
		t.Errorf("alive = %d", code)
	}
	if code, m := getStatus(t, "http://"+r.http+"/health/ready"); code != 503 || !strings.Contains(m["reason"], "keys") {
		t.Errorf("ready before keys = %d %v, want 503", code, m)
	}
	if st := health(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health before keys = %v", st)
	}

	is.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for !r.s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready after the issuer came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The health status flips right after Ready; allow the goroutine a moment.
	for health() != healthpb.HealthCheckResponse_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("gRPC health never SERVING")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := getStatus(t, "http://"+r.http+"/health/ready"); code != 200 {
		t.Errorf("ready after keys = %d", code)
	}

	// Shutdown: NOT_SERVING is reported, Run returns nil.
	r.stop()
	if err := <-r.done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	r.done <- nil // for the cleanup
}

func TestHTTPRoutes(t *testing.T) {
	is := extauthztest.New()
	t.Cleanup(is.Close)
	is.AddKey(jwa.ES256())
	r := runServer(t, is.URL, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/introspect", 405},
		{"POST", "/health/ready", 405},
		{"GET", "/auth", 401},
		{"POST", "/auth", 401},
		{"GET", "/metrics", 200},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+r.http+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestRunFailsOnBusyPortNamingTheKey(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg, err := LoadConfig(nil, Overrides{Issuer: "https://a.example.com", GRPCListen: "127.0.0.1:0", HTTPListen: busy.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "serve.http_listen") {
		t.Errorf("Run = %v, want an error naming serve.http_listen", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{}, Options{}); err == nil || !strings.Contains(err.Error(), "issuers") {
		t.Errorf("New(empty) = %v, want an error naming issuers", err)
	}
}
