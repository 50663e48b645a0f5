//! Secrets and transport: credentials never reach plans, state, manifests or output; TLS
//! modes connect, verify and refuse as configured.

use predicates::prelude::*;
use std::path::Path;

use crate::common::*;

#[test]
fn credentials_never_appear_in_plan_state_manifest_or_output() {
    let url = require_pg!();
    let password = std::env::var("RIVET_TEST_PG_PASSWORD")
        .expect("scripts/test-env.sh exports RIVET_TEST_PG_PASSWORD");
    assert!(
        url.contains(&password),
        "the test URL authenticates with a password"
    );
    let p = Project::new(&url);
    p.config(&pg_config("  - name: small\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n"),
    );
    let mut outputs = Vec::new();
    for args in [
        vec!["plan", "-c", "rivet.yaml", "-o", "plan.json"],
        vec!["-vv", "apply", "plan.json"],
        vec!["plan", "show", "plan.json"],
        vec!["state", "--json"],
        vec!["journal"],
        vec!["--help"],
        vec!["run", "-c", "rivet.yaml"],
    ] {
        let out = p.rivet().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(out.stdout);
        outputs.push(out.stderr);
    }
    // A failed login must not echo the password either.
    let wrong = url.replace(&password, "wrong-secret-XYZ");
    let out = rivet(p.dir(), &wrong)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-XYZ"));
    for entry in walk(p.dir()) {
        outputs.push(std::fs::read(&entry).unwrap());
    }
    for bytes in outputs {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&password),
            "password leaked: {}",
            &text[..text.len().min(300)]
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn tls_modes_connect_verify_and_refuse_as_configured() {
    let _ = require_pg!();
    let (Ok(url), Ok(ca)) = (
        std::env::var("RIVET_TEST_PG_TLS_URL"),
        std::env::var("RIVET_TEST_PG_CA"),
    ) else {
        panic!("scripts/test-env.sh exports RIVET_TEST_PG_TLS_URL and RIVET_TEST_PG_CA");
    };
    let p = Project::new(&url);
    let with_tls = |tls: &str| {
        pg_config_with(tls,
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        )
    };
    // verify-full against the server's own CA: connects over TLS, exports exactly.
    p.config(&with_tls(&format!(
        "  tls: {{ mode: verify-full, ca_file: '{ca}' }}\n"
    )));
    p.plan_to("plan.json", &[]);
    p.rivet().args(["apply", "plan.json"]).assert().success();
    let mut client = crate::common::connect(&std::env::var("RIVET_TEST_PG_URL").unwrap());
    let batch = concat(&read_export_parquet(&p.path("out")));
    assert_matches_source(
        &mut client,
        "rivet_fixture.composite_pk",
        "a, b",
        &sort_by_a_b(&batch),
    );
    // This role may only connect over TLS: `disable` is refused by the server.
    p.config(&with_tls("  tls: { mode: disable }\n"));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no encryption"));
    // A self-signed server is not trusted by the system roots: verify-full refuses it.
    p.config(&with_tls("  tls: { mode: verify-full }\n"));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("certificate"));
    // The URL's sslmode is honoured when the config has no `tls`.
    p.config(&with_tls(""));
    rivet(p.dir(), &format!("{url}?sslmode=require"))
        .args(["plan", "-c", "rivet.yaml", "-o", "y.json"])
        .assert()
        .success();
}

fn sort_by_a_b(batch: &arrow::array::RecordBatch) -> arrow::array::RecordBatch {
    use arrow::compute::{lexsort_to_indices, take, SortColumn};
    let cols: Vec<SortColumn> = ["a", "b"]
        .iter()
        .map(|n| SortColumn {
            values: batch.column(batch.schema().index_of(n).unwrap()).clone(),
            options: None,
        })
        .collect();
    let idx = lexsort_to_indices(&cols, None).unwrap();
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None).unwrap())
        .collect();
    arrow::array::RecordBatch::try_new(batch.schema(), columns).unwrap()
}
