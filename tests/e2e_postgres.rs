//! End-to-end tests of the `rivet` binary against the live PostgreSQL started by
//! `scripts/test-env.sh`: plan, seal, apply, resume, staleness, type fidelity.

mod common;

use std::path::Path;

use common::{assert_matches_source, concat, read_export_parquet, rivet, write, Scratch};
use predicates::prelude::*;

fn config(source_tail: &str, exports: &str) -> String {
    format!("source:\n  type: postgres\n  url_env: DATABASE_URL\n{source_tail}exports:\n{exports}")
}

/// Plans `rivet.yaml` in `dir` into `out`, which must succeed.
fn plan_ok(dir: &Path, url: &str, out: &str) {
    rivet(dir, url)
        .args(["plan", "-c", "rivet.yaml", "-o", out])
        .assert()
        .success();
}

fn plan_and_apply(dir: &Path, url: &str, cfg: &str) {
    write(dir, "rivet.yaml", cfg);
    plan_ok(dir, url, "plan.json");
    rivet(dir, url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
}

#[test]
fn every_fixture_type_round_trips_through_parquet_cell_for_cell() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: all_types\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out/all_types }\n\
         \x20 - name: infinite_dates\n    table: rivet_fixture.infinite_dates\n    destination: { type: local, path: out/inf }\n\
         \x20 - name: order_items\n    table: Sales Data.Order Items\n    mode: chunked\n    chunk_size: 7\n    destination: { type: local, path: out/order_items }\n",
    );
    plan_and_apply(dir.path(), &url, &cfg);
    let mut client = common::connect(&url);
    let batch = concat(&read_export_parquet(&dir.path().join("out/all_types")));
    assert_matches_source(&mut client, "rivet_fixture.all_types", "\"id\"", &batch);
    let batch = concat(&read_export_parquet(&dir.path().join("out/inf")));
    assert_matches_source(
        &mut client,
        "rivet_fixture.infinite_dates",
        "\"id\"",
        &batch,
    );
    let batch = concat(&read_export_parquet(&dir.path().join("out/order_items")));
    assert_matches_source(
        &mut client,
        "\"Sales Data\".\"Order Items\"",
        "\"Order ID\"",
        &batch,
    );
}

#[test]
fn parquet_schema_carries_decimal_utc_uuid_json_and_list_types() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("", "  - name: all_types\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out }\n");
    plan_and_apply(dir.path(), &url, &cfg);
    let file = std::fs::File::open(dir.path().join("out/part-00001.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    let schema = format!("{:?}", reader.metadata().file_metadata().schema_descr());
    for expected in [
        "Decimal",
        "Uuid",
        "Json",
        "is_adjusted_to_u_t_c: true",
        "LIST",
    ] {
        assert!(
            schema.contains(expected),
            "Parquet schema lacks {expected}: {schema}"
        );
    }
    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    let s = batch.schema();
    let f = |n: &str| s.field_with_name(n).unwrap().clone();
    assert_eq!(f("c_uuid").extension_type_name(), Some("arrow.uuid"));
    assert_eq!(f("c_jsonb").extension_type_name(), Some("arrow.json"));
}

#[test]
fn csv_output_round_trips_quotes_commas_newlines_and_nulls() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: csv\n    table: rivet_fixture.all_types\n    format: csv\n    destination: { type: local, path: out/csv }\n\
         \x20 - name: pq\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out/pq }\n",
    );
    plan_and_apply(dir.path(), &url, &cfg);
    let batch = concat(&read_export_parquet(&dir.path().join("out/pq")));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(dir.path().join("out/csv/part-00001.csv"))
        .unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(headers, names);
    let raw = std::fs::read_to_string(dir.path().join("out/csv/part-00001.csv")).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), batch.num_rows());
    // The CSV holds the same values the Parquet file holds, text for text.
    let text_col = batch.schema().index_of("c_text").unwrap();
    for (r, rec) in records.iter().enumerate() {
        let expected = common::arrow_cell_text(batch.column(text_col), r);
        let got = &rec[text_col];
        match expected {
            Some(v) => assert_eq!(got, v, "row {r}"),
            None => assert_eq!(got, "", "row {r}"),
        }
    }
    // NULL is an empty unquoted field; the empty string is quoted.
    assert!(raw.contains(",\"\","), "an empty string is written as \"\"");
}

#[test]
fn large_gappy_table_exports_every_row_exactly_once_in_chunks() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 40000\n    tuning: { parallelism: 2 }\n    destination: { type: local, path: out/big }\n",
    );
    plan_and_apply(dir.path(), &url, &cfg);
    let mut client = common::connect(&url);
    let batch = concat(&read_export_parquet(&dir.path().join("out/big")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/big/manifest.json")).unwrap())
            .unwrap();
    assert!(manifest["files"].as_array().unwrap().len() > 3);
    assert!(dir.path().join("out/big/_SUCCESS").exists());
}

#[test]
fn planning_twice_gives_the_same_digest() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config("", "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    destination: { type: local, path: out }\n"),
    );
    plan_ok(dir.path(), &url, "a.json");
    plan_ok(dir.path(), &url, "b.json");
    let a = std::fs::read(dir.path().join("a.json")).unwrap();
    let b = std::fs::read(dir.path().join("b.json")).unwrap();
    assert_eq!(
        a, b,
        "same config and catalog must give a byte-identical plan"
    );
    rivet(dir.path(), &url)
        .args(["plan", "diff", "a.json", "b.json"])
        .assert()
        .code(0);
}

#[test]
fn apply_refuses_plan_whose_seal_was_edited_but_accepts_a_reindented_one() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config("", "  - name: small\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n"),
    );
    plan_ok(dir.path(), &url, "plan.json");
    let text = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    let tampered = text.replacen("\"path\": \"out\"", "\"path\": \"elsewhere\"", 1);
    assert_ne!(tampered, text);
    write(dir.path(), "tampered.json", &tampered);
    rivet(dir.path(), &url)
        .args(["apply", "tampered.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("seal mismatch"));
    assert!(
        !dir.path().join("elsewhere").exists(),
        "nothing is written for a refused plan"
    );
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    write(
        dir.path(),
        "compact.json",
        &serde_json::to_string(&value).unwrap(),
    );
    rivet(dir.path(), &url)
        .args(["apply", "compact.json"])
        .assert()
        .success();
    let mut v2 = value.clone();
    v2["format_version"] = serde_json::json!(99);
    write(
        dir.path(),
        "future.json",
        &serde_json::to_string(&v2).unwrap(),
    );
    rivet(dir.path(), &url)
        .args(["apply", "future.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("format_version 99"));
}

#[test]
fn apply_refuses_a_stale_plan_naming_table_and_column() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "stale");
    s.exec("CREATE TABLE SCHEMA.items (id bigint PRIMARY KEY, v text); INSERT INTO SCHEMA.items SELECT g, 'v' || g FROM generate_series(1, 100) g;");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        &format!(
            "  - name: items\n    table: {}.items\n    destination: {{ type: local, path: out }}\n",
            s.schema
        ),
    );
    write(dir.path(), "rivet.yaml", &cfg);
    plan_ok(dir.path(), &url, "plan.json");
    s.exec("ALTER TABLE SCHEMA.items ADD COLUMN extra int");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("stale plan")
                .and(predicate::str::contains("`extra`"))
                .and(predicate::str::contains("items")),
        );
    assert!(!dir.path().join("out/part-00001.parquet").exists());
    s.exec("ALTER TABLE SCHEMA.items DROP COLUMN extra; ALTER TABLE SCHEMA.items ALTER COLUMN v TYPE varchar(10)");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("column `v` changed type"));
    // The chunk key is checked too, even when it is not an exported column.
    s.exec("ALTER TABLE SCHEMA.items ALTER COLUMN v TYPE text; CREATE TABLE SCHEMA.keyed (k int NOT NULL, v text); INSERT INTO SCHEMA.keyed VALUES (1, 'a')");
    let cfg = config(
        "",
        &format!("  - name: keyed\n    table: {}.keyed\n    mode: chunked\n    chunk_column: k\n    columns: [v]\n    destination: {{ type: local, path: out2 }}\n", s.schema),
    );
    write(dir.path(), "rivet.yaml", &cfg);
    plan_ok(dir.path(), &url, "plan2.json");
    s.exec("ALTER TABLE SCHEMA.keyed ALTER COLUMN k TYPE text");
    rivet(dir.path(), &url)
        .args(["apply", "plan2.json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("chunk key column `k`"));
}

#[test]
fn killed_apply_resumes_to_exactly_the_source_rows() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    tuning: { batch_size: 1000 }\n    destination: { type: local, path: out }\n",
    );
    write(dir.path(), "rivet.yaml", &cfg);
    plan_ok(dir.path(), &url, "plan.json");
    common::apply_and_kill_after(dir.path(), &url, 3);
    assert!(
        !dir.path().join("out/_SUCCESS").exists(),
        "a killed run has no _SUCCESS"
    );
    for entry in std::fs::read_dir(dir.path().join("out")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with("part-") {
            // Every file under a final name is a complete Parquet file.
            let f = std::fs::File::open(dir.path().join("out").join(&name)).unwrap();
            parquet::file::reader::SerializedFileReader::new(f)
                .unwrap_or_else(|e| panic!("{name} is partial: {e}"));
        }
    }
    rivet(dir.path(), &url)
        .args(["apply", "plan.json", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped"));
    assert!(std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".rivet-tmp")));
    let mut client = common::connect(&url);
    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
    rivet(dir.path(), &url)
        .args(["state"])
        .assert()
        .success()
        .stdout(predicate::str::contains("interrupted").and(predicate::str::contains("succeeded")));
}

#[test]
fn credentials_never_appear_in_plan_state_manifest_or_output() {
    let url = require_pg!();
    let password = std::env::var("RIVET_TEST_PG_PASSWORD")
        .expect("scripts/test-env.sh exports RIVET_TEST_PG_PASSWORD");
    assert!(
        url.contains(&password),
        "the test URL authenticates with a password"
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config("", "  - name: small\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n"),
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
        let out = rivet(dir.path(), &url).args(&args).output().unwrap();
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
    let out = rivet(dir.path(), &wrong)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret-XYZ"));
    for entry in walk(dir.path()) {
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
fn chunked_mode_without_an_integer_key_is_refused_with_the_key_path() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    for (table, needle) in [
        ("rivet_fixture.no_pk", "has no primary key"),
        ("rivet_fixture.composite_pk", "has 2 columns"),
    ] {
        write(
            dir.path(),
            "rivet.yaml",
            &config(
                "",
                &format!("  - name: ok\n    table: rivet_fixture.all_types\n    destination: {{ type: local, path: a }}\n  - name: bad\n    table: {table}\n    mode: chunked\n    destination: {{ type: local, path: b }}\n"),
            ),
        );
        rivet(dir.path(), &url)
            .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("exports[1].chunk_column")
                    .and(predicate::str::contains(needle)),
            );
    }
}

#[test]
fn an_unmappable_type_is_a_plan_error_naming_the_column_and_a_cast() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "unmappable");
    s.exec("CREATE TABLE SCHEMA.spans (id int PRIMARY KEY, span interval)");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config("", &format!("  - name: spans\n    table: {}.spans\n    destination: {{ type: local, path: out }}\n", s.schema)),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`span`").and(predicate::str::contains("::text")));
    // A query export with the suggested cast works.
    write(
        dir.path(),
        "rivet.yaml",
        &config("", &format!("  - name: spans\n    query: SELECT id, span::text AS span FROM {}.spans\n    destination: {{ type: local, path: out }}\n", s.schema)),
    );
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
}

#[test]
fn plan_diff_separates_structural_from_volume_changes() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let base = "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: CS\nCOLS    destination: { type: local, path: out }\n";
    let mk = |cs: &str, cols: &str, out: &str| {
        write(
            dir.path(),
            "rivet.yaml",
            &config("", &base.replace("CS", cs).replace("COLS", cols)),
        );
        rivet(dir.path(), &url)
            .args(["plan", "-c", "rivet.yaml", "-o", out])
            .assert()
            .success();
    };
    mk("50000", "", "a.json");
    mk("25000", "", "b.json");
    mk("50000", "    columns: [id]\n", "c.json");
    rivet(dir.path(), &url)
        .args(["plan", "diff", "a.json", "b.json"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("volume changes")
                .and(predicate::str::contains("structural").not()),
        );
    let out = rivet(dir.path(), &url)
        .args(["plan", "diff", "a.json", "c.json", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let structural = d["structural"].as_array().unwrap();
    assert!(structural
        .iter()
        .any(|s| s.as_str().unwrap().contains("column label removed")));
    rivet(dir.path(), &url)
        .args(["plan", "diff", "a.json", "missing.json"])
        .assert()
        .code(1);
}

#[test]
fn run_plans_and_applies_in_one_step_keeping_the_plan() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config("", "  - name: small\n    table: rivet_fixture.composite_pk\n    format: csv\n    compression: gzip\n    destination: { type: local, path: out }\n"),
    );
    rivet(dir.path(), &url)
        .args(["run", "-c", "rivet.yaml"])
        .assert()
        .success();
    assert!(dir.path().join("out/part-00001.csv.gz").exists());
    // `apply rivet.yaml` is the same one-step form; unchanged source, same plan digest.
    rivet(dir.path(), &url)
        .args(["apply", "rivet.yaml"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_dir(dir.path().join(".rivet_plans"))
            .unwrap()
            .count(),
        1
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path().join(".rivet_plans"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    let out = rivet(dir.path(), &url)
        .args(["state", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"][0]["status"], "succeeded");
    assert_eq!(v["exports"][0]["rows"], 500);
}

#[test]
fn reapplying_a_plan_with_fewer_chunks_leaves_only_the_manifest_files() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let mk = |cs: u32| {
        config(
            "",
            &format!("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: {cs}\n    destination: {{ type: local, path: out }}\n"),
        )
    };
    plan_and_apply(dir.path(), &url, &mk(30_000));
    plan_and_apply(dir.path(), &url, &mk(100_000));
    let mut parts: Vec<String> = std::fs::read_dir(dir.path().join("out"))
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
    let mut client = common::connect(&url);
    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
}

#[test]
fn plan_show_renders_a_stable_reviewable_tree() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "",
            "  - name: order_items\n    table: Sales Data.Order Items\n    mode: chunked\n    chunk_size: 20\n    destination: { type: local, path: out/order_items }\n\
             \x20 - name: pairs\n    table: rivet_fixture.composite_pk\n    format: csv\n    compression: gzip\n    wave: 2\n    destination: { type: local, path: out/pairs }\n",
        ),
    );
    plan_ok(dir.path(), &url, "plan.json");
    let out = rivet(dir.path(), &url)
        .args(["plan", "show", "plan.json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

#[test]
fn terminated_apply_leaves_no_statement_running_on_the_server() {
    let url = require_pg!();
    // A distinct application_name tells this run's sessions apart from other tests'.
    let sep = if url.contains('?') { '&' } else { '?' };
    let tagged = format!("{url}{sep}application_name=rivet_sigterm_test");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    tuning: { batch_size: 500, parallelism: 2 }\n    destination: { type: local, path: out }\n",
    );
    write(dir.path(), "rivet.yaml", &cfg);
    plan_ok(dir.path(), &tagged, "plan.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(dir.path())
        .env("DATABASE_URL", &tagged)
        .args(["apply", "plan.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut client = common::connect(&url);
    let sessions = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rivet_sigterm_test' AND state <> 'idle'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sessions(&mut client) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never reached the server"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply finished before it could be terminated"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    let stopped = std::time::Instant::now();
    while sessions(&mut client) > 0 {
        assert!(
            stopped.elapsed() < std::time::Duration::from_secs(2),
            "a rivet statement was still running on the server 2 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn batch_memory_policy_fail_stops_the_chunk_and_warn_journals_it() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let mk = |policy: &str| {
        config(
            "",
            &format!("  - name: big\n    table: rivet_fixture.big_gappy\n    tuning: {{ batch_size: 1000000, max_batch_memory_mb: 1, on_batch_memory_exceeded: {policy} }}\n    destination: {{ type: local, path: out }}\n"),
        )
    };
    write(dir.path(), "rivet.yaml", &mk("fail"));
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("memory target")
                .and(predicate::str::contains("max_batch_memory_mb")),
        );
    assert!(!dir.path().join("out/part-00001.parquet").exists());
    write(dir.path(), "rivet.yaml", &mk("warn"));
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    rivet(dir.path(), &url)
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("batches_over_memory_target"));
}

#[test]
fn pyarrow_duckdb_and_polars_read_the_output_with_its_types() {
    let url = require_pg!();
    let python = match std::env::var("RIVET_TEST_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("RIVET_TEST_PYTHON is not set: run scripts/test-env.sh (CI=true: may not skip)")
        }
        Err(_) => {
            eprintln!("SKIPPED: RIVET_TEST_PYTHON is not set; run scripts/test-env.sh");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "",
        "  - name: pq\n    table: rivet_fixture.all_types\n    mode: chunked\n    chunk_size: 4\n    destination: { type: local, path: out/pq }\n\
         \x20 - name: csv\n    table: rivet_fixture.all_types\n    format: csv\n    destination: { type: local, path: out/csv }\n",
    );
    plan_and_apply(dir.path(), &url, &cfg);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/check_outputs.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir.path().join("out/pq"))
        .arg(dir.path().join("out/csv/part-00001.csv"))
        .arg("10")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reader check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_connection_cut_mid_chunk_is_retried_and_the_export_is_exact() {
    let url = require_pg!();
    let (proxy, through_proxy) = common::proxy::CuttingProxy::in_front_of(&url, 2_000_000);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "",
            "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 100000\n    tuning: { retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &through_proxy)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    rivet(dir.path(), &url)
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("chunk_retry"));
    let mut client = common::connect(&url);
    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
}

#[test]
fn a_statement_timeout_is_permanent_and_fails_fast_without_retries() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "",
            "  - name: big\n    query: SELECT g AS id, pg_sleep(0.01) IS NULL AS slept FROM generate_series(1, 1000) g\n    tuning: { statement_timeout_ms: 50, max_retries: 3, retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("statement timeout").and(predicate::str::contains("57014")),
        );
    rivet(dir.path(), &url)
        .args(["journal"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("chunk_retry")
                .not()
                .and(predicate::str::contains("chunk_failed")),
        );
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
    let dir = tempfile::tempdir().unwrap();
    let with_tls = |tls: &str| {
        config(
            tls,
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        )
    };
    // verify-full against the server's own CA: connects over TLS, exports exactly.
    write(
        dir.path(),
        "rivet.yaml",
        &with_tls(&format!(
            "  tls: {{ mode: verify-full, ca_file: '{ca}' }}\n"
        )),
    );
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let mut client = common::connect(&std::env::var("RIVET_TEST_PG_URL").unwrap());
    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_matches_source(
        &mut client,
        "rivet_fixture.composite_pk",
        "a, b",
        &sort_by_a_b(&batch),
    );
    // This role may only connect over TLS: `disable` is refused by the server.
    write(
        dir.path(),
        "rivet.yaml",
        &with_tls("  tls: { mode: disable }\n"),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no encryption"));
    // A self-signed server is not trusted by the system roots: verify-full refuses it.
    write(
        dir.path(),
        "rivet.yaml",
        &with_tls("  tls: { mode: verify-full }\n"),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "x.json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("certificate"));
    // The URL's sslmode is honoured when the config has no `tls`.
    write(dir.path(), "rivet.yaml", &with_tls(""));
    rivet(dir.path(), &format!("{url}?sslmode=require"))
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

#[test]
fn a_connection_cut_during_the_staleness_check_is_retried() {
    let url = require_pg!();
    // The first connection apply opens is the catalog check; it is cut a few KB in.
    let (proxy, through_proxy) = common::proxy::CuttingProxy::in_front_of(&url, 3_000);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "",
            "  - name: all\n    table: rivet_fixture.all_types\n    tuning: { retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    plan_ok(dir.path(), &url, "plan.json");
    rivet(dir.path(), &through_proxy)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    rivet(dir.path(), &url)
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("catalog_retry"));
}
