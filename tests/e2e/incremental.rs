//! Incremental and time-window exports against the live PostgreSQL (and one MariaDB
//! run): windows sealed in the plan, ties and late rows at the boundary exported exactly
//! once across runs, stale plans refused, re-apply idempotent, `query_file`.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

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

#[test]
fn ties_and_late_rows_at_the_boundary_are_exported_exactly_once() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "inc_ties");
    // `batch` is a non-unique integer cursor: many rows share each value.
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, batch int NOT NULL, note text);
         INSERT INTO SCHEMA.events SELECT i, 1 + (i - 1) / 100, 'n' || i FROM generate_series(1, 300) i;",
    );
    let p = Project::new(&url);
    let cfg = format!(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: incremental\n    cursor_column: batch\n    destination: {{ type: local, path: out/events }}\n",
        s.schema
    );
    p.config(&cfg);
    let out = p.path("out/events");

    // Window 1: batches 1 and 2; batch 3 holds the maximum and waits, because more rows
    // with batch 3 may still arrive.
    p.plan_to("p1.json", &[]);
    let shown = p
        .rivet()
        .args(["plan", "show", "p1.json"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("incremental on batch (integer)")
            && shown.contains("\"3\" (exclusive), window 1"),
        "{shown}"
    );
    p.apply("p1.json");
    assert_eq!(
        all_ids(&ids_by_window(&out)),
        source_ids(&mut s, "batch < 3")
    );

    // Late rows at the boundary value, and a new batch.
    s.exec(
        "INSERT INTO SCHEMA.events SELECT i, 3, 'late' FROM generate_series(1001, 1050) i;
         INSERT INTO SCHEMA.events SELECT i, 4, 'new' FROM generate_series(2001, 2100) i;",
    );
    p.plan_to("p2.json", &[]);
    p.apply("p2.json");
    assert_eq!(
        all_ids(&ids_by_window(&out)),
        source_ids(&mut s, "batch < 4")
    );

    // Nothing new: an empty window reads nothing and keeps the position.
    p.plan_to("p3.json", &[]);
    let shown = p
        .rivet()
        .args(["plan", "show", "p3.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("nothing past \"4\""));
    p.apply("p3.json");
    assert_eq!(ids_by_window(&out).len(), 2);

    // Rows at batch 4 committed late, then batch 5: window 3 takes all of batch 4.
    s.exec("INSERT INTO SCHEMA.events VALUES (3001, 4, 'late again'), (3002, 5, 'newest');");
    p.plan_to("p4.json", &[]);
    p.apply("p4.json");
    let windows = ids_by_window(&out);
    assert_eq!(
        windows.keys().cloned().collect::<Vec<_>>(),
        ["window-00001", "window-00002", "window-00003"]
    );
    assert_eq!(all_ids(&windows), source_ids(&mut s, "batch < 5"));

    // `rivet state` shows the position.
    let st = p.rivet().args(["state", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["cursors"][0]["position"], "5", "{st}");
    // The config's view: the latest committed window is intact.
    p.rivet()
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
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: incremental\n    cursor_column: at\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    let out = p.path("out/events");
    // Two plans of the same first window, for an as-of in the middle of the data.
    p.plan_to("a.json", &["--as-of", "2026-01-01T04:00:00Z"]);
    p.plan_to("b.json", &["--as-of", "2026-01-01T05:00:00Z"]);
    p.apply("a.json");
    let first = ids_by_window(&out);
    // Rows at exactly the as-of instant (minute 240) belong to the next window.
    assert_eq!(
        all_ids(&first),
        source_ids(&mut s, "at < '2026-01-01 04:00:00+00'")
    );
    // b.json starts where a.json did: the cursor has moved, so it is stale.
    p.rivet()
        .args(["apply", "b.json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("moved the cursor"));
    // Re-applying a.json rewrites the same window with the same rows.
    let names_before: Vec<_> = std::fs::read_dir(out.join("window-00001"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    p.apply("a.json");
    let names_after: Vec<_> = std::fs::read_dir(out.join("window-00001"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names_before.len(), names_after.len());
    assert_eq!(ids_by_window(&out), first);
    // A new plan continues from 04:00, with the boundary rows included.
    p.plan_to("c.json", &["--as-of", "2026-01-02"]);
    p.apply("c.json");
    assert_eq!(all_ids(&ids_by_window(&out)), source_ids(&mut s, "true"));
    // reset-cursor starts over at window 1.
    p.rivet()
        .args(["state", "reset-cursor", "events"])
        .assert()
        .success();
    p.plan_to("d.json", &["--as-of", "2026-01-02"]);
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("d.json")).unwrap()).unwrap();
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
    let p = Project::new(&url);
    std::fs::write(
        p.path("events.sql"),
        format!(
            "-- events by id\nSELECT id, created_at, updated_at FROM \"{}\".events\n",
            s.schema
        ),
    )
    .unwrap();
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
             \x20 - name: events\n    table: {s}.events\n    mode: incremental\n    cursor_column: updated_at\n    cursor_fallback_column: created_at\n    settle_lag: 3600\n    destination: {{ type: local, path: out/events }}\n\
             \x20 - name: by_id\n    query_file: events.sql\n    mode: incremental\n    cursor_column: id\n    destination: {{ type: local, path: out/by_id }}\n",
            s = s.schema
        ),
    );
    // as-of 2026-01-02 13:30 minus one hour of settle lag: up to 12:30 on the 2nd.
    p.plan_to("p.json", &["--as-of", "2026-01-02T13:30:00Z"]);
    p.apply("p.json");
    let events = ids_by_window(&p.path("out/events"));
    assert_eq!(
        all_ids(&events),
        vec![1, 3],
        "COALESCE(updated_at, created_at) < 12:30"
    );
    // The query's id is not a key of the query, so the maximum waits; a table's
    // single-column primary key is unique, so its maximum is included.
    let by_id = ids_by_window(&p.path("out/by_id"));
    assert_eq!(all_ids(&by_id), vec![1, 2, 3]);
    p.plan_to("p2.json", &["--as-of", "2026-01-04"]);
    p.apply("p2.json");
    assert_eq!(
        all_ids(&ids_by_window(&p.path("out/events"))),
        vec![1, 2, 3, 4]
    );
    let plan_text = std::fs::read_to_string(p.path("p2.json")).unwrap();
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
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
             \x20 - name: by_day\n    table: {s}.events\n    mode: time_window\n    time_column: day\n    days_window: 3\n    destination: {{ type: local, path: out/by_day }}\n\
             \x20 - name: by_epoch\n    table: {s}.events\n    mode: time_window\n    time_column: epoch\n    time_column_type: unix\n    days_window: 2\n    format: csv\n    destination: {{ type: local, path: out/by_epoch }}\n",
            s = s.schema
        ),
    );
    p.plan_to("p.json", &["--as-of", "2026-01-10T15:00:00+02:00"]);
    p.apply("p.json");
    let batches = read_export_parquet(&p.path("out/by_day"));
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
    let csv = std::fs::read_to_string(p.path("out/by_epoch/part-00001.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two days: {csv}");
    // A missing time column is a config error naming the key.
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: by_day\n    table: {}.events\n    mode: time_window\n    days_window: 3\n    destination: {{ type: local, path: out/x }}\n",
            s.schema
        ),
    );
    p.rivet()
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].time_column"));
}

#[test]
fn mariadb_incremental_windows_on_a_datetime_cursor() {
    let url = match crate::common::mysql_url() {
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
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {db}.events\n    mode: incremental\n    cursor_column: at\n    destination: {{ type: local, path: out/events }}\n"
        ),
    );
    let out = p.path("out/events");
    p.plan_to("p1.json", &["--as-of", "2026-01-02"]);
    p.apply("p1.json");
    assert_eq!(all_ids(&ids_by_window(&out)), vec![1, 2]);
    conn.query_drop(format!(
        "INSERT INTO `{db}`.events VALUES (5, '2026-01-02 00:00:00')"
    ))
    .unwrap();
    p.plan_to("p2.json", &["--as-of", "2026-01-03"]);
    p.apply("p2.json");
    assert_eq!(all_ids(&ids_by_window(&out)), vec![1, 2, 3, 4, 5]);
    conn.query_drop(format!("DROP DATABASE `{db}`")).unwrap();
}
