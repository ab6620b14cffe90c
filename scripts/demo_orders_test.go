package scripts_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestDemoOrdersShowsTheActChain runs the banner's orders curl line (without
// its jq): the demo token, exchanged by the orders app for a token for the
// api, carries act naming the orders client and the api as its audience.
func TestDemoOrdersShowsTheActChain(t *testing.T) {
	d := startDemo(t)
	const pipe = " | jq .exchanged.act"
	var line string
	for _, l := range strings.Split(d.out.String(), "\n") {
		if strings.HasSuffix(l, "/orders"+pipe) {
			line = strings.TrimSuffix(strings.TrimSpace(l), pipe)
		}
	}
	if !strings.HasPrefix(line, "curl ") {
		t.Fatalf("no orders curl line in the banner:\n%s", d.out.String())
	}
	out, err := exec.Command("bash", "-c", line).Output()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	var ans struct {
		Incoming  map[string]any `json:"incoming"`
		Exchanged struct {
			Active   bool           `json:"active"`
			Sub      string         `json:"sub"`
			ClientID string         `json:"client_id"`
			Aud      []string       `json:"aud"`
			Act      map[string]any `json:"act"`
		} `json:"exchanged"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	ex := ans.Exchanged
	api := fmt.Sprintf("http://127.0.0.1:%d", d.ports["API_PORT"])
	if !ex.Active || ex.Sub != "demo-api" || ex.ClientID != "orders" || ex.Act["sub"] != "orders" ||
		len(ex.Aud) != 1 || ex.Aud[0] != api {
		t.Fatalf("exchanged = %+v, want active, sub demo-api, client_id orders, act.sub orders, aud [%s]\n%s", ex, api, out)
	}
}
