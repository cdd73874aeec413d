#!/usr/bin/env bash
# Runs the libFuzzer targets (docs/fuzzing.md).
#
#   scripts/fuzz.sh smoke [SECONDS]  ccda_fuzz and fhir_fuzz, SECONDS (20) each, on a
#                                    throw-away copy of fuzz/corpus/<t>  (`make test`)
#   scripts/fuzz.sh long [SECONDS]   all targets, SECONDS (300) each, corpus kept in
#                                    build-asan/fuzz-corpus/<t>           (`make fuzz`)
#   scripts/fuzz.sh configure        only configure build-asan         (`make asan-test`)
#
# One clang build dir, build-asan, is shared with `make asan-test` (same flags,
# so nothing is compiled twice); only the fuzz targets that run are built here.
# Targets run in parallel, FUZZ_JOBS (default: nproc) at a time; FUZZ_ARGS adds
# libFuzzer flags (after ours, so they win). Any crash, leak,
# timeout or out-of-memory makes the script exit non-zero; the input that caused
# it stays in build-asan/fuzz-artifacts/<t>/ and the log in build-asan/fuzz-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
build_dir="${ASAN_DIR:-build-asan}"
jobs="${JOBS:-$(nproc)}"
fuzz_jobs="${FUZZ_JOBS:-$jobs}"

# The configuration of `make asan-test`, plus the libFuzzer binaries.
configure() {
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEDVAULT_SANITIZE=ON \
    -DMEDVAULT_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
    -DMEDVAULT_FUZZ=ON >/dev/null
}

case "$mode" in
  configure)
    configure
    exit 0
    ;;
  smoke)
    seconds="${2:-20}"
    targets=(ccda fhir)
    ;;
  long)
    seconds="${2:-300}"
    targets=(request policy envelope ccda fhir ledger_entry)
    ;;
  *)
    echo "usage: $0 smoke|long [SECONDS] | configure" >&2
    exit 2
    ;;
esac
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi

configure
build_targets=()
for t in "${targets[@]}"; do
  build_targets+=("${t}_fuzz")
done
start=$(date +%s)
cmake --build "$build_dir" -j "$jobs" --target "${build_targets[@]}"
echo "fuzz: built ${build_targets[*]} in $(($(date +%s) - start))s"

artifacts="$build_dir/fuzz-artifacts"
logs="$build_dir/fuzz-logs"
mkdir -p "$artifacts" "$logs"
if [ "$mode" = smoke ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/medvault-fuzz.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  corpus_root="$work"
else
  corpus_root="$build_dir/fuzz-corpus"
fi

read -r -a extra_args <<<"${FUZZ_ARGS:-}"

# UBSan aborts on the first finding (-fno-sanitize-recover=all); a stack helps.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

# Fuzzes target $1 into its corpus dir; the log goes to $logs/$mode-$1.log.
run_one() {
  local t="$1"
  local corpus="$corpus_root/$t"
  mkdir -p "$corpus" "$artifacts/$t"
  # Seed from the checked-in corpus (libFuzzer writes new inputs into the first
  # directory only, so fuzz/corpus is never written to).
  local f
  for f in fuzz/corpus/"$t"/*; do
    [ -e "$corpus/${f##*/}" ] || cp "$f" "$corpus/"
  done
  "$build_dir/${t}_fuzz" "$corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t/" "${extra_args[@]}" >"$logs/$mode-$t.log" 2>&1
}

# One line per target: executions, speed, coverage, corpus size, result.
report() {
  local t="$1" rc="$2" log="$logs/$mode-$1.log"
  local execs speed cov corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$corpus_root/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-14s ok      %s execs (%s/s), cov %s, corpus %s inputs\n' \
      "${t}_fuzz" "${execs:-?}" "${speed:-?}" "${cov:-?}" "$corpus"
    return 0
  fi
  printf 'fuzz: %-14s FAILED  exit %s after %s execs; log %s\n' "${t}_fuzz" "$rc" "${execs:-?}" "$log"
  grep -E '^SUMMARY|Test unit written to' "$log" | sed 's/^/fuzz:   /' || true
  # The report itself: from the first sanitizer/libFuzzer/abort message on.
  local first
  first=$(grep -n -m 1 -E '^==[0-9]+==|runtime error:|deadly signal|out-of-memory|ALARM:|^[a-z_]+_fuzz: |refused|round trip changed' \
    "$log" | cut -d: -f1)
  echo "fuzz:   --- report (${log}:${first:-end}) ---"
  if [ -n "$first" ]; then
    tail -n "+$first" "$log" | head -n 40 | sed 's/^/fuzz:   /'
  else
    tail -n 40 "$log" | sed 's/^/fuzz:   /'
  fi
  return 1
}

echo "fuzz: $mode: ${targets[*]}, ${seconds}s each, $fuzz_jobs at a time"
declare -A target_of=()
declare -A rc_of=()
running=0
reap_one() {
  local pid rc=0
  wait -n -p pid || rc=$?
  rc_of[${target_of[$pid]}]=$rc
  running=$((running - 1))
}
for t in "${targets[@]}"; do
  while [ "$running" -ge "$fuzz_jobs" ]; do
    reap_one
  done
  run_one "$t" &
  target_of[$!]="$t"
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  reap_one
done

failed=0
for t in "${targets[@]}"; do
  report "$t" "${rc_of[$t]}" || failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED; reproduce with: $build_dir/<t>_fuzz $artifacts/<t>/<file>" >&2
  exit 1
fi
echo "fuzz: $mode passed in $(($(date +%s) - start))s"
