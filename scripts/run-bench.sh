#!/usr/bin/env bash
# `make bench`: runs the benchmarks and writes bench-results/summary.json.
# Every ratio compares against a reference measured in the same run.
set -euo pipefail
BUILD="${1:-build}"
OUT=bench-results
mkdir -p "$OUT"
ROOT=$(pwd)

run_gbench() {  # name binary [filter] [extra flags]
  local name=$1 bin=$2 filter=${3:-.} extra=${4:-}
  if [ -x "$BUILD/$bin" ]; then
    echo "bench: $bin"
    # shellcheck disable=SC2086
    "$BUILD/$bin" --benchmark_filter="$filter" --benchmark_format=json $extra \
      --benchmark_out="$OUT/$name.json" --benchmark_out_format=json >/dev/null
  else
    echo "bench: $bin not built, skipped" >&2
  fi
}

run_gbench crypto crypto_bench "." "--benchmark_repetitions=7 --benchmark_report_aggregates_only=true"
run_gbench store store_bench
run_gbench service service_bench
run_gbench pdp pdp_bench
run_gbench auth auth_bench
run_gbench ledger ledger_bench "BM_LedgerAppend|BM_RawSqlite|Proof|BM_Verify|BM_LedgerBytesPerRead"
run_gbench scrub scrub_bench
# C-CDA and FHIR import (issue 5) on the shared test data ($MEDVAULT_SHARED_TESTDATA,
# else ../shared/testdata, else the checked-in subset), each against a bare
# parse of the same bytes in the same run; repetitions interleaved so that
# the machine's noise falls on both sides of every ratio. About 75 s.
run_gbench summary_bench summary_bench
run_gbench interop interop_bench "." "--benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_enable_random_interleaving=true"

# HTTP load against a real server on loopback with wrk.
TMP=$(mktemp -d)
PORT=$(( 20000 + RANDOM % 20000 ))
DATA="$TMP/data"
"$BUILD/medvault" init --data "$DATA" >/dev/null
# Demo accounts and patients; the load runs as Dr. Heart, who treats the
# first demo patient, so every request is authenticated and decided.
"$BUILD/medvault" seed-demo --data "$DATA" >/dev/null
"$BUILD/medvault" serve --data "$DATA" --listen "127.0.0.1:$PORT" --log-level warn \
  >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
CREDS="$DATA/demo-credentials.txt"
DOCTOR=$(grep -P '^doctor\tdr\.heart\t' "$CREDS")
USERNAME=$(echo "$DOCTOR" | cut -f2)
PASSWORD=$(echo "$DOCTOR" | cut -f3)
CODE=$("$BUILD/medvault" totp-code "$(echo "$DOCTOR" | cut -f4)")
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\",\"totp_code\":\"$CODE\"}" \
  "http://127.0.0.1:$PORT/api/v1/auth/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
PID=$(grep -P '^patient-record\t' "$CREDS" | head -n 1 | cut -f2)
BASE="http://127.0.0.1:$PORT/api/v1/patients/$PID"
curl -sf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"data":{"systolic":120,"diastolic":80,"unit":"mmHg","time":"2026-11-21T08:00:00Z"}}' \
  "$BASE/segments/physical-signs/blood-pressure" >/dev/null

cat > "$TMP/write.lua" <<LUA
-- Writes spread over 64 segment paths (versions of one path are serialised).
wrk.method = "PUT"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = '{"data":{"entry":' .. n .. ',"kind":"load-test"}}'
  return wrk.format(nil, "/api/v1/patients/$PID/segments/other/load-" .. (n % 64), nil, body)
end
LUA
cat > "$TMP/read.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
DURATION=${BENCH_HTTP_SECONDS:-10}
echo "bench: http writes (${DURATION}s)"
wrk -t2 -c32 -d"${DURATION}s" --latency -s "$TMP/write.lua" "$BASE" >"$OUT/http_write.txt"
echo "bench: http /healthz (${DURATION}s)"
wrk -t2 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/healthz" >"$OUT/http_healthz.txt"
echo "bench: http reads (${DURATION}s)"
wrk -t2 -c32 -d"${DURATION}s" --latency -s "$TMP/read.lua" \
  "$BASE/segments/physical-signs/blood-pressure" >"$OUT/http_read.txt"

# The clinical summary of a record with 5,000 observations (issue 15): one
# FHIR bundle of results and blood pressures imported into a second demo
# patient, then the summary asked by one client at a time (its latency, not
# the server's throughput), against the FHIR export of the same record in
# the same run as the reference.
PID2=$(grep -P '^patient-record\t' "$CREDS" | sed -n 2p | cut -f2)
if [ -n "$PID2" ]; then
  python3 "$ROOT/scripts/gen-observations.py" 5000 >"$TMP/observations.json"
  curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/fhir+json' \
    --data-binary @"$TMP/observations.json" \
    "http://127.0.0.1:$PORT/api/v1/patients/$PID2/documents" >/dev/null ||
    echo "bench: the 5,000 observations could not be imported (is the second demo patient treated by dr.heart?)" >&2
  SUMMARY_SECONDS=${BENCH_SUMMARY_SECONDS:-10}
  echo "bench: http summary of 5,000 observations (${SUMMARY_SECONDS}s)"
  wrk -t1 -c1 -d"${SUMMARY_SECONDS}s" --latency -s "$TMP/read.lua" \
    "http://127.0.0.1:$PORT/api/v1/patients/$PID2/summary" >"$OUT/http_summary.txt"
  echo "bench: http FHIR export of the same record (${SUMMARY_SECONDS}s)"
  wrk -t1 -c1 -d"${SUMMARY_SECONDS}s" --latency -s "$TMP/read.lua" \
    "http://127.0.0.1:$PORT/api/v1/patients/$PID2/export?format=fhir" >"$OUT/http_export.txt"
fi

# The same reads with the ledger's own appends at synchronous=normal (read
# audits survive a process crash, not a power loss): the price of fsyncing
# every read's decision, measured in the same run.
kill $SERVER 2>/dev/null || true
wait $SERVER 2>/dev/null || true
MEDVAULT_LEDGER_SYNCHRONOUS=normal "$BUILD/medvault" serve --data "$DATA" \
  --listen "127.0.0.1:$PORT" --log-level warn >"$TMP/server2.out" 2>"$TMP/server2.err" &
SERVER=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
echo "bench: http reads, ledger_synchronous=normal (${DURATION}s)"
wrk -t2 -c32 -d"${DURATION}s" --latency -s "$TMP/read.lua" \
  "$BASE/segments/physical-signs/blood-pressure" >"$OUT/http_read_ledger_normal.txt"

python3 "$ROOT/scripts/bench_summary.py" "$OUT"
echo "bench: wrote $OUT/summary.json"
