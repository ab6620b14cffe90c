package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/sidecar/envoyconfig"
)

// TestEnvoyConfigAlias: `gatehouse envoy-config`, deprecated, prints what
// `gatehouse-sidecar envoy-config` prints (the kit's envoy/envoy.yaml with
// the defaults) on stdout, and one line on stderr that names the command
// to use.
func TestEnvoyConfigAlias(t *testing.T) {
	cmd := exec.Command(testbin.Build(t, "./issuer/cmd/gatehouse"), "envoy-config", "--api-only", "--sidecar", "sidecar:9191")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.Bytes())
	}
	o := envoyconfig.DefaultOptions(true)
	o.Sidecar = "sidecar:9191"
	if want, err := envoyconfig.Render(o); err != nil || !bytes.Equal(out, want) {
		t.Errorf("gatehouse envoy-config differs from gatehouse-sidecar envoy-config (%v)", err)
	}
	if note := stderr.String(); strings.Count(note, "\n") != 1 || !strings.Contains(note, "deprecated") || !strings.Contains(note, "gatehouse-sidecar envoy-config") {
		t.Errorf("stderr %q: want one line pointing to gatehouse-sidecar envoy-config", note)
	}
}
