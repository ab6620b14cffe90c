package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestEnvoyConfigAlias: `gatehouse envoy-config`, deprecated, still prints
// envoy/envoy.yaml byte for byte on stdout, and one line on stderr that
// names the command to use.
func TestEnvoyConfigAlias(t *testing.T) {
	bin := testbin.Build(t, "./issuer/cmd/gatehouse")
	cmd := exec.Command(bin, "envoy-config")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.Bytes())
	}
	kit, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, kit) {
		t.Error("gatehouse envoy-config differs from envoy/envoy.yaml")
	}
	if note := stderr.String(); strings.Count(note, "\n") != 1 || !strings.Contains(note, "deprecated") || !strings.Contains(note, "gatehouse-sidecar envoy-config") {
		t.Errorf("stderr %q: want one line pointing to gatehouse-sidecar envoy-config", note)
	}
}
