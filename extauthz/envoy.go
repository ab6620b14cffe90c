package extauthz

import (
	"context"
	"encoding/json"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// CheckServer is Envoy's ext_authz gRPC service
// (envoy.service.auth.v3.Authorization/Check).
type CheckServer struct {
	authv3.UnimplementedAuthorizationServer
	a    *Authorizer
	anon *authv3.CheckResponse
}

var _ authv3.AuthorizationServer = (*CheckServer)(nil)

// NewCheckServer serves a's decisions over ext_authz.
func NewCheckServer(a *Authorizer) *CheckServer {
	return &CheckServer{a: a, anon: okResponse(nil, a.IdentityHeaderNames(), nil)}
}

// Check extracts the request attributes, decides and renders.
func (s *CheckServer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	d := s.a.Decide(ctx, requestFromCheck(req))
	return s.render(d)
}

// requestFromCheck reads the original request from a CheckRequest: the
// headers map (lower-case names, repeated headers joined by ","), or the
// header_map Envoy sends with encode_raw_headers.
//
// NewCheckCodec decodes only the fields read here: reading another one
// needs the codec (checkcodec.go) to decode it too.
func requestFromCheck(req *authv3.CheckRequest) *Request {
	h := req.GetAttributes().GetRequest().GetHttp()
	r := &Request{Host: h.GetHost(), Method: h.GetMethod(), Path: h.GetPath()}
	if hm := h.GetHeaders(); len(hm) > 0 {
		r.Authorization = hm["authorization"]
		r.Cookie = hm["cookie"]
	} else if raw := h.GetHeaderMap().GetHeaders(); len(raw) > 0 {
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
			}
		}
		r.Authorization = strings.Join(authz, ",")
		r.Cookie = strings.Join(cookie, "; ")
	}
	return r
}

func (s *CheckServer) render(d Decision) (*authv3.CheckResponse, error) {
	switch {
	case d.Err != nil:
		// No decision: Envoy's failure_mode_allow / status_on_error apply.
		return nil, status.Error(codes.Unavailable, "authorization temporarily unavailable")
	case d.Denial != nil:
		return deniedResponse(d.Denial), nil
	case d.Identity == nil:
		return s.anon, nil
	}
	id := d.Identity
	if r := id.envoyOK.Load(); r != nil {
		return r, nil
	}
	var md *structpb.Struct
	if s.a.DynamicMetadata() {
		md = claimsMetadata(id.Claims)
	}
	r := okResponse(id.headers, id.unset, md)
	id.envoyOK.Store(r)
	return r, nil
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

func deniedResponse(d *Denial) *authv3.CheckResponse {
	if r := d.envoy.Load(); r != nil {
		return r
	}
	code := codes.Unauthenticated
	if d.Status == 403 {
		code = codes.PermissionDenied
	}
	r := &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: d.Description},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: []*corev3.HeaderValueOption{
				overwrite("www-authenticate", d.WWWAuthenticate),
				overwrite("content-type", "application/json"),
				overwrite("cache-control", "no-store"),
			},
			Body: string(d.Body),
		}},
	}
	d.envoy.Store(r)
	return r
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
