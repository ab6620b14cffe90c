package main_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// collector is an OTLP/HTTP trace receiver: it decodes the protobuf export
// requests the issuer posts to /v1/traces and keeps their spans.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func startCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector: %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, _ := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			t.Errorf("collector: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			c.services = append(c.services, attr(rs.GetResource().GetAttributes(), "service.name"))
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// waitSpan waits until a span named name that match accepts has arrived.
func (c *collector) waitSpan(t *testing.T, name string, match func(*tracepb.Span) bool) *tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.spans {
			if s.Name == name && (match == nil || match(s)) {
				c.mu.Unlock()
				return s
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, s := range c.spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q arrived; got %v", name, names)
	return nil
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			switch v := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_IntValue:
				return sprintf("%d", v.IntValue)
			}
		}
	}
	return ""
}

func childOf(parent *tracepb.Span) func(*tracepb.Span) bool {
	return func(s *tracepb.Span) bool {
		return bytes.Equal(s.TraceId, parent.TraceId) && bytes.Equal(s.ParentSpanId, parent.SpanId)
	}
}

// traceparentTransport sends a fixed W3C traceparent, as an instrumented
// caller (the login app, a gateway) would.
type traceparentTransport string

func (tp traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", string(tp))
	return http.DefaultTransport.RoundTrip(r)
}

// TestTracingExportsSpans runs the binary with TRACING_PROVIDER=otel against
// an in-test OTLP/HTTP collector: a client_credentials token request and
// admin requests arrive as server spans named after their routes, the
// storage calls they make as their children, and a caller's traceparent is
// continued (on the public listener and on the admin API the login app
// calls).
func TestTracingExportsSpans(t *testing.T) {
	col := startCollector(t)
	is := testbin.StartIssuer(t, map[string]string{
		"TRACING_PROVIDER":                  "otel",
		"TRACING_PROVIDERS_OTLP_SERVER_URL": strings.TrimPrefix(col.URL, "http://"),
		"TRACING_PROVIDERS_OTLP_INSECURE":   "true",
		// The SDK's batch delay (5 s by default), so spans arrive soon.
		"OTEL_BSP_SCHEDULE_DELAY": "50",
	})

	// An admin request from a login app that traces: its traceparent is
	// continued.
	const adminTrace, adminParent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
		"token_endpoint_auth_method": "client_secret_basic"})
	hc := &http.Client{Transport: traceparentTransport("00-" + adminTrace + "-" + adminParent + "-01")}
	resp, err := hc.Get(is.AdminURL + "/admin/clients/" + url.PathEscape(c.ID))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get client: %v %v", resp, err)
	}
	resp.Body.Close()

	// A token request through golang.org/x/oauth2, with a traceparent.
	const tokenTrace, tokenParent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: is.PublicURL + "/oauth2/token", Scopes: []string{"read"}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Transport: traceparentTransport("00-" + tokenTrace + "-" + tokenParent + "-01")})
	if _, err := cc.Token(ctx); err != nil {
		t.Fatal(err)
	}

	hexID := func(b []byte) string { return hex.EncodeToString(b) }

	// The client registration: a server span on the admin listener with the
	// storage write under it.
	create := col.waitSpan(t, "POST /admin/clients", nil)
	if create.Kind != tracepb.Span_SPAN_KIND_SERVER || attr(create.Attributes, "http.route") != "/admin/clients" ||
		attr(create.Attributes, "http.response.status_code") != "201" || attr(create.Attributes, "gatehouse.server") != "admin" {
		t.Errorf("client registration span: kind %v attributes %v", create.Kind, create.Attributes)
	}
	st := col.waitSpan(t, "storage clients.Create", childOf(create))
	if attr(st.Attributes, "gatehouse.storage.backend") != "sqlite" || attr(st.Attributes, "db.system.name") != "sqlite" ||
		attr(st.Attributes, "gatehouse.storage.store") != "clients" || attr(st.Attributes, "gatehouse.storage.method") != "Create" {
		t.Errorf("storage span attributes %v", st.Attributes)
	}

	// The login app's admin call continues its trace.
	get := col.waitSpan(t, "GET /admin/clients/{id}", func(s *tracepb.Span) bool { return hexID(s.TraceId) == adminTrace })
	if hexID(get.ParentSpanId) != adminParent {
		t.Errorf("admin span's parent %s, want the caller's %s", hexID(get.ParentSpanId), adminParent)
	}

	// The token request continues the caller's trace, and its storage calls
	// (the opaque access token written) are its children.
	tok := col.waitSpan(t, "POST /oauth2/token", func(s *tracepb.Span) bool { return hexID(s.TraceId) == tokenTrace })
	if hexID(tok.ParentSpanId) != tokenParent || attr(tok.Attributes, "gatehouse.server") != "public" ||
		attr(tok.Attributes, "http.response.status_code") != "200" {
		t.Errorf("token span: parent %s attributes %v", hexID(tok.ParentSpanId), tok.Attributes)
	}
	col.waitSpan(t, "storage tokens.Create", childOf(tok))

	col.mu.Lock()
	defer col.mu.Unlock()
	for _, s := range col.services {
		if s != "gatehouse" {
			t.Errorf("service.name %q, want gatehouse", s)
		}
	}
	// Nothing secret reaches the collector: no client secret, no token.
	for _, s := range col.spans {
		raw, _ := proto.Marshal(s)
		if bytes.Contains(raw, []byte(c.Secret)) {
			t.Errorf("span %q carries the client secret", s.Name)
		}
	}
}
