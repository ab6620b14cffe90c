package benchproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUModel is the model name in /proc/cpuinfo.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// LoadAvg is the three load averages of /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// RSSKiB reads a VmRSS/VmHWM line of /proc/<pid>/status (0 if unknown).
func RSSKiB(pid int, field string) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// KiB formats a KiB count as MiB ("?" for 0).
func KiB(n int64) string {
	if n == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/1024)
}

// ClkTck is USER_HZ on Linux, the unit of /proc's CPU times.
const ClkTck = 100

// ProcCPU reads user+system CPU time and the command name of a process
// from /proc/<pid>/stat.
func ProcCPU(pid string) (time.Duration, string) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, ""
	}
	// The command name may contain spaces; fields resume after ")".
	i, j := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
	if i < 0 || j < i {
		return 0, ""
	}
	comm := string(b[i+1 : j])
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 13 {
		return 0, comm
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / ClkTck, comm
}

// CPUSample is the CPU time used so far by a server process, this process
// and the whole machine (all non-idle time in /proc/stat, of which IRQ is
// irq and softirq time).
type CPUSample struct{ Server, Self, Machine, IRQ time.Duration }

// Add sums two samples (or differences of samples).
func (a CPUSample) Add(b CPUSample) CPUSample {
	return CPUSample{a.Server + b.Server, a.Self + b.Self, a.Machine + b.Machine, a.IRQ + b.IRQ}
}

// Sub is the CPU time used between sample b and sample a.
func (a CPUSample) Sub(b CPUSample) CPUSample {
	return CPUSample{a.Server - b.Server, a.Self - b.Self, a.Machine - b.Machine, a.IRQ - b.IRQ}
}

// SampleCPU reads the CPU times of the server process pid (none when pid
// is 0), this process and the machine.
func SampleCPU(pid int) CPUSample {
	var s CPUSample
	if pid > 0 {
		s.Server, _ = ProcCPU(strconv.Itoa(pid))
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.Self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest ...
		var busy, irq int64
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i == 7 { // idle, iowait, steal
				continue
			}
			if i >= 8 { // guest time is already in user
				break
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			busy += n
			if i == 5 || i == 6 {
				irq += n
			}
		}
		s.Machine = time.Duration(busy) * time.Second / ClkTck
		s.IRQ = time.Duration(irq) * time.Second / ClkTck
	}
	return s
}

// DBProcesses lists the database server processes that work for the
// issuer. PostgreSQL: the backends of the issuer's own connections
// (matched by the client port in the backend's process title, e.g.
// "postgres: 15/main: postgres test 127.0.0.1(51234) idle") and the
// server's background processes (WAL writer, checkpointer, background
// writer, autovacuum), so other clients of a shared server are left out.
// MariaDB/MySQL has one process for every client: all of it counts.
func DBProcesses(issuerPID int, backend string) []int {
	if backend != "postgres" && backend != "mysql" {
		return nil
	}
	ports := map[string]bool{}
	if backend == "postgres" {
		ports = localPorts(issuerPID)
	}
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, comm := ProcCPU(e.Name())
		switch backend {
		case "mysql":
			if comm == "mariadbd" || comm == "mysqld" {
				out = append(out, pid)
			}
		case "postgres":
			if comm != "postgres" {
				continue
			}
			b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			title := string(bytes.TrimRight(b, "\x00"))
			if i := strings.LastIndex(title, "("); i >= 0 {
				if j := strings.Index(title[i:], ")"); j > 0 && ports[title[i+1:i+j]] {
					out = append(out, pid)
					continue
				}
			}
			for _, bg := range []string{"walwriter", "checkpointer", "background writer", "autovacuum"} {
				if strings.Contains(title, bg) {
					out = append(out, pid)
					break
				}
			}
		}
	}
	return out
}

// localPorts are the local TCP ports of pid's sockets.
func localPorts(pid int) map[string]bool {
	inodes := map[string]bool{}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			if in, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(in, "]")] = true
			}
		}
	}
	ports := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fl := strings.Fields(line) // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fl) < 10 || !inodes[fl[9]] {
				continue
			}
			if _, hexPort, ok := strings.Cut(fl[1], ":"); ok {
				if n, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
					ports[strconv.FormatUint(n, 10)] = true
				}
			}
		}
	}
	return ports
}
