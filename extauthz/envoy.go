package extauthz

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// CheckServer is Envoy's ext_authz gRPC service
// (envoy.service.auth.v3.Authorization/Check).
//
// Responses are rendered once per cached identity or denial and kept
// marshaled: Register serves them as these bytes (with NewCheckCodec),
// Check decodes them for callers of the typed API.
type CheckServer struct {
	authv3.UnimplementedAuthorizationServer
	a      *Authorizer
	anon   *encodedResponse
	handle grpc.UnaryHandler
}

var _ authv3.AuthorizationServer = (*CheckServer)(nil)

// NewCheckServer serves a's decisions over ext_authz.
func NewCheckServer(a *Authorizer) *CheckServer {
	// Header names were validated with the configuration.
	anon, _ := appendOKResponse(nil, a.IdentityHeaderNames())
	s := &CheckServer{a: a, anon: anon}
	s.handle = func(ctx context.Context, req any) (any, error) {
		r, err := s.check(ctx, req.(*authv3.CheckRequest))
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return s
}

// Register registers the Authorization service on g with a Check
// handler that sends the cached responses as they are, without
// marshaling them on every call. g must use the check codec
// (grpc.ForceServerCodecV2(NewCheckCodec())): the standard protobuf
// codec cannot send them, and every check would fail (closed).
// authv3.RegisterAuthorizationServer(g, s) serves the same answers
// through Check with any codec.
func (s *CheckServer) Register(g grpc.ServiceRegistrar) {
	desc := authv3.Authorization_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: s.checkHandler}}
	g.RegisterService(&desc, s)
}

var checkInfo = &grpc.UnaryServerInfo{FullMethod: authv3.Authorization_Check_FullMethodName}

// checkHandler is the generated _Authorization_Check_Handler, returning
// the marshaled response.
func (s *CheckServer) checkHandler(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authv3.CheckRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.handle(ctx, in)
	}
	return interceptor(ctx, in, checkInfo, s.handle)
}

// Check extracts the request attributes, decides and renders.
func (s *CheckServer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	e, err := s.check(ctx, req)
	if err != nil {
		return nil, err
	}
	r := &authv3.CheckResponse{}
	if err := proto.Unmarshal(e.b, r); err != nil {
		return nil, errEncode
	}
	return r, nil
}

func (s *CheckServer) check(ctx context.Context, req *authv3.CheckRequest) (*encodedResponse, error) {
	r := requestFromCheck(req)
	if s.a.cfg.Binding.MTLS.ClientCertHeader != XFCCHeader {
		// Over gRPC only Envoy's XFCC carries a certificate in a header.
		r.CertHeader = ""
	}
	d := s.a.Decide(ctx, r)
	return s.render(d)
}

// encodedResponse is a marshaled CheckResponse; the check codec sends it
// unchanged. It is shared and never modified.
type encodedResponse struct{ b []byte }

// errEncode answers a response that cannot be marshaled (only a string
// that is not UTF-8 could do that; header values are checked and the
// others are ours): no decision, so the gateway's failure mode applies.
var errEncode = status.Error(codes.Internal, "internal error")

func encodeResponse(r *authv3.CheckResponse) (*encodedResponse, error) {
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, errEncode
	}
	return &encodedResponse{b: b}, nil
}

// requestFromCheck reads the original request from a CheckRequest: the
// headers map (lower-case names, repeated headers joined by ","), or the
// header_map Envoy sends with encode_raw_headers; the scheme (the
// x-forwarded-proto header when a proxy sits in front, else Envoy's
// own), the DPoP proofs, the client certificate (source.certificate,
// set with include_peer_certificate) and the x-forwarded-client-cert
// header with the source address it came from.
//
// NewCheckCodec decodes only the fields read here: reading another one
// needs the codec (checkcodec.go) to decode it too.
func requestFromCheck(req *authv3.CheckRequest) *Request {
	src := req.GetAttributes().GetSource()
	h := req.GetAttributes().GetRequest().GetHttp()
	r := &Request{Host: h.GetHost(), Method: h.GetMethod(), Path: h.GetPath(), Scheme: h.GetScheme(),
		PeerCertificate: src.GetCertificate()}
	if a, err := netip.ParseAddr(src.GetAddress().GetSocketAddress().GetAddress()); err == nil {
		r.HeaderSource = a
		r.source = a.Unmap()
	}
	var proto string
	if hm := h.GetHeaders(); len(hm) > 0 {
		r.headers = envoyHeaders(hm)
		r.Authorization = hm["authorization"]
		r.Cookie = hm["cookie"]
		proto = hm["x-forwarded-proto"]
		r.CertHeader = hm[XFCCHeader]
		if v, ok := hm["dpop"]; ok {
			// Envoy joins repeated headers with ",", which a compact
			// JWS never contains: split them again (RFC 9449 §4.3 item 1).
			r.DPoP = strings.Split(v, ",")
		}
	} else if raw := h.GetHeaderMap().GetHeaders(); len(raw) > 0 {
		r.headers = envoyHeaderList(raw)
		var authz, cookie []string
		for _, hv := range raw {
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			switch strings.ToLower(hv.GetKey()) {
			case "authorization":
				authz = append(authz, v)
			case "cookie":
				cookie = append(cookie, v)
			case ":authority":
				if r.Host == "" {
					r.Host = v
				}
			case "x-forwarded-proto":
				proto = v
			case XFCCHeader:
				r.CertHeader = v
			case "dpop":
				r.DPoP = append(r.DPoP, v)
			}
		}
		r.Authorization = strings.Join(authz, ",")
		r.Cookie = strings.Join(cookie, "; ")
	}
	if proto != "" {
		r.Scheme, _, _ = strings.Cut(proto, ",") // the first proxy's
	}
	return r
}

func (s *CheckServer) render(d Decision) (*encodedResponse, error) {
	switch {
	case d.Err != nil:
		// No decision: Envoy's failure_mode_allow / status_on_error apply.
		return nil, status.Error(codes.Unavailable, "authorization temporarily unavailable")
	case d.Denial != nil:
		return deniedResponse(d.Denial)
	case d.Identity == nil:
		return s.anon, nil
	}
	id := d.Identity
	if d.internal != nil {
		return renderInternal(s.a, id, d.internal)
	}
	if r := id.envoyOK.Load(); r != nil {
		return r, nil
	}
	var r *encodedResponse
	var err error
	if s.a.DynamicMetadata() {
		r, err = encodeResponse(okResponse(id.headers, id.unset, claimsMetadata(id.Claims)))
	} else {
		r, err = appendOKResponse(id.headers, id.unset)
	}
	if err != nil {
		return nil, err
	}
	id.envoyOK.Store(r)
	return r, nil
}

// appendOKResponse marshals okResponse(set, remove, nil) straight to the
// wire format, without building the message first: it runs once per
// cache miss. Same bytes as proto.Marshal (TestAppendOKResponse), and
// the same refusal of a string that is not UTF-8.
func appendOKResponse(set []Header, remove []string) (*encodedResponse, error) {
	const (
		statusField, okField                  = 1, 3 // CheckResponse
		headersField, removeField             = 2, 5 // OkHttpResponse
		optHeader, optAppend, optAppendAction = 1, 2, 3
		hvKey, hvValue                        = 1, 2
	)
	action := uint64(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	hvLen := func(h Header) int {
		return protowire.SizeTag(hvKey) + protowire.SizeBytes(len(h.Name)) + protowire.SizeTag(hvValue) + protowire.SizeBytes(len(h.Value))
	}
	optLen := func(h Header) int {
		return protowire.SizeTag(optHeader) + protowire.SizeBytes(hvLen(h)) + protowire.SizeTag(optAppend) + protowire.SizeBytes(0) +
			protowire.SizeTag(optAppendAction) + protowire.SizeVarint(action)
	}
	okLen := 0
	for _, h := range set {
		if !utf8.ValidString(h.Name) || !utf8.ValidString(h.Value) {
			return nil, errEncode
		}
		okLen += protowire.SizeTag(headersField) + protowire.SizeBytes(optLen(h))
	}
	for _, n := range remove {
		if !utf8.ValidString(n) {
			return nil, errEncode
		}
		okLen += protowire.SizeTag(removeField) + protowire.SizeBytes(len(n))
	}
	b := make([]byte, 0, protowire.SizeTag(statusField)+protowire.SizeBytes(0)+protowire.SizeTag(okField)+protowire.SizeBytes(okLen))
	// status: an empty google.rpc.Status (code OK is proto3's default).
	b = protowire.AppendTag(b, statusField, protowire.BytesType)
	b = protowire.AppendVarint(b, 0)
	b = protowire.AppendTag(b, okField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(okLen))
	for _, h := range set {
		b = protowire.AppendTag(b, headersField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(optLen(h)))
		b = protowire.AppendTag(b, optHeader, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(hvLen(h)))
		b = protowire.AppendTag(b, hvKey, protowire.BytesType)
		b = protowire.AppendString(b, h.Name)
		b = protowire.AppendTag(b, hvValue, protowire.BytesType)
		b = protowire.AppendString(b, h.Value)
		// append: an empty BoolValue, i.e. false.
		b = protowire.AppendTag(b, optAppend, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
		b = protowire.AppendTag(b, optAppendAction, protowire.VarintType)
		b = protowire.AppendVarint(b, action)
	}
	for _, n := range remove {
		b = protowire.AppendTag(b, removeField, protowire.BytesType)
		b = protowire.AppendString(b, n)
	}
	return &encodedResponse{b: b}, nil
}

// okResponse sets the identity headers, overwriting whatever the client
// sent under those names, and removes the configured ones not set.
// Removals never name a header that is set: Envoy applies
// headers_to_remove after the sets.
func okResponse(set []Header, remove []string, md *structpb.Struct) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{HeadersToRemove: remove}
	for _, h := range set {
		ok.Headers = append(ok.Headers, overwrite(h.Name, h.Value))
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: md,
	}
}

// appendFalse is shared by every header option: responses are cached
// per identity and only ever marshaled, never modified.
var appendFalse = wrapperspb.Bool(false)

// overwrite is a header set with OVERWRITE_IF_EXISTS_OR_ADD, plus the
// deprecated append=false older Envoy versions read (same meaning).
func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		//lint:ignore SA1019 older Envoy versions read only append; it must say false there too
		Append: appendFalse,
	}
}

func deniedResponse(d *Denial) (*encodedResponse, error) {
	if r := d.envoy.Load(); r != nil {
		return r, nil
	}
	code := codes.Unauthenticated
	if d.Status == 403 {
		code = codes.PermissionDenied
	}
	headers := []*corev3.HeaderValueOption{
		overwrite("www-authenticate", d.WWWAuthenticate),
		overwrite("content-type", "application/json"),
		overwrite("cache-control", "no-store"),
	}
	for _, h := range d.Headers {
		headers = append(headers, overwrite(strings.ToLower(h.Name), h.Value))
	}
	r, err := encodeResponse(&authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: d.Description},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(d.Body),
		}},
	})
	if err != nil {
		return nil, err
	}
	d.envoy.Store(r)
	return r, nil
}

// claimsMetadata renders claims as dynamic metadata {"claims": {...}}.
func claimsMetadata(raw []byte) *structpb.Struct {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	v, err := structpb.NewStruct(map[string]any{"claims": m})
	if err != nil {
		return nil
	}
	return v
}
