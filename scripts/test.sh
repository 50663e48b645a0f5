#!/usr/bin/env bash
# Runs the whole test suite: starts the services the tests need (scripts/test-env.sh),
# then formatting, lints and every test with cargo-nextest. Idempotent; safe to rerun.
# CI runs exactly this (see .ci/run), with CI=true so that a missing database fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/build-deps.sh
source scripts/lib/build-deps.sh
ensure_build_deps
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest (one time)..." >&2
    cargo install --locked cargo-nextest
fi

eval "$(scripts/test-env.sh)"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
# SQL Server and GCS cannot run here: their live tests are #[ignore]d and run only
# against a real server/bucket named by RIVET_TEST_MSSQL_URL (docs/sources/mssql.md) or
# RIVET_TEST_GCS_BUCKET (docs/destinations/gcs.md); nextest lists them as skipped
# otherwise. RIVET_TEST_REQUIRE_MSSQL=1 turns a missing SQL Server URL into a failure.
extra=()
if [[ -n "${RIVET_TEST_MSSQL_URL:-}" || -n "${RIVET_TEST_GCS_BUCKET:-}" ]]; then
    echo "== RIVET_TEST_MSSQL_URL or RIVET_TEST_GCS_BUCKET is set: the #[ignore]d live tests run too (each fails without its service)" >&2
    extra+=(--run-ignored all)
elif [[ "${RIVET_TEST_REQUIRE_MSSQL:-}" == 1 ]]; then
    echo "RIVET_TEST_REQUIRE_MSSQL=1 but RIVET_TEST_MSSQL_URL is not set; see docs/sources/mssql.md" >&2
    exit 1
else
    echo "== RIVET_TEST_MSSQL_URL is not set: the live SQL Server tests are skipped (see docs/sources/mssql.md)" >&2
fi
echo "== cargo nextest" >&2
cargo nextest run --workspace --locked --no-fail-fast "${extra[@]}" "$@"
