#!/usr/bin/env bash
# Benchmark change capture: `rivet plan` + `rivet apply` of one sealed log window of N
# changes against the engine's own log reader in the same run — PostgreSQL:
# `pg_recvlogical` streaming the same changes from a slot of its own (pgoutput, same
# publication) into /dev/null; MariaDB: `mariadb-binlog --read-from-remote-server
# --verbose` (rows decoded, as Rivet decodes them) over the window's positions into
# /dev/null. See docs/cdc.md ("Measured").
#
#   scripts/bench-cdc.sh             # PostgreSQL
#   scripts/bench-cdc.sh mariadb     # the test environment's MariaDB (binary log)
#
# Environment knobs (defaults in brackets):
#   BENCH_CDC_CHANGES  changes per window, one transaction each     [1000000]
#   BENCH_RUNS         rounds per shape (insert, update), medians    [3]
#   BENCH_DIR          work dir; cdc-results.md is written here      [/var/tmp/rivet-bench]
#   RIVET_BIN          use this rivet binary instead of building one
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENGINE=${1:-postgres}
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
[[ $ENGINE == postgres || $ENGINE == mariadb ]] || die "engine must be postgres or mariadb, not $ENGINE"
# shellcheck source=lib/bench-bin.sh
source "$REPO_ROOT/scripts/lib/bench-bin.sh"
resolve_rivet_bin
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"
eval "$("$REPO_ROOT/scripts/test-env.sh")"
DIR=$BENCH_DIR/cdc-$ENGINE
RESULTS=$BENCH_DIR/cdc-$ENGINE-raw.tsv
rm -rf "$DIR" && mkdir -p "$DIR"
: >"$RESULTS"

if [[ $ENGINE == postgres ]]; then
    BASE=pg_recvlogical
    RECV=/usr/lib/postgresql/15/bin/pg_recvlogical
    [[ -x $RECV ]] || RECV=$(command -v pg_recvlogical) || die "pg_recvlogical is missing (postgresql-client-15)"
    PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
    cdc_sql() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$RIVET_TEST_PG_CDC_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
    URL=$RIVET_TEST_PG_CDC_URL
    cat >"$DIR/rivet.yaml" <<EOF
source: { type: postgres, url_env: DATABASE_URL }
exports:
  - name: changes
    table: $SCHEMA.t
    mode: cdc
    cdc: { slot: $SLOT, until_current: true }
    destination: { type: local, path: out }
EOF
    cleanup() {
        rivet cdc teardown -c rivet.yaml >/dev/null 2>&1 || true
        cdc_sql -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$BASE_SLOT'" >/dev/null 2>&1 || true
        cdc_sql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    }
    prepare() {
        cdc_sql -c "CREATE SCHEMA $SCHEMA; CREATE TABLE $SCHEMA.t (id int PRIMARY KEY, v int, s text);
                    ALTER TABLE $SCHEMA.t REPLICA IDENTITY FULL"
        rivet cdc setup -c rivet.yaml >&2
        # The baseline's own slot, created now so it sees exactly the changes Rivet's slot sees.
        cdc_sql -c "SELECT pg_create_logical_replication_slot('$BASE_SLOT', 'pgoutput')" >/dev/null
    }
    change() {   # change SHAPE LO HI
        case $1 in
            insert) cdc_sql -c "INSERT INTO $SCHEMA.t SELECT i, i, 'row ' || i FROM generate_series($2, $3) i" ;;
            update) cdc_sql -c "UPDATE $SCHEMA.t SET v = v + 1 WHERE id BETWEEN $2 AND $3" ;;
        esac
    }
    baseline() {   # baseline LOWER UPPER: the same window from its own slot, into /dev/null
        /usr/bin/time -v -o "$DIR/recv.time" "$RECV" -d "$RIVET_TEST_PG_CDC_URL" --slot "$BASE_SLOT" \
            --start -E "$2" -o proto_version=1 -o "publication_names=$SLOT" -f /dev/null --no-loop \
            2>"$DIR/recv.log"
    }
else
    BASE=mariadb-binlog
    command -v mariadb-binlog >/dev/null || die "mariadb-binlog is missing (mariadb-client)"
    DB=rivet_t_bench_cdc
    MY_USER=rivet_my_cdc
    export MYSQL_PWD=$RIVET_TEST_MYSQL_PASSWORD
    cdc_sql() { mariadb -h 127.0.0.1 -P 33306 -u "$MY_USER" -N -B "$@"; }
    URL=$RIVET_TEST_MYSQL_CDC_URL
    cat >"$DIR/rivet.yaml" <<EOF
source: { type: mysql, url_env: DATABASE_URL }
exports:
  - name: changes
    table: $DB.t
    mode: cdc
    destination: { type: local, path: out }
EOF
    cleanup() { cdc_sql -e "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
    prepare() {
        cdc_sql -e "CREATE DATABASE $DB; CREATE TABLE $DB.t (id int PRIMARY KEY, v int, s text)"
        rivet cdc setup -c rivet.yaml >&2
        # The first window is empty: it records where capture starts.
        { rivet plan -c rivet.yaml -o plan.json && rivet apply plan.json; } >"$DIR/first.log" 2>&1 \
            || { cat "$DIR/first.log" >&2; die "the first (empty) window failed"; }
    }
    change() {
        case $1 in
            insert) cdc_sql -D "$DB" -e "INSERT INTO $DB.t SELECT seq, seq, CONCAT('row ', seq) FROM seq_$2_to_$3" ;;
            update) cdc_sql -e "UPDATE $DB.t SET v = v + 1 WHERE id BETWEEN $2 AND $3" ;;
        esac
    }
    baseline() {   # baseline LOWER UPPER: the window's positions, rows decoded, into /dev/null
        local lo_file=${1%:*} lo_pos=${1##*:} hi_file=${2%:*} hi_pos=${2##*:} files=()
        local lo_n=${lo_file##*.} hi_n=${hi_file##*.} base=${lo_file%.*} n
        for ((n = 10#$lo_n; n <= 10#$hi_n; n++)); do files+=("$(printf '%s.%0*d' "$base" "${#lo_n}" "$n")"); done
        /usr/bin/time -v -o "$DIR/recv.time" mariadb-binlog --read-from-remote-server \
            -h 127.0.0.1 -P 33306 -u "$MY_USER" --verbose \
            --start-position="$lo_pos" --stop-position="$hi_pos" "${files[@]}" >/dev/null 2>"$DIR/recv.log"
    }
fi
rivet() { (cd "$DIR" && DATABASE_URL=$URL "$RIVET_BIN" "$@"); }
trap cleanup EXIT
cleanup
prepare

max_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

round() {   # round SHAPE ROUND
    local shape=$1 r=$2 lo=$((($2 - 1) * CHANGES + 1)) hi=$(($2 * CHANGES))
    change "$shape" "$lo" "$hi" >/dev/null
    local t0 t1 rows end bytes
    t0=$(now)
    (cd "$DIR" && DATABASE_URL=$URL /usr/bin/time -v -o "$DIR/plan.time" \
        "$RIVET_BIN" plan -c rivet.yaml -o plan.json >"$DIR/plan.log" 2>&1 \
        && DATABASE_URL=$URL /usr/bin/time -v -o "$DIR/apply.time" \
        "$RIVET_BIN" apply plan.json >"$DIR/apply.log" 2>&1) \
        || { tail -n 20 "$DIR"/*.log >&2; die "rivet failed ($shape, round $r)"; }
    t1=$(now)
    local win
    win=$(python3 -c 'import json,sys; w = json.load(open(sys.argv[1]))["body"]["exports"][0]["window"]; print(w["seq"], w["lower"], w["upper"])' "$DIR/plan.json")
    read -r seq start end <<<"$win"
    local wdir
    wdir=$DIR/out/$(printf 'window-%05d' "$seq")
    rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$wdir/manifest.json")
    [[ $rows == "$CHANGES" ]] || die "CHANGE COUNT MISMATCH ($shape, round $r): the window holds $rows rows, $CHANGES changes were made"
    bytes=$(find "$wdir" -name 'part-*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    local rss
    rss=$(printf '%s\n%s\n' "$(max_rss_mb "$DIR/plan.time")" "$(max_rss_mb "$DIR/apply.time")" | sort -g | tail -n 1)
    printf '%s\t%s\trivet\t%s\t%s\t%s\n' "$shape" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss" "$bytes" >>"$RESULTS"
    log "$shape round $r: rivet $rows changes in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, peak RSS $rss MB"
    # The baseline: the engine's own reader over the same window, into /dev/null.
    t0=$(now)
    baseline "$start" "$end" || { cat "$DIR/recv.log" >&2; die "$BASE failed ($shape, round $r)"; }
    t1=$(now)
    printf '%s\t%s\t%s\t%s\t%s\t\n' "$shape" "$r" "$BASE" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$(max_rss_mb "$DIR/recv.time")" >>"$RESULTS"
    log "$shape round $r: $BASE in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
}

for ((r = 1; r <= RUNS; r++)); do round insert "$r"; done
for ((r = 1; r <= RUNS; r++)); do round update "$r"; done

python3 - "$RESULTS" "$BENCH_DIR/cdc-$ENGINE-results.md" "$CHANGES" "$RUNS" "$("$RIVET_BIN" --version)" "$BASE" <<'PY'
import datetime, sys
from statistics import median
raw, out, changes, runs, version, base_tool = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(raw)]
n = int(changes)
lines = [f"Date: {datetime.date.today()} · {version} · {n:,} changes per window, one transaction · medians of {runs}",
         "", f"| shape | tool | wall s | changes/s | Parquet MB/s | ratio to {base_tool} | peak RSS MB |",
         "|---|---|--:|--:|--:|--:|--:|"]
for shape in dict.fromkeys(r[0] for r in rows):
    base = median(float(r[3]) for r in rows if r[0] == shape and r[2] == base_tool)
    for tool in ("rivet", base_tool):
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
log "results written to $BENCH_DIR/cdc-$ENGINE-results.md"
