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
  args=()
  # The flows generator runs the code flow and the PAR + DPoP flow on the
  # same issuer, so that their comparison holds (docs/benchmarks.md).
  [ "$d" = bench/flows/ ] && args=(-mode "${FLOWS_MODE:-both}")
  echo "== go run ./$d ${args[*]}"
  go run "./$d" "${args[@]}" ${BENCH_ARGS:-}
done
