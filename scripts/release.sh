#!/usr/bin/env bash
# Build the release binaries `rivet` and `rivet-mcp` as static Linux executables (musl
# libc, OpenSSL built from source and linked in), pack one archive per target into
# dist/, write dist/SHA256SUMS, and print each binary's size and cold start
# (`rivet --version`, median of 20).
#
#   scripts/release.sh                 # x86_64, and aarch64 when a cross toolchain exists
#   RELEASE_TARGETS="x86_64-unknown-linux-musl" scripts/release.sh
#
# Needs: rustup targets for each triple (added here when rustup can), musl-gcc
# (Debian package musl-tools, installed here when missing), perl and make (OpenSSL's
# build). aarch64 also needs a C cross compiler for musl (aarch64-linux-musl-gcc); when
# there is none the target is skipped with a message, never faked.
#
# Environment: CARGO_TARGET_DIR [~/.cache/rivet-target], DIST_DIR [dist].
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rivet-target}
DIST_DIR=${DIST_DIR:-$REPO_ROOT/dist}
TARGETS=${RELEASE_TARGETS:-x86_64-unknown-linux-musl aarch64-unknown-linux-musl}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

log() { printf 'release: %s\n' "$*" >&2; }
die() { printf 'release: error: %s\n' "$*" >&2; exit 1; }

[[ -n $VERSION ]] || die "cannot read the workspace version from Cargo.toml"
if ! command -v musl-gcc >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "musl-gcc is missing; install musl-tools"
    log "installing musl-tools (musl-gcc)"
    SUDO=(); [[ $EUID -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" apt-get install -y -qq musl-tools >&2
fi
for tool in perl make; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (OpenSSL's build needs it)"
done

mkdir -p "$DIST_DIR"
built=()
for target in $TARGETS; do
    case $target in
        x86_64-unknown-linux-musl) cc=musl-gcc ;;
        aarch64-unknown-linux-musl) cc=aarch64-linux-musl-gcc ;;
        *) die "unknown target '$target' (expected x86_64-unknown-linux-musl or aarch64-unknown-linux-musl)" ;;
    esac
    if ! command -v "$cc" >/dev/null 2>&1; then
        log "skipping $target: no C compiler '$cc' for it on this machine (OpenSSL, SQLite and zstd are C)"
        continue
    fi
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        log "adding the Rust standard library for $target"
        rustup target add "$target" >&2 || {
            log "skipping $target: rustup cannot add it here"
            continue
        }
    fi
    log "building $target (release, static, vendored OpenSSL)"
    env_cc="CC_${target//-/_}"
    # No debug info: the archives ship stripped binaries, and it halves the link time.
    env "$env_cc=$cc" CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --release --locked --target "$target" \
        -p rivet -p rivet-mcp --features rivet/vendored-openssl >&2
    out=$CARGO_TARGET_DIR/$target/release
    for bin in rivet rivet-mcp; do
        file "$out/$bin" | grep -q 'statically linked\|static-pie linked' \
            || die "$out/$bin is not statically linked: $(file -b "$out/$bin")"
    done
    name=rivet-$VERSION-$target
    stage=$(mktemp -d)
    mkdir "$stage/$name"
    cp "$out/rivet" "$out/rivet-mcp" "$stage/$name/"
    strip "$stage/$name/rivet" "$stage/$name/rivet-mcp" 2>/dev/null || true
    cp README.md LICENSE* "$stage/$name/" 2>/dev/null || true
    tar -C "$stage" -czf "$DIST_DIR/$name.tar.gz" "$name"
    if [[ $target == x86_64-* && $(uname -m) == x86_64 ]]; then
        # Cold start: the median wall time of `rivet --version` over 20 runs.
        times=()
        for _ in $(seq 1 20); do
            t0=$(date +%s%N)
            "$stage/$name/rivet" --version >/dev/null
            times+=($(( ($(date +%s%N) - t0) / 1000 )))
        done
        median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '10p')
        log "$target: rivet $(stat -c %s "$stage/$name/rivet") bytes, rivet-mcp $(stat -c %s "$stage/$name/rivet-mcp") bytes (stripped); cold start of rivet --version: ${median} µs (median of 20)"
    else
        log "$target: rivet $(stat -c %s "$stage/$name/rivet") bytes (stripped); not run on this $(uname -m) machine"
    fi
    rm -rf "$stage"
    built+=("$name.tar.gz")
done
((${#built[@]})) || die "no target was built"
(cd "$DIST_DIR" && sha256sum "${built[@]}" > SHA256SUMS)
log "wrote $DIST_DIR/SHA256SUMS:"
cat "$DIST_DIR/SHA256SUMS"
