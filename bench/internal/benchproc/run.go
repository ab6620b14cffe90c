package benchproc

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// Machine is what a report says of the machine it ran on.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	LoadStart  string `json:"loadavg_start"`
}

// ThisMachine describes this machine, its load average read now.
func ThisMachine() Machine {
	return Machine{CPU: CPUModel(), Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: LoadAvg()}
}

// EnvFlag defines the repeatable flag -issuer-env KEY=VALUE, appending
// each value to env.
func EnvFlag(env *[]string, usage string) {
	flag.Func("issuer-env", usage, func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		*env = append(*env, v)
		return nil
	})
}

// Transport is a net/http transport for loopback load: no proxy, no
// compression, at most perHost connections to a host and maxIdle idle
// ones in all.
func Transport(maxIdle, perHost int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxIdle,
		MaxIdleConnsPerHost: perHost,
		MaxConnsPerHost:     perHost,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}
