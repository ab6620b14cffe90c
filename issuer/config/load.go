package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load builds the configuration: defaults, then the YAML document (may be
// nil), then environment variables looked up with getenv (Hydra's names).
// It does not call Validate. Unknown YAML keys are returned as warnings (a
// Hydra configuration file carries keys Gatehouse does not use).
func Load(yamlDoc []byte, getenv func(string) string) (Config, []string, error) {
	c := Default()
	var warnings []string
	if len(bytes.TrimSpace(yamlDoc)) > 0 {
		var root yaml.Node
		if err := yaml.Unmarshal(yamlDoc, &root); err != nil {
			return c, nil, fmt.Errorf("configuration file: %w", err)
		}
		if err := root.Decode(&c); err != nil {
			return c, nil, fmt.Errorf("configuration file: %w", err)
		}
		if len(root.Content) > 0 {
			warnings = unknownKeys(root.Content[0], reflect.TypeOf(c), "")
		}
	}
	if getenv != nil {
		if err := applyEnv(reflect.ValueOf(&c).Elem(), getenv); err != nil {
			return c, warnings, err
		}
	}
	return c, warnings, nil
}

func unknownKeys(n *yaml.Node, t reflect.Type, prefix string) []string {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		f, ok := fieldByTag(t, key)
		if !ok {
			out = append(out, fmt.Sprintf("unknown configuration key %s%s ignored", prefix, key))
			continue
		}
		out = append(out, unknownKeys(n.Content[i+1], f.Type, prefix+key+".")...)
	}
	return out
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if yamlName(f) == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

var durationType = reflect.TypeOf(time.Duration(0))

// scalarSetter is a struct key that may also be given as one string (a
// Hook's plain URL form).
type scalarSetter interface{ setScalar(string) }

var scalarSetterType = reflect.TypeOf((*scalarSetter)(nil)).Elem()

// walkKeys calls fn for every configuration key below the struct v, in
// struct order: its dotted path, its field and its value. Nested structs
// are walked, not passed to fn, except that a struct with a plain form
// (scalarSetter) is passed to fn before its fields; fields without a yaml
// name are skipped. The first error of fn ends the walk.
func walkKeys(v reflect.Value, prefix string, fn func(path string, f reflect.StructField, fv reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		var err error
		if f.Type.Kind() == reflect.Struct {
			if reflect.PointerTo(f.Type).Implements(scalarSetterType) {
				if err = fn(path, f, v.Field(i)); err != nil {
					return err
				}
			}
			err = walkKeys(v.Field(i), path+".", fn)
		} else {
			err = fn(path, f, v.Field(i))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyEnv(v reflect.Value, getenv func(string) string) error {
	return walkKeys(v, "", func(path string, _ reflect.StructField, fv reflect.Value) error {
		raw := getenv(EnvName(path))
		if raw == "" {
			return nil
		}
		// A key with a plain form is set by its own name; its fields, set
		// by theirs, come after.
		if s, ok := fv.Addr().Interface().(scalarSetter); ok {
			s.setScalar(raw)
			return nil
		}
		if err := setFromString(fv, raw); err != nil {
			return keyErr(path, "%v", err)
		}
		return nil
	})
}

func setFromString(fv reflect.Value, raw string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 30s, 15m, 1h)", raw)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", raw)
		}
		fv.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 0, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", raw)
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", raw)
		}
		fv.SetFloat(f)
	case reflect.Pointer:
		p := reflect.New(fv.Type().Elem())
		if err := setFromString(p.Elem(), raw); err != nil {
			return err
		}
		fv.Set(p)
	case reflect.Slice:
		var items []string
		if s := strings.TrimSpace(raw); strings.HasPrefix(s, "[") {
			if err := json.Unmarshal([]byte(s), &items); err != nil {
				return fmt.Errorf("invalid JSON list: %v", err)
			}
		} else {
			for _, it := range strings.Split(raw, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return errors.New("unsupported type")
	}
	return nil
}

// Key describes one configuration key for documentation.
type Key struct {
	Path, Env, Type, Default, Doc string
}

// AllKeys lists every configuration key with its default, in struct order.
func AllKeys() []Key {
	var out []Key
	_ = walkKeys(reflect.ValueOf(Default()), "", func(path string, f reflect.StructField, fv reflect.Value) error {
		if f.Type.Kind() == reflect.Struct {
			out = append(out, Key{Path: path, Env: EnvName(path), Type: "string", Doc: f.Tag.Get("doc")})
			return nil
		}
		out = append(out, Key{Path: path, Env: EnvName(path), Type: typeName(f.Type),
			Default: defaultString(fv), Doc: f.Tag.Get("doc")})
		return nil
	})
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.Kind().String()
}

func defaultString(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		d := time.Duration(v.Int())
		if d == 0 {
			return ""
		}
		return d.String()
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		return defaultString(v.Elem())
	case v.Kind() == reflect.Slice:
		s := make([]string, v.Len())
		for i := range s {
			s[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(s, ",")
	case v.Kind() == reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case v.Kind() == reflect.Int:
		if v.Int() == 0 {
			return ""
		}
	}
	return fmt.Sprint(v.Interface())
}

// MarkdownTable renders Keys as the table kept in docs/configuration.md.
func MarkdownTable() string {
	keys := AllKeys()
	var b strings.Builder
	b.WriteString("| key | environment variable | type | default | meaning |\n|---|---|---|---|---|\n")
	for _, k := range keys {
		def := k.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", k.Path, k.Env, k.Type, def, strings.ReplaceAll(k.Doc, "|", "\\|"))
	}
	return b.String()
}

// EnvNames returns every environment variable name Load reads, sorted.
func EnvNames() []string {
	var names []string
	for _, k := range AllKeys() {
		names = append(names, k.Env)
	}
	sort.Strings(names)
	return names
}
