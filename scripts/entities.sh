#!/usr/bin/env bash
# Regenerates the sea-orm entities of the store (crates/store/src/entities/*.rs) from the schema
# the project's own migrator builds on PostgreSQL (why PostgreSQL: crates/store/src/entities/README.md).
#
# Recreates the database `nosyntask_entities` on the server (dropping it first), applies every
# migration with the migrations crate's binary, and runs sea-orm-cli on it. Needs psql and
# sea-orm-cli 2.0.x (the workspace's sea-orm major version), e.g.
#   cargo install sea-orm-cli --version 2.0.4 --locked --no-default-features \
#     --features codegen,sqlx-postgres,runtime-tokio-rustls --root ~/.cache/nosyntask-tools/sea-orm-cli
# Usage: scripts/entities.sh [SERVER_URL]   (default postgres://postgres@127.0.0.1:5432)
# Environment: SEA_ORM_CLI (default: sea-orm-cli on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:-postgres://postgres@127.0.0.1:5432}
db=nosyntask_entities
url=$server/$db
out=crates/store/src/entities
cli=${SEA_ORM_CLI:-sea-orm-cli}

version=$("$cli" --version)
case "$version" in
  "sea-orm-cli 2."*) ;;
  *) echo "need sea-orm-cli 2.x (the workspace's sea-orm), found: $version" >&2; exit 1 ;;
esac

psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
cargo run -q -p nosyntask-migration -- -u "$url" up

# Generated files only: the hand-written README.md (the module's documentation) stays.
rm -f "$out"/*.rs
"$cli" generate entity \
  -u "$url" \
  -o "$out" \
  --ignore-tables seaql_migrations \
  --with-serde both \
  --date-time-crate chrono
rustfmt --edition 2024 "$out"/*.rs
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
git status --short "$out"
