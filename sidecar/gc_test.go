package sidecar

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApplyGCDefaults(t *testing.T) {
	pct, lim := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(lim) })

	cfg, err := LoadConfig(nil, Overrides{Issuer: "https://issuer.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MemoryLimit(); got != 128<<20 {
		t.Fatalf("memory limit with the default 32 MiB cache: %d, want 128 MiB", got)
	}

	// An operator's GOGC / GOMEMLIMIT win.
	ApplyGCDefaults(cfg, func(k string) string { return map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}[k] })
	if debug.SetGCPercent(100) != 100 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatal("GC settings changed although GOGC and GOMEMLIMIT are set")
	}
	ApplyGCDefaults(cfg, func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GOGC %d, want %d", got, DefaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != cfg.MemoryLimit() {
		t.Fatalf("GOMEMLIMIT %d, want %d", got, cfg.MemoryLimit())
	}
}
