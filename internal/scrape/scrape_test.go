package scrape

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSample(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\"} 3\na_total_extra 4\nb 5\n")
	}))
	defer srv.Close()
	for sample, want := range map[string]string{`a_total{k="v"}`: "3", "b": "5", "a_total": "", "c": ""} {
		if got, err := Sample(srv.URL, sample); err != nil || got != want {
			t.Errorf("Sample(%q) = %q, %v; want %q", sample, got, err, want)
		}
	}
}
