package main_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestTextLogHasNoColourOffTerminal: LOG_FORMAT=text written to a pipe
// (as to a file, or `make demo`'s logs) carries no terminal escape codes.
func TestTextLogHasNoColourOffTerminal(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"DSN": "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite"),
		"LOG_FORMAT": "text", "LOG_LEVEL": "info"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(is.Output.String(), "gatehouse is serving") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out := is.Output.String()
	if !strings.Contains(out, "INFO") || !strings.Contains(out, "gatehouse is serving") {
		t.Fatalf("no text log line at info level:\n%s", out)
	}
	if i := bytes.IndexByte([]byte(out), 0x1b); i >= 0 {
		t.Fatalf("the text log written to a pipe contains an escape code at byte %d:\n%q", i, out[max(0, i-40):min(len(out), i+40)])
	}
}
