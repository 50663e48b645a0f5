#!/usr/bin/env bash
# Benchmark change capture on PostgreSQL: `rivet plan` + `rivet apply` of one sealed log
# window of N changes against `pg_recvlogical` streaming the same changes from a slot of
# its own (pgoutput, same publication) into /dev/null, in the same run. See
# docs/cdc.md ("Measured").
#
#   scripts/bench-cdc.sh
#
# Environment knobs (defaults in brackets):
#   BENCH_CDC_CHANGES  changes per window, one transaction each     [1000000]
#   BENCH_RUNS         rounds per shape (insert, update), medians    [3]
#   BENCH_DIR          work dir; cdc-results.md is written here      [/var/tmp/rivet-bench]
#   RIVET_BIN          use this rivet binary instead of building one
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHANGES=${BENCH_CDC_CHANGES:-1000000}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/rivet-bench}
SCHEMA=rivet_bench_cdc
SLOT=rivet_bench_cdc
BASE_SLOT=rivet_bench_cdc_base

log() { printf 'bench-cdc: %s\n' "$*" >&2; }
die() { printf 'bench-cdc: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

[[ $CHANGES =~ ^[1-9][0-9]*$ ]] || die "BENCH_CDC_CHANGES must be a positive number"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
# shellcheck source=lib/bench-bin.sh
source "$REPO_ROOT/scripts/lib/bench-bin.sh"
resolve_rivet_bin
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"
RECV=/usr/lib/postgresql/15/bin/pg_recvlogical
[[ -x $RECV ]] || RECV=$(command -v pg_recvlogical) || die "pg_recvlogical is missing (postgresql-client-15)"

eval "$("$REPO_ROOT/scripts/test-env.sh")"
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
cdc_sql() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$RIVET_TEST_PG_CDC_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

DIR=$BENCH_DIR/cdc
RESULTS=$BENCH_DIR/cdc-raw.tsv
rm -rf "$DIR" && mkdir -p "$DIR"
: >"$RESULTS"

cat >"$DIR/rivet.yaml" <<EOF
source: { type: postgres, url_env: DATABASE_URL }
exports:
  - name: changes
    table: $SCHEMA.t
    mode: cdc
    cdc: { slot: $SLOT, until_current: true }
    destination: { type: local, path: out }
EOF
rivet() { (cd "$DIR" && DATABASE_URL=$RIVET_TEST_PG_CDC_URL "$RIVET_BIN" "$@"); }

cleanup() {
    rivet cdc teardown -c rivet.yaml >/dev/null 2>&1 || true
    cdc_sql -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$BASE_SLOT'" >/dev/null 2>&1 || true
    cdc_sql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
cdc_sql -c "CREATE SCHEMA $SCHEMA; CREATE TABLE $SCHEMA.t (id int PRIMARY KEY, v int, s text);
            ALTER TABLE $SCHEMA.t REPLICA IDENTITY FULL"
rivet cdc setup -c rivet.yaml >&2
# The baseline's own slot, created now so it sees exactly the changes Rivet's slot sees.
cdc_sql -c "SELECT pg_create_logical_replication_slot('$BASE_SLOT', 'pgoutput')" >/dev/null

max_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

round() {   # round SHAPE ROUND
    local shape=$1 r=$2 lo=$((($2 - 1) * CHANGES + 1)) hi=$(($2 * CHANGES))
    case $shape in
        insert) cdc_sql -c "INSERT INTO $SCHEMA.t SELECT i, i, 'row ' || i FROM generate_series($lo, $hi) i" ;;
        update) cdc_sql -c "UPDATE $SCHEMA.t SET v = v + 1 WHERE id BETWEEN $lo AND $hi" ;;
    esac
    local t0 t1 rows end bytes
    t0=$(now)
    (cd "$DIR" && DATABASE_URL=$RIVET_TEST_PG_CDC_URL /usr/bin/time -v -o "$DIR/plan.time" \
        "$RIVET_BIN" plan -c rivet.yaml -o plan.json >"$DIR/plan.log" 2>&1 \
        && DATABASE_URL=$RIVET_TEST_PG_CDC_URL /usr/bin/time -v -o "$DIR/apply.time" \
        "$RIVET_BIN" apply plan.json >"$DIR/apply.log" 2>&1) \
        || { tail -n 20 "$DIR"/*.log >&2; die "rivet failed ($shape, round $r)"; }
    t1=$(now)
    local win
    win=$(python3 -c 'import json,sys; w = json.load(open(sys.argv[1]))["body"]["exports"][0]["window"]; print(w["seq"], w["upper"])' "$DIR/plan.json")
    read -r seq end <<<"$win"
    local wdir
    wdir=$DIR/out/$(printf 'window-%05d' "$seq")
    rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$wdir/manifest.json")
    [[ $rows == "$CHANGES" ]] || die "CHANGE COUNT MISMATCH ($shape, round $r): the window holds $rows rows, $CHANGES changes were made"
    bytes=$(find "$wdir" -name 'part-*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    local rss
    rss=$(printf '%s\n%s\n' "$(max_rss_mb "$DIR/plan.time")" "$(max_rss_mb "$DIR/apply.time")" | sort -g | tail -n 1)
    printf '%s\t%s\trivet\t%s\t%s\t%s\n' "$shape" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss" "$bytes" >>"$RESULTS"
    log "$shape round $r: rivet $rows changes in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, peak RSS $rss MB"
    # The baseline: the same window from its own slot, to the same end, into /dev/null.
    t0=$(now)
    /usr/bin/time -v -o "$DIR/recv.time" "$RECV" -d "$RIVET_TEST_PG_CDC_URL" --slot "$BASE_SLOT" \
        --start -E "$end" -o proto_version=1 -o "publication_names=$SLOT" -f /dev/null --no-loop \
        2>"$DIR/recv.log" || { cat "$DIR/recv.log" >&2; die "pg_recvlogical failed ($shape, round $r)"; }
    t1=$(now)
    printf '%s\t%s\tpg_recvlogical\t%s\t%s\t\n' "$shape" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$(max_rss_mb "$DIR/recv.time")" >>"$RESULTS"
    log "$shape round $r: pg_recvlogical in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
}

for ((r = 1; r <= RUNS; r++)); do round insert "$r"; done
for ((r = 1; r <= RUNS; r++)); do round update "$r"; done

python3 - "$RESULTS" "$BENCH_DIR/cdc-results.md" "$CHANGES" "$RUNS" "$("$RIVET_BIN" --version)" <<'PY'
import datetime, sys
from statistics import median
raw, out, changes, runs, version = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(raw)]
n = int(changes)
lines = [f"Date: {datetime.date.today()} · {version} · {n:,} changes per window, one transaction · medians of {runs}",
         "", "| shape | tool | wall s | changes/s | Parquet MB/s | ratio to pg_recvlogical | peak RSS MB |",
         "|---|---|--:|--:|--:|--:|--:|"]
for shape in dict.fromkeys(r[0] for r in rows):
    base = median(float(r[3]) for r in rows if r[0] == shape and r[2] == "pg_recvlogical")
    for tool in ("rivet", "pg_recvlogical"):
        rs = [r for r in rows if r[0] == shape and r[2] == tool]
        wall = median(float(r[3]) for r in rs)
        rss = median(float(r[4]) for r in rs)
        mb = [float(r[5]) for r in rs if r[5]]
        mbs = f"{median(mb) / 1048576 / wall:.1f}" if mb else "–"
        lines.append(f"| {shape} | {tool} | {wall:.2f} | {n / wall:,.0f} | {mbs} | {wall / base:.2f} | {rss:.0f} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
log "results written to $BENCH_DIR/cdc-results.md"
