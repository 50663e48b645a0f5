//! Architecture invariants and generated artifacts, checked so they cannot rot.

use std::path::Path;

fn manifest(krate: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(krate)
            .join("Cargo.toml"),
    )
    .unwrap()
}

#[test]
fn executor_does_not_depend_on_planner() {
    assert!(!manifest("executor").contains("rivet-planner"));
}

#[test]
fn sources_know_nothing_of_planner_or_executor_and_schema_of_nothing_of_ours() {
    let s = manifest("sources");
    assert!(!s.contains("rivet-planner") && !s.contains("rivet-executor"));
    let schema = manifest("schema");
    for ours in ["rivet-sources", "rivet-planner", "rivet-executor"] {
        assert!(!schema.contains(ours), "schema depends on {ours}");
    }
}

/// Regenerate with `RIVET_UPDATE_SCHEMAS=1 cargo nextest run -E 'test(committed_json_schemas)'`.
#[test]
fn committed_json_schemas_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for (file, schema) in [
        ("config.schema.json", rivet_schema::config_json_schema()),
        ("plan.schema.json", rivet_schema::plan_json_schema()),
        ("../docs/config-reference.md", serde_json::Value::Null),
    ] {
        let text = if schema.is_null() {
            rivet_schema::reference::config_reference_markdown()
        } else {
            serde_json::to_string_pretty(&schema).unwrap() + "\n"
        };
        let path = root.join(file);
        if std::env::var("RIVET_UPDATE_SCHEMAS").is_ok() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schema/{file} is stale; regenerate it with RIVET_UPDATE_SCHEMAS=1 cargo nextest run -E 'test(committed_json_schemas)'"
        );
    }
}

#[test]
fn the_schema_command_prints_the_committed_config_schema() {
    let out = assert_cmd::Command::cargo_bin("rivet")
        .unwrap()
        .args(["schema", "config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, rivet_schema::config_json_schema());
}
