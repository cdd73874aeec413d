#!/usr/bin/env bash
# `make run`: initialise a data directory (once), seed demo data (once), and
# start the server in the foreground.
set -euo pipefail
DATA="${1:-./medvault-data}"
LISTEN="${2:-127.0.0.1:8080}"
BIN="${MEDVAULT_BIN:-./build/medvault}"

if [ ! -f "$DATA/keys/platform.kek" ]; then
  "$BIN" init --data "$DATA"
fi
if [ ! -f "$DATA/.demo-seeded" ]; then
  "$BIN" seed-demo --data "$DATA" > "$DATA/.demo-patients"
  touch "$DATA/.demo-seeded"
fi
TOKEN_FILE="$DATA/bootstrap-admin.token"
FIRST=$(head -n 1 "$DATA/.demo-patients")
cat <<MSG

medvault is starting on http://$LISTEN (data in $DATA).

The bootstrap admin token is in $TOKEN_FILE (mode 0600). Try:

  TOKEN=\$(cat $TOKEN_FILE)
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients/$FIRST
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients/$FIRST/segments
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients/$FIRST/segments/physical-signs/blood-pressure
  curl -s -X PUT -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
       -d '{"data":{"systolic":128,"diastolic":82,"unit":"mmHg","time":"2026-11-21T08:00:00Z"}}' \\
       http://$LISTEN/api/v1/patients/$FIRST/segments/physical-signs/blood-pressure

The API is described in docs/api.md. Stop the server with Ctrl-C.

MSG
exec "$BIN" serve --data "$DATA" --listen "$LISTEN"
