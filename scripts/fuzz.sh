#!/usr/bin/env bash
# Schema-driven fuzzing of the local stack: every operation in /openapi.json, every check but
# positive-data acceptance (the contract rejects references to path parts that do not exist).
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=$(mktemp -d)
port=${FUZZ_PORT:-8765}
(cd "$workdir" && exec "$OLDPWD/.venv/bin/ksflow" local --port "$port" >"$workdir/stack.log" 2>&1) &
stack=$!
trap 'kill $stack 2>/dev/null || true; wait $stack 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 120); do
  [ -f "$workdir/.local/credentials.json" ] && curl -sf "http://127.0.0.1:$port/openapi.json" >/dev/null && break
  sleep 1
done
api_key=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['api_key'])" \
  "$workdir/.local/credentials.json")
.venv/bin/schemathesis run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $api_key" --checks all --exclude-checks positive_data_acceptance \
  --max-examples "${FUZZ_EXAMPLES:-50}" --no-color
