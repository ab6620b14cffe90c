// Package sidecar is the gatehouse-sidecar process around the extauthz
// library: configuration loading (YAML plus flag and environment
// overrides for the essentials), the Envoy ext_authz gRPC server with
// gRPC health, the HTTP server for forward-auth, RFC 7662 introspection,
// health and Prometheus metrics, and a graceful drain on shutdown.
//
// Like extauthz, it never imports the issuer: the contract with any
// OpenID provider is HTTP.
package sidecar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/extauthz"
)

// Defaults of the process settings.
const (
	DefaultGRPCListen   = "127.0.0.1:9191"
	DefaultHTTPListen   = "127.0.0.1:4456"
	DefaultDrainTimeout = 15 * time.Second
	DefaultLogLevel     = "info"
	DefaultLogFormat    = "json"
)

// Config is the sidecar's whole configuration: the authorization
// settings of extauthz.Config at the top level of the YAML document, plus
// the process's own serve and log sections.
type Config struct {
	extauthz.Config `yaml:",inline"`
	Serve           ServeConfig `yaml:"serve"`
	Log             LogConfig   `yaml:"log"`
}

// ServeConfig says where the sidecar listens.
type ServeConfig struct {
	// GRPCListen is the host:port of the Envoy ext_authz gRPC server
	// (with grpc.health.v1). Default 127.0.0.1:9191.
	GRPCListen string `yaml:"grpc_listen"`
	// HTTPListen is the host:port of the HTTP server (/auth, /introspect,
	// /health/alive, /health/ready, /metrics). Default 127.0.0.1:4456.
	HTTPListen string `yaml:"http_listen"`
	// DrainTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM before connections are closed. Default 15s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// LogConfig configures the zap logger.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// Overrides are the essentials that flags and environment variables set
// over the configuration file. An empty field leaves the file's value.
type Overrides struct {
	// Issuer sets issuers[0].issuer (adding the issuer if the file has
	// none).
	Issuer string
	// IntrospectionURL, IntrospectionClientID and
	// IntrospectionClientSecret set issuers[0]'s introspection settings.
	IntrospectionURL          string
	IntrospectionClientID     string
	IntrospectionClientSecret string
	// RevocationEventsURL sets revocations.events_url: the issuer's
	// revocation event stream, or "off".
	RevocationEventsURL string
	GRPCListen          string
	HTTPListen          string
	LogLevel            string
	LogFormat           string

	// InternalTokensClientID and InternalTokensClientSecret set
	// internal_tokens.client_id and client_secret (the sidecar's own
	// client for token exchange).
	InternalTokensClientID     string
	InternalTokensClientSecret string
}

// Over returns o with every field set in higher replacing o's.
func (o Overrides) Over(higher Overrides) Overrides {
	pick := func(low, high string) string {
		if high != "" {
			return high
		}
		return low
	}
	return Overrides{
		Issuer:                    pick(o.Issuer, higher.Issuer),
		IntrospectionURL:          pick(o.IntrospectionURL, higher.IntrospectionURL),
		IntrospectionClientID:     pick(o.IntrospectionClientID, higher.IntrospectionClientID),
		IntrospectionClientSecret: pick(o.IntrospectionClientSecret, higher.IntrospectionClientSecret),
		RevocationEventsURL:       pick(o.RevocationEventsURL, higher.RevocationEventsURL),
		GRPCListen:                pick(o.GRPCListen, higher.GRPCListen),
		HTTPListen:                pick(o.HTTPListen, higher.HTTPListen),
		LogLevel:                  pick(o.LogLevel, higher.LogLevel),
		LogFormat:                 pick(o.LogFormat, higher.LogFormat),

		InternalTokensClientID:     pick(o.InternalTokensClientID, higher.InternalTokensClientID),
		InternalTokensClientSecret: pick(o.InternalTokensClientSecret, higher.InternalTokensClientSecret),
	}
}

// EnvOverrides reads the GATEHOUSE_SIDECAR_* environment variables
// through getenv (os.Getenv in the binary).
func EnvOverrides(getenv func(string) string) Overrides {
	return Overrides{
		Issuer:                    getenv("GATEHOUSE_SIDECAR_ISSUER"),
		IntrospectionURL:          getenv("GATEHOUSE_SIDECAR_INTROSPECTION_URL"),
		IntrospectionClientID:     getenv("GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_ID"),
		IntrospectionClientSecret: getenv("GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_SECRET"),
		RevocationEventsURL:       getenv("GATEHOUSE_SIDECAR_REVOCATION_EVENTS_URL"),
		GRPCListen:                getenv("GATEHOUSE_SIDECAR_GRPC_LISTEN"),
		HTTPListen:                getenv("GATEHOUSE_SIDECAR_HTTP_LISTEN"),
		LogLevel:                  getenv("GATEHOUSE_SIDECAR_LOG_LEVEL"),
		LogFormat:                 getenv("GATEHOUSE_SIDECAR_LOG_FORMAT"),

		InternalTokensClientID:     getenv("GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID"),
		InternalTokensClientSecret: getenv("GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET"),
	}
}

// ParseConfig decodes a YAML document strictly: an unknown key is an
// error naming it. An empty document is an empty configuration.
func ParseConfig(doc []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(doc)) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, nil
		}
		return Config{}, fmt.Errorf("configuration file: %s", yamlError(doc, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("configuration file: more than one YAML document")
	}
	return c, nil
}

// yamlError makes yaml.v3's messages name the setting: "line 4: field x
// not found in type extauthz.IssuerConfig" becomes "line 4:
// issuers[0].x: unknown key", and a value of the wrong type is reported
// with the key it belongs to.
func yamlError(doc []byte, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	keys := map[int]string{}
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) == nil {
		keyLines(&root, "", keys)
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &line); scanErr == nil {
			prefix := fmt.Sprintf("line %d: ", line)
			rest := strings.TrimPrefix(m, prefix)
			key := keys[line]
			if f, ok := strings.CutPrefix(rest, "field "); ok {
				if name, _, ok := strings.Cut(f, " not found in type "); ok {
					if key == "" {
						key = name
					}
					m = fmt.Sprintf("%s%s: unknown key %q", prefix, key, name)
				}
			} else if key != "" {
				m = prefix + key + ": " + rest
			}
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// keyLines records, for each line holding a mapping key or a sequence
// item, the path of the setting there: the outermost key on the line,
// else the sequence item.
func keyLines(n *yaml.Node, path string, out map[int]string) {
	record := func(line int, p string) {
		if _, ok := out[line]; !ok && p != "" {
			out[line] = p
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			keyLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			record(n.Content[i].Line, p)
			keyLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			keyLines(c, p, out)
			record(c.Line, p) // unless a key inside the item is on its line
		}
	}
}

// Apply returns c with the overrides applied.
func (c Config) Apply(o Overrides) Config {
	// Copy the issuers so the caller's slice is never written.
	c.Issuers = append([]extauthz.IssuerConfig(nil), c.Issuers...)
	if o.Issuer != "" || o.IntrospectionURL != "" || o.IntrospectionClientID != "" || o.IntrospectionClientSecret != "" {
		if len(c.Issuers) == 0 {
			c.Issuers = append(c.Issuers, extauthz.IssuerConfig{})
		}
		is := &c.Issuers[0]
		override(&is.Issuer, o.Issuer)
		override(&is.IntrospectionURL, o.IntrospectionURL)
		override(&is.IntrospectionClientID, o.IntrospectionClientID)
		override(&is.IntrospectionClientSecret, o.IntrospectionClientSecret)
	}
	override(&c.Revocations.EventsURL, o.RevocationEventsURL)
	override(&c.InternalTokens.ClientID, o.InternalTokensClientID)
	override(&c.InternalTokens.ClientSecret, o.InternalTokensClientSecret)
	override(&c.Serve.GRPCListen, o.GRPCListen)
	override(&c.Serve.HTTPListen, o.HTTPListen)
	override(&c.Log.Level, o.LogLevel)
	override(&c.Log.Format, o.LogFormat)
	return c
}

// override sets *dst to v unless v is empty (an override not given).
func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// Defaults returns c with every unset setting at its default, the
// authorization settings included.
func (c Config) Defaults() Config {
	c.Config = c.Config.Defaults()
	if c.Serve.GRPCListen == "" {
		c.Serve.GRPCListen = DefaultGRPCListen
	}
	if c.Serve.HTTPListen == "" {
		c.Serve.HTTPListen = DefaultHTTPListen
	}
	if c.Serve.DrainTimeout == 0 {
		c.Serve.DrainTimeout = DefaultDrainTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	return c
}

// Validate checks c (after Defaults) and returns every problem, each
// naming its key.
func (c Config) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := checkListen(c.Serve.GRPCListen); err != nil {
		bad("serve.grpc_listen", "%v", err)
	}
	if err := checkListen(c.Serve.HTTPListen); err != nil {
		bad("serve.http_listen", "%v", err)
	}
	if c.Serve.GRPCListen == c.Serve.HTTPListen && !strings.HasSuffix(c.Serve.GRPCListen, ":0") {
		bad("serve.http_listen", "must differ from serve.grpc_listen (%s)", c.Serve.GRPCListen)
	}
	if c.Serve.DrainTimeout <= 0 || c.Serve.DrainTimeout > 10*time.Minute {
		bad("serve.drain_timeout", "must be between 0s (excluded) and 10m, got %s", c.Serve.DrainTimeout)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q must be json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

// checkListen accepts host:port with a numeric port; an empty host
// listens on every interface.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}

// LoadConfig parses doc, applies the overrides and the defaults and
// validates the result. The error names every bad key.
func LoadConfig(doc []byte, o Overrides) (Config, error) {
	c, err := ParseConfig(doc)
	if err != nil {
		return Config{}, err
	}
	c = c.Apply(o).Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}
