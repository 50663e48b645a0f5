//! The `rivet-mcp` command line outside the protocol: help, version, and a refused
//! argument. (This integration test also makes `cargo nextest run --workspace` build
//! the binary that `tests/e2e/mcp.rs` drives through a real MCP client.)

use assert_cmd::Command;

#[test]
fn help_names_every_tool_and_says_where_credentials_come_from() {
    let out = Command::cargo_bin("rivet-mcp")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for tool in [
        "source_health",
        "plan_show",
        "plan_diff",
        "state_summary",
        "validate",
        "explain_chunk",
        "safe_to_apply",
    ] {
        assert!(text.contains(tool), "{tool} missing from --help: {text}");
    }
    assert!(text.contains("environment"), "{text}");
}

#[test]
fn version_and_unknown_arguments() {
    Command::cargo_bin("rivet-mcp")
        .unwrap()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("rivet-mcp "));
    Command::cargo_bin("rivet-mcp")
        .unwrap()
        .arg("--listen")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unexpected argument `--listen`"));
}
