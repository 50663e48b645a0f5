//! Every config fragment of the reference tool's README (fixtures/reference/), planned
//! as written: each plans with the documented meaning (checked in the sealed plan) or
//! is refused (exit 2) naming the key and what to use instead.

use crate::common::*;

const MB: u64 = 1024 * 1024;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reference")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Plans a fixture; the first export of the plan.
fn planned(p: &Project, name: &str) -> serde_json::Value {
    p.config(&fixture(name));
    p.plan();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).unwrap()).unwrap();
    plan["body"]["exports"][0].clone()
}

/// Plans a fixture that must be refused with exit 2; its stderr.
fn refused(p: &Project, name: &str) -> String {
    p.config(&fixture(name));
    let out = p
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn every_reference_fragment_plans_as_written_or_says_what_to_use() {
    let url = require_pg!();
    let p = Project::new(&url);

    let e = planned(&p, "production.yaml");
    assert_eq!(e["tuning"]["profile"], "safe");
    assert_eq!(e["tuning"]["batch_memory_bytes"], 128 * MB);
    assert_eq!(e["tuning"]["on_batch_memory_exceeded"], "warn");

    let e = planned(&p, "ci.yaml");
    assert_eq!(e["tuning"]["batch_memory_bytes"], 128 * MB);
    assert_eq!(e["tuning"]["on_batch_memory_exceeded"], "fail");

    let e = planned(&p, "low_memory.yaml");
    assert_eq!(e["tuning"]["batch_memory_bytes"], 64 * MB);
    assert_eq!(e["tuning"]["on_batch_memory_exceeded"], "auto_shrink");

    let e = planned(&p, "replica.yaml");
    assert_eq!(e["tuning"]["profile"], "fast");
    assert_eq!(e["compression"], "snappy");

    let e = planned(&p, "memory_controls.yaml");
    assert_eq!(e["tuning"]["batch_memory_bytes"], 32 * MB);

    let e = planned(&p, "output_controls.yaml");
    assert_eq!(e["compression"], "zstd");
    assert_eq!(e["tuning"]["row_group_bytes"], 16 * MB);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["body"]["exports"][1]["compression"], "none");

    let e = planned(&p, "quality.yaml");
    assert_eq!(e["quality"]["unique_columns"][0], "id");

    planned(&p, "parallel.yaml");

    let err = refused(&p, "memory_threshold.yaml");
    assert!(
        err.contains("tuning.memory_threshold_mb") && err.contains("max_batch_memory_mb"),
        "{err}"
    );
    let err = refused(&p, "compact.yaml");
    assert!(
        err.contains("exports[0].compression_profile") && err.contains("compression: zstd"),
        "{err}"
    );
    let err = refused(&p, "fixed_rows.yaml");
    assert!(
        err.contains("parquet.row_group_strategy") && err.contains("fixed_memory"),
        "{err}"
    );
    let err = refused(&p, "cdc.yaml");
    assert!(err.contains("cdc"), "{err}");
}

#[test]
fn reference_keys_that_contradict_ours_are_refused() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config(
        "  - name: o\n    table: rivet_fixture.big_gappy\n    compression: gzip\n    compression_profile: fast\n    destination: {type: local, path: out}\n",
    ));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not both"));
    p.config(&pg_config(
        "  - name: o\n    table: rivet_fixture.big_gappy\n    tuning: {row_group_mb: 8}\n    parquet: {target_row_group_mb: 16}\n    destination: {type: local, path: out}\n",
    ));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "contradicts tuning.row_group_mb 8",
        ));
}
