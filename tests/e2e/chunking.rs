//! Chunked exports against the live PostgreSQL: key ranges cover every row exactly once,
//! (tables without one are chunked by pages: keyless.rs), re-applying with fewer chunks leaves only the
//! manifest's files, and the batch-memory policies.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn large_gappy_table_exports_every_row_exactly_once_in_chunks() {
    let url = require_pg!();
    let p = Project::new(&url);
    let cfg = pg_config("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 40000\n    tuning: { parallelism: 2 }\n    destination: { type: local, path: out/big }\n",
    );
    p.plan_and_apply(&cfg);
    let mut client = crate::common::connect(&url);
    let batch = concat(&read_export_parquet(&p.path("out/big")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("out/big/manifest.json")).unwrap()).unwrap();
    assert!(manifest["files"].as_array().unwrap().len() > 3);
    assert!(p.path("out/big/_SUCCESS").exists());
}

#[test]
fn reapplying_a_plan_with_fewer_chunks_leaves_only_the_manifest_files() {
    let url = require_pg!();
    let p = Project::new(&url);
    let mk = |cs: u32| {
        pg_config(&format!("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: {cs}\n    destination: {{ type: local, path: out }}\n"),
        )
    };
    p.plan_and_apply(&mk(30_000));
    p.plan_and_apply(&mk(100_000));
    let mut parts: Vec<String> = std::fs::read_dir(p.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        vec![
            "part-00001.parquet",
            "part-00002.parquet",
            "part-00003.parquet"
        ]
    );
    let mut client = crate::common::connect(&url);
    let batch = concat(&read_export_parquet(&p.path("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
}

#[test]
fn batch_memory_policy_fail_stops_the_chunk_and_warn_journals_it() {
    let url = require_pg!();
    let p = Project::new(&url);
    let mk = |policy: &str| {
        pg_config(&format!("  - name: big\n    table: rivet_fixture.big_gappy\n    tuning: {{ batch_size: 1000000, max_batch_memory_mb: 1, on_batch_memory_exceeded: {policy} }}\n    destination: {{ type: local, path: out }}\n"),
        )
    };
    p.config(&mk("fail"));
    p.plan_to("plan.json", &[]);
    p.rivet()
        .args(["apply", "plan.json"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("memory target")
                .and(predicate::str::contains("max_batch_memory_mb")),
        );
    assert!(!p.path("out/part-00001.parquet").exists());
    p.config(&mk("warn"));
    p.plan_to("plan.json", &[]);
    p.rivet().args(["apply", "plan.json"]).assert().success();
    p.rivet()
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("batches_over_memory_target"));
}
