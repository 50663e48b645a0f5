# Sourced by the bench scripts: sets RIVET_BIN to an absolute path — the binary the
# caller named in RIVET_BIN, or a release build made now in CARGO_TARGET_DIR
# (default ~/.cache/rivet-target). Needs REPO_ROOT, log and die from the caller.

resolve_rivet_bin() {
    if [[ -n ${RIVET_BIN:-} ]]; then
        [[ -x $RIVET_BIN ]] || die "RIVET_BIN=$RIVET_BIN is not an executable"
    else
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rivet-target}
        log "building rivet (release) into $CARGO_TARGET_DIR"
        (cd "$REPO_ROOT" && cargo build --release --locked --bin rivet >&2)
        RIVET_BIN=$CARGO_TARGET_DIR/release/rivet
    fi
    RIVET_BIN=$(realpath "$RIVET_BIN")
}
