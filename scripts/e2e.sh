#!/usr/bin/env bash
# End-to-end tests of the web portal in headless Debian Chromium, driven by
# Playwright (playwright-core, executablePath /usr/bin/chromium): a fresh
# data directory with the demo accounts, a real server on a free loopback
# port serving BUILD/web, then `node --test e2e/`. Screenshots of every page
# go to BUILD/e2e-artifacts/. Usage: scripts/e2e.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
BIN="$PWD/$BUILD/medvault"
ARTIFACTS="$PWD/$BUILD/e2e-artifacts"
CHROMIUM="${MEDVAULT_CHROMIUM:-/usr/bin/chromium}"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is missing (scripts/install-deps.sh installs it)"; exit 1; }
done
[ -x "$CHROMIUM" ] || { echo "e2e: $CHROMIUM is missing (scripts/install-deps.sh installs chromium)"; exit 1; }
[ -d "$BUILD/web" ] || { echo "e2e: $BUILD/web is missing: run make build"; exit 1; }

# Dependencies from the lock file, once per lock file.
if [ ! -f e2e/node_modules/.medvault-lock ] || ! cmp -s e2e/package-lock.json e2e/node_modules/.medvault-lock; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
  cp e2e/package-lock.json e2e/node_modules/.medvault-lock
fi

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export MEDVAULT_ARGON2_MEMORY_KIB=8 MEDVAULT_ARGON2_ITERATIONS=1
"$BIN" init --data "$WORK/data" >/dev/null
"$BIN" seed-demo --data "$WORK/data" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$PORT" --web-dir "$PWD/$BUILD/web" \
  --log-level warn >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then break; fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "e2e: server did not start"; cat "$WORK/server.log"; exit 1; }

rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
status=0
MEDVAULT_URL="http://127.0.0.1:$PORT" MEDVAULT_CREDENTIALS="$WORK/data/demo-credentials.txt" \
  MEDVAULT_BIN="$BIN" MEDVAULT_CHROMIUM="$CHROMIUM" MEDVAULT_ARTIFACTS="$ARTIFACTS" \
  node --test --test-concurrency=1 e2e/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "e2e: failed; server log:"
  tail -n 50 "$WORK/server.log"
fi
echo "e2e: screenshots in $ARTIFACTS"
exit "$status"
