// Package deploy_test checks that docker-compose.yml stays aligned with
// the configurations tested elsewhere in the repository. Docker itself
// cannot run where Gatehouse is tested, so this is what keeps the compose
// topology honest: the files it mounts are the kits' own, the issuer's
// environment loads and validates through the real config loader, and the
// ports, URLs and secrets agree with envoy/, examples/nginx/ and
// scripts/demo.sh.
package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

type service struct {
	Image       string            `yaml:"image"`
	NetworkMode string            `yaml:"network_mode"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	EnvFile     []string          `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
}

// readFile reads a file relative to this directory.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dotenv parses KEY=VALUE lines (comments and blank lines skipped).
func dotenv(t *testing.T, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, name)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", name, line)
		}
		out[k] = v
	}
	return out
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?[?-][^}]*)?\}`)

// load parses docker-compose.yml and interpolates ${VAR...} with the values
// of .env.example, as `docker compose` does with a copied .env.
func load(t *testing.T) (compose, map[string]string) {
	t.Helper()
	vars := dotenv(t, ".env.example")
	raw := interpolation.ReplaceAllStringFunc(readFile(t, "docker-compose.yml"), func(m string) string {
		name := interpolation.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not set", name)
		}
		return v
	})
	var c compose
	if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c, vars
}

func svc(t *testing.T, c compose, name string) service {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// env is a service's environment: its env_files, then environment.
func env(t *testing.T, s service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range s.EnvFile {
		for k, v := range dotenv(t, f) {
			out[k] = v
		}
	}
	for k, v := range s.Environment {
		out[k] = v
	}
	return out
}

func TestEveryServiceOnTheHostNetwork(t *testing.T) {
	c, _ := load(t)
	want := []string{"postgres", "migrate", "issuer", "clients", "login-consent", "wiki", "tickets", "sidecar", "app", "api", "envoy", "envoy-api", "nginx"}
	for _, name := range want {
		svc(t, c, name)
	}
	for name, s := range c.Services {
		// 127.0.0.1 in the kits' files means the same host for every
		// service only when they share the host's network.
		if s.NetworkMode != "host" {
			t.Errorf("service %s: network_mode %q, want host (the mounted kit files address each other on 127.0.0.1)", name, s.NetworkMode)
		}
	}
}

// TestMountsAreTheTestedKitFiles: the kits' files are mounted unchanged,
// and every file a command or environment names under /etc is mounted.
func TestMountsAreTheTestedKitFiles(t *testing.T) {
	c, _ := load(t)
	var sources []string
	for name, s := range c.Services {
		var targets []string
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("service %s: volume %q", name, v)
				continue
			}
			targets = append(targets, parts[1])
			if !strings.HasPrefix(parts[0], ".") {
				continue // a named volume
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", name, parts[0], err)
			}
			if !slices.Contains(parts[2:], "ro") {
				t.Errorf("service %s: mount %s should be read-only (:ro)", name, v)
			}
			sources = append(sources, filepath.ToSlash(filepath.Clean(parts[0])))
		}
		var refs []string
		for _, a := range append(append(slices.Clone(s.Entrypoint), s.Command...), valuesOf(s.Environment)...) {
			refs = append(refs, regexp.MustCompile(`/etc/[A-Za-z0-9_./-]+`).FindAllString(a, -1)...)
		}
		for _, ref := range refs {
			covered := false
			for _, tgt := range targets {
				if ref == tgt || strings.HasPrefix(ref, strings.TrimSuffix(tgt, "/")+"/") {
					covered = true
				}
			}
			if !covered {
				t.Errorf("service %s uses %s, which no volume of the service provides", name, ref)
			}
		}
	}
	for _, kit := range []string{"../envoy/envoy.yaml", "../envoy/envoy-api.yaml", "../envoy/secrets",
		"../envoy/sidecar/gatehouse-sidecar.yaml", "../examples/nginx/nginx.conf"} {
		if !slices.Contains(sources, kit) {
			t.Errorf("the tested kit file %s is not mounted by any service", kit)
		}
	}
}

func valuesOf(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestIssuerEnvironmentLoads runs the issuer's and the migration job's
// environment through the real loader and Validate.
func TestIssuerEnvironmentLoads(t *testing.T) {
	c, _ := load(t)
	known := config.EnvNames()
	for _, name := range []string{"issuer", "migrate"} {
		e := env(t, svc(t, c, name))
		for k := range e {
			if !slices.Contains(known, k) {
				t.Errorf("service %s sets %s, which is not a configuration variable of gatehouse (see docs/configuration.md)", name, k)
			}
		}
		if name != "issuer" {
			continue
		}
		cfg, _, err := config.Load(nil, func(k string) string { return e[k] })
		if err != nil {
			t.Fatalf("issuer environment: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("issuer environment does not validate: %v", err)
		}
		if !strings.HasPrefix(cfg.DSN, "postgres://") {
			t.Errorf("issuer DSN %q: the compose topology is the PostgreSQL one", cfg.DSN)
		}
	}
	if a, b := env(t, svc(t, c, "issuer"))["DSN"], env(t, svc(t, c, "migrate"))["DSN"]; !strings.HasPrefix(a, strings.SplitN(b, "?", 2)[0]) {
		t.Errorf("migrate and issuer use different databases: %q vs %q", b, a)
	}
}

// TestPortsAndURLsMatchTheKits: the addresses the services use are the
// ones in envoy/, examples/nginx/ and scripts/demo.sh.
func TestPortsAndURLsMatchTheKits(t *testing.T) {
	c, vars := load(t)
	issuer := env(t, svc(t, c, "issuer"))
	public := "http://127.0.0.1:" + issuer["SERVE_PUBLIC_PORT"]
	admin := "http://127.0.0.1:" + issuer["SERVE_ADMIN_PORT"]
	envoyYAML := readFile(t, "../envoy/envoy.yaml")
	envoyAPI := readFile(t, "../envoy/envoy-api.yaml")
	nginx := readFile(t, "../examples/nginx/nginx.conf")
	sidecarYAML := readFile(t, "../envoy/sidecar/gatehouse-sidecar.yaml")
	demo := readFile(t, "../scripts/demo.sh")
	clients := strings.Join(svc(t, c, "clients").Command, "\n")

	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Error(what)
		}
	}
	check("URLS_SELF_ISSUER is not the public listener "+public, issuer["URLS_SELF_ISSUER"] == public)
	for _, p := range []string{"/oauth2/auth", "/oauth2/token", "/oauth2/sessions/logout"} {
		check("envoy/envoy.yaml does not use "+public+p, strings.Contains(envoyYAML, public+p))
	}
	check("envoy/envoy.yaml's gatehouse_public cluster is not on port "+issuer["SERVE_PUBLIC_PORT"],
		strings.Contains(envoyYAML, "port_value: "+issuer["SERVE_PUBLIC_PORT"]+"}"))

	sc := env(t, svc(t, c, "sidecar"))
	check("sidecar GATEHOUSE_SIDECAR_ISSUER differs from URLS_SELF_ISSUER", sc["GATEHOUSE_SIDECAR_ISSUER"] == issuer["URLS_SELF_ISSUER"])
	check("sidecar introspects elsewhere than the admin API", sc["GATEHOUSE_SIDECAR_INTROSPECTION_URL"] == admin+"/admin/oauth2/introspect")
	check("the sidecar's gRPC port (envoy/sidecar/gatehouse-sidecar.yaml) is not the one envoy.yaml and envoy-api.yaml use",
		strings.Contains(sidecarYAML, "grpc_listen: 127.0.0.1:9191") && strings.Contains(envoyYAML, "port_value: 9191}") && strings.Contains(envoyAPI, "port_value: 9191}"))
	check("the sidecar's HTTP port is not the one examples/nginx/nginx.conf uses",
		strings.Contains(sidecarYAML, "http_listen: 127.0.0.1:4456") && strings.Contains(nginx, "server 127.0.0.1:4456;"))

	lc := env(t, svc(t, c, "login-consent"))
	for _, k := range []string{"URLS_LOGIN", "URLS_CONSENT", "URLS_LOGOUT"} {
		check(k+" is not served by the login-consent service on "+lc["LISTEN"], strings.HasPrefix(issuer[k], "http://"+lc["LISTEN"]+"/"))
	}
	check("login-consent HYDRA_ADMIN_URL is not the admin API", lc["HYDRA_ADMIN_URL"] == admin)
	check("the clients job does not use the admin API", env(t, svc(t, c, "clients"))["HYDRA_ADMIN_URL"] == admin)

	for _, rp := range []string{"wiki", "tickets"} {
		e := env(t, svc(t, c, rp))
		check(rp+" ISSUER_URL differs from URLS_SELF_ISSUER", e["ISSUER_URL"] == issuer["URLS_SELF_ISSUER"])
		check(rp+": the clients job does not register "+e["CLIENT_ID"]+" with the secret and callback "+e["LISTEN"]+" the app uses",
			strings.Contains(clients, "create "+e["CLIENT_ID"]+" ") && strings.Contains(clients, "--secret "+e["CLIENT_SECRET"]+" ") &&
				strings.Contains(clients, "--redirect-uri http://"+e["LISTEN"]+"/callback"))
	}

	app, api := env(t, svc(t, c, "app"))["LISTEN"], env(t, svc(t, c, "api"))["LISTEN"]
	check("app "+app+" is not envoy.yaml's app cluster", strings.Contains(envoyYAML, portValue(app)))
	check("app "+app+" is not nginx.conf's app upstream", strings.Contains(nginx, "server "+app+";"))
	check("api "+api+" is not the api cluster of envoy.yaml and envoy-api.yaml", strings.Contains(envoyYAML, portValue(api)) && strings.Contains(envoyAPI, portValue(api)))

	// Envoy's oauth2 filter sends the secret in envoy/secrets/token-secret.yaml.
	token := readFile(t, "../envoy/secrets/token-secret.yaml")
	check("ENVOY_CLIENT_SECRET of .env.example is not the secret in envoy/secrets/token-secret.yaml",
		strings.Contains(token, `inline_string: "`+vars["ENVOY_CLIENT_SECRET"]+`"`))
	check("the clients job does not register the envoy client envoy.yaml names",
		strings.Contains(envoyYAML, "client_id: envoy") && strings.Contains(clients, `create envoy $$SSO --secret "$$ENVOY_CLIENT_SECRET"`) &&
			strings.Contains(clients, "--redirect-uri http://127.0.0.1:10000/oauth2/callback"))

	// The same ports as make demo.
	for _, name := range []string{"login-consent", "wiki", "tickets", "app", "api"} {
		l := env(t, svc(t, c, name))["LISTEN"]
		check(name+" listens on "+l+", which scripts/demo.sh does not use", strings.Contains(demo, l))
	}
	check("scripts/demo.sh's issuer is not on the same ports", strings.Contains(demo, "SERVE_PUBLIC_PORT="+issuer["SERVE_PUBLIC_PORT"]) &&
		strings.Contains(demo, "SERVE_ADMIN_PORT="+issuer["SERVE_ADMIN_PORT"]))
}

func portValue(hostport string) string {
	_, port, _ := strings.Cut(hostport, ":")
	return "port_value: " + port + "}"
}

// TestEnvoyImageMatchesValidatedAPI: the Envoy image is the release whose
// API go-control-plane/envoy (which envoy/envoy_test.go validates with)
// describes.
func TestEnvoyImageMatchesValidatedAPI(t *testing.T) {
	c, _ := load(t)
	m := regexp.MustCompile(`(?m)^\s*github\.com/envoyproxy/go-control-plane/envoy v(\d+\.\d+)\.`).FindStringSubmatch(readFile(t, "../go.mod"))
	if m == nil {
		t.Fatal("go.mod does not require github.com/envoyproxy/go-control-plane/envoy")
	}
	for _, name := range []string{"envoy", "envoy-api"} {
		if img := svc(t, c, name).Image; !strings.HasPrefix(img, "envoyproxy/envoy:v"+m[1]+"-") && !strings.HasPrefix(img, "envoyproxy/envoy:v"+m[1]+".") {
			t.Errorf("service %s runs %s; go.mod validates the bootstrap against Envoy v%s", name, img, m[1])
		}
	}
}
