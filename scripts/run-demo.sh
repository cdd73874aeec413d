#!/usr/bin/env bash
# `make run`: initialise a data directory (once), seed the demo hospital,
# accounts and patients (once), and start the server in the foreground.
set -euo pipefail
DATA="${1:-./medvault-data}"
LISTEN="${2:-127.0.0.1:8080}"
BIN="${MEDVAULT_BIN:-./build/medvault}"

if [ ! -f "$DATA/keys/platform.kek" ]; then
  "$BIN" init --data "$DATA"
fi
if [ ! -f "$DATA/demo-credentials.txt" ]; then
  "$BIN" seed-demo --data "$DATA" >/dev/null
  # Demo patients from the shared Synthea bundles, imported with the importer
  # and treated by Dr. Heart, when the shared test data is beside the checkout.
  SYNTHEA="${MEDVAULT_SYNTHEA_DIR:-$(dirname "$0")/../../shared/testdata/synthea/fhir-r4-bundles}"
  if [ -d "$SYNTHEA" ]; then
    HEART=$(grep -P '^doctor\tdr.heart\t' "$DATA/demo-credentials.txt" | cut -f5)
    mapfile -t BUNDLES < <(ls "$SYNTHEA"/*.json | head -n "${MEDVAULT_DEMO_IMPORTS:-5}")
    echo "Importing ${#BUNDLES[@]} Synthea patients from $SYNTHEA ..."
    "$BIN" import --data "$DATA" "${BUNDLES[@]}" | while IFS=$'\t' read -r file patient outcome rest; do
      if [ "${#patient}" = 32 ] && [ -n "$HEART" ]; then
        "$BIN" relationship start --data "$DATA" --patient "$patient" --clinician "$HEART" >/dev/null
        printf 'imported-record\t%s\n' "$patient" >> "$DATA/demo-credentials.txt"
      elif [[ "$file" == imported* ]]; then
        echo "  $file $patient $outcome $rest"
      fi
    done
  fi
fi
CREDS="$DATA/demo-credentials.txt"
FIRST=$(grep -P '^patient-record\t' "$CREDS" | head -n 1 | cut -f2)
cat <<MSG

medvault is starting: open the portal at http://$LISTEN/ (data in $DATA).

Demo accounts (fictional; passwords and TOTP secrets in $CREDS, mode 0600):

$(grep -v '^#' "$CREDS" | grep -v '^patient-record' | grep -v '^imported-record' | awk -F'\t' '{printf "  %-18s %-12s password %s%s\n", $1, $2, $3, ($4 == "-" ? "" : "  (TOTP: medvault totp-code " $4 ")")}')

Sign in as Dr. Heart (cardiology; treats the first demo patient) and read:

  LINE=\$(grep -P '^doctor\tdr.heart\t' $CREDS)
  CODE=\$($BIN totp-code \$(echo "\$LINE" | cut -f4))
  TOKEN=\$(curl -s -X POST -H 'Content-Type: application/json' \\
    -d "{\"username\":\"dr.heart\",\"password\":\"\$(echo "\$LINE" | cut -f3)\",\"totp_code\":\"\$CODE\"}" \\
    http://$LISTEN/api/v1/auth/login | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/me
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients/$FIRST/segments
  curl -s -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/v1/patients/$FIRST/segments/physical-signs/blood-pressure

Dr. Sugar does not treat that patient: the same read answers 403 with the reason, and
POST /api/v1/patients/$FIRST/break-glass with {"reason": "..."} is the emergency way in.
The API is described in docs/api.md, the access rules in docs/policy.md. Stop with Ctrl-C.

MSG
exec "$BIN" serve --data "$DATA" --listen "$LISTEN"
