package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestEnvoyConfigCommand: `gatehouse-sidecar envoy-config` prints the
// kit's bootstraps with its defaults (sidecar/envoyconfig tests the
// flags; sidecar/integration_test.go runs the binary without a command,
// which serves).
func TestEnvoyConfigCommand(t *testing.T) {
	bin := testbin.Build(t, "./sidecar/cmd/gatehouse-sidecar")
	for file, args := range map[string][]string{"envoy/envoy.yaml": nil, "envoy/envoy-api.yaml": {"--api-only"}} {
		out, err := exec.Command(bin, append([]string{"envoy-config"}, args...)...).Output()
		if err != nil {
			t.Fatalf("envoy-config %v: %v", args, err)
		}
		kit, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, kit) {
			t.Errorf("gatehouse-sidecar envoy-config %v differs from %s", args, file)
		}
	}
}
