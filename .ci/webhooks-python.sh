#!/usr/bin/env bash
# The server's webhook signatures checked by an independent implementation of Standard
# Webhooks: the `standardwebhooks` package from PyPI, in a receiver on loopback
# (.ci/webhook_receiver.py). The server binary runs on its embedded defaults with one
# `[[webhooks]]` endpoint; a job is started and the receiver must verify its `step.completed`
# and `job.completed` deliveries. Any failure fails CI.
#
#   .ci/webhooks-python.sh path/to/nosyntask-server
set -euo pipefail
cd "$(dirname "$0")/.."

server_bin=$(realpath "$1")
VERSION=1.0.1
TOOLS="${NOSYNTASK_TOOLS_DIR:-${HOME:-/root}/.cache/nosyntask-tools}"
VENV="$TOOLS/standardwebhooks-$VERSION"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "standardwebhooks==$VERSION"
fi

. .ci/serve-lib.sh
work=$(mktemp -d)
secret="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
hook_port=$(free_port)
"$VENV/bin/python" .ci/webhook_receiver.py "$hook_port" "$secret" "$work/received.jsonl" &
receiver=$!
port=$(free_port)
cat >"$work/config.toml" <<TOML
[[webhooks]]
name = "python"
url = "http://127.0.0.1:$hook_port/hooks"
secret = "$secret"
TOML
(cd "$work" && exec env NOSYNTASK__SERVER__BIND="127.0.0.1:$port" "$server_bin" serve --config config.toml >server.log 2>&1) &
server=$!
trap 'kill "$server" "$receiver" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "$port" "$work/server.log"

token=$(cd "$work" && "$server_bin" token --user 1)
job=$(curl -fs -X POST "http://127.0.0.1:$port/api/workflows" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d '{"workflowType":"prompt_generate","projectId":1,"params":{"description":"a lighthouse"}}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["jobId"])')

for _ in $(seq 1 120); do
  [ -f "$work/received.jsonl" ] && [ "$(grep -c . "$work/received.jsonl")" -ge 2 ] && break
  sleep 0.5
done
python3 - "$work/received.jsonl" "$job" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
job = int(sys.argv[2])
assert all(r["verified"] for r in records), f"a signature did not verify: {records}"
kinds = [r["type"] for r in records if r["jobId"] == job]
assert kinds[:2] == ["step.completed", "job.completed"], f"deliveries of job {job}: {records}"
print(f"standardwebhooks (PyPI) verified {len(records)} deliveries of job {job}: {kinds}")
PY
