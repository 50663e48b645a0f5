//! Schema drift between plan and apply and between runs, under each `on_schema_drift`
//! policy.

use std::path::Path;

use predicates::prelude::*;

use crate::common::*;

#[test]
fn schema_drift_policies_between_plan_and_apply_and_between_runs() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "drift");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 20) i;",
    );
    let p = Project::new(&url);
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
    p.config(&cfg("    on_schema_drift: warn\n"));
    p.plan_to("p1.json", &[]);
    p.apply("p1.json");
    // Between plan and apply, a column is added: warn goes on with the planned columns.
    p.plan_to("p2.json", &[]);
    s.exec("ALTER TABLE SCHEMA.events ADD COLUMN extra int");
    let out = p.rivet().args(["apply", "p2.json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema drift"));
    assert!(journal(p.dir()).contains("column `extra` (integer) was added"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("out/events/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["schema"].as_array().unwrap().len(),
        2,
        "the planned columns only"
    );
    // Between runs under the default (fail): the new column must be accepted first.
    p.config(&cfg(""));
    p.plan_to("p3.json", &[]);
    p.rivet()
        .args(["apply", "p3.json"])
        .assert()
        .code(3)
        .stderr(
            predicates::str::contains(
                "the columns differ from what its last run wrote to out/events: column `extra` integer is new",
            )
            .and(predicates::str::contains("set `on_schema_drift: warn`")),
        );
    p.config(&cfg("    on_schema_drift: continue\n"));
    p.plan_to("p4.json", &[]);
    p.apply("p4.json");
    assert!(journal(p.dir()).contains("since the last run: column `extra` integer is new"));
    // A dropped planned column is refused whatever the policy.
    p.config(&cfg("    on_schema_drift: warn\n"));
    p.plan_to("p5.json", &[]);
    s.exec("ALTER TABLE SCHEMA.events DROP COLUMN v");
    p.rivet()
        .args(["apply", "p5.json"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("column `v` was dropped"));
    // Width drift: values ten times wider than the last run are journaled.
    s.exec("ALTER TABLE SCHEMA.events ADD COLUMN v text; UPDATE SCHEMA.events SET v = 'short'");
    p.config(&cfg("    on_schema_drift: continue\n"));
    p.plan_to("p6.json", &[]);
    p.apply("p6.json");
    s.exec("UPDATE SCHEMA.events SET v = repeat('x', 50) WHERE id = 7");
    p.plan_to("p7.json", &[]);
    p.apply("p7.json");
    assert!(
        journal(p.dir()).contains("column `v`: widest value 50 bytes, 5 in the last run"),
        "{}",
        journal(p.dir())
    );
}
