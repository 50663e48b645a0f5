#!/usr/bin/env bash
# Benchmark Rivet against a plain `COPY ... TO STDOUT (FORMAT binary)` baseline.
# See docs/benchmarks.md for what is measured and how.
#
#   scripts/bench.sh
#
# Environment knobs (defaults in brackets):
#   BENCH_WIDE_ROWS    rows in rivet_bench.wide, 20 columns   [2000000]
#   BENCH_NARROW_ROWS  rows in rivet_bench.narrow, 4 columns  [10000000]
#   BENCH_TABLES       tables to benchmark                    ["wide narrow"]
#   BENCH_RUNS         interleaved rounds per table           [3]
#   BENCH_DIR          work dir; results.md is written here   [/var/tmp/rivet-bench]
#   BENCH_KEEP=1       keep the Parquet files of every run (default: deleted after checks)
#   RIVET_BIN          use this rivet binary instead of building one
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WIDE_ROWS=${BENCH_WIDE_ROWS:-2000000}
NARROW_ROWS=${BENCH_NARROW_ROWS:-10000000}
TABLES=${BENCH_TABLES:-wide narrow}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/rivet-bench}
SPEC_VERSION=1     # bump when a table's column definitions below change

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

# --- rivet binary and database ------------------------------------------------
if [[ -n ${RIVET_BIN:-} ]]; then
    [[ -x $RIVET_BIN ]] || die "RIVET_BIN=$RIVET_BIN is not an executable"
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rivet-target}
    log "building rivet (release) into $CARGO_TARGET_DIR"
    (cd "$REPO_ROOT" && cargo build --release --locked --bin rivet >&2)
    RIVET_BIN=$CARGO_TARGET_DIR/release/rivet
fi
RIVET_BIN=$(realpath "$RIVET_BIN")
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"

eval "$("$REPO_ROOT/scripts/test-env.sh")"
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$RIVET_TEST_PG_ADMIN_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# --- fixtures: deterministic, built server-side, rebuilt only on spec change ---
# Every value is a function of id (no random()); NULL columns are NULL for 10% of ids.
WIDE_SQL="
CREATE TABLE rivet_bench.wide (
  id bigint NOT NULL, i int, b bigint, ni int, amount numeric(12,2), d double precision,
  nb boolean, code varchar(16), label varchar(64), body text, nt text,
  created timestamptz, updated timestamptz, day date, u uuid, meta jsonb,
  s smallint, f real, qty int, status text);
INSERT INTO rivet_bench.wide
SELECT g, (g % 1000003)::int, g * 7919,
  CASE WHEN g % 10 <> 0 THEN (g % 100000)::int END,
  ((g * 37) % 100000000) / 100.0,
  (g % 1000000) / 7.0,
  CASE WHEN g % 10 <> 1 THEN g % 2 = 0 END,
  'C' || lpad((g % 1000000)::text, 6, '0'),
  'label-' || md5(g::text),
  -- 200..1000 bytes: md5 strings of neighbouring ids, repeated, cut to a length from id
  left(repeat(md5(g::text) || md5((g + 1)::text) || md5((g * 3)::text), 11), 200 + ((g * 7919) % 801)::int),
  CASE WHEN g % 10 <> 2 THEN 'note ' || g END,
  timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
  CASE WHEN g % 10 <> 3 THEN timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second' + (g % 86400) * interval '1 second' END,
  CASE WHEN g % 10 <> 4 THEN date '2020-01-01' + (g % 3650)::int END,
  md5(g::text)::uuid,
  CASE WHEN g % 10 <> 5 THEN jsonb_build_object('k', g % 100, 'tag', 't' || (g % 7), 'ok', g % 3 = 0) END,
  (g % 32767)::smallint, ((g % 10000) / 8.0)::real, (g % 500)::int,
  (ARRAY['new', 'paid', 'shipped', 'done', 'void'])[1 + (g % 5)::int]
FROM generate_series(1::bigint, :rows) AS g;  -- bigint: g * 7919 overflows int"

NARROW_SQL="
CREATE TABLE rivet_bench.narrow (id bigint NOT NULL, v int, ts timestamp, s smallint);
INSERT INTO rivet_bench.narrow
SELECT g, ((g * 7919) % 2147483647)::int, timestamp '2020-01-01' + g * interval '1 second',
  (g % 32767)::smallint
FROM generate_series(1::bigint, :rows) AS g;  -- bigint: g * 7919 overflows int"

ensure_table() {   # ensure_table NAME ROWS CREATE_AND_INSERT_SQL
    local t=$1 rows=$2 sql=$3 spec have
    spec="rivet-bench $t v$SPEC_VERSION rows=$rows"
    admin -c "CREATE SCHEMA IF NOT EXISTS rivet_bench; GRANT USAGE ON SCHEMA rivet_bench TO rivet_reader"
    have=$(admin -c "SELECT obj_description(to_regclass('rivet_bench.$t'), 'pg_class')")
    if [[ $have == "$spec" ]]; then
        log "rivet_bench.$t is up to date ($spec)"
    else
        log "building rivet_bench.$t ($spec; was: ${have:-none})"
        local t0; t0=$(now)
        # Fed on stdin so that VACUUM runs outside a transaction block. The comment
        # is set last: an interrupted build is rebuilt next time.
        admin -v rows="$rows" <<SQL
DROP TABLE IF EXISTS rivet_bench.$t;
$sql
ALTER TABLE rivet_bench.$t ADD PRIMARY KEY (id);
VACUUM ANALYZE rivet_bench.$t;
COMMENT ON TABLE rivet_bench.$t IS '$spec';
SQL
        log "built rivet_bench.$t in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s"
    fi
    admin -c "GRANT SELECT ON rivet_bench.$t TO rivet_reader"
}

# --- measurements -------------------------------------------------------------
SAMPLER_PID=
stop_sampler() {   # SIGINT makes psql leave \watch, then exit at end of its input
    if [[ -n $SAMPLER_PID ]]; then
        # psql ignores SIGINT until it has connected, so repeat; SIGTERM as a last resort.
        local i
        for ((i = 0; i < 30; i++)); do
            kill -INT "$SAMPLER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=
    fi
}
trap stop_sampler EXIT

start_sampler() {  # one admin session polling pg_stat_activity every 100 ms
    printf '%s\n' "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
        FROM pg_stat_activity WHERE usename = 'rivet_reader' AND xact_start IS NOT NULL" \
        '\watch 0.1' | "$PSQL" "$RIVET_TEST_PG_ADMIN_URL" -X -q -At >"$1" 2>/dev/null &
    SAMPLER_PID=$!
}

max_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

run_baseline() {   # run_baseline TABLE ROUND -> one line in $RESULTS
    local t=$1 r=$2 t0 t1
    t0=$(now)
    "$PSQL" "$RIVET_TEST_PG_URL" -X -q -v ON_ERROR_STOP=1 \
        -c "COPY (SELECT * FROM rivet_bench.$t) TO STDOUT (FORMAT binary)" >/dev/null
    t1=$(now)
    printf '%s\tbaseline\t%s\t%s\t\t\t\t\t\n' "$t" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" >>"$RESULTS"
}

run_rivet() {      # run_rivet TABLE PARALLELISM ROUND -> one line in $RESULTS
    local t=$1 p=$2 r=$3 variant="rivet p=$2"
    local dir=$BENCH_DIR/runs/$t-p$p-r$r
    rm -rf "$dir" && mkdir -p "$dir"
    cat >"$dir/rivet.yaml" <<EOF
source: { type: postgres, url_env: DATABASE_URL }
tuning: { parallelism: $p }
exports:
  - name: $t
    table: rivet_bench.$t
    mode: chunked
    format: parquet
    compression: zstd
    destination: { type: local, path: $dir/out }
EOF
    admin -c "SELECT pg_stat_statements_reset()" >/dev/null
    start_sampler "$dir/xact-samples.txt"
    local t0 t1
    t0=$(now)
    (cd "$dir" && DATABASE_URL=$RIVET_TEST_PG_URL /usr/bin/time -v -o "$dir/plan.time" \
        "$RIVET_BIN" plan -c rivet.yaml -o plan.json >"$dir/plan.log" 2>&1 \
        && DATABASE_URL=$RIVET_TEST_PG_URL /usr/bin/time -v -o "$dir/apply.time" \
        "$RIVET_BIN" apply plan.json >"$dir/apply.log" 2>&1) \
        || { stop_sampler; tail -n 20 "$dir"/*.log >&2; die "rivet failed for $t ($variant); see $dir"; }
    t1=$(now)
    stop_sampler

    # Verify the row count, then measure.
    local rows want bytes rss stmt_ms stmt_txt xact
    rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$dir/out/manifest.json")
    want=${COUNT[$t]}
    [[ $rows == "$want" ]] || die "ROW COUNT MISMATCH for $t ($variant, round $r): manifest says $rows, table has $want"
    bytes=$(find "$dir/out" -name 'part-*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    rss=$(printf '%s\n%s\n' "$(max_rss_mb "$dir/plan.time")" "$(max_rss_mb "$dir/apply.time")" | sort -g | tail -n 1)
    stmt_ms=$(admin -c "SELECT round(max(max_exec_time)::numeric, 1) FROM pg_stat_statements WHERE userid = 'rivet_reader'::regrole")
    stmt_txt=$(admin -c "SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 60) FROM pg_stat_statements
                          WHERE userid = 'rivet_reader'::regrole ORDER BY max_exec_time DESC LIMIT 1" | tr '\t' ' ')
    xact=$(awk '$1 + 0 > m {m = $1 + 0} END {printf "%.2f", m}' "$dir/xact-samples.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$variant" "$r" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss" "$bytes" "$stmt_ms" "$xact" "$stmt_txt" >>"$RESULTS"
    if [[ ${BENCH_KEEP:-0} != 1 ]]; then find "$dir/out" -name 'part-*.parquet' -delete; fi
    log "$t $variant round $r: $rows rows, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, peak RSS $rss MB, longest statement $stmt_ms ms, longest xact $xact s"
}

# --- main ---------------------------------------------------------------------
mkdir -p "$BENCH_DIR"
RESULTS=$BENCH_DIR/raw.tsv
: >"$RESULTS"
declare -A COUNT
for t in $TABLES; do
    case $t in
        wide) ensure_table wide "$WIDE_ROWS" "$WIDE_SQL" ;;
        narrow) ensure_table narrow "$NARROW_ROWS" "$NARROW_SQL" ;;
        *) die "unknown table '$t' in BENCH_TABLES (expected wide, narrow)" ;;
    esac
    COUNT[$t]=$(admin -c "SELECT count(*) FROM rivet_bench.$t")
done

for t in $TABLES; do
    for ((r = 1; r <= RUNS; r++)); do   # interleaved, so drift hits every variant alike
        log "$t round $r/$RUNS"
        run_baseline "$t" "$r"
        run_rivet "$t" 1 "$r"
        run_rivet "$t" 2 "$r"
    done
done

# --- report -------------------------------------------------------------------
MACHINE="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)"
PGVER=$(admin -c "SELECT version()")
RIVETVER=$("$RIVET_BIN" --version 2>/dev/null || echo "rivet (version unknown)")
COUNTS=$(for t in $TABLES; do printf '%s=%s ' "$t" "${COUNT[$t]}"; done)
python3 - "$RESULTS" "$BENCH_DIR/results.md" "$MACHINE" "$PGVER" "$RIVETVER" "$RUNS" "$COUNTS" <<'PY'
import datetime, sys
from statistics import median
raw, out, machine, pgver, rivetver, runs, counts = sys.argv[1:]
count = dict(kv.split("=") for kv in counts.split())
rows = [line.rstrip("\n").split("\t") for line in open(raw)]
MB = 1024 * 1024
def med(vals):
    vals = [float(v) for v in vals if v != ""]
    return median(vals) if vals else None
def f(v, fmt):
    return "–" if v is None else format(v, fmt)
lines = [
    f"Date: {datetime.date.today()} · machine: {machine}",
    f"PostgreSQL: {pgver}",
    f"Rivet: {rivetver} · rows: {counts.strip()} · medians of {runs} interleaved runs",
    "",
    "| table | variant | wall s | rows/s | MB/s | ratio to baseline | peak RSS MB | Parquet MB | longest statement ms | longest transaction s |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
]
notes = []
for table in dict.fromkeys(r[0] for r in rows):
    n = int(count[table])
    base = med(r[3] for r in rows if r[0] == table and r[1] == "baseline")
    for variant in dict.fromkeys(r[1] for r in rows if r[0] == table):
        rs = [r for r in rows if r[0] == table and r[1] == variant]
        wall = med(r[3] for r in rs)
        pq = med(r[5] for r in rs)
        lines.append("| " + " | ".join([
            table, variant, f(wall, ".2f"), f(n / wall, ",.0f"),
            f(pq / MB / wall if pq is not None else None, ".1f"),
            f(wall / base, ".2f"), f(med(r[4] for r in rs), ".0f"),
            f(pq / MB if pq is not None else None, ".1f"),
            f(med(r[6] for r in rs), ".0f"), f(med(r[7] for r in rs), ".2f")]) + " |")
        top = max((r for r in rs if r[6] != ""), key=lambda r: float(r[6]), default=None)
        if top:
            notes.append(f"- {table}, {variant}: longest statement ({float(top[6]):.0f} ms): `{top[8]}`")
text = "\n".join(lines + ["", "Longest statements (slowest run of each variant):"] + notes) + "\n"
open(out, "w").write(text)
print(text)
PY
log "results written to $BENCH_DIR/results.md (raw per-run numbers: $RESULTS)"
