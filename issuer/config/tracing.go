package config

import (
	"net"
	"strconv"
	"strings"
)

// Tracing is Hydra's tracing section (ory/x otelx: provider, service_name,
// providers.otlp). Of Hydra's providers only otel (OTLP over HTTP) is
// served; Jaeger and Zipkin accept OTLP themselves.
type Tracing struct {
	Provider              string           `yaml:"provider" doc:"otel exports OpenTelemetry spans of every request, storage call and outbound call over OTLP/HTTP; empty (the default) traces nothing. Hydra's jaeger and zipkin are refused: both take OTLP, use otel."`
	ServiceName           string           `yaml:"service_name" doc:"service.name of the exported spans."`
	DeploymentEnvironment string           `yaml:"deployment_environment" doc:"deployment.environment.name of the exported spans (e.g. production), when set."`
	Providers             TracingProviders `yaml:"providers"`
}

type TracingProviders struct {
	OTLP OTLP `yaml:"otlp"`
}

type OTLP struct {
	ServerURL           string       `yaml:"server_url" doc:"host:port of the OTLP/HTTP collector (spans go to /v1/traces there), as in Hydra: no scheme. Required with provider otel."`
	Insecure            bool         `yaml:"insecure" doc:"Send spans over plain HTTP instead of HTTPS."`
	AuthorizationHeader string       `yaml:"authorization_header" doc:"Authorization header value sent with every export (e.g. Bearer ...)."`
	Sampling            OTLPSampling `yaml:"sampling"`
}

type OTLPSampling struct {
	SamplingRatio float64 `yaml:"sampling_ratio" doc:"Share of traces started here that are sampled, 0 to 1. A request whose traceparent says sampled is always traced (parent-based). Hydra's default is 0, Gatehouse's 1."`
}

func defaultTracing() Tracing {
	return Tracing{ServiceName: "gatehouse", Providers: TracingProviders{OTLP: OTLP{Sampling: OTLPSampling{SamplingRatio: 1}}}}
}

// validate checks the tracing section.
func (t *Tracing) validate() []error {
	var errs []error
	switch t.Provider {
	case "":
		return nil
	case "otel":
	case "jaeger", "zipkin":
		return []error{keyErr("tracing.provider", "%s is not supported: Jaeger and Zipkin receive OTLP, use otel and point tracing.providers.otlp.server_url at their OTLP/HTTP port", t.Provider)}
	default:
		return []error{keyErr("tracing.provider", "must be otel or empty, got %q", t.Provider)}
	}
	if t.ServiceName == "" {
		errs = append(errs, keyErr("tracing.service_name", "must not be empty"))
	}
	o := t.Providers.OTLP
	if o.ServerURL == "" {
		errs = append(errs, keyErr("tracing.providers.otlp.server_url", "must be set to the collector's host:port (e.g. localhost:4318) when tracing.provider is otel"))
	} else if !validHostPort(o.ServerURL) {
		errs = append(errs, keyErr("tracing.providers.otlp.server_url", "must be host:port without a scheme or path (e.g. localhost:4318; set insecure for plain HTTP), got %q", o.ServerURL))
	}
	if strings.ContainsAny(o.AuthorizationHeader, "\r\n") {
		errs = append(errs, keyErr("tracing.providers.otlp.authorization_header", "must be one line"))
	}
	if r := o.Sampling.SamplingRatio; !(r >= 0 && r <= 1) {
		errs = append(errs, keyErr("tracing.providers.otlp.sampling.sampling_ratio", "must be between 0 and 1, got %v", r))
	}
	return errs
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}
