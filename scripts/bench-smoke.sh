#!/usr/bin/env bash
# `make test`: runs every Google Benchmark binary of the build once, briefly
# (--benchmark_min_time=0.01, the seconds form of libbenchmark 1.7), so that a
# benchmark that aborts or fails its set-up fails the tests instead of
# breaking `make bench` unnoticed. Measures nothing: `make bench` does that.
set -euo pipefail
BUILD="${1:-build}"
shopt -s nullglob
benches=("$BUILD"/*_bench)
if [ ${#benches[@]} -eq 0 ]; then
  echo "bench-smoke: no *_bench binaries in $BUILD (configured with MEDVAULT_BUILD_BENCH=OFF?)" >&2
  exit 1
fi
failed=0
for bin in "${benches[@]}"; do
  [ -x "$bin" ] || continue
  start=$(date +%s%N)
  if "$bin" --benchmark_min_time=0.01 >"$BUILD/$(basename "$bin").smoke.log" 2>&1; then
    status=ok
  else
    status="FAILED (exit $?; see $BUILD/$(basename "$bin").smoke.log)"
    failed=1
  fi
  printf 'bench-smoke: %-14s %6d ms  %s\n' "$(basename "$bin")" \
    $((($(date +%s%N) - start) / 1000000)) "$status"
done
if [ "$failed" -ne 0 ]; then
  echo "bench-smoke: a benchmark failed" >&2
  exit 1
fi
echo "bench-smoke: ${#benches[@]} passed, 0 failed"
