package config

import (
	"strings"
	"testing"
)

// Hydra's tracing keys, from a file and from the environment.
func TestTracingKeys(t *testing.T) {
	base := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com"}
	c, _, err := Load(nil, env(base))
	if err != nil || c.Validate() != nil {
		t.Fatal(err)
	}
	if c.Tracing.Provider != "" {
		t.Fatalf("tracing is on by default: %+v", c.Tracing)
	}

	doc := []byte("tracing:\n  provider: otel\n  service_name: Ory Hydra\n  providers:\n    otlp:\n      server_url: collector:4318\n      insecure: true\n      sampling:\n        sampling_ratio: 0.25\n")
	c, warnings, err := Load(doc, env(base))
	if err != nil || len(warnings) != 0 || c.Validate() != nil {
		t.Fatal(err, warnings)
	}
	o := c.Tracing.Providers.OTLP
	if c.Tracing.ServiceName != "Ory Hydra" || o.ServerURL != "collector:4318" || !o.Insecure || o.Sampling.SamplingRatio != 0.25 {
		t.Errorf("from YAML: %+v", c.Tracing)
	}

	m := map[string]string{"TRACING_PROVIDER": "otel", "TRACING_PROVIDERS_OTLP_SERVER_URL": "[::1]:4318",
		"TRACING_PROVIDERS_OTLP_INSECURE": "true", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO": "1.0"}
	for k, v := range base {
		m[k] = v
	}
	c, _, err = Load(doc, env(m))
	if err != nil || c.Validate() != nil {
		t.Fatal(err)
	}
	if o := c.Tracing.Providers.OTLP; o.ServerURL != "[::1]:4318" || o.Sampling.SamplingRatio != 1 {
		t.Errorf("environment over YAML: %+v", c.Tracing)
	}
}

func TestTracingRefusals(t *testing.T) {
	base := map[string]string{"DSN": "memory", "SECRETS_SYSTEM": goodSecret, "URLS_SELF_ISSUER": "https://auth.example.com",
		"TRACING_PROVIDER": "otel", "TRACING_PROVIDERS_OTLP_SERVER_URL": "localhost:4318"}
	for _, tc := range []struct{ name, key, value, want string }{
		{"unknown provider", "TRACING_PROVIDER", "datadog", "TRACING_PROVIDER"},
		{"jaeger", "TRACING_PROVIDER", "jaeger", "use otel"},
		{"no server", "TRACING_PROVIDERS_OTLP_SERVER_URL", "", "TRACING_PROVIDERS_OTLP_SERVER_URL"},
		{"a URL, not host:port", "TRACING_PROVIDERS_OTLP_SERVER_URL", "http://localhost:4318", "TRACING_PROVIDERS_OTLP_SERVER_URL"},
		{"no port", "TRACING_PROVIDERS_OTLP_SERVER_URL", "localhost", "TRACING_PROVIDERS_OTLP_SERVER_URL"},
		{"port 0", "TRACING_PROVIDERS_OTLP_SERVER_URL", "localhost:0", "TRACING_PROVIDERS_OTLP_SERVER_URL"},
		{"ratio above 1", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO", "1.5", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO"},
		{"ratio NaN", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO", "NaN", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO"},
		{"ratio not a number", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO", "half", "TRACING_PROVIDERS_OTLP_SAMPLING_SAMPLING_RATIO"},
		{"header on two lines", "TRACING_PROVIDERS_OTLP_AUTHORIZATION_HEADER", "Bearer a\r\nX-Evil: 1", "TRACING_PROVIDERS_OTLP_AUTHORIZATION_HEADER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := loadValidate(base, tc.key, tc.value, false); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
