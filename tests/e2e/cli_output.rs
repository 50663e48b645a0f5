//! What the operator reads: the rendered output of `state`, `journal`, `validate`,
//! `reconcile`, `doctor` and `plan diff`, snapshot-tested after a real plan and apply.
//! Run ids, times, digests, durations and temporary paths are masked; everything else
//! must stay as reviewed (update with `INSTA_UPDATE=always` and review the diff).

use crate::common::*;

/// Masks what changes from run to run.
fn settings(p: &Project, schema: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&p.dir().display().to_string()), "[DIR]");
    s.add_filter(&regex_escape(schema), "[SCHEMA]");
    s.add_filter(r"run-\d+-\d+", "[RUN]");
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    s.add_filter(r"[0-9a-f]{64}", "[SHA256]");
    s.add_filter(r"sha256:[0-9a-f]{12}", "sha256:[SHORT]");
    s.add_filter(r#""duration_ms":\d+"#, r#""duration_ms":[MS]"#);
    s.add_filter(r#""read_ms":\d+"#, r#""read_ms":[MS]"#);
    s.add_filter(r#""bytes":\d+"#, r#""bytes":[BYTES]"#);
    s.add_filter(r"\d+ bytes", "[BYTES] bytes");
    s.add_filter(r"\d+(\.\d+)? (kB|MB|GB|TB)", "[SIZE]");
    s.add_filter(r"manifest says \d+", "manifest says [BYTES]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"rivet-doctor-probe-\d+", "rivet-doctor-probe-[PID]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn stdout(p: &Project, args: &[&str], code: i32) -> String {
    let out = p.rivet().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "rivet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn operator_commands_render_stable_reviewable_output() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "cli_output");
    s.exec(
        "CREATE TABLE SCHEMA.orders (id int PRIMARY KEY, note text);
         INSERT INTO SCHEMA.orders SELECT i, 'note ' || i FROM generate_series(1, 30) i;
         ANALYZE SCHEMA.orders;",
    );
    let p = Project::new(&url);
    let schema = s.schema.clone();
    // One export after another, so that the journal's order is stable.
    let cfg = |chunk: u32| {
        "parallel_export_processes: false\n".to_owned()
            + &pg_config(&format!(
            "  - name: orders\n    table: {schema}.orders\n    mode: chunked\n    chunk_size: {chunk}\n    destination: {{ type: local, path: out/orders }}\n\
             \x20 - name: notes\n    table: {schema}.orders\n    format: csv\n    destination: {{ type: local, path: out/notes }}\n",
            ))
    };
    p.config(&cfg(10));
    p.plan_to("p1.json", &[]);
    p.apply("p1.json");
    let settings = settings(&p, &s.schema);
    settings.bind(|| {
        insta::assert_snapshot!("state", stdout(&p, &["state"], 0));
        insta::assert_snapshot!("journal", stdout(&p, &["journal"], 0));
        insta::assert_snapshot!("validate_ok", stdout(&p, &["validate", "p1.json"], 0));
        insta::assert_snapshot!("reconcile_ok", stdout(&p, &["reconcile", "p1.json"], 0));
        insta::assert_snapshot!("doctor", stdout(&p, &["doctor", "-c", "rivet.yaml"], 0));
    });
    // Damage: a chunk's file is truncated and the source gains rows in chunk 2.
    let file = p.path("out/orders/part-00002.parquet");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    s.exec("UPDATE SCHEMA.orders SET id = id + 1000 WHERE id = 15");
    settings.bind(|| {
        insta::assert_snapshot!("validate_damaged", stdout(&p, &["validate", "p1.json"], 4));
        insta::assert_snapshot!(
            "reconcile_drifted",
            stdout(&p, &["reconcile", "p1.json"], 4)
        );
    });
    p.config(&cfg(5));
    p.plan_to("p2.json", &[]);
    settings.bind(|| {
        insta::assert_snapshot!(
            "plan_diff",
            stdout(&p, &["plan", "diff", "p1.json", "p2.json"], 2)
        );
    });
}
