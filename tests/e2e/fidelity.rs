//! Type fidelity: every fixture column read back from Parquet and CSV equals the source
//! cell for cell, the Parquet schema carries logical types, and independent readers
//! (pyarrow, DuckDB, polars) see those types.

use predicates::prelude::*;
use std::path::Path;

use crate::common::*;

#[test]
fn every_fixture_type_round_trips_through_parquet_cell_for_cell() {
    let url = require_pg!();
    let p = Project::new(&url);
    let cfg = pg_config("  - name: all_types\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out/all_types }\n\
         \x20 - name: infinite_dates\n    table: rivet_fixture.infinite_dates\n    destination: { type: local, path: out/inf }\n\
         \x20 - name: order_items\n    table: Sales Data.Order Items\n    mode: chunked\n    chunk_size: 7\n    destination: { type: local, path: out/order_items }\n",
    );
    p.plan_and_apply(&cfg);
    let mut client = crate::common::connect(&url);
    let batch = concat(&read_export_parquet(&p.path("out/all_types")));
    assert_matches_source(&mut client, "rivet_fixture.all_types", "\"id\"", &batch);
    let batch = concat(&read_export_parquet(&p.path("out/inf")));
    assert_matches_source(
        &mut client,
        "rivet_fixture.infinite_dates",
        "\"id\"",
        &batch,
    );
    let batch = concat(&read_export_parquet(&p.path("out/order_items")));
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
    let p = Project::new(&url);
    let cfg = pg_config("  - name: all_types\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out }\n");
    p.plan_and_apply(&cfg);
    let file = std::fs::File::open(p.path("out/part-00001.parquet")).unwrap();
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
    let batch = concat(&read_export_parquet(&p.path("out")));
    let s = batch.schema();
    let f = |n: &str| s.field_with_name(n).unwrap().clone();
    assert_eq!(f("c_uuid").extension_type_name(), Some("arrow.uuid"));
    assert_eq!(f("c_jsonb").extension_type_name(), Some("arrow.json"));
}

#[test]
fn csv_output_round_trips_quotes_commas_newlines_and_nulls() {
    let url = require_pg!();
    let p = Project::new(&url);
    let cfg = pg_config("  - name: csv\n    table: rivet_fixture.all_types\n    format: csv\n    destination: { type: local, path: out/csv }\n\
         \x20 - name: pq\n    table: rivet_fixture.all_types\n    destination: { type: local, path: out/pq }\n",
    );
    p.plan_and_apply(&cfg);
    let batch = concat(&read_export_parquet(&p.path("out/pq")));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(p.path("out/csv/part-00001.csv"))
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
    let raw = std::fs::read_to_string(p.path("out/csv/part-00001.csv")).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), batch.num_rows());
    // The CSV holds the same values the Parquet file holds, text for text.
    let text_col = batch.schema().index_of("c_text").unwrap();
    for (r, rec) in records.iter().enumerate() {
        let expected = crate::common::arrow_cell_text(batch.column(text_col), r);
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
fn types_strict_refuses_a_text_mapped_column_naming_it_and_its_cast() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "unmappable");
    s.exec("CREATE TABLE SCHEMA.spans (id int PRIMARY KEY, addr inet)");
    let p = Project::new(&url);
    let export = format!(
        "  - name: spans\n    table: {}.spans\n    destination: {{ type: local, path: out }}\n",
        s.schema
    );
    p.config(&pg_config_with("  types: strict\n", &export));
    p.rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("`addr`")
                .and(predicate::str::contains("\"addr\"::text"))
                .and(predicate::str::contains("types: strict")),
        );
    // Without `types: strict` the column exports as text through the recorded cast.
    p.config(&pg_config(&export));
    p.plan_to("plan.json", &[]);
    p.rivet().args(["apply", "plan.json"]).assert().success();
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
    let p = Project::new(&url);
    let cfg = pg_config("  - name: pq\n    table: rivet_fixture.all_types\n    mode: chunked\n    chunk_size: 4\n    destination: { type: local, path: out/pq }\n\
         \x20 - name: csv\n    table: rivet_fixture.all_types\n    format: csv\n    destination: { type: local, path: out/csv }\n",
    );
    p.plan_and_apply(&cfg);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/check_outputs.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(p.path("out/pq"))
        .arg(p.path("out/csv/part-00001.csv"))
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
