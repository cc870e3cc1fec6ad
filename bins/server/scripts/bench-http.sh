#!/bin/sh
# Status-polling benchmark: GET /api/workflows/{id} against GET /healthz on the same server, with
# wrk at 256 connections (docs/benchmarks.md, "HTTP").
#
#   cargo build --release -p nosyntask-server
#   bins/server/scripts/bench-http.sh                      # SQLite in a temporary directory
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/nosyntask_bench bins/server/scripts/bench-http.sh
#
# Needs wrk (apt-get install wrk) and curl. Environment: BIN (server binary, default
# target/release/nosyntask-server), PORT (18090), DURATION (15s), CONNECTIONS (256), JOBS (200,
# for the many-jobs run), DATABASE_URL (default: SQLite file in the temporary directory).
set -eu

BIN=$(cd "$(dirname "${BIN:-target/release/nosyntask-server}")" && pwd)/$(basename "${BIN:-target/release/nosyntask-server}")
PORT=${PORT:-18090}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-256}
JOBS=${JOBS:-200}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
PID=""
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"

export JWT_SECRET=bench-secret-0123456789-abcdefghijklmn
export NOSYNTASK__SERVER__BIND=127.0.0.1:$PORT
export NOSYNTASK__LIMITS__MAX_ACTIVE_JOBS_PER_USER=0
export RUST_LOG=warn
if [ -n "${DATABASE_URL:-}" ]; then export NOSYNTASK__DATABASE__URL=$DATABASE_URL; fi

"$BIN" > out.txt 2> err.txt &
PID=$!
until grep -q "nosyntask listening on" out.txt 2>/dev/null; do sleep 0.2; done
TOKEN=$("$BIN" token --user 1)
AUTH="Authorization: Bearer $TOKEN"

i=0
FIRST=""
while [ "$i" -lt "$JOBS" ]; do
  ID=$(curl -s -X POST "$BASE/api/workflows" -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"workflowType":"prompt_generate","projectId":1,"params":{"description":"a lighthouse at dawn"}}' \
    | sed -n 's/.*"jobId":\([0-9]*\).*/\1/p')
  [ -z "$FIRST" ] && FIRST=$ID
  i=$((i + 1))
done
until curl -s "$BASE/api/workflows?status=pending,running&limit=1" -H "$AUTH" | grep -q '"jobs":\[\]'; do
  sleep 0.5
done

cat > ids.lua <<LUA
local first, n, counter = $FIRST, $JOBS, 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/workflows/" .. (first + counter % n))
end
LUA

echo "uptime: $(uptime)"
echo "== GET /healthz"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$BASE/healthz"
echo "== GET /api/workflows/$FIRST (one job)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$AUTH" "$BASE/api/workflows/$FIRST"
echo "== GET /api/workflows/{id} over $JOBS jobs"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s ids.lua -H "$AUTH" "$BASE"
echo "uptime: $(uptime)"
