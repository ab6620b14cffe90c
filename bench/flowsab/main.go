// Command flowsab compares two gatehouse binaries with bench/flows.
//
// On a shared virtual machine the host's speed drifts by tens of percent
// within minutes, more than most changes to the issuer move one flow, so
// two full runs minutes apart compare the host, not the binaries. flowsab
// runs bench/flows in short rounds, alternating the binaries (A B, B A,
// A B, ...) so that drift falls on both, and prints for each metric the
// median over the rounds per binary and the median of the paired ratios
// B/A (each round's B against the A run beside it).
//
//	go run ./bench/flowsab -a /tmp/gh-old -b /tmp/gh-new                   # SQLite, one flow at a time
//	go run ./bench/flowsab -a /tmp/gh-old -b /tmp/gh-new -concurrency 16 -dsn 'postgres://...'
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/benchproc"
)

type options struct {
	a, b        string
	flowsBin    string
	rounds      int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	dsn         string
}

func main() {
	var o options
	flag.StringVar(&o.a, "a", "", "the baseline gatehouse binary (required)")
	flag.StringVar(&o.b, "b", "", "the gatehouse binary compared with it (required)")
	flag.StringVar(&o.flowsBin, "flows", "", "a built bench/flows binary (default: go build ./bench/flows into a temporary directory)")
	flag.IntVar(&o.rounds, "rounds", 8, "rounds; each runs both binaries once")
	flag.IntVar(&o.concurrency, "concurrency", 1, "flows in flight at once (one level per run)")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "measured duration of each run")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up of each run")
	flag.StringVar(&o.dsn, "dsn", "", "passed to bench/flows (default: SQLite)")
	flag.Parse()
	if o.a == "" || o.b == "" || o.rounds < 1 || o.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "flowsab: -a and -b are required; -rounds and -concurrency must be positive")
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flowsab:", err)
		os.Exit(1)
	}
}

func run(o options, w io.Writer) error {
	if o.flowsBin == "" {
		dir, err := os.MkdirTemp("", "flowsab")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.flowsBin, err = benchproc.Build(dir, "./bench/flows", false); err != nil {
			return fmt.Errorf("building bench/flows: %w", err)
		}
	}
	var as, bs []sample
	for i := range o.rounds {
		order := []string{o.a, o.b}
		if i%2 == 1 {
			order = []string{o.b, o.a}
		}
		for _, bin := range order {
			s, err := runOnce(o, bin)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, bin, err)
			}
			if bin == o.a {
				as = append(as, s)
			} else {
				bs = append(bs, s)
			}
			fmt.Fprintf(os.Stderr, "round %d %s: flow p50 %.2f ms, %.1f flows/s, %d errors\n", i+1, label(o, bin), s["flow p50 ms"], s["flows/s"], int(s["errors"]))
		}
	}
	fmt.Fprintf(w, "A %s\nB %s\n%d rounds of %s (+%s warm-up), %d flows at once, %s\n\n", o.a, o.b, o.rounds, o.duration, o.warmup, o.concurrency, backendName(o.dsn))
	fmt.Fprint(w, table(as, bs))
	return nil
}

func label(o options, bin string) string {
	if bin == o.a {
		return "A"
	}
	return "B"
}

func backendName(dsn string) string {
	if dsn == "" {
		return "sqlite"
	}
	if i := strings.Index(dsn, "://"); i > 0 {
		return dsn[:i]
	}
	return "custom DSN"
}

// sample is one run's metrics by name.
type sample map[string]float64

// metricOrder is the order the table lists the metrics in.
var metricOrder = []string{"flow p50 ms", "flow p99 ms", "flows/s", "issuer CPU ms/flow", "generator CPU ms/flow", "database CPU ms/flow", "errors"}

func runOnce(o options, bin string) (sample, error) {
	args := []string{"-issuer", bin, "-json", "-concurrency", strconv.Itoa(o.concurrency),
		"-duration", o.duration.String(), "-warmup", o.warmup.String()}
	if o.dsn != "" {
		args = append(args, "-dsn", o.dsn)
	}
	cmd := exec.Command(o.flowsBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return parseReport(out.Bytes())
}

// report is the part of bench/flows' -json document flowsab reads.
type report struct {
	Levels []struct {
		FlowsPerSec float64 `json:"flows_per_sec"`
		Errors      int     `json:"errors"`
		IssuerCPUms float64 `json:"issuer_cpu_ms_per_flow"`
		BenchCPUms  float64 `json:"bench_cpu_ms_per_flow"`
		DBCPUms     float64 `json:"db_cpu_ms_per_flow"`
		Steps       []struct {
			Name string  `json:"name"`
			P50  float64 `json:"p50_ms"`
			P99  float64 `json:"p99_ms"`
		} `json:"steps"`
		Requests []struct {
			Name string  `json:"name"`
			P50  float64 `json:"p50_ms"`
		} `json:"requests"`
	} `json:"levels"`
}

func parseReport(raw []byte) (sample, error) {
	var r report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("bench/flows -json: %w", err)
	}
	if len(r.Levels) != 1 {
		return nil, fmt.Errorf("bench/flows -json: %d levels, want 1", len(r.Levels))
	}
	lv := r.Levels[0]
	s := sample{"flows/s": lv.FlowsPerSec, "errors": float64(lv.Errors), "issuer CPU ms/flow": lv.IssuerCPUms,
		"generator CPU ms/flow": lv.BenchCPUms}
	if lv.DBCPUms > 0 {
		s["database CPU ms/flow"] = lv.DBCPUms
	}
	for _, st := range lv.Steps {
		if st.Name == "flow" {
			s["flow p50 ms"], s["flow p99 ms"] = st.P50, st.P99
		} else {
			s[st.Name+" p50 ms"] = st.P50
		}
	}
	for _, rq := range lv.Requests {
		s[rq.Name+" p50 ms"] = rq.P50
	}
	if _, ok := s["flow p50 ms"]; !ok {
		return nil, errors.New("bench/flows -json: no flow step")
	}
	return s, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// table renders the medians of as and bs and of the paired ratios b/a.
func table(as, bs []sample) string {
	names := slices.Clone(metricOrder)
	var rest []string
	for k := range as[0] {
		if !slices.Contains(names, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	names = append(names, rest...)
	var b strings.Builder
	fmt.Fprintf(&b, "%-42s %10s %10s %12s %16s\n", "metric (median over the rounds)", "A", "B", "B/A paired", "B/A range")
	for _, name := range names {
		var av, bv, ratios []float64
		for i := range as {
			x, okA := as[i][name]
			y, okB := bs[i][name]
			if !okA || !okB {
				continue
			}
			av, bv = append(av, x), append(bv, y)
			if x != 0 {
				ratios = append(ratios, y/x)
			}
		}
		if len(av) == 0 {
			continue
		}
		ratio, span := "-", "-"
		if len(ratios) > 0 {
			ratio = fmt.Sprintf("%.3f", median(ratios))
			span = fmt.Sprintf("%.2f-%.2f", slices.Min(ratios), slices.Max(ratios))
		}
		fmt.Fprintf(&b, "%-42s %10.2f %10.2f %12s %16s\n", name, median(av), median(bv), ratio, span)
	}
	return b.String()
}
