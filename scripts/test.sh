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
echo "== cargo nextest" >&2
cargo nextest run --workspace --locked --no-fail-fast "$@"
