package extauthz

import (
	"errors"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec used for everything else
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// NewCheckCodec returns a gRPC codec for the ext_authz server, installed
// with grpc.ForceServerCodecV2. It decodes a CheckRequest partially:
// only what requestFromCheck reads (method, host, path, the
// authorization and cookie headers, and whether the headers map and
// header_map are empty), straight from the wire with protowire. Envoy's
// other attributes (every other header, the peers, metadata, a buffered
// body) are skipped, not allocated: decoding them is most of a cached
// check's CPU. Every other message, and every response, goes through the
// standard protobuf codec. Without this codec the server still works,
// decoding the whole request. Marshal sends the responses CheckServer
// keeps marshaled (see Register) as they are.
//
// The skipped parts are checked for wire-format validity only; a request
// the standard codec accepts decodes to the same Request (see the fuzz
// test).
//
// It decodes only the headers the sidecar itself reads: an authorizer
// whose CEL conditions read other headers needs Authorizer.CheckCodec.
func NewCheckCodec() encoding.CodecV2 {
	return checkCodec{std: encoding.GetCodecV2("proto")}
}

// CheckCodec is NewCheckCodec decoding also the request headers a's CEL
// conditions read (every header when one of them reads the headers map
// other than by a constant name).
func (a *Authorizer) CheckCodec() encoding.CodecV2 {
	c := checkCodec{std: encoding.GetCodecV2("proto")}
	if a.cel != nil && (a.cel.allHeaders || len(a.cel.headerNames) > 0) {
		c.keep = &headerFilter{all: a.cel.allHeaders, names: map[string]bool{}}
		for _, n := range a.cel.headerNames {
			c.keep.names[n] = true
		}
	}
	return c
}

type checkCodec struct {
	std  encoding.CodecV2
	keep *headerFilter // nil: only checkHeaders
}

// headerFilter says which headers the check codec decodes besides
// checkHeaders.
type headerFilter struct {
	all   bool
	names map[string]bool
}

func (f *headerFilter) keeps(name string) bool {
	return checkHeaders[name] || (f != nil && (f.all || f.names[name]))
}

func (c checkCodec) Name() string { return "proto" }

func (c checkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedResponse); ok {
		// Shared, read-only bytes: a SliceBuffer is never recycled.
		return mem.BufferSlice{mem.SliceBuffer(e.b)}, nil
	}
	return c.std.Marshal(v)
}

func (c checkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	proto.Reset(m)
	return decodeCheckRequest(buf.ReadOnlyData(), m, c.keep)
}

var errWire = errors.New("proto: cannot parse invalid wire-format data")

// fields walks the top-level fields of a message, calling fn with each
// length-delimited field's contents; other fields are skipped after
// checking their encoding.
func fields(b []byte, fn func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWire
			}
			b = b[n:]
			if err := fn(num, v); err != nil {
				return err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
	}
	return nil
}

// protoString converts a proto3 string field, which must be UTF-8.
func protoString(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errors.New("proto: string field contains invalid UTF-8")
	}
	return string(v), nil
}

// decodeCheckRequest: CheckRequest.attributes = 1. A singular message
// field seen twice is merged, as protobuf does.
func decodeCheckRequest(b []byte, m *authv3.CheckRequest, keep *headerFilter) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		if num != 1 {
			return nil
		}
		if m.Attributes == nil {
			m.Attributes = &authv3.AttributeContext{}
		}
		// AttributeContext.source = 1, request = 4.
		return fields(v, func(num protowire.Number, v []byte) error {
			if num == 1 {
				if m.Attributes.Source == nil {
					m.Attributes.Source = &authv3.AttributeContext_Peer{}
				}
				return decodePeer(v, m.Attributes.Source)
			}
			if num != 4 {
				return nil
			}
			if m.Attributes.Request == nil {
				m.Attributes.Request = &authv3.AttributeContext_Request{}
			}
			// AttributeContext.Request.http = 2.
			return fields(v, func(num protowire.Number, v []byte) error {
				if num != 2 {
					return nil
				}
				if m.Attributes.Request.Http == nil {
					m.Attributes.Request.Http = &authv3.AttributeContext_HttpRequest{}
				}
				return decodeHTTPRequest(v, m.Attributes.Request.Http, keep)
			})
		})
	})
}

// decodeHTTPRequest reads method = 2, headers = 3 (map entries), path =
// 4, host = 5, scheme = 6 and header_map = 13 of
// AttributeContext.HttpRequest.
func decodeHTTPRequest(b []byte, h *authv3.AttributeContext_HttpRequest, keep *headerFilter) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		var err error
		switch num {
		case 2:
			h.Method, err = protoString(v)
		case 4:
			h.Path, err = protoString(v)
		case 5:
			h.Host, err = protoString(v)
		case 6:
			h.Scheme, err = protoString(v)
		case 3:
			err = decodeHeaderEntry(v, h, keep)
		case 13:
			if h.HeaderMap == nil {
				h.HeaderMap = &corev3.HeaderMap{}
			}
			// HeaderMap.headers = 1 (repeated HeaderValue).
			err = fields(v, func(num protowire.Number, v []byte) error {
				if num != 1 {
					return nil
				}
				return decodeHeaderValue(v, h.HeaderMap, keep)
			})
		}
		return err
	})
}

// decodeHeaderEntry reads one headers map entry (key = 1, value = 2; the
// last occurrence wins) and keeps it if requestFromCheck reads it, or if
// it is the first entry (the map's non-emptiness matters).
func decodeHeaderEntry(b []byte, h *authv3.AttributeContext_HttpRequest, keep *headerFilter) error {
	var key, val []byte
	err := fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			key = v
		case 2:
			val = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !keep.keeps(string(key)) && len(h.Headers) > 0 {
		return nil
	}
	k, err := protoString(key)
	if err != nil {
		return err
	}
	v, err := protoString(val)
	if err != nil {
		return err
	}
	if h.Headers == nil {
		h.Headers = make(map[string]string, 2)
	}
	h.Headers[k] = v
	return nil
}

// decodeHeaderValue reads one HeaderValue (key = 1, value = 2, raw_value
// = 3) and keeps it when requestFromCheck reads it, or as the first one.
func decodeHeaderValue(b []byte, hm *corev3.HeaderMap, keep *headerFilter) error {
	var key, val, raw []byte
	err := fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			key = v
		case 2:
			val = v
		case 3:
			raw = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if k := strings.ToLower(string(key)); !keep.keeps(k) && k != ":authority" && len(hm.Headers) > 0 {
		return nil
	}
	hv := &corev3.HeaderValue{}
	if hv.Key, err = protoString(key); err != nil {
		return err
	}
	if hv.Value, err = protoString(val); err != nil {
		return err
	}
	if raw != nil {
		hv.RawValue = append([]byte{}, raw...)
	}
	hm.Headers = append(hm.Headers, hv)
	return nil
}

// checkHeaders are the headers requestFromCheck reads.
var checkHeaders = map[string]bool{"authorization": true, "cookie": true, "dpop": true,
	"x-forwarded-proto": true, XFCCHeader: true}

// decodePeer reads AttributeContext.Peer's address = 1 (Address.
// socket_address = 1, SocketAddress.address = 2) and certificate = 5.
func decodePeer(b []byte, p *authv3.AttributeContext_Peer) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 5:
			var err error
			p.Certificate, err = protoString(v)
			return err
		case 1:
			if p.Address == nil {
				p.Address = &corev3.Address{}
			}
			return fields(v, func(num protowire.Number, v []byte) error {
				if num != 1 {
					return nil
				}
				sa, ok := p.Address.Address.(*corev3.Address_SocketAddress)
				if !ok {
					sa = &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{}}
					p.Address.Address = sa
				}
				return fields(v, func(num protowire.Number, v []byte) error {
					if num != 2 {
						return nil
					}
					var err error
					sa.SocketAddress.Address, err = protoString(v)
					return err
				})
			})
		}
		return nil
	})
}
