//! Through a real pgBouncer in transaction pooling mode (scripts/test-env.sh starts one
//! with `server_round_robin`, so one client's consecutive transactions land on
//! different server sessions): the planner finds the pooler and seals it in the plan,
//! every catalog statement survives the session changes (a statement prepared outside
//! a transaction would be executed on a session that never saw it), and chunked,
//! snapshot-consistent, query and change-capture exports read exactly.

use predicates::prelude::*;
use serde_json::Value;

use crate::common::*;

fn pgbouncer_url() -> Option<String> {
    live_env("RIVET_TEST_PGBOUNCER_URL", "pgBouncer")
}

fn connection_path(p: &Project) -> Value {
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).unwrap()).unwrap();
    plan["body"]["connection_path"].clone()
}

#[test]
fn a_transaction_pooler_is_found_sealed_and_read_through() {
    let direct = require_pg!();
    let Some(pooled) = pgbouncer_url() else {
        return;
    };
    let mut s = Scratch::new(&direct, "pooled");
    s.exec(
        "CREATE TABLE SCHEMA.orders (id int PRIMARY KEY, note text, at timestamptz);
         INSERT INTO SCHEMA.orders SELECT i, 'order ' || i, '2026-01-01'::timestamptz + i * interval '1 minute'
           FROM generate_series(1, 4000) i;
         CREATE TABLE SCHEMA.keyless (v text);
         INSERT INTO SCHEMA.keyless SELECT repeat('x', 200) || i FROM generate_series(1, 3000) i;
         ANALYZE SCHEMA.orders; ANALYZE SCHEMA.keyless;",
    );
    let exports = format!(
        "  - name: chunked
    table: {schema}.orders
    mode: chunked
    chunk_column: id
    chunk_size: 500
    consistency: snapshot
    destination: {{ type: local, path: out/chunked }}
  - name: by_query
    query: SELECT id, note FROM {schema}.orders WHERE id % 7 = 0
    destination: {{ type: local, path: out/by_query }}
  - name: keyless
    table: {schema}.keyless
    mode: chunked
    chunk_size: 20
    destination: {{ type: local, path: out/keyless }}
",
        schema = s.schema
    );
    let cfg = format!("tuning: {{ parallelism: 3 }}\n{}", pg_config(&exports));

    warm_pool(&pooled, 3);
    let p = Project::new(&pooled);
    p.config(&cfg);
    p.plan();
    let path = connection_path(&p);
    assert_eq!(path["pooling"], "transaction", "{path}");
    assert_eq!(path["proxy"], "pgbouncer", "{path}");
    p.rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "connection: transaction pooling through pgbouncer (",
        ));
    p.apply("plan.json");
    assert_matches_source(
        &mut s.client,
        &format!("{}.orders", s.schema),
        "\"id\"",
        &p.read_export("out/chunked"),
    );
    let by_query = p.read_export("out/by_query");
    assert_eq!(by_query.num_rows(), 4000 / 7);
    assert_eq!(p.read_export("out/keyless").num_rows(), 3000);
    assert_no_statement_left_in_the_pool(&pooled);
    // `plan` against the same database directly finds no pooler, and `diff` says what
    // changed between the two plans.
    let d = Project::new(&direct);
    d.config(&cfg);
    d.plan();
    let path = connection_path(&d);
    assert_eq!(path["pooling"], "session", "{path}");
    assert_eq!(path["proxy"], Value::Null, "{path}");
    std::fs::copy(p.path("plan.json"), d.path("pooled.json")).unwrap();
    d.rivet()
        .args(["plan", "diff", "pooled.json", "plan.json"])
        .assert()
        .stdout(predicate::str::contains(
            "connection: transaction pooling through pgbouncer",
        ));
}
