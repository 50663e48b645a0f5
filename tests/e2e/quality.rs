//! Quality gates: row counts, NULL ratios and uniqueness, checked before `_SUCCESS`.

use crate::common::*;

#[test]
fn quality_gates_pass_at_their_boundaries_and_fail_with_exit_4_and_no_success() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "quality");
    s.exec(
        "CREATE TABLE SCHEMA.events (id bigint PRIMARY KEY, email text, code int);
         INSERT INTO SCHEMA.events SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'u' || i END, i % 50
         FROM generate_series(1, 100) i;",
    );
    let p = Project::new(&url);
    let cfg = |gates: &str| {
        format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.events\n    mode: chunked\n    chunk_size: 30\n    quality: {{ {gates} }}\n    destination: {{ type: local, path: out/events }}\n",
            s.schema
        )
    };
    // Exactly at the boundaries: 100 rows, 10% NULL emails, unique ids.
    p.config(&cfg("row_count_min: 100, row_count_max: 100, null_ratio_max: { email: 0.1 }, unique_columns: [id]"),
    );
    p.plan_to("ok.json", &[]);
    p.apply("ok.json");
    assert!(p.path("out/events/_SUCCESS").exists());
    for (gates, needle) in [
        (
            "row_count_min: 101",
            "row_count_min: 100 row(s), at least 101",
        ),
        ("row_count_max: 99", "row_count_max: 100 row(s), at most 99"),
        (
            "null_ratio_max: { email: 0.09 }",
            "null_ratio_max.email: 10 of 100",
        ),
        (
            "unique_columns: [code]",
            "unique_columns code: 50 duplicate",
        ),
        (
            "unique_columns: [email], unique_max_entries: 10",
            "unique_max_entries",
        ),
    ] {
        p.config(&cfg(gates));
        p.plan_to("bad.json", &[]);
        let out = p.rivet().args(["apply", "bad.json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{gates}: {stderr}");
        assert!(stderr.contains(needle), "{gates}: {stderr}");
        assert!(!p.path("out/events/_SUCCESS").exists(), "{gates}");
        let journal = p
            .rivet()
            .args(["journal", "--state", "./.rivet_state.db"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&journal.stdout).contains("quality_failed"));
    }
    // A gate on a column that is not exported is a plan error.
    p.config(&cfg("unique_columns: [nope]"));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "exports[0].quality.unique_columns[0]",
        ));
}
