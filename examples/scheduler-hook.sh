#!/bin/sh
# Scheduler hook: ask vouch whether NODE may run a job on RESOURCE before starting it.
# Exits 0 and prints the admission artifact only when admitted; otherwise prints every
# refusal reason (code: message) to standard error and exits 1.
#   VOUCH_URL=https://verifier:8443 VOUCH_TOKEN=vouch_... scheduler-hook.sh NODE RESOURCE [ACTION]
set -eu
node="${1:?usage: scheduler-hook.sh NODE RESOURCE [ACTION]}"
resource="${2:?usage: scheduler-hook.sh NODE RESOURCE [ACTION]}"
action="${3:-run-job}"
body=$(jq -n --arg n "$node" --arg r "$resource" --arg a "$action" '{node: $n, action: $a, resource: $r}')
answer=$(curl -sS -X POST "${VOUCH_URL:?set VOUCH_URL}/v1/authorize" \
  -H "authorization: Bearer ${VOUCH_TOKEN:?set VOUCH_TOKEN}" -H 'content-type: application/json' \
  --data "$body") || { echo "vouch: verifier unreachable" >&2; exit 1; }
if [ "$(printf '%s' "$answer" | jq -r '.decision // empty')" = admitted ]; then
  printf '%s\n' "$answer" | jq -r '.artifact'
  exit 0
fi
printf '%s\n' "$answer" | jq -r '(.failures // [.error // {code: "UNKNOWN", message: "no answer"}])[] | "vouch: refused: \(.code): \(.message)"' >&2
exit 1
