// Package scrape reads one sample from a process's Prometheus text
// exposition, for the tests and benchmarks that watch a real binary.
package scrape

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
)

// Sample returns the value of sample (a metric name with its labels as
// exposed, e.g. `up{job="a"}`) at url; "" when it is absent.
func Sample(url, sample string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v, nil
		}
	}
	return "", sc.Err()
}
