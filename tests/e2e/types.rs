//! Every column exports (issue 13): the every-type fixtures of PostgreSQL and MariaDB
//! (fixtures/postgres/types.sql, fixtures/mysql/types.sql, loaded by scripts/test-env.sh
//! into databases of their own) are planned whole, exported to Parquet and CSV, and every
//! cell is compared with the source *in the database*: the exported value is turned into
//! the type's input text and cast back to the declared type there, so text renderings are
//! checked by the type's own input function, not by string equality alone.

use std::path::Path;

use crate::common::{self, concat, pg_config, read_export_parquet, rivet, write, Project};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::*;
use predicates::prelude::*;

fn pg_types_url() -> Option<String> {
    common::live_env("RIVET_TEST_PG_TYPES_URL", "PostgreSQL every-type database")
}

fn python() -> Option<String> {
    common::live_env(
        "RIVET_TEST_PYTHON",
        "reader tools (pyarrow, DuckDB, polars)",
    )
}

fn plan(dir: &Path, url: &str, cfg: &str) -> serde_json::Value {
    write(dir, "rivet.yaml", cfg);
    rivet(dir, url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap()
}

fn apply(dir: &Path, url: &str) {
    rivet(dir, url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
}

/// Quotes one element of a PostgreSQL array literal.
fn array_item(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The PostgreSQL input text of one Arrow cell of a column declared `decl` (None for
/// NULL), independent of Rivet's CSV renderer.
fn pg_input(a: &ArrayRef, row: usize, decl: &str) -> Option<String> {
    if a.is_null(row) {
        return None;
    }
    let spatial = decl.starts_with("geometry") || decl.starts_with("geography");
    Some(match a.data_type() {
        DataType::Float32 => float(f64::from(a.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => a.as_string::<i32>().value(row).to_owned(),
        DataType::Binary if spatial => hex::encode(a.as_binary::<i32>().value(row)),
        DataType::Binary => format!("\\x{}", hex::encode(a.as_binary::<i32>().value(row))),
        DataType::FixedSizeBinary(16) => {
            let h = hex::encode(a.as_fixed_size_binary().value(row));
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
        DataType::Date32 => match a.as_primitive::<Date32Type>().value(row) {
            i32::MAX => "infinity".into(),
            d if d == -i32::MAX => "-infinity".into(),
            d => (chrono::NaiveDate::default() + chrono::TimeDelta::days(i64::from(d)))
                .format("%Y-%m-%d")
                .to_string(),
        },
        DataType::Timestamp(_, tz) => match a.as_primitive::<TimestampMicrosecondType>().value(row)
        {
            i64::MAX => "infinity".into(),
            v if v == -i64::MAX => "-infinity".into(),
            v => format!(
                "{}{}",
                chrono::DateTime::from_timestamp_micros(v)
                    .unwrap()
                    .naive_utc()
                    .format("%Y-%m-%d %H:%M:%S%.6f"),
                if tz.is_some() { "+00" } else { "" }
            ),
        },
        DataType::Time64(_) => {
            let us = a.as_primitive::<Time64MicrosecondType>().value(row);
            format!(
                "{:02}:{:02}:{:02}.{:06}",
                us / 3_600_000_000,
                us / 60_000_000 % 60,
                us / 1_000_000 % 60,
                us % 1_000_000
            )
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            format!(
                "{} months {} days {} microseconds",
                s.column(0).as_primitive::<Int32Type>().value(row),
                s.column(1).as_primitive::<Int32Type>().value(row),
                s.column(2).as_primitive::<Int64Type>().value(row)
            )
        }
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(row);
            let elem = decl.trim_end_matches("[]");
            let parts: Vec<String> = (0..items.len())
                .map(|i| match pg_input(&items, i, elem) {
                    None => "NULL".into(),
                    Some(t) => array_item(&t),
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        _ => arrow::util::display::array_value_to_string(a.as_ref(), row).unwrap(),
    })
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

/// How many cells were NULL in the file where the source holds numeric NaN/Infinity
/// (the documented non-failing default for `numeric(p,s)`).
struct Checked {
    cells: usize,
    nulled_numeric: usize,
}

/// Compares `input` (the exported value's input text) with the source cell in the
/// database: cast back to the declared type, both sides printed by the type's output
/// function; spatial values by their WKB.
fn assert_cell(
    client: &mut postgres::Client,
    table: &str,
    id: i32,
    column: &str,
    decl: &str,
    input: Option<&str>,
    seen: &mut Checked,
) {
    let q = format!("\"{}\"", column.replace('"', "\"\""));
    let spatial = decl.starts_with("geometry") || decl.starts_with("geography");
    let sql = if spatial && !decl.ends_with("[]") {
        format!("SELECT {q}::text, ST_AsBinary({q}) IS NOT DISTINCT FROM decode($1, 'hex') FROM {table} WHERE id = $2")
    } else {
        format!("SELECT {q}::text, CAST($1::text AS {decl})::text IS NOT DISTINCT FROM {q}::text FROM {table} WHERE id = $2")
    };
    let row = client
        .query_one(sql.as_str(), &[&input, &id])
        .unwrap_or_else(|e| panic!("{sql} with {input:?}: {e}"));
    let source: Option<String> = row.get(0);
    let same: bool = row.get(1);
    seen.cells += 1;
    if !same
        && input.is_none()
        && decl.starts_with("numeric(")
        && matches!(source.as_deref(), Some("NaN" | "Infinity" | "-Infinity"))
    {
        seen.nulled_numeric += 1;
        return;
    }
    assert!(
        same,
        "{table} id {id} column {column} ({decl}): exported {input:?}, source {source:?}"
    );
}

fn planned_columns(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    plan["body"]["exports"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["declared_type"].as_str().unwrap().to_owned(),
                c["mapping"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn postgres_every_type_exports_and_each_cell_casts_back_equal_in_the_database() {
    let Some(url) = pg_types_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &url,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: every\n    table: rivet_types.every_type\n    destination: { type: local, path: out }\n",
    );
    let columns = planned_columns(&plan);
    let mapping = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .map(|c| c.2.clone())
            .unwrap()
    };
    assert_eq!(mapping("c_int4"), "native");
    assert_eq!(mapping("c_interval"), "structured");
    assert_eq!(mapping("a_interval"), "structured");
    for text in [
        "c_inet",
        "c_timetz",
        "c_hstore",
        "c_ltree",
        "c_lquery",
        "c_ltxtquery",
        "c_int4range",
        "c_int4multirange",
        "c_composite",
        "c_citext",
        "a_inet",
        "a_composite",
        "c_tsvector",
        "c_point",
        "c_pg_lsn",
    ] {
        assert_eq!(mapping(text), "text", "{text}");
    }
    let show = rivet(dir.path(), &url)
        .args(["plan", "show", "plan.json"])
        .assert()
        .success();
    let show = String::from_utf8_lossy(&show.get_output().stdout).into_owned();
    assert!(show.contains(r#"text by cast: "c_inet"::text"#), "{show}");
    assert!(show.contains(r#"text by cast: "a_inet"::text[]"#), "{show}");
    assert!(show.contains("[structured]"), "{show}");
    assert!(show.contains(r#"native via "c_money"::numeric"#), "{show}");
    apply(dir.path(), &url);

    let batch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_eq!(batch.num_columns(), columns.len());
    assert_eq!(batch.num_rows(), 3);
    let mut client = common::connect(&url);
    let ids = batch.column(0).as_primitive::<Int32Type>().clone();
    let mut seen = Checked {
        cells: 0,
        nulled_numeric: 0,
    };
    for (c, (name, decl, _)) in columns.iter().enumerate().skip(1) {
        for row in 0..batch.num_rows() {
            let input = pg_input(batch.column(c), row, decl);
            assert_cell(
                &mut client,
                "rivet_types.every_type",
                ids.value(row),
                name,
                decl,
                input.as_deref(),
                &mut seen,
            );
        }
    }
    assert_eq!(seen.cells, (columns.len() - 1) * 3);
    assert_eq!(
        seen.nulled_numeric, 0,
        "no NaN in the fixture's numeric(p,s)"
    );
    // The interval struct keeps months, days and microseconds apart.
    let iv = batch.column_by_name("c_interval").unwrap().as_struct();
    assert_eq!(
        iv.fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["months", "days", "microseconds"]
    );
    // Infinity is clamped (default), not NULL, so the journal counts nothing.
    let journal = rivet(dir.path(), &url).args(["journal"]).assert().success();
    let journal = String::from_utf8_lossy(&journal.get_output().stdout).into_owned();
    assert!(!journal.contains("nulled_values"), "{journal}");

    if let Some(python) = python() {
        let out = std::process::Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/check_types.py"))
            .arg(dir.path().join("out/part-00001.parquet"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "readers disagree:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The CSV input text of one cell for PostgreSQL: plain scalars as written, lists and
/// structs from their JSON (arrays as array literals, the interval object as interval
/// text, bytea and spatial hex as the type reads it).
fn csv_input(cell: &str, decl: &str) -> String {
    fn json_item(v: &serde_json::Value, elem: &str) -> Option<String> {
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) if elem == "bytea" => Some(format!("\\x{s}")),
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) if o.contains_key("months") => Some(format!(
                "{} months {} days {} microseconds",
                o["months"], o["days"], o["microseconds"]
            )),
            other => Some(other.to_string()),
        }
    }
    let spatial = decl.starts_with("geometry") || decl.starts_with("geography");
    if let Some(elem) = decl.strip_suffix("[]") {
        let items: Vec<serde_json::Value> = serde_json::from_str(cell).unwrap();
        let parts: Vec<String> = items
            .iter()
            .map(|v| json_item(v, elem).map_or("NULL".into(), |t| array_item(&t)))
            .collect();
        return format!("{{{}}}", parts.join(","));
    }
    if decl == "interval" {
        return json_item(&serde_json::from_str(cell).unwrap(), decl).unwrap();
    }
    if decl == "bytea" && !spatial {
        return format!("\\x{cell}");
    }
    cell.to_owned()
}

#[test]
fn postgres_every_type_csv_reads_back_lists_and_structs_as_json() {
    let Some(url) = pg_types_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &url,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: every\n    table: rivet_types.every_type\n    format: csv\n    destination: { type: local, path: out }\n",
    );
    let columns = planned_columns(&plan);
    apply(dir.path(), &url);
    let text = std::fs::read_to_string(dir.path().join("out/part-00001.csv")).unwrap();
    assert!(!text.contains("ERROR:"));
    // The issue's examples, literally.
    assert!(text.contains(r#""[""a,b"",""c""]""#), "{text}");
    assert!(
        text.contains(r#"["""",null,""NULL"",""\"""",""a\\b""]"#),
        "{text}"
    );
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.len(), columns.len());
    let mut client = common::connect(&url);
    let mut seen = Checked {
        cells: 0,
        nulled_numeric: 0,
    };
    // NULL is an empty unquoted field, "" an empty string: read positions to tell.
    for record in reader.records() {
        let record = record.unwrap();
        let pos = record.position().unwrap().byte() as usize;
        let line_fields = split_raw(&text[pos..]);
        let id: i32 = record[0].parse().unwrap();
        for (c, (name, decl, _)) in columns.iter().enumerate().skip(1) {
            let input = if line_fields[c].is_empty() {
                None
            } else {
                Some(csv_input(&record[c], decl))
            };
            assert_cell(
                &mut client,
                "rivet_types.every_type",
                id,
                name,
                decl,
                input.as_deref(),
                &mut seen,
            );
        }
    }
    assert_eq!(seen.cells, (columns.len() - 1) * 3);
}

/// The raw (still quoted) fields of the CSV record starting at `text`.
fn split_raw(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push_str("\"\"");
            }
            '"' => {
                quoted = !quoted;
                fields.last_mut().unwrap().push('"');
            }
            ',' if !quoted => fields.push(String::new()),
            '\n' if !quoted => break,
            other => fields.last_mut().unwrap().push(other),
        }
    }
    fields
}

#[test]
fn infinity_null_policy_nulls_and_counts_also_inside_arrays() {
    let Some(url) = pg_types_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    plan(
        dir.path(),
        &url,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: every\n    table: rivet_types.every_type\n    columns: [id, c_date, c_timestamp, a_date, a_timestamptz]\n    infinity: \"null\"\n    destination: { type: local, path: out }\n",
    );
    apply(dir.path(), &url);
    let journal = rivet(dir.path(), &url).args(["journal"]).assert().success();
    let journal = String::from_utf8_lossy(&journal.get_output().stdout).into_owned();
    // Row 2: c_date infinity, c_timestamp -infinity, a_date {infinity,-infinity,NULL},
    // a_timestamptz {infinity,NULL,-infinity}.
    for expected in [
        r#""c_date":1"#,
        r#""c_timestamp":1"#,
        r#""a_date":2"#,
        r#""a_timestamptz":2"#,
    ] {
        assert!(journal.contains(expected), "{expected} in {journal}");
    }
    let batch: RecordBatch = concat(&read_export_parquet(&dir.path().join("out")));
    assert_eq!(batch.column_by_name("c_date").unwrap().null_count(), 2);
}

#[test]
fn a_two_dimensional_array_value_fails_the_chunk_naming_the_column_and_the_fix() {
    let Some(url) = pg_types_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    plan(
        dir.path(),
        &url,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: matrix\n    table: rivet_types.matrix\n    tuning: { max_retries: 0 }\n    destination: { type: local, path: out }\n",
    );
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("2-dimensional")
                .and(predicate::str::contains("m"))
                .and(predicate::str::contains("::text")),
        );
}

#[test]
fn types_strict_lists_every_text_column_of_every_export_at_once() {
    let Some(url) = pg_types_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        "source:\n  type: postgres\n  url_env: DATABASE_URL\n  types: strict\nexports:\n  - name: a\n    table: rivet_types.every_type\n    columns: [id, c_inet, c_int4, c_hstore]\n    destination: { type: local, path: a }\n  - name: b\n    table: rivet_types.every_type\n    columns: [c_ltree]\n    destination: { type: local, path: b }\n  - name: c\n    table: rivet_types.every_type\n    columns: [c_tsvector]\n    types: all\n    destination: { type: local, path: c }\n",
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("3 column problems")
                .and(predicate::str::contains("exports[0].columns[1]"))
                .and(predicate::str::contains("`c_inet`"))
                .and(predicate::str::contains("exports[0].columns[3]"))
                .and(predicate::str::contains("`c_hstore`"))
                .and(predicate::str::contains("exports[1].columns[0]"))
                .and(predicate::str::contains("`c_ltree`"))
                .and(predicate::str::contains("c_tsvector").not()),
        );
}

#[test]
fn mariadb_every_type_exports_with_uuid_inet_text_and_time_as_printed() {
    let Some(url) = common::live_env("RIVET_TEST_MYSQL_TYPES_URL", "MariaDB every-type database")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &url,
        "source:\n  type: mysql\n  url_env: DATABASE_URL\n  tinyint1_as_boolean: true\nexports:\n  - name: every\n    table: every_type\n    destination: { type: local, path: out }\n  - name: csv\n    table: every_type\n    format: csv\n    destination: { type: local, path: csv }\n",
    );
    let columns = planned_columns(&plan);
    let find = |n: &str| columns.iter().find(|c| c.0 == n).unwrap().2.clone();
    assert_eq!(find("c_inet6"), "text");
    assert_eq!(find("c_inet4"), "text");
    assert_eq!(find("c_uuid"), "native");
    let logical = |n: &str| {
        plan["body"]["exports"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["logical"]["kind"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(logical("c_uuid"), "uuid");
    assert_eq!(logical("c_bool"), "boolean");
    assert_eq!(logical("c_tinyint"), "int8");
    apply(dir.path(), &url);
    // Every cell against the server through PyMySQL (the existing independent oracle).
    common::assert_matches_mysql(&dir.path().join("out"), &url, "every_type", "id");
    let csv = std::fs::read_to_string(dir.path().join("csv/part-00001.csv")).unwrap();
    assert!(csv.contains(",-838:59:59,"), "{csv}");
    assert!(csv.contains(",838:59:59.999999,"), "{csv}");
    assert!(csv.contains(",2001:db8::ff00:42:8329\n"), "{csv}");
    assert!(
        csv.contains(",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,"),
        "{csv}"
    );
    assert!(!csv.contains("PT"), "{csv}");
}

/// Columns read through a text cast render the same whatever DateStyle and TimeZone the
/// server, role or connection set: ISO dates and UTC offsets.
#[test]
fn text_renderings_do_not_depend_on_the_sessions_datestyle_or_time_zone() {
    let Some(url) = pg_types_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let odd = format!("{url}{sep}options=-c%20DateStyle%3DSQL%2CDMY%20-c%20TimeZone%3DAsia/Tokyo");
    let p = Project::new(&odd);
    p.plan_and_apply(&pg_config(
        "  - name: ranges\n    table: rivet_types.every_type\n    columns: [id, c_daterange, c_tstzrange]\n    format: csv\n    destination: { type: local, path: out }\n",
    ));
    let csv = std::fs::read_to_string(p.path("out/part-00001.csv")).unwrap();
    assert!(
        csv.contains("[2024-01-01,2024-12-31)")
            && csv.contains("2024-01-01 00:00:00+00")
            && !csv.contains("JST")
            && !csv.contains("01/01/2024"),
        "{csv}"
    );
}
