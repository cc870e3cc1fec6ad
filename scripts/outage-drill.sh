#!/usr/bin/env bash
# Database outage drill: PostgreSQL is stopped for about 10 s and started again while two worker
# processes run 500 two-step jobs. Afterwards every job must be completed and every step must have
# run exactly once. Stops the machine's PostgreSQL cluster: run it on a development machine only,
# with nothing else using that server. Usage: scripts/outage-drill.sh [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-500}
admin=postgres://postgres@127.0.0.1:5432/postgres
db=nosyntask_outage_drill
url=postgres://postgres@127.0.0.1:5432/$db
cluster=$(ls /etc/postgresql | head -n1)
work=$(mktemp -d)

cargo build -q -p nosyntask-testkit --bin nosyntask-testkit-worker
bin=${CARGO_TARGET_DIR:-target}/debug/nosyntask-testkit-worker

psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin" --db "$url" --start "$jobs"

for n in 1 2; do
  RUST_LOG=warn "$bin" --db "$url" --log "$work/runs-$n.log" --concurrency 16 --sleep-ms 300 --lease-ms 30000 \
    >"$work/worker-$n.out" 2>&1 &
  echo $! >"$work/worker-$n.pid"
done
completed() { psql "$url" -Atc "select count(*) from workflow_jobs where status='completed'" 2>/dev/null || echo 0; }
# Stop the database once the workers are well under way.
for _ in $(seq 1 60); do [ "$(completed)" -ge $((jobs / 5)) ] && break; sleep 0.5; done
echo "stopping PostgreSQL for 10 s ($(completed) jobs completed so far)"
pg_ctlcluster --skip-systemctl-redirect "$cluster" main stop -m fast
sleep 10
pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
echo "PostgreSQL is back"

for _ in $(seq 1 180); do
  done_jobs=$(psql "$url" -Atc "select count(*) from workflow_jobs where status='completed'" 2>/dev/null || echo 0)
  [ "$done_jobs" = "$jobs" ] && break
  sleep 1
done
for n in 1 2; do kill -INT "$(cat "$work/worker-$n.pid")"; done
wait

echo "completed jobs: $done_jobs of $jobs"
echo "completed steps: $(psql "$url" -Atc "select count(*) from generation_tasks where status='completed'") of $((jobs * 2))"
runs=$(cat "$work"/runs-*.log | wc -l)
distinct=$(cat "$work"/runs-*.log | awk '{print $1}' | sort -u | wc -l)
echo "handler runs: $runs for $distinct distinct steps"
echo "worker warnings logged during the outage: $(cat "$work"/worker-*.out | grep -ci 'unavailable\|failed' || true)"
cat "$work"/worker-*.out | grep -i 'unavailable\|failed' | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | head -n 5 || true
psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
if [ "$done_jobs" = "$jobs" ] && [ "$runs" = "$((jobs * 2))" ] && [ "$distinct" = "$((jobs * 2))" ]; then
  echo "PASS: every job completed, every step ran exactly once"
else
  echo "FAIL"; exit 1
fi
