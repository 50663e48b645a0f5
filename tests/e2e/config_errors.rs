//! Bad configs are refused with exit code 2, the key path, and what to do. These tests
//! need no database: validation happens before any connection.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::*;

fn plan_with(config: &str) -> assert_cmd::assert::Assert {
    let p = Project::offline();
    std::fs::write(p.path("rivet.yaml"), config).unwrap();
    Command::cargo_bin("rivet")
        .unwrap()
        .current_dir(p.dir())
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
}

const SOURCE: &str = "source:\n  type: postgres\n  url_env: DATABASE_URL\n";

fn with_exports(exports: &str) -> String {
    format!("{SOURCE}exports:\n{exports}")
}

#[test]
fn unknown_key_is_refused_with_its_path_and_a_suggestion() {
    plan_with(&with_exports(
        "  - name: a\n    table: t\n    destination: { type: local, path: o }\n  - name: b\n    table: t\n    mode: chunked\n    chunk_sise: 10\n    destination: { type: local, path: p }\n",
    ))
    .code(2)
    .stderr(predicate::str::contains("exports[1]").and(predicate::str::contains("did you mean `chunk_size`")));
}

#[test]
fn wrong_type_is_refused_with_its_path() {
    plan_with(&with_exports(
        "  - name: a\n    table: t\n    destination: { type: local, path: o }\n  - name: b\n    table: t\n    mode: chunked\n    chunk_size: lots\n    destination: { type: local, path: p }\n",
    ))
    .code(2)
    .stderr(predicate::str::contains("exports[1].chunk_size"));
}

#[test]
fn missing_destination_is_refused() {
    plan_with(&with_exports("  - name: a\n    table: t\n"))
        .code(2)
        .stderr(
            predicate::str::contains("exports[0]").and(predicate::str::contains("destination")),
        );
}

#[test]
fn duplicate_export_names_are_refused() {
    plan_with(&with_exports(
        "  - name: a\n    table: t\n    destination: { type: local, path: o }\n  - name: a\n    table: u\n    destination: { type: local, path: p }\n",
    ))
    .code(2)
    .stderr(predicate::str::contains("exports[1].name").and(predicate::str::contains("duplicate export name")));
}

#[test]
fn two_exports_writing_one_directory_are_refused() {
    plan_with(&with_exports(
        "  - name: a\n    table: t\n    destination: { type: local, path: out }\n  - name: b\n    table: u\n    destination: { type: local, path: ./out/ }\n",
    ))
    .code(2)
    .stderr(predicate::str::contains("exports[1].destination.path"));
}

#[test]
fn destination_keys_are_checked_per_destination_type() {
    for (yaml, needle) in [
        ("  - name: a\n    table: t\n    destination: { type: s3 }\n", "exports[0].destination.bucket"),
        ("  - name: a\n    table: t\n    destination: { type: s3, bucket: b, path: out }\n", "exports[0].destination.path"),
        ("  - name: a\n    table: t\n    destination: { type: s3, bucket: b, access_key_env: A }\n", "exports[0].destination.secret_key_env"),
        ("  - name: a\n    table: t\n    destination: { type: azure, container: c }\n", "exports[0].destination.account"),
        ("  - name: a\n    table: t\n    destination: { type: gcs, bucket: b, region: eu }\n", "exports[0].destination.region"),
        ("  - name: a\n    table: t\n    destination: { type: stdout, path: x }\n", "exports[0].destination.path"),
        ("  - name: a\n    table: t\n    destination: { type: stdout }\n  - name: b\n    table: u\n    destination: { type: local, path: o }\n", "exports[0].destination.type"),
    ] {
        plan_with(&with_exports(yaml)).code(2).stderr(predicate::str::contains(needle));
    }
}

#[test]
fn window_keys_outside_their_modes_are_refused_not_ignored() {
    for (yaml, needle) in [
        ("  - name: a\n    table: t\n    cursor_column: u\n    destination: { type: local, path: o }\n", "exports[0].cursor_column"),
        ("  - name: a\n    table: t\n    mode: incremental\n    destination: { type: local, path: o }\n", "exports[0].cursor_column"),
        ("  - name: a\n    table: t\n    mode: incremental\n    cursor_column: u\n    chunk_size: 5\n    destination: { type: local, path: o }\n", "exports[0].chunk_size"),
        ("  - name: a\n    table: t\n    mode: time_window\n    time_column: d\n    destination: { type: local, path: o }\n", "exports[0].days_window"),
        ("  - name: a\n    table: t\n    settle_lag: 5\n    destination: { type: local, path: o }\n", "exports[0].settle_lag"),
        ("  - name: a\n    table: t\n    quality: { null_ratio_max: { c: 1.5 } }\n    destination: { type: local, path: o }\n", "exports[0].quality.null_ratio_max.c"),
        ("  - name: a\n    table: t\n    quality: { row_count_min: 5, row_count_max: 2 }\n    destination: { type: local, path: o }\n", "exports[0].quality.row_count_min"),
        ("  - name: a\n    table: t\n    quality: { row_count_minimum: 5 }\n    destination: { type: local, path: o }\n", "did you mean `row_count_min`"),
        ("  - name: a\n    query: SELECT 1\n    query_file: q.sql\n    destination: { type: local, path: o }\n", "exports[0].query_file"),
        ("  - name: a\n    query_file: missing.sql\n    destination: { type: local, path: o }\n", "exports[0].query_file: cannot read"),
    ] {
        plan_with(&with_exports(yaml)).code(2).stderr(predicate::str::contains(needle));
    }
}

#[test]
fn chunk_size_without_chunked_mode_is_refused_not_ignored() {
    plan_with(&with_exports("  - name: a\n    table: t\n    chunk_size: 10\n    destination: { type: local, path: o }\n"))
        .code(2)
        .stderr(predicate::str::contains("exports[0].chunk_size").and(predicate::str::contains("mode: chunked")));
}

#[test]
fn cdc_keys_of_the_reference_tool_are_refused_with_what_replaces_them() {
    plan_with(&with_exports(
        "  - name: a\n    table: t\n    mode: cdc\n    cdc: { checkpoint: ./a.ckpt, until_current: false, server_id: 4271 }\n    destination: { type: local, path: o }\n",
    ))
    .code(2)
    .stderr(
        predicate::str::contains("exports[0].cdc.checkpoint")
            .and(predicate::str::contains("state database"))
            .and(predicate::str::contains("exports[0].cdc.until_current"))
            .and(predicate::str::contains("exports[0].cdc.server_id")),
    );
}

#[test]
fn cdc_keys_are_checked_per_engine() {
    plan_with("source:\n  type: mssql\n  url_env: DATABASE_URL\nexports:\n  - name: a\n    table: t\n    mode: cdc\n    cdc: { slot: s, server_id: 5 }\n    destination: { type: local, path: o }\n")
        .code(2)
        .stderr(
            predicate::str::contains("exports[0].cdc.slot")
                .and(predicate::str::contains("capture instance's change table"))
                .and(predicate::str::contains("exports[0].cdc.server_id")),
        );
    plan_with("source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: a\n    table: t\n    mode: cdc\n    cdc: { slot: s, server_id: 0, capture_instance: x }\n    destination: { type: local, path: o }\n")
        .code(2)
        .stderr(
            predicate::str::contains("exports[0].cdc.slot")
                .and(predicate::str::contains("no slot or publication"))
                .and(predicate::str::contains("exports[0].cdc.server_id"))
                .and(predicate::str::contains("exports[0].cdc.capture_instance")),
        );
}

#[test]
fn literal_passwords_are_refused_without_being_echoed() {
    let out = plan_with("source:\n  type: postgres\n  url: postgres://u:hunter2secret@h/db\nexports:\n  - name: a\n    table: t\n    destination: { type: local, path: o }\n")
        .code(2)
        .stderr(predicate::str::contains("source.url").and(predicate::str::contains("url_env")));
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("hunter2secret"));
    plan_with("source:\n  type: postgres\n  host: h\n  password: hunter2secret\nexports:\n  - name: a\n    table: t\n    destination: { type: local, path: o }\n")
        .code(2)
        .stderr(predicate::str::contains("password_env").and(predicate::str::contains("hunter2secret").not()));
}

#[test]
fn malformed_yaml_is_a_usage_error() {
    plan_with("source: [unclosed\n")
        .code(2)
        .stderr(predicate::str::contains("not valid YAML"));
}

#[test]
fn missing_config_file_is_a_usage_error() {
    Command::cargo_bin("rivet")
        .unwrap()
        .args(["plan", "-c", "/nonexistent/rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/rivet.yaml"));
}

#[test]
fn plan_file_that_is_not_json_is_refused_with_exit_3() {
    let p = Project::offline();
    std::fs::write(p.path("plan.json"), "not json").unwrap();
    Command::cargo_bin("rivet")
        .unwrap()
        .current_dir(p.dir())
        .args(["apply", "plan.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a rivet plan"));
}

#[test]
fn several_problems_are_reported_together_with_their_paths() {
    let out = plan_with(&with_exports(
        "  - name: a\n    table: t\n    mode: chunked\n    chunk_sise: 10\n    chunk_size: many\n    format: xlsx\n    destination: { type: locl, path: p }\n",
    ))
    .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    insta::assert_snapshot!(stderr);
}
