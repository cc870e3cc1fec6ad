# nosyntask recipes. The README's two commands work without just.

pg := "postgres://postgres@127.0.0.1:5432/test"
my := "mysql://root@127.0.0.1:3306/test"

# Run the server on its embedded defaults (SQLite under ./data, simulated models)
run:
    cargo run -p nosyntask-server

# The test suite (SQLite always; PostgreSQL and MariaDB when their URLs are set)
test:
    cargo test --workspace

# The test suite with the PostgreSQL and MariaDB suites switched on
test-all:
    NOSYNTASK_TEST_POSTGRES_URL={{pg}} NOSYNTASK_TEST_MYSQL_URL={{my}} cargo test --workspace

# Formatting and clippy, as CI expects them
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed OpenAPI document
openapi:
    cargo run -p nosyntask-server -- openapi --out openapi.yaml

# Engine benchmark (e.g. just bench sqlite://data/bench.db?mode=rwc 20000 1 32)
bench db jobs="20000" steps="1" workers="32":
    cargo run --release -p nosyntask-bench -- engine --db '{{db}}' --jobs {{jobs}} --steps {{steps}} --workers {{workers}}

# Apply migrations to the configured database
migrate:
    cargo run -p nosyntask-server -- migrate

# Regenerate the store's sea-orm entities from the migrated PostgreSQL schema (needs sea-orm-cli 2.x)
entities server="postgres://postgres@127.0.0.1:5432":
    scripts/entities.sh {{server}}
