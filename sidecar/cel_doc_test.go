package sidecar

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/extauthz"
)

// TestCELDocExample: the example of docs/sidecar.md's CEL section is a
// valid configuration (its expressions compile and type-check).
func TestCELDocExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "sidecar.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## CEL conditions and computed headers\n")
	if !ok {
		t.Fatal("docs/sidecar.md has no CEL section")
	}
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the CEL section has no YAML example")
	}
	cfg, err := ParseConfig([]byte("issuers: [{issuer: https://auth.example.com}]\n" + block))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 || len(cfg.Headers.IdentityCEL) != 2 {
		t.Fatalf("parsed %+v", cfg.Config)
	}
	if _, err := extauthz.New(cfg.Config, extauthz.Options{}); err != nil {
		t.Fatalf("the documented example does not start: %v", err)
	}
}
