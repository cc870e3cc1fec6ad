#!/usr/bin/env bash
# Installs (once, cached outside the clone) and starts Garage, an S3-compatible object store, as
# a single node on loopback for the artifact-store tests; creates the test bucket and key and
# prints the NOSYNTASK_TEST_S3_* variables to export. Exits non-zero when it cannot: the S3
# suites must fail, never skip, in CI.
#
#   eval "$(.ci/s3.sh)"
#
# Installing builds Garage from crates.io (`cargo install garage`, sqlite metadata only), once;
# later runs reuse the cached binary (keyed by version). Measured: 14 min of CPU (47 min wall with
# CARGO_BUILD_JOBS=1 on a 2-core machine shared with four other builds); the binary is 51 MB.
set -euo pipefail

GARAGE_VERSION=2.5.0
TOOLS="${NOSYNTASK_TOOLS_DIR:-${HOME:-/root}/.cache/nosyntask-tools}"
GARAGE="$TOOLS/garage-$GARAGE_VERSION/bin/garage"
STATE="${NOSYNTASK_GARAGE_DIR:-${TMPDIR:-/tmp}/nosyntask-garage}"
S3_PORT="${NOSYNTASK_GARAGE_S3_PORT:-3900}"
RPC_PORT="${NOSYNTASK_GARAGE_RPC_PORT:-3901}"
ADMIN_PORT="${NOSYNTASK_GARAGE_ADMIN_PORT:-3903}"
BUCKET=nosyntask-test
# A fixed test key (imported, so every run has the same one): Garage key ids are GK + 24 hex.
KEY_ID=GK0123456789abcdef01234567
KEY_SECRET=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

log() { echo "$*" >&2; }

if [ ! -x "$GARAGE" ]; then
  log "installing garage $GARAGE_VERSION into $TOOLS (cargo install, several minutes)"
  started=$(date +%s)
  env -u CARGO_TARGET_DIR cargo install garage --version "$GARAGE_VERSION" --locked --no-default-features \
    --features bundled-libs,sqlite --root "$TOOLS/garage-$GARAGE_VERSION" >&2
  log "garage installed in $(( $(date +%s) - started )) s"
fi
[ -x "$GARAGE" ] || { log "FATAL: garage is not installed at $GARAGE"; exit 1; }

s3_up() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; }

CONFIG="$STATE/garage.toml"
if ! s3_up; then
  mkdir -p "$STATE/meta" "$STATE/data"
  cat > "$CONFIG" <<TOML
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(printf '%064d' 7)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML
  log "starting garage (state in $STATE)"
  nohup "$GARAGE" -c "$CONFIG" server > "$STATE/garage.log" 2>&1 &
  for _ in $(seq 1 60); do s3_up && break; sleep 0.5; done
  s3_up || { log "FATAL: garage did not start; log:"; tail -n 30 "$STATE/garage.log" >&2; exit 1; }
fi

g() { "$GARAGE" -c "$CONFIG" "$@"; }
for _ in $(seq 1 30); do g status >/dev/null 2>&1 && break; sleep 0.5; done
if ! g layout show 2>/dev/null | grep -q "Current cluster layout version: [1-9]"; then
  node=$(g node id -q | cut -d@ -f1)
  g layout assign -z dc1 -c 1G "$node" >&2
  g layout apply --version 1 >&2
fi
g bucket info "$BUCKET" >/dev/null 2>&1 || g bucket create "$BUCKET" >&2
g key info "$KEY_ID" >/dev/null 2>&1 || g key import --yes -n nosyntask-test "$KEY_ID" "$KEY_SECRET" >&2
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >&2

cat <<ENV
export NOSYNTASK_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export NOSYNTASK_TEST_S3_REGION=garage
export NOSYNTASK_TEST_S3_BUCKET=$BUCKET
export NOSYNTASK_TEST_S3_ACCESS_KEY_ID=$KEY_ID
export NOSYNTASK_TEST_S3_SECRET_ACCESS_KEY=$KEY_SECRET
ENV
