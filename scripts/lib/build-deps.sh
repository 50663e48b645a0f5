# Sourced by scripts/test.sh and scripts/demo.sh: makes sure a fresh Debian machine can
# build rivet (Rust toolchain, a C compiler for the bundled SQLite, OpenSSL headers for
# TLS to PostgreSQL). Installs missing Debian packages with apt-get (as root or sudo).

ensure_build_deps() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is missing: install Rust with https://rustup.rs (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh)" >&2
        exit 1
    fi
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
    if ((${#missing[@]})); then
        local sudo=()
        [[ $EUID -eq 0 ]] || sudo=(sudo)
        echo "installing build dependencies: ${missing[*]}" >&2
        "${sudo[@]}" apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
    fi
    # Keep build output outside the clone so fresh clones (CI) reuse it.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rivet-target}"
}
