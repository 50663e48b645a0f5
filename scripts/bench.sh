#!/usr/bin/env bash
# Benchmark Rivet against each database's own bulk export: PostgreSQL's
# `COPY ... TO STDOUT (FORMAT binary)` and MariaDB's `mariadb --quick`.
# See docs/benchmarks.md for what is measured and how.
#
#   scripts/bench.sh
#
# Environment knobs (defaults in brackets):
#   BENCH_ENGINES      engines to benchmark                   ["postgres mariadb"]
#   BENCH_WIDE_ROWS    rows in rivet_bench.wide, 20 columns   [2000000]
#   BENCH_NARROW_ROWS  rows in rivet_bench.narrow, 4 columns  [10000000]
#   BENCH_TABLES       tables to benchmark                    ["wide narrow"]
#   BENCH_RUNS         interleaved rounds per table           [3]
#   BENCH_DIR          work dir; results.md is written here   [/var/tmp/rivet-bench]
#   BENCH_KEEP=1       keep the Parquet files of every run (default: deleted after checks)
#   BENCH_MARIADB_BUFFER_POOL_MB  raise MariaDB's innodb_buffer_pool_size to at least
#                      this for the run, restored on exit; 0 leaves it alone  [4096]
#   BENCH_PEERS        other tools measured in the same interleaved rounds   ["duckdb connectorx"]
#                      (DuckDB CLI with its postgres/mysql extensions, ConnectorX streaming
#                      into pyarrow's Parquet writer; both from PyPI into $BENCH_DIR/peers)
#   RIVET_BIN          use this rivet binary instead of building one
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENGINES=${BENCH_ENGINES:-postgres mariadb}
WIDE_ROWS=${BENCH_WIDE_ROWS:-2000000}
NARROW_ROWS=${BENCH_NARROW_ROWS:-10000000}
TABLES=${BENCH_TABLES:-wide narrow}
RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/rivet-bench}
MY_BUFFER_POOL_MB=${BENCH_MARIADB_BUFFER_POOL_MB:-4096}
SPEC_VERSION=1     # bump when a PostgreSQL table's column definitions below change
MY_SPEC_VERSION=1  # the same for the MariaDB tables
MY_BATCH_ROWS=500000   # rows per INSERT ... SELECT when building a MariaDB table
PEERS=${BENCH_PEERS-duckdb connectorx}
DUCKDB_VERSION=1.4.4
DUCKDB_EXT_VERSION=1.4.4.20260205
CONNECTORX_VERSION=0.4.6
PYARROW_VERSION=26.0.1

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

has_engine() { [[ " $ENGINES " == *" $1 "* ]]; }
for p in $PEERS; do
    case $p in duckdb | connectorx) ;; *) die "unknown peer '$p' in BENCH_PEERS (expected duckdb, connectorx)" ;; esac
done
for e in $ENGINES; do
    case $e in postgres | mariadb) ;; *) die "unknown engine '$e' in BENCH_ENGINES (expected postgres, mariadb)" ;; esac
done
[[ -n ${ENGINES// /} ]] || die "BENCH_ENGINES is empty"
[[ $MY_BUFFER_POOL_MB =~ ^[0-9]+$ ]] || die "BENCH_MARIADB_BUFFER_POOL_MB must be a number of MiB"

# --- rivet binary and database ------------------------------------------------
# shellcheck source=lib/bench-bin.sh
source "$REPO_ROOT/scripts/lib/bench-bin.sh"
resolve_rivet_bin
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"

eval "$("$REPO_ROOT/scripts/test-env.sh")"
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$RIVET_TEST_PG_ADMIN_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# MariaDB: root over the unix socket for everything administrative; the reader over TCP.
my_root() {
    mariadb --no-defaults --socket="$RIVET_TEST_MYSQL_ADMIN_SOCKET" --user=root \
        --default-character-set=utf8mb4 --batch --skip-column-names "$@"
}
[[ $RIVET_TEST_MYSQL_URL =~ ^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/ ]] \
    || die "cannot parse RIVET_TEST_MYSQL_URL"
MY_READER=${BASH_REMATCH[1]} MY_READER_PW=${BASH_REMATCH[2]}
MY_HOST=${BASH_REMATCH[3]} MY_PORT=${BASH_REMATCH[4]}
sql_str() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\'\'}"; }   # a MariaDB string literal

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

# The same two tables in MariaDB, in MySQL types, from the SEQUENCE engine (seq_1_to_N),
# with the same values as the PostgreSQL ones wherever the types allow. `seq` is
# unsigned: it is cast to SIGNED before any arithmetic. Filled in batches of
# $MY_BATCH_ROWS rows, one autocommitted INSERT ... SELECT each.
MY_WIDE_DDL="
CREATE TABLE rivet_bench.wide (
  id BIGINT NOT NULL PRIMARY KEY, i INT, b BIGINT, ni INT NULL, amount DECIMAL(12,2), d DOUBLE,
  nb BOOLEAN NULL, code VARCHAR(16), label VARCHAR(64), body TEXT, nt TEXT NULL,
  created DATETIME(6), updated DATETIME(6) NULL, day DATE NULL, u CHAR(36), meta JSON NULL,
  s SMALLINT, f FLOAT, qty INT, status VARCHAR(8)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='building'"
MY_WIDE_SELECT="
SELECT g, g % 1000003, g * 7919,
  IF(g % 10 <> 0, g % 100000, NULL),
  ((g * 37) % 100000000) / 100,
  (g % 1000000) / 7e0,
  IF(g % 10 <> 1, g % 2 = 0, NULL),
  CONCAT('C', LPAD(g % 1000000, 6, '0')),
  CONCAT('label-', MD5(g)),
  LEFT(REPEAT(CONCAT(MD5(g), MD5(g + 1), MD5(g * 3)), 11), 200 + (g * 7919) % 801),
  IF(g % 10 <> 2, CONCAT('note ', g), NULL),
  TIMESTAMP '2020-01-01 00:00:00' + INTERVAL g SECOND,
  IF(g % 10 <> 3, TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (g + g % 86400) SECOND, NULL),
  IF(g % 10 <> 4, DATE '2020-01-01' + INTERVAL (g % 3650) DAY, NULL),
  CONCAT_WS('-', SUBSTR(MD5(g), 1, 8), SUBSTR(MD5(g), 9, 4), SUBSTR(MD5(g), 13, 4),
            SUBSTR(MD5(g), 17, 4), SUBSTR(MD5(g), 21, 12)),
  IF(g % 10 <> 5, JSON_OBJECT('k', g % 100, 'tag', CONCAT('t', g % 7), 'ok', g % 3 = 0), NULL),
  g % 32767, (g % 10000) / 8e0, g % 500,
  ELT(1 + g % 5, 'new', 'paid', 'shipped', 'done', 'void')"
MY_NARROW_DDL="
CREATE TABLE rivet_bench.narrow (id BIGINT NOT NULL PRIMARY KEY, v INT, ts DATETIME, s SMALLINT)
ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='building'"
MY_NARROW_SELECT="
SELECT g, (g * 7919) % 2147483647, TIMESTAMP '2020-01-01 00:00:00' + INTERVAL g SECOND, g % 32767"

my_ensure_table() {   # my_ensure_table NAME ROWS DDL SELECT_LIST
    local t=$1 rows=$2 ddl=$3 select=$4 spec have
    spec="rivet-bench $t v$MY_SPEC_VERSION rows=$rows"
    my_root -e "CREATE DATABASE IF NOT EXISTS rivet_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    have=$(my_root -e "SELECT TABLE_COMMENT FROM information_schema.TABLES
                        WHERE TABLE_SCHEMA = 'rivet_bench' AND TABLE_NAME = '$t'")
    if [[ $have == "$spec" ]]; then
        log "mariadb rivet_bench.$t is up to date ($spec)"
    else
        log "building mariadb rivet_bench.$t ($spec; was: ${have:-none})"
        local t0 lo hi; t0=$(now)
        # Not binlogged (root may): the throwaway server's binlog need not hold the data.
        # The comment is set last: an interrupted build is rebuilt next time.
        my_root -e "SET SESSION sql_log_bin = 0; DROP TABLE IF EXISTS rivet_bench.$t; $ddl"
        for ((lo = 1; lo <= rows; lo += MY_BATCH_ROWS)); do
            hi=$((lo + MY_BATCH_ROWS - 1 < rows ? lo + MY_BATCH_ROWS - 1 : rows))
            my_root -e "SET SESSION sql_log_bin = 0; INSERT INTO rivet_bench.$t $select
                FROM (SELECT CAST(seq AS SIGNED) AS g FROM rivet_bench.seq_${lo}_to_${hi}) AS s"
            log "  rows $lo..$hi loaded ($(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s)"
        done
        my_root -e "SET SESSION sql_log_bin = 0; ANALYZE TABLE rivet_bench.$t" >/dev/null
        my_root -e "SET SESSION sql_log_bin = 0; ALTER TABLE rivet_bench.$t COMMENT = '$spec'"
        log "built mariadb rivet_bench.$t in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s"
    fi
    my_root -e "GRANT SELECT ON rivet_bench.* TO '$MY_READER'@'127.0.0.1';
                GRANT SELECT ON rivet_bench.* TO '$MY_READER'@'localhost'"
}

# InnoDB reads with O_DIRECT, so a table that does not fit the buffer pool (128 MiB by
# default) is read from disk, while PostgreSQL's is served from the OS page cache. Raise
# the pool for the run so both engines are measured from memory; restored on exit.
MY_POOL_ORIG=
my_raise_buffer_pool() {
    ((MY_BUFFER_POOL_MB > 0)) || return 0
    local cur want=$((MY_BUFFER_POOL_MB * 1024 * 1024)) i status
    cur=$(my_root -e "SELECT @@innodb_buffer_pool_size")
    ((cur < want)) || return 0
    log "raising MariaDB innodb_buffer_pool_size from $((cur / 1048576)) to $MY_BUFFER_POOL_MB MiB for the run"
    MY_POOL_ORIG=$cur
    my_root -e "SET GLOBAL innodb_buffer_pool_size = $want"
    for ((i = 0; i < 600; i++)); do   # the resize runs in the background
        status=$(my_root -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'" | cut -f2)
        [[ $status == *[Rr]esizing* || $status == *[Ww]ithdraw* ]] || break
        sleep 0.5
    done
}
my_restore_buffer_pool() {
    if [[ -n $MY_POOL_ORIG ]]; then
        log "restoring MariaDB innodb_buffer_pool_size to $((MY_POOL_ORIG / 1048576)) MiB"
        my_root -e "SET GLOBAL innodb_buffer_pool_size = $MY_POOL_ORIG" || true
        MY_POOL_ORIG=
    fi
}

# --- measurements -------------------------------------------------------------
SAMPLER_PID=
SAMPLER_STOP=
stop_sampler() {
    if [[ -n $SAMPLER_STOP ]]; then   # MariaDB: the feeding loop ends, the client sees EOF
        touch "$SAMPLER_STOP"
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$SAMPLER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID= SAMPLER_STOP=
    elif [[ -n $SAMPLER_PID ]]; then   # SIGINT makes psql leave \watch, then exit at end of its input
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

start_sampler() {  # one admin session polling pg_stat_activity every 100 ms
    printf '%s\n' "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
        FROM pg_stat_activity WHERE usename = 'rivet_reader' AND xact_start IS NOT NULL" \
        '\watch 0.1' | "$PSQL" "$RIVET_TEST_PG_ADMIN_URL" -X -q -At >"$1" 2>/dev/null &
    SAMPLER_PID=$!
}

# MariaDB: one root session fed a sample every ~100 ms: a time mark, then each open InnoDB
# transaction of the reader (thread, trx_started, command, query id). trx_started has
# whole-second resolution; my_xact_seconds below combines it with when a transaction was
# first seen.
MY_SAMPLE_SQL="SELECT 'T', UNIX_TIMESTAMP(NOW(6)); SELECT 'X', UNIX_TIMESTAMP(NOW(6)), p.ID,
 UNIX_TIMESTAMP(t.trx_started), p.COMMAND, p.QUERY_ID FROM information_schema.INNODB_TRX t
 JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.USER = '$MY_READER';"
MY_SAMPLE_SQL=${MY_SAMPLE_SQL//$'\n'/}
my_start_sampler() {   # my_start_sampler FILE
    SAMPLER_STOP=$1.stop
    rm -f "$SAMPLER_STOP"
    local stop=$SAMPLER_STOP
    while [[ ! -e $stop ]]; do printf '%s\n' "$MY_SAMPLE_SQL"; sleep 0.1; done \
        | my_root --unbuffered >"$1" 2>/dev/null &
    SAMPLER_PID=$!
}

# Longest transaction from the samples. For each reader transaction (a thread's run of
# consecutive samples with the same trx_started and the same query id of its SELECT) the start lies in [trx_started, trx_started + 1 s) and no later than
# the first sample that saw it: duration >= last seen - min(first seen, trx_started + 1).
# Prints that lower bound (comparable to PostgreSQL's sampled xact age) and the upper bound
# max(NOW() - trx_started) that trx_started alone gives.
my_xact_seconds() {
    python3 - "$1" <<'PY'
import sys
samples, rows = 0, {}   # rows: thread -> {sample number: (now, trx_started, command, query id)}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "T":
        samples += 1
    elif f[0] == "X" and len(f) >= 6:
        rows.setdefault(f[2], {})[samples] = (float(f[1]), float(f[3]), f[4], f[5])
# A chunk's transaction runs one statement, the prepared SELECT: while it runs the thread
# shows Execute with its query id, and Sleep with the same id once it has finished (until
# COMMIT). Execute or Sleep with another id means a later statement: a new transaction.
TRX_STMT = ("Execute", "Sleep")
lo = hi = 0.0
for seen in rows.values():
    seg = None   # [trx_started, first seen, last seen, query id of its SELECT]
    for i in range(1, samples + 2):
        s = seen.get(i)
        if seg and (s is None or s[1] != seg[0] or (s[2] in TRX_STMT and seg[3] not in (None, s[3]))):
            lo = max(lo, seg[2] - min(seg[1], seg[0] + 1))
            seg = None
        if s is None:
            continue
        now, started, command, qid = s
        hi = max(hi, now - started)
        if seg is None:
            seg = [started, now, now, None]
        seg[2] = now
        if command in TRX_STMT:
            seg[3] = qid
print(f"{lo:.2f}\t{hi:.2f}")
PY
}

# The slow log (long_query_time = 0 during a run) to the longest reader statement:
# prints "ms<TAB>first 60 characters" (a MariaDB `SET STATEMENT ... FOR` prefix dropped).
my_slowest_statement() {   # my_slowest_statement SLOW_LOG USER
    python3 - "$1" "$2" <<'PY'
import re, sys
path, user = sys.argv[1:]
best, cur = None, None
def done(e):
    global best
    if e and e["user"] == user and e["qt"] is not None and (best is None or e["qt"] > best["qt"]):
        best = e
for line in open(path, errors="replace"):
    if line.startswith("# User@Host:"):
        done(cur)
        cur = {"user": line.split(":", 1)[1].strip().split("[", 1)[0], "qt": None, "sql": []}
    elif line.startswith("# Time:"):
        done(cur); cur = None
    elif cur is None:
        continue
    elif line.startswith("# Query_time:"):
        cur["qt"] = float(line.split()[2])
    elif line.startswith("#") or re.match(r"(SET timestamp=\d+|use \S+);$", line.strip()):
        continue
    else:
        cur["sql"].append(line.strip())
done(cur)
if best:
    sql = re.sub(r"\s+", " ", " ".join(best["sql"])).strip()
    sql = re.sub(r"^SET STATEMENT .*? FOR (?=SELECT)", "", sql)
    print(f"{best['qt'] * 1000:.1f}\t{sql[:60]}")
else:
    print("\t")
PY
}

MY_SLOW_ON=0 MY_SLOW_ORIG=
my_slow_log_on() {   # my_slow_log_on FILE: log every statement to FILE
    if [[ -z $MY_SLOW_ORIG ]]; then
        MY_SLOW_ORIG=$(my_root -e "SELECT @@GLOBAL.slow_query_log, @@GLOBAL.long_query_time, @@GLOBAL.slow_query_log_file")
    fi
    : >"$1"
    MY_SLOW_ON=1
    my_root -e "SET GLOBAL slow_query_log_file = $(sql_str "$1"); SET GLOBAL long_query_time = 0;
                SET GLOBAL slow_query_log = 1"
}
my_slow_log_off() {  # back to the server's settings (slow log off in the test env)
    ((MY_SLOW_ON)) || return 0
    local on lqt file
    IFS=$'\t' read -r on lqt file <<<"$MY_SLOW_ORIG"
    my_root -e "SET GLOBAL slow_query_log = 0; SET GLOBAL long_query_time = $lqt;
                SET GLOBAL slow_query_log_file = $(sql_str "$file"); SET GLOBAL slow_query_log = $on"
    MY_SLOW_ON=0
}

cleanup() { stop_sampler; my_slow_log_off || true; my_restore_buffer_pool; }
trap cleanup EXIT

max_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

# What the server saw of one run, for every tool alike: the longest statement of the
# reader account (pg_stat_statements, or MariaDB's slow log with long_query_time = 0)
# and the longest transaction (sampled every 100 ms).
server_watch_start() {   # server_watch_start ENGINE DIR
    case $1 in
        postgres)
            admin -c "SELECT pg_stat_statements_reset()" >/dev/null
            start_sampler "$2/xact-samples.txt" ;;
        mariadb)
            my_slow_log_on "$2/slow.log"
            my_start_sampler "$2/xact-samples.txt" ;;
    esac
}
stmt_ms= stmt_txt= xact= xact_hi=
server_watch_read() {    # server_watch_read ENGINE DIR -> stmt_ms stmt_txt xact xact_hi
    stmt_ms= stmt_txt= xact= xact_hi=
    case $1 in
        postgres)
            stmt_ms=$(admin -c "SELECT round(max(max_exec_time)::numeric, 1) FROM pg_stat_statements WHERE userid = 'rivet_reader'::regrole")
            stmt_txt=$(admin -c "SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 60) FROM pg_stat_statements
                                  WHERE userid = 'rivet_reader'::regrole ORDER BY max_exec_time DESC LIMIT 1" | tr '\t' ' ')
            xact=$(awk '$1 + 0 > m {m = $1 + 0} END {printf "%.2f", m}' "$2/xact-samples.txt") ;;
        mariadb)
            IFS=$'\t' read -r stmt_ms stmt_txt < <(my_slowest_statement "$2/slow.log" "$MY_READER")
            IFS=$'\t' read -r xact xact_hi < <(my_xact_seconds "$2/xact-samples.txt") ;;
    esac
}

run_baseline() {   # run_baseline ENGINE TABLE ROUND -> one line in $RESULTS
    local e=$1 t=$2 r=$3 t0 t1
    t0=$(now)
    case $e in
        postgres)
            "$PSQL" "$RIVET_TEST_PG_URL" -X -q -v ON_ERROR_STOP=1 \
                -c "COPY (SELECT * FROM rivet_bench.$t) TO STDOUT (FORMAT binary)" >/dev/null ;;
        mariadb)
            MYSQL_PWD=$MY_READER_PW mariadb --no-defaults --quick -h "$MY_HOST" -P "$MY_PORT" \
                -u "$MY_READER" -e "SELECT * FROM rivet_bench.$t" >/dev/null ;;
    esac
    t1=$(now)
    printf '%s\t%s\tbaseline\t%s\t%s\t\t\t\t\t\t\n' "$e" "$t" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" >>"$RESULTS"
}

run_rivet() {      # run_rivet ENGINE TABLE PARALLELISM ROUND -> one line in $RESULTS
    local e=$1 t=$2 p=$3 r=$4 variant="rivet p=$3"
    local dir=$BENCH_DIR/runs/$e-$t-p$p-r$r url source
    rm -rf "$dir" && mkdir -p "$dir"
    case $e in
        postgres) url=$RIVET_TEST_PG_URL source=postgres ;;
        mariadb) url=$RIVET_TEST_MYSQL_URL source=mysql ;;
    esac
    cat >"$dir/rivet.yaml" <<EOF
source: { type: $source, url_env: DATABASE_URL }
tuning: { parallelism: $p }
exports:
  - name: $t
    table: rivet_bench.$t
    mode: chunked
    format: parquet
    compression: zstd
    destination: { type: local, path: $dir/out }
EOF
    server_watch_start "$e" "$dir"
    local t0 t1
    t0=$(now)
    (cd "$dir" && DATABASE_URL=$url /usr/bin/time -v -o "$dir/plan.time" \
        "$RIVET_BIN" plan -c rivet.yaml -o plan.json >"$dir/plan.log" 2>&1 \
        && DATABASE_URL=$url /usr/bin/time -v -o "$dir/apply.time" \
        "$RIVET_BIN" apply plan.json >"$dir/apply.log" 2>&1) \
        || { stop_sampler; tail -n 20 "$dir"/*.log >&2; die "rivet failed for $e $t ($variant); see $dir"; }
    t1=$(now)
    stop_sampler
    if [[ $e == mariadb ]]; then my_slow_log_off; fi

    # Verify the row count, then measure.
    local rows want bytes rss
    rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$dir/out/manifest.json")
    want=${COUNT[$e/$t]}
    [[ $rows == "$want" ]] || die "ROW COUNT MISMATCH for $e $t ($variant, round $r): manifest says $rows, table has $want"
    bytes=$(find "$dir/out" -name 'part-*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    rss=$(printf '%s\n%s\n' "$(max_rss_mb "$dir/plan.time")" "$(max_rss_mb "$dir/apply.time")" | sort -g | tail -n 1)
    server_watch_read "$e" "$dir"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$e" "$t" "$variant" "$r" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss" "$bytes" "$stmt_ms" "$xact" "$stmt_txt" "$xact_hi" >>"$RESULTS"
    if [[ ${BENCH_KEEP:-0} != 1 ]]; then find "$dir/out" -name 'part-*.parquet' -delete; fi
    log "$e $t $variant round $r: $rows rows, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, peak RSS $rss MB, longest statement $stmt_ms ms, longest xact $xact s${xact_hi:+ (NOW() - trx_started: $xact_hi s)}"
}

# --- peers ---------------------------------------------------------------------
# Each peer writes zstd Parquet from the same table over the same reader account, timed
# like Rivet (wall clock of the whole command, peak RSS from /usr/bin/time), with the
# same longest-statement and transaction measurements on the server.
PEER_PY=
ensure_peers() {
    [[ -n ${PEERS// /} ]] || return 0
    local venv=$BENCH_DIR/peers
    if [[ ! -x $venv/bin/python ]]; then python3 -m venv "$venv" >&2; fi
    local want=("pyarrow==$PYARROW_VERSION")
    if [[ " $PEERS " == *" duckdb "* ]]; then
        want+=("duckdb-cli==$DUCKDB_VERSION" "duckdb-ext-postgres==$DUCKDB_EXT_VERSION" "duckdb-ext-mysql==$DUCKDB_EXT_VERSION")
    fi
    if [[ " $PEERS " == *" connectorx "* ]]; then want+=("connectorx==$CONNECTORX_VERSION"); fi
    if ! "$venv/bin/python" -m pip show -q "${want[@]%%==*}" >/dev/null 2>&1; then
        log "installing peers into $venv: ${want[*]}"
        "$venv/bin/python" -m pip install -q "${want[@]}" >&2
    fi
    PEER_PY=$venv/bin/python
    DUCKDB_BIN=$venv/bin/duckdb
    # ConnectorX streams Arrow batches (one connection) into pyarrow's Parquet writer.
    CX_SCRIPT=$venv/cx_to_parquet.py
    cat >"$CX_SCRIPT" <<'PY'
import sys
import connectorx as cx
import pyarrow.parquet as pq
conn, query, out = sys.argv[1:4]
reader = cx.read_sql(conn, query, return_type="arrow_stream", batch_size=65536)
writer = pq.ParquetWriter(out, reader.schema, compression="zstd")
for batch in reader:
    writer.write_batch(batch)
writer.close()
PY
    # The duckdb-cli wheel installs the executable without its execute bit.
    if [[ -f $DUCKDB_BIN && ! -x $DUCKDB_BIN ]]; then chmod +x "$DUCKDB_BIN"; fi
    DUCKDB_EXT_DIR=$(find "$venv" -type d -path '*duckdb_ext/extensions' | head -n 1)
}

# postgres://user:pw@host:port/db -> the parts, for tools that want key=value strings.
url_part() { "$PEER_PY" -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print({"user": u.unquote(p.username or ""), "password": u.unquote(p.password or ""), "host": p.hostname, "port": p.port, "db": p.path.lstrip("/")}[sys.argv[2]])' "$1" "$2"; }

peer_command() {   # peer_command ENGINE TABLE TOOL OUTFILE -> prints the argv, one per line
    local e=$1 t=$2 tool=$3 out=$4 ext attach
    case $tool in
        duckdb)
            case $e in
                postgres)
                    ext=$(find "$DUCKDB_EXT_DIR" -name 'postgres_scanner.duckdb_extension' | head -n 1)
                    attach="ATTACH '$RIVET_TEST_PG_URL' AS src (TYPE postgres, READ_ONLY)" ;;
                mariadb)
                    ext=$(find "$DUCKDB_EXT_DIR" -name 'mysql_scanner.duckdb_extension' | head -n 1)
                    attach="ATTACH 'host=$MY_HOST port=$MY_PORT user=$MY_READER password=$MY_READER_PW database=rivet_bench' AS src (TYPE mysql, READ_ONLY)" ;;
            esac
            [[ -f $ext ]] || die "the DuckDB $e extension is not in $DUCKDB_EXT_DIR"
            printf '%s\n' "$DUCKDB_BIN" -batch -c "LOAD '$ext'; $attach; COPY (SELECT * FROM src.rivet_bench.$t) TO '$out' (FORMAT parquet, COMPRESSION zstd);" ;;
        connectorx)
            local conn
            case $e in
                postgres) conn=$RIVET_TEST_PG_URL ;;
                mariadb) conn="mysql://$MY_READER:$MY_READER_PW@$MY_HOST:$MY_PORT/rivet_bench" ;;
            esac
            printf '%s\n' "$PEER_PY" "$CX_SCRIPT" "$conn" "SELECT * FROM rivet_bench.$t" "$out" ;;
    esac
}

run_peer() {       # run_peer ENGINE TABLE TOOL ROUND -> one line in $RESULTS
    local e=$1 t=$2 tool=$3 r=$4 variant
    case $tool in
        duckdb) variant="duckdb $DUCKDB_VERSION" ;;
        connectorx) variant="connectorx $CONNECTORX_VERSION" ;;
    esac
    local dir=$BENCH_DIR/runs/$e-$t-$tool-r$r
    rm -rf "$dir" && mkdir -p "$dir/out"
    local out=$dir/out/part-00000.parquet cmd=()
    mapfile -t cmd < <(peer_command "$e" "$t" "$tool" "$out")
    server_watch_start "$e" "$dir"
    local t0 t1
    t0=$(now)
    /usr/bin/time -v -o "$dir/run.time" "${cmd[@]}" >"$dir/run.log" 2>&1 \
        || { stop_sampler; tail -n 20 "$dir/run.log" >&2; die "$tool failed for $e $t; see $dir"; }
    t1=$(now)
    stop_sampler
    if [[ $e == mariadb ]]; then my_slow_log_off; fi
    local rows want bytes rss
    rows=$("$PEER_PY" -c 'import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$out")
    want=${COUNT[$e/$t]}
    [[ $rows == "$want" ]] || die "ROW COUNT MISMATCH for $e $t ($variant, round $r): the Parquet file has $rows rows, the table $want"
    bytes=$(stat -c %s "$out")
    rss=$(max_rss_mb "$dir/run.time")
    server_watch_read "$e" "$dir"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$e" "$t" "$variant" "$r" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rss" "$bytes" "$stmt_ms" "$xact" "$stmt_txt" "$xact_hi" >>"$RESULTS"
    if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -f "$out"; fi
    log "$e $t $variant round $r: $rows rows, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, peak RSS $rss MB, longest statement $stmt_ms ms"
}

# --- main ---------------------------------------------------------------------
mkdir -p "$BENCH_DIR"
RESULTS=$BENCH_DIR/raw.tsv
: >"$RESULTS"
declare -A COUNT
for t in $TABLES; do
    case $t in wide | narrow) ;; *) die "unknown table '$t' in BENCH_TABLES (expected wide, narrow)" ;; esac
done
if has_engine postgres; then
    for t in $TABLES; do
        case $t in
            wide) ensure_table wide "$WIDE_ROWS" "$WIDE_SQL" ;;
            narrow) ensure_table narrow "$NARROW_ROWS" "$NARROW_SQL" ;;
        esac
        COUNT[postgres/$t]=$(admin -c "SELECT count(*) FROM rivet_bench.$t")
    done
fi
if has_engine mariadb; then
    my_raise_buffer_pool
    for t in $TABLES; do
        case $t in
            wide) my_ensure_table wide "$WIDE_ROWS" "$MY_WIDE_DDL" "$MY_WIDE_SELECT" ;;
            narrow) my_ensure_table narrow "$NARROW_ROWS" "$MY_NARROW_DDL" "$MY_NARROW_SELECT" ;;
        esac
        # The full scan also loads the table into the buffer pool before round 1.
        COUNT[mariadb/$t]=$(my_root -e "SELECT COUNT(*) FROM rivet_bench.$t")
    done
fi

ensure_peers
for e in $ENGINES; do
    for t in $TABLES; do
        for ((r = 1; r <= RUNS; r++)); do   # interleaved, so drift hits every variant alike
            log "$e $t round $r/$RUNS"
            run_baseline "$e" "$t" "$r"
            run_rivet "$e" "$t" 1 "$r"
            run_rivet "$e" "$t" 2 "$r"
            for tool in $PEERS; do run_peer "$e" "$t" "$tool" "$r"; done
        done
    done
done

# --- report -------------------------------------------------------------------
MACHINE="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)"
VERSIONS=()
if has_engine postgres; then VERSIONS+=("PostgreSQL: $(admin -c "SELECT version()")"); fi
if has_engine mariadb; then
    VERSIONS+=("MariaDB: $(my_root -e "SELECT CONCAT(VERSION(), ' (', @@version_comment, '), innodb_buffer_pool_size ', @@innodb_buffer_pool_size DIV 1048576, ' MiB')")")
fi
RIVETVER=$("$RIVET_BIN" --version 2>/dev/null || echo "rivet (version unknown)")
COUNTS=$(for k in "${!COUNT[@]}"; do printf '%s=%s ' "$k" "${COUNT[$k]}"; done)
python3 - "$RESULTS" "$BENCH_DIR/results.md" "$MACHINE" "$RIVETVER" "$RUNS" "$COUNTS" "${VERSIONS[@]}" <<'PY'
import datetime, sys
from statistics import median
raw, out, machine, rivetver, runs, counts, *versions = sys.argv[1:]
count = dict(kv.split("=") for kv in counts.split())
rows = [line.rstrip("\n").split("\t") for line in open(raw)]
MB = 1024 * 1024
def med(vals):
    vals = [float(v) for v in vals if v != ""]
    return median(vals) if vals else None
def f(v, fmt):
    return "–" if v is None else format(v, fmt)
def code(sql):   # a markdown code span, also around MySQL's `quoted` identifiers
    return f"`` {sql} ``" if "`" in sql else f"`{sql}`"
tables = list(dict.fromkeys(r[1] for r in rows))
def rows_of(t):   # the same in every engine unless a table failed to build alike
    per = {k.split("/")[0]: v for k, v in count.items() if k.split("/")[1] == t}
    if len(set(per.values())) == 1:
        return f"{t}={next(iter(per.values()))}"
    return " ".join(f"{e} {t}={v}" for e, v in per.items())
rowcounts = " ".join(rows_of(t) for t in tables)
lines = [f"Date: {datetime.date.today()} · machine: {machine}"] + versions + [
    f"Rivet: {rivetver} · rows: {rowcounts} · medians of {runs} interleaved runs",
    "",
    "| engine | table | variant | wall s | rows/s | MB/s | ratio to baseline | peak RSS MB | Parquet MB | longest statement ms | longest transaction s |",
    "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
]
notes = []
for engine in dict.fromkeys(r[0] for r in rows):
    for table in dict.fromkeys(r[1] for r in rows if r[0] == engine):
        n = int(count[f"{engine}/{table}"])
        mine = [r for r in rows if r[0] == engine and r[1] == table]
        base = med(r[4] for r in mine if r[2] == "baseline")
        for variant in dict.fromkeys(r[2] for r in mine):
            rs = [r for r in mine if r[2] == variant]
            wall = med(r[4] for r in rs)
            pq = med(r[6] for r in rs)
            lines.append("| " + " | ".join([
                engine, table, variant, f(wall, ".2f"), f(n / wall, ",.0f"),
                f(pq / MB / wall if pq is not None else None, ".1f"),
                f(wall / base, ".2f"), f(med(r[5] for r in rs), ".0f"),
                f(pq / MB if pq is not None else None, ".1f"),
                f(med(r[7] for r in rs), ".0f"), f(med(r[8] for r in rs), ".2f")]) + " |")
            top = max((r for r in rs if r[7] != ""), key=lambda r: float(r[7]), default=None)
            if top:
                hi = med(r[10] for r in rs if len(r) > 10)
                extra = f"; max NOW() − trx_started (whole seconds) {hi:.2f} s (median)" if hi is not None else ""
                notes.append(f"- {engine} {table}, {variant}: longest statement ({float(top[7]):.0f} ms): {code(top[9])}{extra}")
text = "\n".join(lines + ["", "Longest statements (slowest run of each variant):"] + notes) + "\n"
open(out, "w").write(text)
print(text)
PY
log "results written to $BENCH_DIR/results.md (raw per-run numbers: $RESULTS)"
