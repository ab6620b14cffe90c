// Package bootstrap checks an Envoy v3 bootstrap the way Envoy loads it:
// decoded into go-control-plane's Bootstrap with every typed_config
// resolved to its registered extension type, then the protoc-gen-validate
// rules of the whole tree checked, including the messages inside each Any
// (which PGV's own ValidateAll does not look into). envoy/'s tests and
// sidecar/envoyconfig's tests use it on the kit's files and on generated
// bootstraps.
package bootstrap

import (
	"encoding/json"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"
)

// Validate decodes doc (YAML, or JSON, which is YAML too) as an Envoy v3
// Bootstrap and returns it if Envoy would accept it. The extension types
// a typed_config may name are those the kit uses (registered by this
// package's imports); any other is an error, as it is in an Envoy built
// without that extension.
func Validate(doc []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(j, &bs); err != nil {
		return nil, fmt.Errorf("not an Envoy v3 Bootstrap: %w", err)
	}
	if err := validateTree(&bs, "bootstrap"); err != nil {
		return nil, fmt.Errorf("invalid Envoy v3 Bootstrap: %w", err)
	}
	return &bs, nil
}

// YAMLToJSON converts a YAML document to the JSON protojson decodes.
func YAMLToJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	return json.Marshal(v)
}

type allValidator interface{ ValidateAll() error }

// validateTree runs ValidateAll on m and on every message below it,
// unpacking each Any, naming the path of the first failure.
func validateTree(m proto.Message, path string) error {
	if v, ok := m.(allValidator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if a, ok := m.(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return validateTree(inner, path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">")
	}
	var err error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = validateTree(l.Get(i).Message().Interface(), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					err = validateTree(mv.Message().Interface(), fmt.Sprintf("%s[%s]", p, k))
					return err == nil
				})
			}
		default:
			err = validateTree(v.Message().Interface(), p)
		}
		return err == nil
	})
	return err
}
