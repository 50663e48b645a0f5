//! Incremental and time-window exports against the live PostgreSQL (and one MariaDB
//! run): windows sealed in the plan, ties and late rows at the boundary exported exactly
//! once across runs, stale plans refused, re-apply idempotent, `query_file`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::{read_export_parquet, rivet, write, Scratch};

/// Every id in every committed window directory of an export, with its window.
fn ids_by_window(export_dir: &Path) -> BTreeMap<String, Vec<i64>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(export_dir) else {
        return out;
    };
    for entry in entries {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("window-") {
            continue;
        }
        assert!(dir.join("_SUCCESS").exists(), "{name} has no _SUCCESS");
        let mut ids = Vec::new();
        for b in read_export_parquet(&dir) {
            let col = b.column_by_name("id").unwrap();
            ids.extend(col.as_primitive::<Int64Type>().values().iter().copied());
        }
        out.insert(name, ids);
    }
    out
}

fn all_ids(windows: &BTreeMap<String, Vec<i64>>) -> Vec<i64> {
    let mut ids: Vec<i64> = windows.values().flatten().copied().collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a row was exported twice: {windows:?}");
    ids
}

fn source_ids(s: &mut Scratch, filter: &str) -> Vec<i64> {
    let sql = format!(
        "SELECT id FROM \"{}\".events WHERE {filter} ORDER BY id",
        s.schema
    );
    s.client
        .query(sql.as_str(), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn plan(dir: &Path, url: &str, out: &str, extra: &[&str]) {
    rivet(dir, url)
        .args(["plan", "-c", "rivet.yaml", "-o", out])
        .args(extra)
        .assert()
        .success();
}

fn apply(dir: &Path, url: &str, plan: &str) {
    rivet(dir, url).args(["apply", plan]).assert().success();
}

#[test]
fn ties_and_late_rows_at_the_boundary_are_exported_exactly_once() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "inc_ties");
    // `batch` is a non-unique integer cursor: many rows share each value.
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, batch int NOT NULL, note text);
         INSERT INTO SCHEMA.events SELECT i, 1 + (i - 1) / 100, 'n' || i FROM generate_series(1, 300) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: incremental\n    cursor_column: batch\n    destination: {{ type: local, path: out/events }}\n",
        s.schema
    );
    write(dir.path(), "rivet.yaml", &cfg);
    let out = dir.path().join("out/events");

    // Window 1: batches 1 and 2; batch 3 holds the maximum and waits, because more rows
    // with batch 3 may still arrive.
    plan(dir.path(), &url, "p1.json", &[]);
    let shown = rivet(dir.path(), &url)
        .args(["plan", "show", "p1.json"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("incremental on batch (integer)")
            && shown.contains("\"3\" (exclusive), window 1"),
        "{shown}"
    );
    apply(dir.path(), &url, "p1.json");
    assert_eq!(
        all_ids(&ids_by_window(&out)),
        source_ids(&mut s, "batch < 3")
    );

    // Late rows at the boundary value, and a new batch.
    s.exec(
        "INSERT INTO SCHEMA.events SELECT i, 3, 'late' FROM generate_series(1001, 1050) i;
         INSERT INTO SCHEMA.events SELECT i, 4, 'new' FROM generate_series(2001, 2100) i;",
    );
    plan(dir.path(), &url, "p2.json", &[]);
    apply(dir.path(), &url, "p2.json");
    assert_eq!(
        all_ids(&ids_by_window(&out)),
        source_ids(&mut s, "batch < 4")
    );

    // Nothing new: an empty window reads nothing and keeps the position.
    plan(dir.path(), &url, "p3.json", &[]);
    let shown = rivet(dir.path(), &url)
        .args(["plan", "show", "p3.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("nothing past \"4\""));
    apply(dir.path(), &url, "p3.json");
    assert_eq!(ids_by_window(&out).len(), 2);

    // Rows at batch 4 committed late, then batch 5: window 3 takes all of batch 4.
    s.exec("INSERT INTO SCHEMA.events VALUES (3001, 4, 'late again'), (3002, 5, 'newest');");
    plan(dir.path(), &url, "p4.json", &[]);
    apply(dir.path(), &url, "p4.json");
    let windows = ids_by_window(&out);
    assert_eq!(
        windows.keys().cloned().collect::<Vec<_>>(),
        ["window-00001", "window-00002", "window-00003"]
    );
    assert_eq!(all_ids(&windows), source_ids(&mut s, "batch < 5"));

    // `rivet state` shows the position.
    let st = rivet(dir.path(), &url)
        .args(["state", "--json"])
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["cursors"][0]["position"], "5", "{st}");
    // The config's view: the latest committed window is intact.
    rivet(dir.path(), &url)
        .args(["validate", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains("events/window-00003"));
}

#[test]
fn stale_incremental_plans_are_refused_and_reapplying_a_plan_is_idempotent() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "inc_stale");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO SCHEMA.events SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' FROM generate_series(1, 500) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: incremental\n    cursor_column: at\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    let out = dir.path().join("out/events");
    // Two plans of the same first window, for an as-of in the middle of the data.
    plan(
        dir.path(),
        &url,
        "a.json",
        &["--as-of", "2026-01-01T04:00:00Z"],
    );
    plan(
        dir.path(),
        &url,
        "b.json",
        &["--as-of", "2026-01-01T05:00:00Z"],
    );
    apply(dir.path(), &url, "a.json");
    let first = ids_by_window(&out);
    // Rows at exactly the as-of instant (minute 240) belong to the next window.
    assert_eq!(
        all_ids(&first),
        source_ids(&mut s, "at < '2026-01-01 04:00:00+00'")
    );
    // b.json starts where a.json did: the cursor has moved, so it is stale.
    rivet(dir.path(), &url)
        .args(["apply", "b.json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("moved the cursor"));
    // Re-applying a.json rewrites the same window with the same rows.
    let names_before: Vec<_> = std::fs::read_dir(out.join("window-00001"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    apply(dir.path(), &url, "a.json");
    let names_after: Vec<_> = std::fs::read_dir(out.join("window-00001"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names_before.len(), names_after.len());
    assert_eq!(ids_by_window(&out), first);
    // A new plan continues from 04:00, with the boundary rows included.
    plan(dir.path(), &url, "c.json", &["--as-of", "2026-01-02"]);
    apply(dir.path(), &url, "c.json");
    assert_eq!(all_ids(&ids_by_window(&out)), source_ids(&mut s, "true"));
    // reset-cursor starts over at window 1.
    rivet(dir.path(), &url)
        .args(["state", "reset-cursor", "events"])
        .assert()
        .success();
    plan(dir.path(), &url, "d.json", &["--as-of", "2026-01-02"]);
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("d.json")).unwrap()).unwrap();
    assert_eq!(d["body"]["exports"][0]["window"]["seq"], 1);
    assert!(d["body"]["exports"][0]["window"].get("lower").is_none());
}

#[test]
fn fallback_cursor_unique_keys_settle_lag_and_query_files() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "inc_fallback");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, created_at timestamp NOT NULL, updated_at timestamp);
         INSERT INTO SCHEMA.events VALUES
           (1, '2026-01-01 10:00', NULL), (2, '2026-01-01 11:00', '2026-01-03 09:00'),
           (3, '2026-01-02 12:00', NULL), (4, '2026-01-02 13:00', NULL);",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.sql"),
        format!(
            "-- events by id\nSELECT id, created_at, updated_at FROM \"{}\".events\n",
            s.schema
        ),
    )
    .unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
             \x20 - name: events\n    table: {s}.events\n    mode: incremental\n    cursor_column: updated_at\n    cursor_fallback_column: created_at\n    settle_lag: 3600\n    destination: {{ type: local, path: out/events }}\n\
             \x20 - name: by_id\n    query_file: events.sql\n    mode: incremental\n    cursor_column: id\n    destination: {{ type: local, path: out/by_id }}\n",
            s = s.schema
        ),
    );
    // as-of 2026-01-02 13:30 minus one hour of settle lag: up to 12:30 on the 2nd.
    plan(
        dir.path(),
        &url,
        "p.json",
        &["--as-of", "2026-01-02T13:30:00Z"],
    );
    apply(dir.path(), &url, "p.json");
    let events = ids_by_window(&dir.path().join("out/events"));
    assert_eq!(
        all_ids(&events),
        vec![1, 3],
        "COALESCE(updated_at, created_at) < 12:30"
    );
    // The query's id is not a key of the query, so the maximum waits; a table's
    // single-column primary key is unique, so its maximum is included.
    let by_id = ids_by_window(&dir.path().join("out/by_id"));
    assert_eq!(all_ids(&by_id), vec![1, 2, 3]);
    plan(dir.path(), &url, "p2.json", &["--as-of", "2026-01-04"]);
    apply(dir.path(), &url, "p2.json");
    assert_eq!(
        all_ids(&ids_by_window(&dir.path().join("out/events"))),
        vec![1, 2, 3, 4]
    );
    let plan_text = std::fs::read_to_string(dir.path().join("p2.json")).unwrap();
    assert!(
        plan_text.contains("-- events by id"),
        "the plan seals the query file's text"
    );
}

#[test]
fn time_window_takes_whole_days_before_as_of() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "time_window");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, day date NOT NULL, epoch bigint NOT NULL);
         INSERT INTO SCHEMA.events SELECT i, date '2026-01-01' + i, extract(epoch FROM date '2026-01-01' + i)::bigint + 3600 FROM generate_series(0, 19) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
             \x20 - name: by_day\n    table: {s}.events\n    mode: time_window\n    time_column: day\n    days_window: 3\n    destination: {{ type: local, path: out/by_day }}\n\
             \x20 - name: by_epoch\n    table: {s}.events\n    mode: time_window\n    time_column: epoch\n    time_column_type: unix\n    days_window: 2\n    format: csv\n    destination: {{ type: local, path: out/by_epoch }}\n",
            s = s.schema
        ),
    );
    plan(
        dir.path(),
        &url,
        "p.json",
        &["--as-of", "2026-01-10T15:00:00+02:00"],
    );
    apply(dir.path(), &url, "p.json");
    let batches = read_export_parquet(&dir.path().join("out/by_day"));
    let mut ids: Vec<i64> = batches
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
    // 2026-01-07, 08, 09 are days 6, 7, 8 after 2026-01-01.
    assert_eq!(ids, vec![6, 7, 8]);
    let csv = std::fs::read_to_string(dir.path().join("out/by_epoch/part-00001.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two days: {csv}");
    // A missing time column is a config error naming the key.
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: by_day\n    table: {}.events\n    mode: time_window\n    days_window: 3\n    destination: {{ type: local, path: out/x }}\n",
            s.schema
        ),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].time_column"));
}

#[test]
fn mariadb_incremental_windows_on_a_datetime_cursor() {
    let url = match common::mysql_url() {
        Some(u) => u,
        None => return,
    };
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    let db = format!("rivet_t_inc_{}", std::process::id());
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .unwrap();
    conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.events (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL)"
    ))
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.events VALUES (1, '2026-01-01 00:00:00'), (2, '2026-01-01 12:00:00.5'), (3, '2026-01-02 00:00:00'), (4, '2026-01-02 00:00:00')"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {db}.events\n    mode: incremental\n    cursor_column: at\n    destination: {{ type: local, path: out/events }}\n"
        ),
    );
    let out = dir.path().join("out/events");
    plan(dir.path(), &url, "p1.json", &["--as-of", "2026-01-02"]);
    apply(dir.path(), &url, "p1.json");
    assert_eq!(all_ids(&ids_by_window(&out)), vec![1, 2]);
    conn.query_drop(format!(
        "INSERT INTO `{db}`.events VALUES (5, '2026-01-02 00:00:00')"
    ))
    .unwrap();
    plan(dir.path(), &url, "p2.json", &["--as-of", "2026-01-03"]);
    apply(dir.path(), &url, "p2.json");
    assert_eq!(all_ids(&ids_by_window(&out)), vec![1, 2, 3, 4, 5]);
    conn.query_drop(format!("DROP DATABASE `{db}`")).unwrap();
}

#[test]
fn meta_columns_are_appended_and_skip_empty_writes_no_empty_files() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "meta_skip");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 10) i;
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(95, 100) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 20\n    skip_empty: true\n    meta_columns: [exported_at, plan_digest, chunk_id]\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    plan(dir.path(), &url, "p.json", &[]);
    apply(dir.path(), &url, "p.json");
    let out = dir.path().join("out/events");
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
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "q.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].meta_columns[2]"));
}

#[test]
fn max_file_size_splits_a_chunk_into_parts_and_cleans_up_extra_parts() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = |size: &str| {
        format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: big\n    table: rivet_fixture.big_gappy\n    max_file_size: {size}\n    tuning: {{ batch_size: 10000 }}\n    destination: {{ type: local, path: out/big }}\n"
        )
    };
    write(dir.path(), "rivet.yaml", &cfg("1MiB"));
    plan(dir.path(), &url, "p.json", &[]);
    apply(dir.path(), &url, "p.json");
    let out = dir.path().join("out/big");
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
    write(dir.path(), "rivet.yaml", &cfg("\"1GB\""));
    plan(dir.path(), &url, "q.json", &[]);
    apply(dir.path(), &url, "q.json");
    let parts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    assert_eq!(parts, ["part-00001.parquet"]);
    // Sizes are checked at config load.
    write(dir.path(), "rivet.yaml", &cfg("12 parsecs"));
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].max_file_size"));
}

#[test]
fn validate_catches_missing_corrupt_and_extra_files() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 50000\n    destination: { type: local, path: out/big }\n\
         \x20 - name: gz\n    table: rivet_fixture.all_types\n    format: csv\n    compression: gzip\n    destination: { type: local, path: out/gz }\n",
    );
    plan(dir.path(), &url, "p.json", &[]);
    apply(dir.path(), &url, "p.json");
    let ok = rivet(dir.path(), &url)
        .args(["validate", "p.json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("OK    export big:") && stdout.contains("205713 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK    export gz: 1 file(s), 10 rows"),
        "{stdout}"
    );
    rivet(dir.path(), &url)
        .args(["validate", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains("OK    export big:"));
    let out = dir.path().join("out/big");
    // Delete one file, flip one byte of another, add an unlisted one.
    std::fs::remove_file(out.join("part-00002.parquet")).unwrap();
    let mut bytes = std::fs::read(out.join("part-00003.parquet")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(out.join("part-00003.parquet"), bytes).unwrap();
    std::fs::write(out.join("part-00099.parquet"), b"stray").unwrap();
    let bad = rivet(dir.path(), &url)
        .args(["validate", "p.json", "--json"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let problems: Vec<String> = report["exports"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["location"].as_str().unwrap(),
                p["problem"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00002.parquet listed in manifest.json but missing")));
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00003.parquet sha256")));
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00099.parquet not listed")));
    // The same through --manifest, for one directory.
    rivet(dir.path(), &url)
        .args(["validate", "--manifest", "out/gz/manifest.json"])
        .assert()
        .success();
    // Re-applying the plan repairs it.
    apply(dir.path(), &url, "p.json");
    std::fs::remove_file(out.join("part-00099.parquet")).ok();
    rivet(dir.path(), &url)
        .args(["validate", "p.json"])
        .assert()
        .success();
}

#[test]
fn quality_gates_pass_at_their_boundaries_and_fail_with_exit_4_and_no_success() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "quality");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, email text, code int);
         INSERT INTO SCHEMA.events SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'u' || i END, i % 50
         FROM generate_series(1, 100) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = |gates: &str| {
        format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 30\n    quality: {{ {gates} }}\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        )
    };
    // Exactly at the boundaries: 100 rows, 10% NULL emails, unique ids.
    write(
        dir.path(),
        "rivet.yaml",
        &cfg("row_count_min: 100, row_count_max: 100, null_ratio_max: { email: 0.1 }, unique_columns: [id]"),
    );
    plan(dir.path(), &url, "ok.json", &[]);
    apply(dir.path(), &url, "ok.json");
    assert!(dir.path().join("out/events/_SUCCESS").exists());
    for (gates, needle) in [
        (
            "row_count_min: 101",
            "row_count_min: 100 row(s), at least 101",
        ),
        ("row_count_max: 99", "row_count_max: 100 row(s), at most 99"),
        (
            "null_ratio_max: { email: 0.09 }",
            "null_ratio_max.email: 10 of 100",
        ),
        (
            "unique_columns: [code]",
            "unique_columns code: 50 duplicate",
        ),
        (
            "unique_columns: [email], unique_max_entries: 10",
            "unique_max_entries",
        ),
    ] {
        write(dir.path(), "rivet.yaml", &cfg(gates));
        plan(dir.path(), &url, "bad.json", &[]);
        let out = rivet(dir.path(), &url)
            .args(["apply", "bad.json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{gates}: {stderr}");
        assert!(stderr.contains(needle), "{gates}: {stderr}");
        assert!(!dir.path().join("out/events/_SUCCESS").exists(), "{gates}");
        let journal = rivet(dir.path(), &url)
            .args(["journal", "--state", "./.rivet_state.db"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&journal.stdout).contains("quality_failed"));
    }
    // A gate on a column that is not exported is a plan error.
    write(dir.path(), "rivet.yaml", &cfg("unique_columns: [nope]"));
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "exports[0].quality.unique_columns[0]",
        ));
}

#[test]
fn reconcile_names_the_chunk_whose_source_rows_changed() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "reconcile");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 100) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 25\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    plan(dir.path(), &url, "p.json", &[]);
    apply(dir.path(), &url, "p.json");
    rivet(dir.path(), &url)
        .args(["reconcile", "p.json", "--checksum"])
        .assert()
        .success()
        .stdout(predicates::str::contains("4 chunk(s) checked, 0 drifted"));
    // An update in chunk 2 (same count: only the checksum sees it), a delete in chunk 4.
    s.exec("UPDATE SCHEMA.events SET v = 'changed' WHERE id = 30; DELETE FROM SCHEMA.events WHERE id = 90;");
    let counts = rivet(dir.path(), &url)
        .args(["reconcile", "p.json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&counts.stdout);
    assert_eq!(counts.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("DRIFT export events, chunk events/00004: 25 rows exported, 24 rows"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("events/00002"),
        "a count cannot see an update: {stdout}"
    );
    let sums = rivet(dir.path(), &url)
        .args(["reconcile", "p.json", "--checksum", "--json"])
        .output()
        .unwrap();
    assert_eq!(sums.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_slice(&sums.stdout).unwrap();
    let drifted: Vec<&str> = report["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["drifted"] == true)
        .map(|c| c["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["events/00002", "events/00004"]);
}

#[test]
fn repair_plans_rewrite_exactly_the_broken_and_drifted_chunks() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "repair");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 100) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 25\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    plan(dir.path(), &url, "p.json", &[]);
    apply(dir.path(), &url, "p.json");
    let out = dir.path().join("out/events");
    let untouched = std::fs::metadata(out.join("part-00001.parquet"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(out.join("part-00003.parquet")).unwrap();
    rivet(dir.path(), &url)
        .args(["validate", "p.json"])
        .assert()
        .code(4)
        .stdout(predicates::str::contains(
            "part-00003.parquet: listed in manifest.json but missing",
        ));
    rivet(dir.path(), &url)
        .args(["repair", "p.json", "-o", "repair.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "chunk events/00003: part-00003.parquet",
        ));
    let repair: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("repair.json")).unwrap()).unwrap();
    let chunks: Vec<&str> = repair["body"]["exports"][0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(chunks, ["events/00003"]);
    assert_eq!(
        repair["body"]["exports"][0]["keep_files"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let shown = rivet(dir.path(), &url)
        .args(["plan", "show", "repair.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("rewrites 1 chunk(s), keeps 3 file(s)"));
    apply(dir.path(), &url, "repair.json");
    rivet(dir.path(), &url)
        .args(["validate", "p.json"])
        .assert()
        .success();
    assert_eq!(
        std::fs::metadata(out.join("part-00001.parquet"))
            .unwrap()
            .modified()
            .unwrap(),
        untouched,
        "kept files are not rewritten"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["files"].as_array().unwrap().len(), 4);
    assert_eq!(m["rows"], 100);
    // Nothing left to repair; then a source change that only --reconcile sees.
    rivet(dir.path(), &url)
        .args(["repair", "p.json", "-o", "again.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains("nothing to repair"));
    s.exec("UPDATE SCHEMA.events SET v = 'changed' WHERE id = 60;");
    rivet(dir.path(), &url)
        .args(["repair", "p.json", "--reconcile", "-o", "drift.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "chunk events/00003: source drifted",
        ));
    apply(dir.path(), &url, "drift.json");
    rivet(dir.path(), &url)
        .args(["reconcile", "p.json", "--checksum"])
        .assert()
        .success();
}

#[test]
fn schema_drift_policies_between_plan_and_apply_and_between_runs() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "drift");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 20) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    let schema = s.schema.clone();
    let cfg = |policy: &str| {
        format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {schema}.events\n{policy}    destination: {{ type: local, path: out/events }}\n"
        )
    };
    let journal = |dir: &Path| {
        String::from_utf8_lossy(&rivet(dir, &url).args(["journal"]).output().unwrap().stdout)
            .into_owned()
    };
    // Run 1 records the shape.
    write(
        dir.path(),
        "rivet.yaml",
        &cfg("    on_schema_drift: warn\n"),
    );
    plan(dir.path(), &url, "p1.json", &[]);
    apply(dir.path(), &url, "p1.json");
    // Between plan and apply, a column is added: warn goes on with the planned columns.
    plan(dir.path(), &url, "p2.json", &[]);
    s.exec("ALTER TABLE SCHEMA.events ADD COLUMN extra int");
    let out = rivet(dir.path(), &url)
        .args(["apply", "p2.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema drift"));
    assert!(journal(dir.path()).contains("column `extra` (integer) was added"));
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out/events/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["schema"].as_array().unwrap().len(),
        2,
        "the planned columns only"
    );
    // Between runs under the default (fail): the new column must be accepted first.
    write(dir.path(), "rivet.yaml", &cfg(""));
    plan(dir.path(), &url, "p3.json", &[]);
    rivet(dir.path(), &url)
        .args(["apply", "p3.json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains(
            "since the last run: column `extra` is new",
        ));
    write(
        dir.path(),
        "rivet.yaml",
        &cfg("    on_schema_drift: continue\n"),
    );
    plan(dir.path(), &url, "p4.json", &[]);
    apply(dir.path(), &url, "p4.json");
    assert!(journal(dir.path()).contains("since the last run: column `extra` is new"));
    // A dropped planned column is refused whatever the policy.
    write(
        dir.path(),
        "rivet.yaml",
        &cfg("    on_schema_drift: warn\n"),
    );
    plan(dir.path(), &url, "p5.json", &[]);
    s.exec("ALTER TABLE SCHEMA.events DROP COLUMN v");
    rivet(dir.path(), &url)
        .args(["apply", "p5.json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("column `v` was dropped"));
    // Width drift: values ten times wider than the last run are journaled.
    s.exec("ALTER TABLE SCHEMA.events ADD COLUMN v text; UPDATE SCHEMA.events SET v = 'short'");
    write(
        dir.path(),
        "rivet.yaml",
        &cfg("    on_schema_drift: continue\n"),
    );
    plan(dir.path(), &url, "p6.json", &[]);
    apply(dir.path(), &url, "p6.json");
    s.exec("UPDATE SCHEMA.events SET v = repeat('x', 50) WHERE id = 7");
    plan(dir.path(), &url, "p7.json", &[]);
    apply(dir.path(), &url, "p7.json");
    assert!(
        journal(dir.path()).contains("column `v`: widest value 50 bytes, 5 in the last run"),
        "{}",
        journal(dir.path())
    );
}
