//! The operator's day (issue 17): `--help` that ends with examples (snapshot-tested),
//! shell completions and man pages, progress on a terminal and in logs, `--quiet`,
//! JSON logs, metrics and OpenLineage files, `rivet metrics`, and `rivet run --resume`.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::common::*;

const COMMANDS: &[&[&str]] = &[
    &[],
    &["plan"],
    &["apply"],
    &["run"],
    &["state"],
    &["journal"],
    &["validate"],
    &["reconcile"],
    &["repair"],
    &["doctor"],
    &["metrics"],
    &["schema"],
    &["completions"],
    &["man"],
];

#[test]
fn every_commands_help_ends_with_examples_and_is_snapshot_tested() {
    for cmd in COMMANDS {
        let out = assert_cmd::Command::cargo_bin("rivet")
            .unwrap()
            .args(*cmd)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains("Examples:\n  rivet "),
            "{cmd:?} has no examples:\n{help}"
        );
        let name = if cmd.is_empty() {
            "rivet".to_owned()
        } else {
            cmd.join("_")
        };
        insta::assert_snapshot!(format!("help_{name}"), help);
    }
}

#[test]
fn completions_and_man_pages_are_generated_from_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = assert_cmd::Command::cargo_bin("rivet")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("reconcile") && text.contains("metrics"),
            "{shell}"
        );
    }
    let out = assert_cmd::Command::cargo_bin("rivet")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(".ie"));
    let dir = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("rivet")
        .unwrap()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .assert()
        .success();
    for page in [
        "rivet.1",
        "rivet-apply.1",
        "rivet-plan.1",
        "rivet-validate.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}

fn chunked(p: &Project, s: &Scratch, chunk: u32) {
    p.config(&pg_config(&format!(
        "  - name: t\n    table: {}.t\n    mode: chunked\n    chunk_size: {chunk}\n    destination: {{ type: local, path: out/t }}\n",
        s.schema
    )));
}

fn table(url: &str, name: &str, rows: u32) -> Scratch {
    let mut s = Scratch::new(url, name);
    s.exec(&format!(
        "CREATE TABLE SCHEMA.t (id int PRIMARY KEY, v text);
         INSERT INTO SCHEMA.t SELECT i, repeat('v', 50) FROM generate_series(1, {rows}) i;
         ANALYZE SCHEMA.t;"
    ));
    s
}

#[test]
fn progress_is_a_line_per_export_without_a_terminal_and_nothing_when_quiet() {
    let url = require_pg!();
    let s = table(&url, "progress_lines", 300);
    let p = Project::new(&url);
    chunked(&p, &s, 100);
    p.plan();
    let out = p
        .rivet()
        .env("RIVET_PROGRESS_EVERY_SECS", "0")
        .args(["apply", "plan.json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("export t: 1/3 chunks"), "{err}");
    assert!(err.contains("export t: 3/3 chunks, 300 rows"), "{err}");
    assert!(err.contains("rows/s"), "{err}");
    p.rivet()
        .args(["apply", "plan.json", "--quiet"])
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
    let out = p
        .rivet()
        .env("RIVET_PROGRESS_EVERY_SECS", "0")
        .args(["apply", "plan.json", "--log-format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3/3 chunks"))),
        "{lines:?}"
    );
}

#[test]
fn on_a_terminal_each_export_gets_a_progress_bar() {
    let url = require_pg!();
    let Some(python) = live_env("RIVET_TEST_PYTHON", "reader venv") else {
        return;
    };
    let s = table(&url, "progress_tty", 300);
    let p = Project::new(&url);
    chunked(&p, &s, 100);
    p.plan();
    // A pseudo-terminal from Python's pty module: rivet sees a terminal on stderr.
    let script = "import os, pty, sys\n\
        out = bytearray()\n\
        def read(fd):\n    data = os.read(fd, 65536)\n    out.extend(data)\n    return data\n\
        status = pty.spawn(sys.argv[1:], read)\n\
        sys.stdout.write(out.decode('utf-8', 'replace'))\n\
        sys.exit(os.waitstatus_to_exitcode(status))\n";
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(assert_cmd::cargo::cargo_bin("rivet"))
        .args(["apply", "plan.json"])
        .current_dir(p.dir())
        .env("DATABASE_URL", &url)
        .env("COLUMNS", "160")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("/3 chunks"), "{screen}");
    assert!(
        screen.contains("export t: 300 rows in 3 file(s)"),
        "{screen}"
    );
}

#[test]
fn metrics_and_openlineage_files_describe_the_run_and_rivet_metrics_repeats_them() {
    let url = require_pg!();
    let s = table(&url, "metrics_files", 250);
    let p = Project::new(&url);
    chunked(&p, &s, 100);
    p.plan();
    p.rivet()
        .args([
            "apply",
            "plan.json",
            "--metrics-file",
            "m.prom",
            "--metrics-json",
            "m.json",
            "--openlineage-file",
            "lineage.jsonl",
        ])
        .assert()
        .success();
    let prom = std::fs::read_to_string(p.path("m.prom")).unwrap();
    for needle in [
        "# TYPE rivet_chunk_duration_seconds histogram",
        "rivet_export_rows{export=\"t\",run_id=\"run-",
        "rivet_export_chunks{export=\"t\"",
        "rivet_chunk_duration_seconds_count{export=\"t\"",
        "rivet_longest_statement_seconds{export=\"t\"",
        "rivet_export_last_success_timestamp_seconds{export=\"t\"}",
        "rivet_run_success{",
    ] {
        assert!(prom.contains(needle), "{needle}\n{prom}");
    }
    assert!(prom.contains("} 250\n"), "{prom}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("m.json")).unwrap()).unwrap();
    assert_eq!(json["exports"][0]["rows"], 250);
    assert_eq!(json["exports"][0]["chunks"], 3);
    // `rivet metrics` renders the same run from the state database.
    let again = p.rivet().args(["metrics"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), prom);
    let events: Vec<serde_json::Value> = std::fs::read_to_string(p.path("lineage.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["eventType"], "START");
    assert_eq!(events[1]["eventType"], "COMPLETE");
    assert_eq!(events[0]["run"]["runId"], events[1]["run"]["runId"]);
    assert_eq!(events[1]["job"]["name"], "t");
    assert_eq!(
        events[1]["inputs"][0]["name"],
        format!("rivet_fixture_db.{}.t", s.schema)
    );
    assert!(events[1]["inputs"][0]["namespace"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert_eq!(
        events[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"],
        250
    );
    assert_eq!(
        events[1]["outputs"][0]["facets"]["schema"]["fields"][0]["name"],
        "id"
    );
}

#[test]
fn run_resume_finishes_the_killed_runs_kept_plan() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config(
        "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    destination: { type: local, path: out/big }\n",
    ));
    p.rivet()
        .args(["run", "-c", "rivet.yaml", "--resume"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing to resume"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(p.dir())
        .env("DATABASE_URL", &url)
        .args(["run", "-c", "rivet.yaml"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = rusqlite::Connection::open(p.path(".rivet_state.db"))
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM chunks WHERE status = 'committed'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none());
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    p.rivet()
        .args(["run", "-c", "rivet.yaml", "--resume"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("resuming the plan kept at")
                .and(predicate::str::contains(".rivet_plans/"))
                .and(predicate::str::contains("skipped")),
        );
    let kept = std::fs::read_dir(p.path(".rivet_plans")).unwrap().count();
    assert_eq!(kept, 1, "no new plan was made");
    let plan = std::fs::read_dir(p.path(".rivet_plans"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    p.rivet().arg("validate").arg(plan).assert().success();
    p.rivet()
        .args(["run", "-c", "rivet.yaml", "--resume"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("the latest run").and(predicate::str::contains("succeeded")),
        );
}
