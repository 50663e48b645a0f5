//! Output options: `meta_columns`, `skip_empty` and `max_file_size` parts.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use crate::common::*;

#[test]
fn meta_columns_are_appended_and_skip_empty_writes_no_empty_files() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "meta_skip");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 10) i;
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(95, 100) i;",
    );
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 20\n    skip_empty: true\n    meta_columns: [exported_at, plan_digest, chunk_id]\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    let out = p.path("out/events");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    // Keys 1..100 in ranges of 20: only the first and the last range hold rows.
    assert_eq!(files, ["part-00001.parquet", "part-00005.parquet"]);
    let on_disk = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("part-")
        })
        .count();
    assert_eq!(on_disk, 2, "no empty files on disk");
    assert_eq!(manifest["rows"], 16);
    let names: Vec<&str> = manifest["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "v",
            "_rivet_exported_at",
            "_rivet_plan_digest",
            "_rivet_chunk_id"
        ]
    );
    let digest = manifest["plan_digest"].as_str().unwrap().to_owned();
    let batches = read_export_parquet(&out);
    let last = batches.last().unwrap();
    let chunk = last.column_by_name("_rivet_chunk_id").unwrap();
    assert_eq!(chunk.as_string::<i32>().value(0), "events/00005");
    let d = last.column_by_name("_rivet_plan_digest").unwrap();
    assert_eq!(d.as_string::<i32>().value(0), digest);
    let at = last.column_by_name("_rivet_exported_at").unwrap();
    let at = at.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!(
        (now_us - at.value(0)).abs() < 600_000_000,
        "exported_at is the run's start"
    );
    // A source column with a meta column's name is refused at plan time.
    s.exec("ALTER TABLE SCHEMA.events ADD COLUMN _rivet_chunk_id text");
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "q.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].meta_columns[2]"));
}

#[test]
fn max_file_size_splits_a_chunk_into_parts_and_cleans_up_extra_parts() {
    let url = require_pg!();
    let p = Project::new(&url);
    let cfg = |size: &str| {
        format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: big\n    table: rivet_fixture.big_gappy\n    max_file_size: {size}\n    tuning: {{ batch_size: 10000 }}\n    destination: {{ type: local, path: out/big }}\n"
        )
    };
    p.config(&cfg("1MiB"));
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    let out = p.path("out/big");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(files.len() > 2, "{files:?}");
    assert_eq!(files[0], "part-00001.parquet");
    assert_eq!(files[1], "part-00001-002.parquet");
    let rows: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 205_713);
    let mut ids: Vec<i64> = read_export_parquet(&out)
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 205_713);
    // Fewer parts next time: the extra part files of the earlier apply are removed.
    p.config(&cfg("\"1GB\""));
    p.plan_to("q.json", &[]);
    p.apply("q.json");
    let parts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    assert_eq!(parts, ["part-00001.parquet"]);
    // Sizes are checked at config load.
    p.config(&cfg("12 parsecs"));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].max_file_size"));
}
