package sidecar

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target (GOGC) the binary
// sets when GOGC is not in its environment. Every cache miss allocates a
// few KiB and the decision cache keeps tens of MiB live, so the runtime's
// default of 100 spends about a fifth of a miss's CPU marking; 200 halves
// that for a larger heap, which MemoryLimit bounds.
const DefaultGCPercent = 200

// MemoryLimit is the soft memory limit (GOMEMLIMIT) the binary sets when
// GOMEMLIMIT is not in its environment: room for the decision cache
// (cache.max_bytes) twice over, the garbage a GC cycle lets accumulate,
// plus 64 MiB for the rest of the process. Near it the runtime collects
// more often instead of growing, so the process's memory follows the
// configuration; it is soft, so a cache overshooting its estimate slows
// collection down rather than failing.
func (c Config) MemoryLimit() int64 {
	return 2*c.Cache.MaxBytes + 64<<20
}

// ApplyGCDefaults sets DefaultGCPercent and cfg.MemoryLimit() for what
// the environment (GOGC, GOMEMLIMIT, which the runtime already applied)
// leaves unset; getenv is os.Getenv in the binary.
func ApplyGCDefaults(cfg Config, getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit())
	}
}
