package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// startCheck serves the authorizer over gRPC on loopback as the sidecar
// does (the check codec, responses sent as cached) and returns a client
// built from go-control-plane's authv3 package, as Envoy uses it.
func startCheck(t *testing.T, a *Authorizer) authv3.AuthorizationClient {
	srv := grpc.NewServer(grpc.ForceServerCodecV2(NewCheckCodec()))
	NewCheckServer(a).Register(srv)
	return serveCheck(t, srv)
}

// serveCheck serves srv on loopback and returns an authv3 client.
func serveCheck(t *testing.T, srv *grpc.Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// envoyCheck builds the CheckRequest Envoy sends: lower-case header
// names, path with the query string, host from :authority.
func envoyCheck(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": host, ":method": method, ":path": path, "x-request-id": "r-1"}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: method, Host: host, Path: path, Scheme: "https", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

func okHeaders(t *testing.T, r *authv3.CheckResponse) (map[string]*corev3.HeaderValueOption, []string) {
	t.Helper()
	if r.GetStatus().GetCode() != int32(codes.OK) || r.GetOkResponse() == nil {
		t.Fatalf("not OK: %v", r)
	}
	set := map[string]*corev3.HeaderValueOption{}
	for _, h := range r.GetOkResponse().GetHeaders() {
		set[h.GetHeader().GetKey()] = h
	}
	return set, r.GetOkResponse().GetHeadersToRemove()
}

func TestCheckAllowed(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.Identity = map[string]string{"x-user-id": "sub", "x-client-id": "client_id", "x-user-scopes": "scope", "x-email": "ext.missing"}
		c.Headers.DynamicMetadata = true
	})
	client := startCheck(t, e.a)
	tok := e.is.Token(e.key, nil)
	// The client tries to spoof identity headers.
	r, err := client.Check(context.Background(), envoyCheck("GET", "api.example.com", "/orders?x=1",
		map[string]string{"authorization": "Bearer " + tok, "x-user-id": "root", "x-email": "root@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	set, remove := okHeaders(t, r)
	for name, want := range map[string]string{"x-user-id": "client-1", "x-client-id": "client-1", "x-user-scopes": "read write"} {
		h := set[name]
		if h == nil || h.GetHeader().GetValue() != want {
			t.Fatalf("%s: %v, want %q", name, h, want)
		}
		//lint:ignore SA1019 the deprecated append must be false for older Envoy versions
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() == nil || h.GetAppend().GetValue() {
			t.Fatalf("%s must overwrite (append_action OVERWRITE_IF_EXISTS_OR_ADD, append false): %v", name, h)
		}
	}
	if !slices.Equal(remove, []string{"x-email"}) {
		t.Fatalf("headers_to_remove = %v, want the unset identity header only", remove)
	}
	for _, n := range remove {
		if set[n] != nil {
			t.Fatalf("%s is both set and removed", n)
		}
	}
	md := r.GetDynamicMetadata().GetFields()["claims"].GetStructValue().GetFields()
	if md["sub"].GetStringValue() != "client-1" || md["ext"].GetStructValue().GetFields()["tenant"].GetStringValue() != "acme" {
		t.Fatalf("dynamic metadata: %v", r.GetDynamicMetadata())
	}
}

func TestCheckAnonymousRemovesSpoofedIdentity(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.ClaimsHeader = "x-claims"
		c.Rules = []Rule{{Match: Match{PathPrefix: "/public"}, AllowAnonymous: true}}
	})
	client := startCheck(t, e.a)
	r, err := client.Check(context.Background(), envoyCheck("GET", "h", "/public/x",
		map[string]string{"x-user-id": "root", "x-claims": "e30"}))
	if err != nil {
		t.Fatal(err)
	}
	set, remove := okHeaders(t, r)
	if len(set) != 0 || !slices.Equal(remove, []string{"x-claims", "x-client-id", "x-user-id", "x-user-scopes"}) {
		t.Fatalf("anonymous: set %v, remove %v", set, remove)
	}
}

func TestCheckDenied(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Token.Cookie = "BearerToken"
		c.Rules = []Rule{{Match: Match{PathPrefix: "/admin"}, Scopes: []string{"admin"}}}
	})
	client := startCheck(t, e.a)
	valid := e.is.Token(e.key, nil)
	expired := e.is.Token(e.key, map[string]any{"exp": e.clock.Now().Unix() - 3600})
	tests := []struct {
		name     string
		req      *authv3.CheckRequest
		code     codes.Code
		status   int
		chal     string
		bodyCode string
	}{
		{"no token", envoyCheck("GET", "h", "/", nil), codes.Unauthenticated, 401, `Bearer`, "unauthorized"},
		{"expired", envoyCheck("GET", "h", "/", map[string]string{"authorization": "Bearer " + expired}), codes.Unauthenticated, 401,
			`Bearer error="invalid_token", error_description="The access token expired."`, "invalid_token"},
		{"expired in the cookie", envoyCheck("GET", "h", "/", map[string]string{"cookie": "a=b; BearerToken=" + expired}), codes.Unauthenticated, 401,
			`Bearer error="invalid_token", error_description="The access token expired."`, "invalid_token"},
		{"missing scope", envoyCheck("GET", "h", "/admin", map[string]string{"authorization": "Bearer " + valid}), codes.PermissionDenied, 403,
			`Bearer error="insufficient_scope", error_description="The access token lacks a required scope.", scope="admin"`, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := client.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetStatus().GetCode() != int32(tc.code) {
				t.Fatalf("status %v, want %v", r.GetStatus(), tc.code)
			}
			den := r.GetDeniedResponse()
			if den == nil || int(den.GetStatus().GetCode()) != tc.status {
				t.Fatalf("denied response %v, want HTTP %d", den, tc.status)
			}
			hdr := map[string]string{}
			for _, h := range den.GetHeaders() {
				hdr[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			if hdr["www-authenticate"] != tc.chal {
				t.Fatalf("www-authenticate %q, want %q", hdr["www-authenticate"], tc.chal)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(den.GetBody()), &body); err != nil || body["error"] != tc.bodyCode || hdr["content-type"] != "application/json" {
				t.Fatalf("body %q content-type %q", den.GetBody(), hdr["content-type"])
			}
		})
	}
	// The cookie carries a valid token too.
	r, err := client.Check(context.Background(), envoyCheck("GET", "h", "/", map[string]string{"cookie": "BearerToken=" + valid}))
	if err != nil || r.GetOkResponse() == nil {
		t.Fatalf("cookie token: %v %v", r, err)
	}
}

func TestCheckUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	client := startCheck(t, e.a)
	e.is.SetDown(true)
	_, err := client.Check(context.Background(), envoyCheck("GET", "h", "/", map[string]string{"authorization": "Bearer ory_at_unknown.sig"}))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("introspection down: %v, want UNAVAILABLE", err)
	}
}

func TestCheckRawHeaderMap(t *testing.T) {
	e := newEnv(t, nil)
	client := startCheck(t, e.a)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":authority", RawValue: []byte("h")},
			{Key: "authorization", RawValue: []byte("Bearer " + e.is.Token(e.key, nil))},
		}}},
	}}}
	r, err := client.Check(context.Background(), req)
	if err != nil || r.GetOkResponse() == nil {
		t.Fatalf("header_map request: %v %v", r, err)
	}
}

// The sidecar sends responses marshaled once (Register with the check
// codec); the typed API (Check, any codec) must answer the same.
func TestCheckEncodedAndTypedAgree(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.DynamicMetadata = true
		c.Rules = []Rule{{Match: Match{PathPrefix: "/public"}, AllowAnonymous: true}}
	})
	encoded := startCheck(t, e.a)
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, NewCheckServer(e.a))
	typed := serveCheck(t, srv)

	tok := e.is.Token(e.key, nil)
	for _, req := range []*authv3.CheckRequest{
		envoyCheck("GET", "h", "/", map[string]string{"authorization": "Bearer " + tok}),
		envoyCheck("GET", "h", "/", map[string]string{"authorization": "Bearer " + tok}), // cached
		envoyCheck("GET", "h", "/", nil),
		envoyCheck("GET", "h", "/", map[string]string{"authorization": "Bearer a.b.c"}),
		envoyCheck("GET", "h", "/public/x", nil),
	} {
		for i := 0; i < 2; i++ {
			want, err := typed.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encoded.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("encoded %v\ntyped %v", got, want)
			}
		}
	}
}

func TestAppendOKResponse(t *testing.T) {
	long := strings.Repeat("v", 300) // multi-byte lengths
	for _, tc := range []struct {
		set    []Header
		remove []string
	}{
		{},
		{set: []Header{{"x-user-id", "alice"}}},
		{remove: []string{"x-claims", "x-user-id"}},
		{set: []Header{{"x-client-id", "c"}, {"x-user-id", long}, {"x-user-scopes", "read write"}}, remove: []string{"x-email"}},
		{set: []Header{{"x-user-id", "é ü"}}},
		{set: []Header{{"x-user-id", "\xff"}}},
		{remove: []string{"\xfe"}},
	} {
		want, werr := proto.Marshal(okResponse(tc.set, tc.remove, nil))
		got, gerr := appendOKResponse(tc.set, tc.remove)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%+v: proto.Marshal error %v, appendOKResponse error %v", tc, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got.b, want) {
			t.Fatalf("%+v:\n got %x\nwant %x", tc, got.b, want)
		}
	}
}
