package main

import (
	"slices"
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
