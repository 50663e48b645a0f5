#!/usr/bin/env bash
# Runs the whole test suite: starts the services the tests need (scripts/test-env.sh),
# then formatting, lints and every test with cargo-nextest. Idempotent; safe to rerun.
# CI runs exactly this (see .ci/run), with CI=true so that a missing database fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust with https://rustup.rs (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh)" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest (one time)..." >&2
    cargo install --locked cargo-nextest
fi
if ! command -v cc >/dev/null 2>&1; then
    echo "installing a C compiler (bundled SQLite needs one)..." >&2
    apt-get install -y build-essential >&2
fi

# Keep build output outside the clone so fresh clones (CI) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rivet-target}"

eval "$(scripts/test-env.sh)"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo nextest" >&2
cargo nextest run --workspace --locked --no-fail-fast "$@"
