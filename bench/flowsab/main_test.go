package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseReportAndTable(t *testing.T) {
	doc := func(p50, fps float64) []byte {
		return []byte(`{"levels":[{"flows_per_sec":` + ftoa(fps) + `,"errors":0,"issuer_cpu_ms_per_flow":7,"bench_cpu_ms_per_flow":1.5,
			"steps":[{"name":"authorize","p50_ms":0.5},{"name":"flow","p50_ms":` + ftoa(p50) + `,"p99_ms":12}],
			"requests":[{"name":"POST /oauth2/token code","p50_ms":1.4}]}]}`)
	}
	var as, bs []sample
	for i, ab := range [][2]float64{{8, 6}, {10, 9}, {6, 6}} {
		a, err := parseReport(doc(ab[0], 100))
		if err != nil {
			t.Fatal(i, err)
		}
		b, err := parseReport(doc(ab[1], 125))
		if err != nil {
			t.Fatal(i, err)
		}
		as, bs = append(as, a), append(bs, b)
	}
	if as[0]["flow p50 ms"] != 8 || as[0]["authorize p50 ms"] != 0.5 || as[0]["POST /oauth2/token code p50 ms"] != 1.4 {
		t.Fatalf("parsed: %v", as[0])
	}
	if _, ok := as[0]["database CPU ms/flow"]; ok {
		t.Fatal("no database CPU is reported for SQLite")
	}
	out := table(as, bs)
	// flow p50: A median 8, B median 6, ratios 0.75, 0.9, 1 -> median 0.9.
	if !strings.Contains(out, "flow p50 ms") || !strings.Contains(out, "0.900") || !strings.Contains(out, "0.75-1.00") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(out, "1.250") {
		t.Fatalf("flows/s ratio missing:\n%s", out)
	}

	for _, bad := range []string{`not json`, `{"levels":[]}`, `{"levels":[{"steps":[]}]}`} {
		if _, err := parseReport([]byte(bad)); err == nil {
			t.Fatalf("parsed %q", bad)
		}
	}
	if median([]float64{3, 1, 2, 4}) != 2.5 || median([]float64{5}) != 5 || median(nil) != 0 {
		t.Fatal("median")
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
