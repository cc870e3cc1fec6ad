#!/usr/bin/env bash
# Schemathesis (PyPI) against the real server binary on its embedded defaults (SQLite, simulated
# models), with the committed openapi.yaml: every check, the stateful phase (the document's
# links) included. Any failure fails CI.
#
#   .ci/schemathesis.sh path/to/nosyntask-server
#
# Schemathesis is installed once into a virtualenv cached outside the clone (keyed by version).
set -euo pipefail
cd "$(dirname "$0")/.."

server_bin=$1
VERSION=4.32.5
TOOLS="${NOSYNTASK_TOOLS_DIR:-${HOME:-/root}/.cache/nosyntask-tools}"
VENV="$TOOLS/schemathesis-$VERSION"
if [ ! -x "$VENV/bin/st" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi

work=$(mktemp -d)
. .ci/serve-lib.sh
port=$(free_port)
# One token sends thousands of starts: the per-user quota of active jobs would answer most of
# them (and the stateful phase's) with 429 instead of exercising the API.
(cd "$work" && exec env NOSYNTASK__SERVER__BIND="127.0.0.1:$port" \
  NOSYNTASK__LIMITS__MAX_ACTIVE_JOBS_PER_USER=1000000 "$server_bin" serve >server.log 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "$port" "$work/server.log"

# An admin token: the admin routes are exercised too (an admin reads every user's jobs).
token=$(cd "$work" && "$server_bin" token --user 1 --role admin)
# NUL bytes are left out of generated strings: no HTTP header can carry one, and the server's
# refusal of NUL elsewhere has its own tests.
"$VENV/bin/st" run openapi.yaml --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" \
  --checks all --max-examples 50 --generation-allow-x00 false
