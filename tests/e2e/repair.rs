//! `rivet reconcile` against the source and `rivet repair` plans that rewrite only broken
//! or drifted chunks.

use crate::common::*;

#[test]
fn reconcile_names_the_chunk_whose_source_rows_changed() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "reconcile");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.events SELECT i, 'v' || i FROM generate_series(1, 100) i;",
    );
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 25\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    p.rivet()
        .args(["reconcile", "p.json", "--checksum"])
        .assert()
        .success()
        .stdout(predicates::str::contains("4 chunk(s) checked, 0 drifted"));
    // An update in chunk 2 (same count: only the checksum sees it), a delete in chunk 4.
    s.exec("UPDATE SCHEMA.events SET v = 'changed' WHERE id = 30; DELETE FROM SCHEMA.events WHERE id = 90;");
    let counts = p.rivet().args(["reconcile", "p.json"]).output().unwrap();
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
    let sums = p
        .rivet()
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
    let p = Project::new(&url);
    p.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 25\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        ),
    );
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    let out = p.path("out/events");
    let untouched = std::fs::metadata(out.join("part-00001.parquet"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(out.join("part-00003.parquet")).unwrap();
    p.rivet()
        .args(["validate", "p.json"])
        .assert()
        .code(4)
        .stdout(predicates::str::contains(
            "part-00003.parquet: listed in manifest.json but missing",
        ));
    p.rivet()
        .args(["repair", "p.json", "-o", "repair.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "chunk events/00003: part-00003.parquet",
        ));
    let repair: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("repair.json")).unwrap()).unwrap();
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
    let shown = p
        .rivet()
        .args(["plan", "show", "repair.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("rewrites 1 chunk(s), keeps 3 file(s)"));
    p.apply("repair.json");
    p.rivet().args(["validate", "p.json"]).assert().success();
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
    p.rivet()
        .args(["repair", "p.json", "-o", "again.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains("nothing to repair"));
    s.exec("UPDATE SCHEMA.events SET v = 'changed' WHERE id = 60;");
    p.rivet()
        .args(["repair", "p.json", "--reconcile", "-o", "drift.json"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "chunk events/00003: source drifted",
        ));
    p.apply("drift.json");
    p.rivet()
        .args(["reconcile", "p.json", "--checksum"])
        .assert()
        .success();
}
