package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConcurrency(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"1,4,16", []int{1, 4, 16}, false},
		{" 2 , 8 ,", []int{2, 8}, false},
		{"", nil, true},
		{"0", nil, true},
		{"4,x", nil, true},
		{"2000", nil, true},
	} {
		got, err := parseConcurrency(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseConcurrency(%q) = %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDistOfNearestRank(t *testing.T) {
	var lat []int64
	for i := 100; i >= 1; i-- { // unsorted on purpose
		lat = append(lat, int64(time.Duration(i)*time.Millisecond))
	}
	d := distOf("x", lat)
	if d.Count != 100 || d.P50 != 50 || d.P99 != 99 || d.Max != 100 || d.Mean != 50.5 {
		t.Fatalf("distOf: %+v", d)
	}
	if e := distOf("empty", nil); e.Count != 0 || e.P50 != 0 {
		t.Fatalf("empty distOf: %+v", e)
	}
}

func TestDSNFor(t *testing.T) {
	for _, tc := range []struct {
		base, backend, want string
		err                 bool
	}{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres",
			"postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable", false},
		{"mysql://root@tcp(127.0.0.1:3306)/test", "mysql", "mysql://root@tcp(127.0.0.1:3306)/s1", false},
		{"mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true", "mysql", "mysql://root@tcp(127.0.0.1:3306)/s1?parseTime=true", false},
		{"mysql://root@tcp(127.0.0.1:3306)", "mysql", "", true},
	} {
		got, err := dsnFor(tc.base, tc.backend, "s1")
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("dsnFor(%q) = %q, %v; want %q, error %t", tc.base, got, err, tc.want, tc.err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@127.0.0.1:5432/test":   "postgres://u:xxxxx@127.0.0.1:5432/test",
		"postgres://postgres@127.0.0.1:5432/test":   "postgres://postgres@127.0.0.1:5432/test",
		"mysql://root:secret@tcp(127.0.0.1:3306)/t": "mysql://root:xxxxx@tcp(127.0.0.1:3306)/t",
		"mysql://root@tcp(127.0.0.1:3306)/t":        "mysql://root@tcp(127.0.0.1:3306)/t",
	} {
		got := redactDSN(in)
		if got != want || strings.Contains(got, "secret") {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackendOf(t *testing.T) {
	for in, want := range map[string]string{
		"": "sqlite", "sqlite:///tmp/x.sqlite": "sqlite", "postgres://x/y": "postgres",
		"postgresql://x/y": "postgres", "mysql://root@tcp(h)/d": "mysql", "memory": "other",
	} {
		if got := backendOf(in); got != want {
			t.Errorf("backendOf(%q) = %q, want %q", in, got, want)
		}
	}
}
