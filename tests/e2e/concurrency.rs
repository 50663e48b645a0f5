//! Many exports in one apply: the exports of a wave run together over one bounded pool
//! of source connections, so a schema of many small tables costs a few connections, not
//! one (plus a TLS handshake) per table; and every table still arrives exactly.

use std::sync::atomic::Ordering;

use predicates::prelude::*;

use crate::common::proxy::CuttingProxy;
use crate::common::*;

const TABLES: usize = 12;

fn many_tables(s: &mut Scratch) -> String {
    let mut sql = String::new();
    let mut exports = String::new();
    for t in 0..TABLES {
        sql.push_str(&format!(
            "CREATE TABLE SCHEMA.t{t} (id int PRIMARY KEY, v text);
             INSERT INTO SCHEMA.t{t} SELECT i, 'table {t} row ' || i FROM generate_series(1, {}) i;
             ANALYZE SCHEMA.t{t};",
            100 + t
        ));
        exports.push_str(&format!(
            "  - name: t{t}\n    table: {}.t{t}\n    destination: {{ type: local, path: out/t{t} }}\n",
            s.schema
        ));
    }
    s.exec(&sql);
    exports
}

fn apply_through_proxy(p: &Project, url: &str) -> CuttingProxy {
    let (proxy, through) = CuttingProxy::in_front_of(url, u64::MAX);
    rivet(p.dir(), &through)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    proxy
}

fn assert_every_table_exact(p: &Project, s: &mut Scratch) {
    for t in 0..TABLES {
        let batch = p.read_export(&format!("out/t{t}"));
        assert_matches_source(
            &mut s.client,
            &format!("{}.t{t}", s.schema),
            "\"id\"",
            &batch,
        );
    }
}

#[test]
fn a_wave_of_small_tables_shares_a_bounded_pool_of_connections() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "pool_bounded");
    let exports = many_tables(&mut s);
    let p = Project::new(&url);
    p.config(&format!(
        "tuning: {{ max_source_connections: 2 }}\n{}",
        pg_config(&exports)
    ));
    p.plan();
    p.rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "concurrency: at most 2 source connections; the exports of a wave run together",
        ));
    let proxy = apply_through_proxy(&p, &url);
    // One connection for the staleness check, then at most two for all twelve exports.
    let accepted = proxy.accepted.load(Ordering::SeqCst);
    let max_open = proxy.max_open.load(Ordering::SeqCst);
    assert!(accepted <= 3, "{accepted} connections for {TABLES} exports");
    assert!(max_open <= 3, "{max_open} connections open at once");
    assert_every_table_exact(&p, &mut s);
}

#[test]
fn exports_run_one_after_another_on_one_connection_when_asked() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "pool_serial");
    let exports = many_tables(&mut s);
    let p = Project::new(&url);
    p.config(&format!(
        "parallel_export_processes: false\ntuning: {{ profile: safe }}\n{}",
        pg_config(&exports)
    ));
    p.plan();
    p.rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "concurrency: at most 1 source connection; exports run one after another",
        ));
    let proxy = apply_through_proxy(&p, &url);
    let accepted = proxy.accepted.load(Ordering::SeqCst);
    assert!(accepted <= 2, "{accepted} connections for {TABLES} exports");
    assert_every_table_exact(&p, &mut s);
    // The journal shows the exports finalized in plan order.
    let journal = p.rivet().args(["journal"]).output().unwrap();
    let text = String::from_utf8_lossy(&journal.stdout);
    let order: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("export_finalized"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let expected: Vec<String> = (0..TABLES).map(|t| format!("t{t}")).collect();
    assert_eq!(order, expected, "{text}");
}

#[test]
fn max_source_connections_belongs_to_the_top_level_tuning() {
    let p = Project::offline();
    p.config(&pg_config(
        "  - name: t\n    table: public.t\n    tuning: { max_source_connections: 3 }\n    destination: { type: local, path: out }\n",
    ));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "exports[0].tuning.max_source_connections",
        ))
        .stderr(predicate::str::contains("top-level `tuning`"));
}
