package benchproc

import (
	"crypto/sha256"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestSampleCPU: CPU spent by this process between two samples shows in
// Self and, sampled as the server process, in Server, and the machine was
// at least that busy.
func TestSampleCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	a := SampleCPU(os.Getpid())
	// Work until every counter has seen 100ms of this process's CPU (on a
	// loaded machine that takes longer than 100ms of wall time; /proc's
	// counters move in clock ticks, so they may lag the others by one).
	sum := sha256.Sum256(nil)
	var d CPUSample
	for start := time.Now(); time.Since(start) < 30*time.Second; {
		for range 10000 {
			sum = sha256.Sum256(sum[:])
		}
		if d = SampleCPU(os.Getpid()).Sub(a); d.Self >= 100*time.Millisecond && d.Server >= 100*time.Millisecond && d.Machine >= 100*time.Millisecond {
			break
		}
	}
	if d.Self < 100*time.Millisecond || d.Server < 100*time.Millisecond || d.Machine < 100*time.Millisecond {
		t.Fatalf("100ms of CPU work measured as %+v", d)
	}
	if d.IRQ < 0 || d.IRQ > d.Machine {
		t.Fatalf("irq %v out of machine %v", d.IRQ, d.Machine)
	}
	if got := d.Add(d).Sub(d); got != d {
		t.Fatalf("Add then Sub: %+v, want %+v", got, d)
	}
	if s := SampleCPU(0); s.Server != 0 {
		t.Fatalf("no server process: Server %v", s.Server)
	}
	if DBProcesses(os.Getpid(), "sqlite") != nil {
		t.Fatal("sqlite has no server processes")
	}
}
