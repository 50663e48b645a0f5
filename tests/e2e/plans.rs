//! The sealed plan as a contract: deterministic digests, edited seals refused, stale plans
//! refused naming table and column, `plan diff`, `plan show`, and `run`.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn planning_twice_gives_the_same_digest() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    destination: { type: local, path: out }\n"),
    );
    p.plan_to("a.json", &[]);
    p.plan_to("b.json", &[]);
    let a = std::fs::read(p.path("a.json")).unwrap();
    let b = std::fs::read(p.path("b.json")).unwrap();
    assert_eq!(
        a, b,
        "same config and catalog must give a byte-identical plan"
    );
    p.rivet()
        .args(["plan", "diff", "a.json", "b.json"])
        .assert()
        .code(0);
}

#[test]
fn apply_refuses_plan_whose_seal_was_edited_but_accepts_a_reindented_one() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config("  - name: small\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n"),
    );
    p.plan_to("plan.json", &[]);
    let text = std::fs::read_to_string(p.path("plan.json")).unwrap();
    let tampered = text.replacen("\"path\": \"out\"", "\"path\": \"elsewhere\"", 1);
    assert_ne!(tampered, text);
    p.write("tampered.json", &tampered);
    p.rivet()
        .args(["apply", "tampered.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("seal mismatch"));
    assert!(
        !p.path("elsewhere").exists(),
        "nothing is written for a refused plan"
    );
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    p.write("compact.json", &serde_json::to_string(&value).unwrap());
    p.rivet().args(["apply", "compact.json"]).assert().success();
    let mut v2 = value.clone();
    v2["format_version"] = serde_json::json!(99);
    p.write("future.json", &serde_json::to_string(&v2).unwrap());
    p.rivet()
        .args(["apply", "future.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("format_version 99"));
}

#[test]
fn apply_refuses_a_stale_plan_naming_table_and_column() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "stale");
    s.exec("CREATE TABLE SCHEMA.items (id bigint PRIMARY KEY, v text); INSERT INTO SCHEMA.items SELECT g, 'v' || g FROM generate_series(1, 100) g;");
    let p = Project::new(&url);
    let cfg = pg_config(&format!(
        "  - name: items\n    table: {}.items\n    destination: {{ type: local, path: out }}\n",
        s.schema
    ));
    p.config(&cfg);
    p.plan_to("plan.json", &[]);
    s.exec("ALTER TABLE SCHEMA.items ADD COLUMN extra int");
    p.rivet()
        .args(["apply", "plan.json"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("stale plan")
                .and(predicate::str::contains("`extra`"))
                .and(predicate::str::contains("items")),
        );
    assert!(!p.path("out/part-00001.parquet").exists());
    s.exec("ALTER TABLE SCHEMA.items DROP COLUMN extra; ALTER TABLE SCHEMA.items ALTER COLUMN v TYPE varchar(10)");
    p.rivet()
        .args(["apply", "plan.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("column `v` changed type"));
    // The chunk key is checked too, even when it is not an exported column.
    s.exec("ALTER TABLE SCHEMA.items ALTER COLUMN v TYPE text; CREATE TABLE SCHEMA.keyed (k int NOT NULL, v text); INSERT INTO SCHEMA.keyed VALUES (1, 'a')");
    let cfg = pg_config(&format!("  - name: keyed\n    table: {}.keyed\n    mode: chunked\n    chunk_column: k\n    columns: [v]\n    destination: {{ type: local, path: out2 }}\n", s.schema),
    );
    p.config(&cfg);
    p.plan_to("plan2.json", &[]);
    s.exec("ALTER TABLE SCHEMA.keyed ALTER COLUMN k TYPE text");
    p.rivet()
        .args(["apply", "plan2.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("chunk key column `k`"));
}

#[test]
fn plan_diff_separates_structural_from_volume_changes() {
    let url = require_pg!();
    let p = Project::new(&url);
    let base = "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: CS\nCOLS    destination: { type: local, path: out }\n";
    let mk = |cs: &str, cols: &str, out: &str| {
        p.config(&pg_config(&base.replace("CS", cs).replace("COLS", cols)));
        p.rivet()
            .args(["plan", "-c", "rivet.yaml", "-o", out])
            .assert()
            .success();
    };
    mk("50000", "", "a.json");
    mk("25000", "", "b.json");
    mk("50000", "    columns: [id]\n", "c.json");
    p.rivet()
        .args(["plan", "diff", "a.json", "b.json"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("volume changes")
                .and(predicate::str::contains("structural").not()),
        );
    let out = p
        .rivet()
        .args(["plan", "diff", "a.json", "c.json", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let structural = d["structural"].as_array().unwrap();
    assert!(structural
        .iter()
        .any(|s| s.as_str().unwrap().contains("column label removed")));
    p.rivet()
        .args(["plan", "diff", "a.json", "missing.json"])
        .assert()
        .code(1);
}

#[test]
fn run_plans_and_applies_in_one_step_keeping_the_plan() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config("  - name: small\n    table: rivet_fixture.composite_pk\n    format: csv\n    compression: gzip\n    destination: { type: local, path: out }\n"),
    );
    p.rivet()
        .args(["run", "-c", "rivet.yaml"])
        .assert()
        .success();
    assert!(p.path("out/part-00001.csv.gz").exists());
    // `apply rivet.yaml` is the same one-step form; unchanged source, same plan digest.
    p.rivet().args(["apply", "rivet.yaml"]).assert().success();
    assert_eq!(
        std::fs::read_dir(p.path(".rivet_plans")).unwrap().count(),
        1
    );
    let kept: Vec<_> = std::fs::read_dir(p.path(".rivet_plans")).unwrap().collect();
    assert_eq!(kept.len(), 1);
    let out = p.rivet().args(["state", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"][0]["status"], "succeeded");
    assert_eq!(v["exports"][0]["rows"], 500);
}

#[test]
fn plan_show_renders_a_stable_reviewable_tree() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config("  - name: order_items\n    table: Sales Data.Order Items\n    mode: chunked\n    chunk_size: 20\n    destination: { type: local, path: out/order_items }\n\
             \x20 - name: pairs\n    table: rivet_fixture.composite_pk\n    format: csv\n    compression: gzip\n    wave: 2\n    destination: { type: local, path: out/pairs }\n",
        ),
    );
    p.plan_to("plan.json", &[]);
    let out = p
        .rivet()
        .args(["plan", "show", "plan.json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The digest seals the source's identity, which differs from one test server to the
    // next: both are replaced by placeholders.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).unwrap()).unwrap();
    let mut shown = String::from_utf8(out.stdout).unwrap();
    shown = shown.replace(plan["seal"]["digest"].as_str().unwrap(), "[digest]");
    for (fact, value) in plan["body"]["source_identity"]["facts"]
        .as_object()
        .unwrap()
    {
        shown = shown.replace(
            &format!("{fact}={}", value.as_str().unwrap()),
            &format!("{fact}=[{fact}]"),
        );
    }
    insta::assert_snapshot!(shown);
}
