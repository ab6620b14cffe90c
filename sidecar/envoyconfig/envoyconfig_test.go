package envoyconfig_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/envoy/bootstrap"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/sidecar/envoyconfig"
)

func runEnvoyConfig(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := envoyconfig.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.Bytes(), err
}

// TestEnvoyConfigDefaultsAreTheKit: with the defaults the command prints
// envoy/envoy.yaml and envoy/envoy-api.yaml byte for byte, comments and
// all, the files envoy/envoy_test.go validates and wires.
func TestEnvoyConfigDefaultsAreTheKit(t *testing.T) {
	for file, args := range map[string][]string{"envoy/envoy.yaml": nil, "envoy/envoy-api.yaml": {"--api-only"}} {
		t.Run(file, func(t *testing.T) {
			out, err := runEnvoyConfig(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			kit, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, kit) {
				t.Fatalf("envoy-config %s differs from %s (envoytmpl/ is the kit's template: change both, or regenerate the file with the command).\n%s",
					strings.Join(args, " "), file, firstDiff(string(out), string(kit)))
			}
			validateBootstrap(t, out)
		})
	}
}

// TestEnvoyConfigQuotesValues: values YAML would misread are quoted and
// come back as given; control characters, which would break out of the
// comments, are refused.
func TestEnvoyConfigQuotesValues(t *testing.T) {
	out, err := runEnvoyConfig(t, "--client-id", "a: b #c", "--scope", "openid,x:y,true,{z}", "--secrets-dir", "/run/my secrets, [1]/")
	if err != nil {
		t.Fatal(err)
	}
	bs := validateBootstrap(t, out)
	pj, _ := protojson.Marshal(bs)
	var j bytes.Buffer // protojson varies its spacing
	if err := json.Compact(&j, pj); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"clientId":"a: b #c"`, `"authScopes":["openid","x:y","true","{z}"]`,
		`"path":"/run/my secrets, [1]/token-secret.yaml"`} {
		if !strings.Contains(j.String(), want) {
			t.Errorf("the bootstrap lacks %s:\n%s", want, out)
		}
	}
	if _, err := runEnvoyConfig(t, "--client-id", "x\nadmin: {}"); err == nil || !strings.Contains(err.Error(), "--client-id") {
		t.Errorf("a newline in --client-id: %v", err)
	}
	if _, err := runEnvoyConfig(t, "--sidecar", "a b:9191"); err == nil || !strings.Contains(err.Error(), "--sidecar") {
		t.Errorf("a space in --sidecar's host: %v", err)
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got:  %s\n want: %s", i+1, a, b)
		}
	}
	return "(only key order differs)"
}

// validateBootstrap fails the test unless Envoy would accept b.
func validateBootstrap(t *testing.T, b []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := bootstrap.Validate(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return bs
}

// TestEnvoyConfigOtherAddresses: a production-like set of addresses gives a
// bootstrap Envoy accepts, with names resolved by DNS and TLS to an https
// token endpoint.
func TestEnvoyConfigOtherAddresses(t *testing.T) {
	out, err := runEnvoyConfig(t, "--listen", "0.0.0.0:8443", "--admin-listen", "127.0.0.1:9000",
		"--issuer", "https://auth.example.com/tenant", "--sidecar", "gatehouse-sidecar:9191",
		"--app", "app.internal:8080", "--api", "10.0.0.7:9000", "--client-id", "edge", "--secrets-dir", "/run/secrets/",
		"--scope", "openid,email")
	if err != nil {
		t.Fatal(err)
	}
	bs := validateBootstrap(t, out)
	s := string(out)
	for _, want := range []string{
		"authorization_endpoint: https://auth.example.com/tenant/oauth2/auth",
		"uri: https://auth.example.com/tenant/oauth2/token",
		"end_session_endpoint: https://auth.example.com/tenant/oauth2/sessions/logout",
		"sni: auth.example.com",
		"client_id: edge",
		"path: /run/secrets/token-secret.yaml",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	types := map[string]string{}
	for _, c := range bs.StaticResources.Clusters {
		types[c.Name] = c.GetType().String()
		if c.Name == "gatehouse_public" && c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().GetPortValue() != 443 {
			t.Errorf("gatehouse_public is not on port 443")
		}
	}
	want := map[string]string{"gatehouse_public": "STRICT_DNS", "gatehouse_sidecar": "STRICT_DNS", "app": "STRICT_DNS", "api": "STATIC"}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("cluster types %v, want %v", types, want)
	}

	// A private token endpoint: plain HTTP, no TLS socket.
	out, err = runEnvoyConfig(t, "--issuer", "https://auth.example.com", "--token-endpoint", "http://gatehouse:4444/oauth2/token")
	if err != nil {
		t.Fatal(err)
	}
	validateBootstrap(t, out)
	if s := string(out); strings.Contains(s, "UpstreamTlsContext") || !strings.Contains(s, "uri: http://gatehouse:4444/oauth2/token") ||
		!strings.Contains(s, "authorization_endpoint: https://auth.example.com/oauth2/auth") {
		t.Errorf("private token endpoint:\n%s", s)
	}

	// --api-only keeps its own default ports unless told otherwise.
	out, err = runEnvoyConfig(t, "--api-only", "--listen", "127.0.0.1:7000", "--sidecar", "127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	validateBootstrap(t, out)
	if s := string(out); !strings.Contains(s, "port_value: 7000") || !strings.Contains(s, "port_value: 9902") ||
		!strings.Contains(s, "port_value: 9999") || strings.Contains(s, "oauth2") {
		t.Errorf("api-only:\n%s", s)
	}
}

func TestEnvoyConfigRejectsBadAddresses(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "localhost:10000"}, "--listen"},
		{[]string{"--listen", "10000"}, "--listen"},
		{[]string{"--admin-listen", "127.0.0.1:0"}, "--admin-listen"},
		{[]string{"--sidecar", "gatehouse-sidecar"}, "--sidecar"},
		{[]string{"--app", ":8081"}, "--app"},
		{[]string{"--api-only", "--api", "api:99999"}, "--api"},
		{[]string{"--issuer", "auth.example.com"}, "--issuer"},
		{[]string{"--issuer", "https://auth.example.com/?x=1"}, "--issuer"},
		{[]string{"--token-endpoint", "ftp://x/oauth2/token"}, "--token-endpoint"},
		{[]string{"extra"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := runEnvoyConfig(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
