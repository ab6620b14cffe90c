package extauthz

import (
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyLikeRequest is a CheckRequest as Envoy sends it, with every
// attribute the fast codec skips filled in.
func envoyLikeRequest(headers map[string]string, raw []*corev3.HeaderValue) *authv3.CheckRequest {
	sock := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	md, _ := structpb.NewStruct(map[string]any{"k": "v"})
	r := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Address: sock("10.0.0.7", 53422), Principal: "spiffe://a"},
		Destination:       &authv3.AttributeContext_Peer{Address: sock("10.0.0.2", 10000)},
		ContextExtensions: map[string]string{"route": "orders"},
		MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": md}},
		Request: &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: &authv3.AttributeContext_HttpRequest{
			Id: "1177", Method: "POST", Host: "API.example.com:8443", Path: "/api/orders?page=1", Scheme: "https",
			Protocol: "HTTP/2", Body: `{"a":1}`, RawBody: []byte{0, 1, 2}, Size: 7, Headers: headers,
		}},
	}}
	if raw != nil {
		r.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: raw}
	}
	return r
}

func codecCases() map[string][]byte {
	m := func(r proto.Message) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			panic(err)
		}
		return b
	}
	full := map[string]string{":authority": "api.example.com", ":method": "POST", ":path": "/api/orders", "user-agent": "curl",
		"authorization": "Bearer abc.def.ghi", "cookie": "a=b; BearerToken=xyz", "x-request-id": "r"}
	cases := map[string][]byte{
		"empty":              nil,
		"typical":            m(envoyLikeRequest(full, nil)),
		"no auth headers":    m(envoyLikeRequest(map[string]string{"user-agent": "curl", "accept": "*/*"}, nil)),
		"no headers at all":  m(envoyLikeRequest(nil, nil)),
		"only authorization": m(envoyLikeRequest(map[string]string{"authorization": "Bearer x"}, nil)),
		"header_map": m(envoyLikeRequest(nil, []*corev3.HeaderValue{
			{Key: ":authority", Value: "h.example.com"}, {Key: "user-agent", Value: "curl"},
			{Key: "Authorization", RawValue: []byte("Bearer raw")}, {Key: "authorization", Value: "Bearer second"},
			{Key: "Cookie", Value: "a=b"}, {Key: "cookie", Value: "c=d"},
		})),
		"header_map without relevant": m(envoyLikeRequest(nil, []*corev3.HeaderValue{{Key: "x", Value: "y"}})),
		"both maps":                   m(envoyLikeRequest(map[string]string{"x": "y"}, []*corev3.HeaderValue{{Key: "authorization", Value: "Bearer hm"}})),
	}
	bound := envoyLikeRequest(map[string]string{"authorization": "DPoP abc", "dpop": "p1,p2", "x-forwarded-proto": "http",
		"x-forwarded-client-cert": `By=spiffe://a;Hash=00;Cert="-----BEGIN%20CERTIFICATE-----"`}, nil)
	bound.Attributes.Source.Certificate = "-----BEGIN%20CERTIFICATE-----%0A"
	cases["bound"] = m(bound)
	cases["bound header_map"] = m(envoyLikeRequest(nil, []*corev3.HeaderValue{{Key: "DPoP", Value: "p1"}, {Key: "dpop", Value: "p2"},
		{Key: "X-Forwarded-Proto", Value: "https,http"}, {Key: "x-forwarded-client-cert", Value: "Hash=00"}}))
	// A message field repeated on the wire is merged; a scalar repeated
	// takes the last value; map entries with the same key, the last one.
	a := m(envoyLikeRequest(map[string]string{"authorization": "Bearer first", "x-a": "1"}, nil))
	b := m(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Path: "/second", Headers: map[string]string{"authorization": "Bearer second"}}}}})
	cases["merged"] = append(append([]byte{}, a...), b...)
	// Wrong wire type for known fields: unknown fields, ignored.
	var w []byte
	w = protowire.AppendTag(w, 1, protowire.VarintType)
	w = protowire.AppendVarint(w, 5)
	cases["wrong wire type"] = append(w, a...)
	cases["truncated"] = a[:len(a)-3]
	return cases
}

// TestCheckCodecMatchesStandard: the fast codec yields the same Request
// as the standard protobuf decoding, and rejects what it rejects in the
// parts it reads.
func TestCheckCodecMatchesStandard(t *testing.T) {
	codec := NewCheckCodec()
	for name, b := range codecCases() {
		t.Run(name, func(t *testing.T) {
			var full authv3.CheckRequest
			fullErr := proto.Unmarshal(b, &full)
			var fast authv3.CheckRequest
			fastErr := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &fast)
			if fullErr != nil {
				if fastErr == nil && name == "truncated" {
					t.Errorf("truncated input accepted")
				}
				return
			}
			if fastErr != nil {
				t.Fatalf("fast codec: %v (standard accepted)", fastErr)
			}
			if got, want := withoutHeaders(requestFromCheck(&fast)), withoutHeaders(requestFromCheck(&full)); !reflect.DeepEqual(got, want) {
				t.Errorf("fast = %+v\nfull = %+v", got, want)
			}
		})
	}
}

func TestCheckCodecOtherMessages(t *testing.T) {
	codec := NewCheckCodec()
	resp := &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{HeadersToRemove: []string{"x-user-id"}}}}
	bs, err := codec.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back authv3.CheckResponse
	if err := codec.Unmarshal(bs, &back); err != nil || !proto.Equal(resp, &back) {
		t.Errorf("round trip: %v %v", &back, err)
	}
	if codec.Name() != "proto" {
		t.Errorf("name %q: clients send application/grpc (proto)", codec.Name())
	}
}

// FuzzCheckCodec: whatever Envoy (or anyone reaching the gRPC port)
// sends, the fast codec never panics, and whenever the standard decoding
// succeeds it succeeds too with the same Request.
func FuzzCheckCodec(f *testing.F) {
	for _, b := range codecCases() {
		f.Add(b)
	}
	codec := NewCheckCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast authv3.CheckRequest
		fastErr := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &fast)
		var full authv3.CheckRequest
		if err := proto.Unmarshal(b, &full); err != nil {
			return
		}
		if fastErr != nil {
			t.Fatalf("fast codec rejects what protobuf accepts: %v", fastErr)
		}
		if got, want := withoutHeaders(requestFromCheck(&fast)), withoutHeaders(requestFromCheck(&full)); !reflect.DeepEqual(got, want) {
			t.Fatalf("fast = %+v\nfull = %+v", got, want)
		}
	})
}

func BenchmarkDecodeCheckRequest(b *testing.B) {
	data := codecCases()["typical"]
	b.Run("standard", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r authv3.CheckRequest
			if err := proto.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	codec := NewCheckCodec()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r authv3.CheckRequest
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
