//! `rivet init` and `rivet check` against the live databases: init discovers hostile
//! table names, keys, cursors and sizes and writes a config that plans and applies
//! without edits (and holds no credential); check flags missing indexes, nullable
//! cursors without fallback, skewed chunks and connection headroom, with `--strict`
//! and `--json`.

use crate::common::*;

/// The discovery JSON's choice for the table named `name`.
fn choice<'a>(discovery: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    discovery["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {discovery:#}"))
        .get("choice")
        .unwrap()
}

const HOSTILE: &str = "Mixed \"Quoted\" Ünï.code";

#[test]
fn init_proposes_a_mode_per_table_and_the_config_plans_and_applies_unedited() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "init_modes");
    s.exec(&format!(
        "CREATE TABLE SCHEMA.\"{}\" (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, v text);
         CREATE INDEX ON SCHEMA.\"{}\" (updated_at);
         INSERT INTO SCHEMA.\"{}\" SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', 'v' || g FROM generate_series(1, 3000) g;
         CREATE TABLE SCHEMA.keyed (id integer PRIMARY KEY, label text);
         INSERT INTO SCHEMA.keyed SELECT g, 'l' || g FROM generate_series(1, 2000) g;
         CREATE TABLE SCHEMA.keyless (a text, b numeric);
         INSERT INTO SCHEMA.keyless SELECT 'a' || g, g FROM generate_series(1, 500) g;
         CREATE TABLE SCHEMA.nullable_cursor (id bigint PRIMARY KEY, created_at timestamp NOT NULL, updated_at timestamp);
         CREATE INDEX ON SCHEMA.nullable_cursor (updated_at);
         INSERT INTO SCHEMA.nullable_cursor SELECT g, timestamp '2026-01-01' + g * interval '1 hour', CASE WHEN g % 3 = 0 THEN NULL ELSE timestamp '2026-02-01' + g * interval '1 hour' END FROM generate_series(1, 400) g;",
        HOSTILE.replace('"', "\"\""),
        HOSTILE.replace('"', "\"\""),
        HOSTILE.replace('"', "\"\""),
    ));
    s.exec(&format!(
        "ANALYZE SCHEMA.\"{}\"; ANALYZE SCHEMA.keyed; ANALYZE SCHEMA.keyless; ANALYZE SCHEMA.nullable_cursor;",
        HOSTILE.replace('"', "\"\"")
    ));
    let p = Project::new(&url);
    // Every table counts as large (--full-below-mb 0), so the choice rests on keys
    // and cursors.
    p.rivet()
        .args([
            "init",
            "--source-env",
            "DATABASE_URL",
            "--schema",
            &s.schema,
        ])
        .args(["--full-below-mb", "0", "--path", "out", "-o", "rivet.yaml"])
        .args(["--discover", "discovery.json"])
        .assert()
        .success();
    let yaml = std::fs::read_to_string(p.path("rivet.yaml")).unwrap();
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    assert!(
        !yaml.contains(password),
        "a credential leaked into the config:\n{yaml}"
    );
    assert!(yaml.contains("url_env: \"DATABASE_URL\""), "{yaml}");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("discovery.json")).unwrap()).unwrap();
    let hostile = choice(&d, HOSTILE);
    assert_eq!(hostile["mode"], "incremental", "{d:#}");
    assert_eq!(hostile["cursor_column"], "updated_at");
    assert_eq!(choice(&d, "keyed")["mode"], "chunked");
    assert_eq!(choice(&d, "keyed")["chunk_column"], "id");
    let keyless = choice(&d, "keyless");
    assert_eq!(keyless["mode"], "full");
    assert!(
        keyless["reason"]
            .as_str()
            .unwrap()
            .contains("no integer key"),
        "{keyless}"
    );
    let nc = choice(&d, "nullable_cursor");
    assert_eq!(nc["cursor_column"], "updated_at");
    assert_eq!(nc["cursor_fallback_column"], "created_at");
    // The reasons are in the file as comments.
    assert!(yaml.contains("# "), "{yaml}");
    assert!(yaml.contains("high-water mark"), "{yaml}");

    // Plans and applies without edits; the hostile name round-trips exactly.
    p.plan();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).unwrap()).unwrap();
    let names: Vec<&str> = plan["body"]["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["relation"]["name"].as_str().unwrap_or_default())
        .collect();
    assert!(names.contains(&HOSTILE), "{names:?}");
    p.apply("plan.json");
    let export = choice(&d, HOSTILE)["export"].as_str().unwrap().to_owned();
    let out = std::fs::read_dir(p.path(&format!("out/{export}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("window-")
        })
        .expect("an incremental window directory");
    let rows: usize = read_export_parquet(&out).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3000);
    assert_eq!(p.read_export("out/keyed").num_rows(), 2000);
    assert_eq!(p.read_export("out/keyless").num_rows(), 500);
}

#[test]
fn init_on_the_fixture_database_plans_and_applies_with_defaults() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.rivet()
        .args(["init", "--source-env", "DATABASE_URL"])
        .args(["--schema", "rivet_fixture", "--schema", "Sales Data"])
        .args(["-o", "rivet.yaml"])
        .assert()
        .success();
    let yaml = std::fs::read_to_string(p.path("rivet.yaml")).unwrap();
    assert!(
        yaml.contains("\"\\\"Sales Data\\\".\\\"Order Items\\\"\""),
        "{yaml}"
    );
    // Small tables: every one full, each saying so.
    assert!(yaml.contains("small enough"), "{yaml}");
    p.plan();
    p.apply("plan.json");
    assert_eq!(
        p.read_export("output/sales_data_order_items").num_rows(),
        50
    );
    assert!(p.read_export("output/rivet_fixture_big_gappy").num_rows() > 100_000);
}

#[test]
fn init_on_mariadb_plans_and_applies() {
    let url = require_mysql!();
    let p = Project::new(&url);
    p.rivet()
        .args(["init", "--source-env", "DATABASE_URL"])
        .args([
            "--table",
            "Order Items",
            "--table",
            "big_gappy",
            "--table",
            "no_pk",
        ])
        .args([
            "--full-below-mb",
            "0",
            "-o",
            "rivet.yaml",
            "--discover",
            "d.json",
        ])
        .assert()
        .success();
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("d.json")).unwrap()).unwrap();
    assert_eq!(choice(&d, "no_pk")["mode"], "full");
    let gappy = choice(&d, "big_gappy");
    assert!(
        gappy["mode"] == "chunked" || gappy["mode"] == "incremental",
        "{gappy}"
    );
    p.plan();
    p.apply("plan.json");
}

#[test]
fn init_refuses_what_it_cannot_do_and_never_overwrites() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.write("rivet.yaml", "keep me");
    p.rivet()
        .args([
            "init",
            "--source-env",
            "DATABASE_URL",
            "--table",
            "rivet_fixture.no_pk",
        ])
        .args(["-o", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not overwrite"));
    p.rivet()
        .args([
            "init",
            "--source-env",
            "DATABASE_URL",
            "--table",
            "rivet_fixture.no_pk",
        ])
        .args(["--mode", "chunked", "-o", "other.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("rivet_fixture.no_pk"));
    // cdc replays by primary key: refused without one, scaffolded with one.
    p.rivet()
        .args(["init", "--source-env", "DATABASE_URL"])
        .args([
            "--table",
            "rivet_fixture.no_pk",
            "--mode",
            "cdc",
            "-o",
            "cdc.yaml",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("replays changes by primary key"));
    p.rivet()
        .args(["init", "--source-env", "DATABASE_URL"])
        .args([
            "--table",
            "rivet_fixture.big_gappy",
            "--mode",
            "cdc",
            "-o",
            "cdc.yaml",
        ])
        .assert()
        .success();
    let yaml = std::fs::read_to_string(p.path("cdc.yaml")).unwrap();
    assert!(
        yaml.contains("mode: cdc") && yaml.contains("rivet cdc setup"),
        "{yaml}"
    );
    p.rivet()
        .args(["init", "--source-env", "NOT_SET_ANYWHERE", "-o", "x.yaml"])
        .env_remove("NOT_SET_ANYWHERE")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("NOT_SET_ANYWHERE"));
}

fn check_json(p: &Project) -> serde_json::Value {
    let out = p
        .rivet()
        .args(["check", "-c", "rivet.yaml", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn check_flags_missing_indexes_nullable_cursors_and_skew() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "check_flags");
    s.exec(
        "CREATE TABLE SCHEMA.unindexed (id bigint, k integer, updated_at timestamp, v text);
         INSERT INTO SCHEMA.unindexed SELECT g, g, timestamp '2026-01-01' + g * interval '1 minute', 'x' FROM generate_series(1, 5000) g;
         CREATE TABLE SCHEMA.skewed (id bigint PRIMARY KEY, v text);
         INSERT INTO SCHEMA.skewed SELECT g, 'x' FROM generate_series(1, 20000) g;
         INSERT INTO SCHEMA.skewed SELECT 1000000 + g * 1000, 'y' FROM generate_series(1, 50) g;
         ANALYZE SCHEMA.unindexed; ANALYZE SCHEMA.skewed;",
    );
    let p = Project::new(&url);
    p.config(&pg_config(&format!(
        concat!(
            "  - name: by_k\n    table: {0}.unindexed\n    mode: chunked\n    chunk_column: k\n    chunk_size: 1000\n    destination: {{type: local, path: out/by_k}}\n",
            "  - name: delta\n    table: {0}.unindexed\n    mode: incremental\n    cursor_column: updated_at\n    destination: {{type: local, path: out/delta}}\n",
            "  - name: skewed\n    table: {0}.skewed\n    mode: chunked\n    chunk_size: 50000\n    destination: {{type: local, path: out/skewed}}\n",
        ),
        s.schema
    )));
    let j = check_json(&p);
    let codes: Vec<(String, String)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["export"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for want in [
        ("chunk_column_not_indexed", "by_k"),
        ("cursor_column_not_indexed", "delta"),
        ("nullable_cursor_without_fallback", "delta"),
        ("chunk_size_skew", "skewed"),
    ] {
        assert!(
            codes.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} missing from {j:#}"
        );
    }
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "chunk_column_not_indexed")
        .unwrap();
    assert_eq!(f["column"], "k");
    assert_eq!(f["table"], format!("{}.unindexed", s.schema));
    assert!(f["fix"].as_str().unwrap().contains("create an index"));
    // Text output names the same, and --strict turns warnings into exit 1.
    p.rivet()
        .args(["check", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "WARN  [chunk_column_not_indexed] export by_k",
        ));
    p.rivet()
        .args(["check", "-c", "rivet.yaml", "--strict"])
        .assert()
        .code(1);
}

#[test]
fn check_passes_a_sound_config_and_flags_connection_headroom() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config(
        "  - name: gappy\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    destination: {type: local, path: out/gappy}\n",
    ));
    p.rivet()
        .args(["check", "-c", "rivet.yaml", "--strict"])
        .assert()
        .success()
        .stdout(predicates::str::contains("no warnings"));
    p.config(&pg_config_with(
        "",
        "  - name: gappy\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 1000\n    tuning: {parallelism: 64}\n    destination: {type: local, path: out/gappy}\n",
    ).replace("exports:", "tuning:\n  max_source_connections: 256\nexports:"));
    let j = check_json(&p);
    assert!(
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "connection_headroom"),
        "{j:#}"
    );
}
