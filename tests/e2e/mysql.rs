//! End-to-end tests of the `rivet` binary against the live MariaDB started by
//! `scripts/test-env.sh`: the PostgreSQL guarantees (plan, seal, staleness, apply,
//! resume, type fidelity, no secrets) on the second engine.

use crate::common::*;
use predicates::prelude::*;

fn config(exports: &str) -> String {
    format!("source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n{exports}")
}
/// A database of its own for a test that changes tables, dropped at the end.
struct Scratch {
    conn: mysql::Conn,
    db: String,
}

impl Scratch {
    fn new(url: &str, name: &str) -> Scratch {
        use mysql::prelude::Queryable;
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(url).unwrap()).unwrap();
        let db = format!("rivet_t_{name}_{}", std::process::id());
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
        Scratch { conn, db }
    }

    fn exec(&mut self, sql: &str) {
        use mysql::prelude::Queryable;
        let sql = sql.replace("DB.", &format!("`{}`.", self.db));
        self.conn
            .query_drop(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        let _ = self
            .conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.db));
    }
}

#[test]
fn every_mariadb_fixture_value_round_trips_through_parquet_cell_for_cell() {
    let url = require_mysql!();
    let p = Project::new(&url);
    p.config(&config(
            "  - name: all_types\n    table: all_types\n    destination: { type: local, path: out/all_types }\n\
             \x20 - name: zero_dates\n    table: zero_dates\n    destination: { type: local, path: out/zero_dates }\n\
             \x20 - name: order_items\n    table: rivet_fixture.Order Items\n    mode: chunked\n    chunk_size: 7\n    destination: { type: local, path: out/order_items }\n\
             \x20 - name: big\n    table: big_gappy\n    mode: chunked\n    chunk_size: 40000\n    tuning: { parallelism: 2 }\n    destination: { type: local, path: out/big }\n\
             \x20 - name: pairs\n    table: composite_pk\n    destination: { type: local, path: out/pairs }\n",
        ),
    );
    p.plan_to("plan.json", &[]);
    p.rivet().args(["apply", "plan.json"]).assert().success();
    let out = p.path("out");
    crate::common::assert_matches_mysql(&out.join("all_types"), &url, "all_types", "id");
    crate::common::assert_matches_mysql(&out.join("zero_dates"), &url, "zero_dates", "id");
    crate::common::assert_matches_mysql(
        &out.join("order_items"),
        &url,
        "`Order Items`",
        "Order ID",
    );
    crate::common::assert_matches_mysql(&out.join("big"), &url, "big_gappy", "id");
    crate::common::assert_matches_mysql(&out.join("pairs"), &url, "composite_pk", "a,b");
    // Zero dates become NULL and are counted in the journal.
    p.rivet()
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nulled_values"));
}

#[test]
fn mariadb_plans_are_deterministic_and_refused_when_stale() {
    let url = require_mysql!();
    let mut s = Scratch::new(&url, "stale");
    s.exec("CREATE TABLE DB.items (id BIGINT PRIMARY KEY, v VARCHAR(10)); INSERT INTO DB.items VALUES (1, 'a'), (2, 'b')");
    let p = Project::new(&url);
    p.config(&config(&format!("  - name: items\n    table: {}.items\n    mode: chunked\n    destination: {{ type: local, path: out }}\n", s.db)),
    );
    p.plan_to("a.json", &[]);
    p.plan_to("b.json", &[]);
    p.rivet()
        .args(["plan", "diff", "a.json", "b.json"])
        .assert()
        .code(0);
    s.exec("ALTER TABLE DB.items ADD COLUMN extra INT");
    p.rivet()
        .args(["apply", "a.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("stale plan").and(predicate::str::contains("`extra`")));
}

#[test]
fn mariadb_chunked_mode_without_an_integer_key_is_refused() {
    let url = require_mysql!();
    let p = Project::new(&url);
    p.config(&config("  - name: bad\n    table: no_pk\n    mode: chunked\n    destination: { type: local, path: out }\n"),
    );
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("exports[0].chunk_column")
                .and(predicate::str::contains("no primary key")),
        );
}

#[test]
fn killed_mariadb_apply_resumes_to_exactly_the_source_rows() {
    let url = require_mysql!();
    let p = Project::new(&url);
    p.config(&config("  - name: big\n    table: big_gappy\n    mode: chunked\n    chunk_size: 10000\n    tuning: { batch_size: 1000 }\n    destination: { type: local, path: out }\n"),
    );
    p.plan_to("plan.json", &[]);
    crate::common::apply_and_kill_after(p.dir(), &url, 2);
    p.rivet()
        .args(["apply", "plan.json", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped"));
    crate::common::assert_matches_mysql(&p.path("out"), &url, "big_gappy", "id");
}

#[test]
fn mariadb_credentials_never_appear_in_plan_state_or_output() {
    let url = require_mysql!();
    let password = std::env::var("RIVET_TEST_MYSQL_PASSWORD")
        .expect("scripts/test-env.sh exports RIVET_TEST_MYSQL_PASSWORD");
    let p = Project::new(&url);
    p.config(&config(
        "  - name: pairs\n    table: composite_pk\n    destination: { type: local, path: out }\n",
    ));
    let mut seen = Vec::new();
    for args in [
        vec!["plan", "-c", "rivet.yaml", "-o", "plan.json"],
        vec!["-vv", "apply", "plan.json"],
        vec!["state", "--json"],
    ] {
        let out = p.rivet().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        seen.push(out.stdout);
        seen.push(out.stderr);
    }
    let wrong = url.replace(&password, "wrong-secret-MY9");
    let out = rivet(p.dir(), &wrong)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-MY9"));
    for name in ["plan.json", ".rivet_state.db", "out/manifest.json"] {
        seen.push(std::fs::read(p.path(name)).unwrap());
    }
    for bytes in seen {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&password),
            "the MariaDB password leaked"
        );
    }
}
