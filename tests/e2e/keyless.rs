//! Tables without an integer key, chunked by heap page ranges (PostgreSQL TID range
//! scans), and `consistency: snapshot`, where every chunk reads one exported snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use predicates::prelude::*;

use crate::common::*;

/// The batch sorted by `columns` (page chunks come in physical order, the source
/// comparison reads in key order).
fn sorted(
    batch: &arrow::record_batch::RecordBatch,
    columns: &[&str],
) -> arrow::record_batch::RecordBatch {
    let keys: Vec<arrow::compute::SortColumn> = columns
        .iter()
        .map(|c| arrow::compute::SortColumn {
            values: batch.column_by_name(c).unwrap().clone(),
            options: None,
        })
        .collect();
    let idx = arrow::compute::lexsort_to_indices(&keys, None).unwrap();
    arrow::compute::take_record_batch(batch, &idx).unwrap()
}

fn plan_json(p: &Project) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p.path("plan.json")).unwrap()).unwrap()
}

#[test]
fn a_keyless_table_is_chunked_by_pages_and_every_row_arrives_once() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "keyless_pages");
    // No key at all, exact duplicate rows, and a text primary key: all by pages.
    s.exec(
        "CREATE TABLE SCHEMA.heap (n int, v text);
         INSERT INTO SCHEMA.heap SELECT i % 5000, repeat('x', 80) || i FROM generate_series(1, 20000) i;
         INSERT INTO SCHEMA.heap SELECT n, v FROM SCHEMA.heap WHERE n < 10;
         CREATE TABLE SCHEMA.by_text (k text PRIMARY KEY, v int);
         INSERT INTO SCHEMA.by_text SELECT md5(i::text), i FROM generate_series(1, 5000) i;
         ANALYZE SCHEMA.heap; ANALYZE SCHEMA.by_text;",
    );
    let p = Project::new(&url);
    p.config(&pg_config(&format!(
        "  - name: heap\n    table: {0}.heap\n    mode: chunked\n    chunk_size: 40\n    tuning: {{ parallelism: 2 }}\n    destination: {{ type: local, path: out/heap }}\n\
         \x20 - name: by_text\n    table: {0}.by_text\n    mode: chunked\n    chunk_size: 10\n    destination: {{ type: local, path: out/by_text }}\n",
        s.schema
    )));
    p.plan();
    let plan = plan_json(&p);
    let heap = &plan["body"]["exports"][0];
    let chunks = heap["chunks"].as_array().unwrap();
    assert!(chunks.len() > 3, "{heap}");
    assert_eq!(heap["page_chunking"]["pages_per_chunk"], 40);
    assert_eq!(chunks[0]["pages"]["lower"], 0);
    assert_eq!(chunks[1]["pages"]["lower"], 40);
    assert!(
        chunks.last().unwrap()["pages"].get("upper").is_none(),
        "the last chunk reads to the end of the heap"
    );
    p.rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("mode chunked by heap pages"))
        .stdout(predicate::str::contains("pages [0, 40)"));
    // Rows added after planning land in pages past the plan's size: the open last chunk
    // reads them, as a key-range plan's open last range would.
    s.exec("INSERT INTO SCHEMA.heap SELECT -i, 'late' FROM generate_series(1, 3000) i;");
    p.apply("plan.json");
    let heap = sorted(&p.read_export("out/heap"), &["n", "v"]);
    assert_matches_source(
        &mut s.client,
        &format!("\"{}\".heap", s.schema),
        "\"n\", \"v\"",
        &heap,
    );
    let by_text = sorted(&p.read_export("out/by_text"), &["k"]);
    assert_matches_source(
        &mut s.client,
        &format!("\"{}\".by_text", s.schema),
        "\"k\"",
        &by_text,
    );
}

#[test]
fn a_view_without_an_integer_key_is_refused_with_both_reasons() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "keyless_view");
    s.exec("CREATE TABLE SCHEMA.t (v text); CREATE VIEW SCHEMA.v AS SELECT v FROM SCHEMA.t;");
    let p = Project::new(&url);
    p.config(&pg_config(&format!(
        "  - name: v\n    table: {}.v\n    mode: chunked\n    destination: {{ type: local, path: out }}\n",
        s.schema
    )));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exports[0].chunk_column"))
        .stderr(predicate::str::contains("has no primary key"))
        .stderr(predicate::str::contains("is not a plain table"));
}

#[test]
fn consistency_snapshot_reads_every_chunk_at_one_point_in_time() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "one_snapshot");
    // Transfers move money between the first and the last account, in one transaction
    // each: any single point in time sums to the same total; two chunks read at two
    // points in time generally do not.
    s.exec(
        "CREATE TABLE SCHEMA.accounts (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO SCHEMA.accounts SELECT i, 1000 FROM generate_series(1, 20000) i;
         ANALYZE SCHEMA.accounts;",
    );
    let p = Project::new(&url);
    p.config(&pg_config(&format!(
        "  - name: accounts\n    table: {}.accounts\n    mode: chunked\n    chunk_size: 100\n    consistency: snapshot\n    destination: {{ type: local, path: out }}\n",
        s.schema
    )));
    p.plan();
    p.rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("consistency snapshot"));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, schema, stop) = (url.clone(), s.schema.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut c = connect(&url);
            let mut transfers = 0u64;
            while !stop.load(Ordering::SeqCst) {
                c.batch_execute(&format!(
                    "BEGIN;
                     UPDATE \"{schema}\".accounts SET balance = balance - 7 WHERE id = 1;
                     UPDATE \"{schema}\".accounts SET balance = balance + 7 WHERE id = 20000;
                     COMMIT;"
                ))
                .unwrap();
                transfers += 1;
            }
            transfers
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    p.apply("plan.json");
    stop.store(true, Ordering::SeqCst);
    let transfers = writer.join().unwrap();
    assert!(transfers > 0, "the writer never ran");
    let batch = p.read_export("out");
    let balances = batch
        .column_by_name("balance")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(batch.num_rows(), 20000);
    let total: i64 = balances.iter().map(|b| b.unwrap()).sum();
    assert_eq!(
        total,
        20000 * 1000,
        "the chunks saw different points in time"
    );
    p.rivet()
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("snapshot_exported"));
}

#[test]
fn consistency_snapshot_is_refused_outside_postgresql_naming_the_key() {
    let p = Project::offline();
    p.config(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: t\n    table: t\n    consistency: snapshot\n    destination: { type: local, path: out }\n",
    );
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exports[0].consistency"))
        .stderr(predicate::str::contains("PostgreSQL sources only"));
}
