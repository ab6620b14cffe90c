# Gatehouse: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
DATA := $(CURDIR)/data
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test test-short bench lint fmt clean e2e demo

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/gatehouse ./issuer/cmd/gatehouse
	@if [ -d sidecar/cmd/gatehouse-sidecar ]; then $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/gatehouse-sidecar ./sidecar/cmd/gatehouse-sidecar; fi

# Starts the issuer on the embedded SQLite default under ./data, public API on
# 127.0.0.1:4444 and admin API on 127.0.0.1:4445, in dev mode, with the
# example login and consent app on 127.0.0.1:3000 and a demo client (see
# scripts/run.sh). A system secret is generated once into ./data/dev-secret
# so keys survive restarts. SERVE_PUBLIC_PORT, SERVE_ADMIN_PORT and
# LOGIN_APP_PORT move the ports; a busy one stops it before anything starts.
run: build
	BIN=$(BIN) DATA=$(DATA) ./scripts/run.sh

# Everything that can be tested on this machine: unit, integration, fuzz seed
# corpora, and the storage conformance suite on SQLite plus every real
# database server reachable (see scripts/with-dbs.sh), ending with which
# backends and optional suites ran or were skipped.
test:
	$(GO) vet ./...
	./scripts/with-dbs.sh --summary $(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench:
	./scripts/bench.sh

# Browser tests in headless Chromium (playwright-core) through the example
# login and consent app and SSO apps, then the gateway path through a real
# nginx and a real Caddy; installs what is missing (scripts/e2e.sh).
e2e:
	./scripts/e2e.sh

# Central SSO and the gateway path on loopback: issuer, sidecar, login and
# consent app, wiki and tickets, upstream apps and nginx if installed; prints
# the URLs and a curl with a token; Ctrl-C stops it all (scripts/demo.sh).
demo: build
	BIN=$(BIN) ./scripts/demo.sh

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
