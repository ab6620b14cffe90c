#!/usr/bin/env bash
# Runs every benchmark: Go micro-benchmarks, then the load generators under
# bench/ against real processes on loopback. Prints figures; never fails on a
# target (targets are compared in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine: $(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3)"
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" ./issuer/... ./extauthz/... ./internal/... 2>/dev/null | grep -E '^(Benchmark|ok|PASS|goos|cpu)' || true
for d in bench/*/; do
  [ -f "$d/main.go" ] || continue
  echo "== go run ./$d"
  go run "./$d" ${BENCH_ARGS:-}
done
