#!/usr/bin/env bash
# Many small tables: N one-chunk exports of 1,000-row tables in one apply, against
# PostgreSQL COPYing all N tables to /dev/null over one connection in the same run.
# Prints the ratio and the per-export fixed cost. See docs/benchmarks.md.
#
#   scripts/bench-many-tables.sh
#
# Environment knobs (defaults in brackets):
#   BENCH_MANY_TABLES  number of tables                          [300]
#   BENCH_MANY_ROWS    rows per table                            [1000]
#   BENCH_RUNS         interleaved rounds                        [3]
#   BENCH_DIR          work dir                                  [/var/tmp/rivet-bench-many]
#   RIVET_BIN          use this rivet binary instead of building one (release)
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${BENCH_MANY_TABLES:-300}
ROWS=${BENCH_MANY_ROWS:-1000}
RUNS=${BENCH_RUNS:-3}
DIR=${BENCH_DIR:-/var/tmp/rivet-bench-many}
log() { echo "bench-many: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $N =~ ^[0-9]+$ && $N -gt 0 ]] || die "BENCH_MANY_TABLES must be a positive number"
[[ $ROWS =~ ^[0-9]+$ ]] || die "BENCH_MANY_ROWS must be a number"

# shellcheck source=lib/bench-bin.sh
source "$REPO_ROOT/scripts/lib/bench-bin.sh"
resolve_rivet_bin
eval "$("$REPO_ROOT/scripts/test-env.sh")"
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
admin() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" "$RIVET_TEST_PG_ADMIN_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# --- fixture: rivet_bench_many.t0001 … tNNNN, rebuilt when N or ROWS change -----------
spec="$N tables x $ROWS rows v1"
if [[ $(admin -c "SELECT obj_description('rivet_bench_many'::regnamespace)" 2>/dev/null || true) != "$spec" ]]; then
    log "building $N tables of $ROWS rows"
    admin -c "DROP SCHEMA IF EXISTS rivet_bench_many CASCADE; CREATE SCHEMA rivet_bench_many;"
    admin -c "DO \$\$ BEGIN FOR t IN 1..$N LOOP
        EXECUTE format('CREATE TABLE rivet_bench_many.%I (id int PRIMARY KEY, amount numeric(12,2), created timestamptz, note text)', 't' || lpad(t::text, 4, '0'));
        EXECUTE format('INSERT INTO rivet_bench_many.%I SELECT i, i * 1.25, now() - i * interval ''1 minute'', ''note '' || md5(i::text) FROM generate_series(1, $ROWS) i', 't' || lpad(t::text, 4, '0'));
      END LOOP; END \$\$;"
    admin -c "GRANT USAGE ON SCHEMA rivet_bench_many TO rivet_reader; GRANT SELECT ON ALL TABLES IN SCHEMA rivet_bench_many TO rivet_reader; ANALYZE;"
    admin -c "COMMENT ON SCHEMA rivet_bench_many IS '$spec'"
fi

mkdir -p "$DIR"
cd "$DIR"
{
    echo "source: { type: postgres, url_env: DATABASE_URL }"
    echo "exports:"
    for t in $(seq -f 't%04g' 1 "$N"); do
        echo "  - { name: $t, table: rivet_bench_many.$t, destination: { type: local, path: out/$t } }"
    done
} > rivet.yaml
for t in $(seq -f 't%04g' 1 "$N"); do
    echo "COPY rivet_bench_many.$t TO STDOUT (FORMAT binary);"
done > copy-all.sql

now() { date +%s.%N; }
export DATABASE_URL=$RIVET_TEST_PG_URL
"$RIVET_BIN" plan -c rivet.yaml -o plan.json --quiet
declare -a base_s rivet_s
for r in $(seq 1 "$RUNS"); do
    t0=$(now); "$PSQL" "$RIVET_TEST_PG_URL" -X -q -f copy-all.sql > /dev/null; t1=$(now)
    base_s+=("$(echo "$t1 - $t0" | bc -l)")
    rm -rf out .rivet_state.db*
    t0=$(now); "$RIVET_BIN" apply plan.json --quiet; t1=$(now)
    rivet_s+=("$(echo "$t1 - $t0" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b=$(median "${base_s[@]}")
v=$(median "${rivet_s[@]}")
ratio=$(echo "$v / $b" | bc -l)
per=$(echo "($v - $b) * 1000 / $N" | bc -l)
printf '| tables | rows each | COPY all, one connection (s) | rivet apply (s) | ratio | fixed cost per export (ms) |\n'
printf '|--:|--:|--:|--:|--:|--:|\n'
printf '| %d | %d | %.3f | %.3f | %.1f× | %.1f |\n' "$N" "$ROWS" "$b" "$v" "$ratio" "$per"
