#!/usr/bin/env bash
# The main job, end to end: plan -> show -> apply -> state, then what was written.
#
#   scripts/demo.sh               # against a local fixture database started for you
#   scripts/demo.sh my.yaml       # against your own config (its url_env etc. must be set)
#
# Output goes under target/demo/ (or beside your config).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib/build-deps.sh
source scripts/lib/build-deps.sh
ensure_build_deps
cargo build --locked --bin rivet >&2
RIVET="$CARGO_TARGET_DIR/debug/rivet"

if [ $# -ge 1 ]; then
    CONFIG=$(realpath "$1")
    WORK=$(dirname "$CONFIG")
else
    eval "$(scripts/test-env.sh)"
    export DATABASE_URL="$RIVET_TEST_PG_URL"
    WORK="$PWD/target/demo"
    mkdir -p "$WORK"
    CONFIG="$WORK/rivet.yaml"
    cat > "$CONFIG" <<'YAML'
# Demo config: three exports from the fixture database (fixtures/postgres/seed.sql).
source:
  type: postgres
  url_env: DATABASE_URL        # the URL (with its password) stays in the environment
exports:
  - name: all_types            # one table with every supported type, read in full
    table: rivet_fixture.all_types
    destination: { type: local, path: ./output/all_types }
  - name: big_gappy            # 200k+ rows in key-range chunks, two at a time
    table: rivet_fixture.big_gappy
    mode: chunked
    chunk_size: 50000
    tuning: { parallelism: 2 }
    destination: { type: local, path: ./output/big_gappy }
  - name: order_items          # quoted names with spaces and capitals, to CSV
    table: Sales Data.Order Items
    format: csv
    destination: { type: local, path: ./output/order_items }
YAML
fi

cd "$WORK"
echo "== rivet plan -c $CONFIG -o plan.json"
"$RIVET" plan -c "$CONFIG" -o plan.json
echo
echo "== rivet plan show plan.json (first 40 lines)"
"$RIVET" plan show plan.json | head -40
echo
echo "== rivet apply plan.json"
"$RIVET" apply plan.json
echo
echo "== rivet state"
"$RIVET" state
echo
echo "== what was written"
find . -path ./.rivet_plans -prune -o -type f \( -name '*.parquet' -o -name '*.csv*' -o -name manifest.json -o -name _SUCCESS \) -print | sort | while read -r f; do
    printf '%10s  %s\n' "$(stat -c %s "$f")" "$f"
done
for m in $(find . -name manifest.json | sort); do
    python3 - "$m" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"{m['export']}: {m['rows']} rows in {len(m['files'])} file(s), {m['format']}/{m['compression']}, plan {m['plan_digest'][:12]}")
for c in m["schema"]:
    print(f"    {c['name']:<22} {c['source_type']:<28} -> {c['arrow_type']}")
PY
done
csv=$(find . -name 'part-*.csv' | sort | head -1)
if [ -n "$csv" ]; then
    echo
    echo "== first lines of $csv"
    head -5 "$csv"
fi
