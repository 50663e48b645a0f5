//! Shared helpers for the end-to-end tests: the live databases from
//! `scripts/test-env.sh`, a scratch schema per test, a [`Project`] (a directory with a
//! config, planned and applied by the `rivet` binary), and reading output files back to
//! compare every cell with the source.
#![allow(dead_code)]

pub mod project;
pub mod proxy;

pub use project::{pg_config, pg_config_with, Project};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use assert_cmd::Command;
use postgres::{Client, NoTls};

/// A live-service URL from `var`, or None (after a loud note) when it is not set
/// locally. Under CI (`CI=true`) a missing service fails the test instead.
fn live_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let msg = format!(
                "{var} is not set: run `eval \"$(scripts/test-env.sh)\"` (or scripts/test.sh) to start the test {what}"
            );
            if std::env::var("CI")
                .map(|v| v == "true" || v == "1")
                .unwrap_or(false)
            {
                panic!("{msg} (CI=true: live tests may not be skipped)");
            }
            eprintln!("SKIPPED (no database): {msg}");
            None
        }
    }
}

/// Any live-service setting from the test environment (see [`live_url`]).
pub fn live_env(var: &str, what: &str) -> Option<String> {
    live_url(var, what)
}

/// The PostgreSQL reader URL for tests (see [`live_url`]).
pub fn pg_url() -> Option<String> {
    live_url("RIVET_TEST_PG_URL", "PostgreSQL")
}

/// The MariaDB reader URL for tests (see [`live_url`]).
pub fn mysql_url() -> Option<String> {
    live_url("RIVET_TEST_MYSQL_URL", "MariaDB")
}

/// Early-returns from a test when there is no MariaDB (never under CI).
#[macro_export]
macro_rules! require_mysql {
    () => {
        match $crate::common::mysql_url() {
            Some(u) => u,
            None => return,
        }
    };
}

/// Runs `tests/readers/check_mysql.py`: every cell of the Parquet files in `dir`
/// against the MariaDB table, through PyMySQL as an independent oracle.
pub fn assert_matches_mysql(dir: &Path, url: &str, table: &str, keys: &str) {
    let python =
        std::env::var("RIVET_TEST_PYTHON").expect("scripts/test-env.sh exports RIVET_TEST_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers/check_mysql.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .arg(url)
        .arg(table)
        .arg(keys)
        .output()
        .expect("run the MySQL cell checker");
    assert!(
        out.status.success(),
        "{table}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Early-returns from a test when there is no database (never under CI).
#[macro_export]
macro_rules! require_pg {
    () => {
        match $crate::common::pg_url() {
            Some(u) => u,
            None => return,
        }
    };
}

pub fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).expect("connect to the test database")
}

/// A schema owned by one test, dropped when the guard goes out of scope.
pub struct Scratch {
    pub url: String,
    pub schema: String,
    pub client: Client,
}

impl Scratch {
    pub fn new(url: &str, name: &str) -> Scratch {
        let schema = format!("t_{name}_{}", std::process::id());
        let mut client = connect(url);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\""
            ))
            .expect("create scratch schema");
        Scratch {
            url: url.to_owned(),
            schema,
            client,
        }
    }

    pub fn exec(&mut self, sql: &str) {
        let sql = sql.replace("SCHEMA.", &format!("\"{}\".", self.schema));
        self.client
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ));
    }
}

/// Starts `rivet apply plan.json` in `dir` and kills it with SIGKILL once the state
/// database shows `committed` chunks committed; panics if it finishes first.
pub fn apply_and_kill_after(dir: &Path, url: &str, committed: i64) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .args(["apply", "plan.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.join(".rivet_state.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done: i64 = rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM chunks WHERE status = 'committed'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0);
        if done >= committed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "apply made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply finished before it could be killed; use smaller chunks"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The `rivet` binary with `DATABASE_URL` pointing at the test database.
pub fn rivet(dir: &Path, url: &str) -> Command {
    let mut cmd = Command::cargo_bin("rivet").expect("the rivet binary is built");
    cmd.current_dir(dir)
        .env("DATABASE_URL", url)
        .env_remove("RIVET_LOG");
    cmd
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Every batch of every Parquet file listed in an export's manifest, in chunk order.
pub fn read_export_parquet(dir: &Path) -> Vec<RecordBatch> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .unwrap();
    let mut out = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let file = std::fs::File::open(dir.join(f["path"].as_str().unwrap())).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            out.push(b.unwrap());
        }
    }
    out
}

/// Concatenates batches into one.
pub fn concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    arrow::compute::concat_batches(&schema, batches).unwrap()
}

/// SQL that renders a column the way [`arrow_cell_text`] renders its Arrow value.
pub fn pg_text_expr(col: &str, dt: &DataType) -> String {
    let q = format!("\"{}\"", col.replace('"', "\"\""));
    match dt {
        DataType::Binary => format!("encode({q}, 'hex')"),
        DataType::Boolean => format!("{q}::text"),
        // Infinities as the default `infinity: clamp` writes them (DuckDB's encoding).
        DataType::Date32 => format!(
            "CASE WHEN {q} = 'infinity' THEN '2147483647' WHEN {q} = '-infinity' THEN '-2147483647' \
             ELSE ({q} - date '1970-01-01')::text END"
        ),
        DataType::Timestamp(_, _) => format!(
            "CASE WHEN {q} = 'infinity' THEN '9223372036854775807' \
             WHEN {q} = '-infinity' THEN '-9223372036854775807' \
             ELSE ((extract(epoch from {q}) * 1000000)::int8)::text END"
        ),
        DataType::Time64(_) => format!("((extract(epoch from {q}) * 1000000)::int8)::text"),
        DataType::List(_) => format!("to_json({q})::text"),
        // The type's own output function: keeps char(n) padding, unlike a cast to text.
        _ => format!("CASE WHEN {q} IS NULL THEN NULL ELSE concat({q}) END"),
    }
}

/// One Arrow cell as text comparable with [`pg_text_expr`]; None for NULL.
pub fn arrow_cell_text(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Binary => hex::encode(array.as_binary::<i32>().value(row)),
        DataType::FixedSizeBinary(16) => {
            let h = hex::encode(array.as_fixed_size_binary().value(row));
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
        DataType::Date32 => array
            .as_primitive::<arrow::datatypes::Date32Type>()
            .value(row)
            .to_string(),
        DataType::Timestamp(_, _) => array
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Time64(_) => array
            .as_primitive::<arrow::datatypes::Time64MicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Float64 => float_text(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => float_text(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            let items: Vec<serde_json::Value> = (0..list.len())
                .map(|i| match arrow_cell_text(&list, i) {
                    None => serde_json::Value::Null,
                    Some(s) if list.data_type().is_integer() => {
                        serde_json::Value::Number(s.parse::<i64>().unwrap().into())
                    }
                    Some(s) => serde_json::Value::String(s),
                })
                .collect();
            serde_json::to_string(&items).unwrap()
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap();
            f.value(row).to_string()
        }
    })
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        format!("{v:e}")
    }
}

/// Normalizes a PostgreSQL float text to the form of `float_text`.
fn normalize_pg_float(s: &str, is_f32: bool) -> String {
    match s {
        "NaN" | "Infinity" | "-Infinity" => s.to_owned(),
        _ if is_f32 => float_text(f64::from(s.parse::<f32>().unwrap())),
        _ => float_text(s.parse::<f64>().unwrap()),
    }
}

/// Compares every cell of `batch` with the source rows of `from` (a quoted relation)
/// ordered by `order_by`. Panics naming the first differing cell.
pub fn assert_matches_source(client: &mut Client, from: &str, order_by: &str, batch: &RecordBatch) {
    let schema = batch.schema();
    let exprs: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        // Aliased so that ORDER BY names the source column, not a text rendering of it.
        .map(|(i, f)| format!("{} AS rivet_c{i}", pg_text_expr(f.name(), f.data_type())))
        .collect();
    let sql = format!(
        "SELECT {} FROM {from} ORDER BY {order_by}",
        exprs.join(", ")
    );
    let rows = client
        .query(sql.as_str(), &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(rows.len(), batch.num_rows(), "row count of {from}");
    // A single quoted column is sorted here; for anything else the caller sorts.
    let single = order_by.starts_with('"') && order_by.ends_with('"') && !order_by.contains(',');
    let sorted = if single {
        sort_batch(batch, order_by.trim_matches('"'))
    } else {
        batch.clone()
    };
    for (r, row) in rows.iter().enumerate() {
        for (c, field) in schema.fields().iter().enumerate() {
            let mut expected: Option<String> = row.get(c);
            let actual = arrow_cell_text(sorted.column(c), r);
            if let (Some(e), DataType::Float64 | DataType::Float32) = (&expected, field.data_type())
            {
                expected = Some(normalize_pg_float(
                    e,
                    matches!(field.data_type(), DataType::Float32),
                ));
            }
            assert_eq!(actual, expected, "{from} row {r} column {}", field.name());
        }
    }
}

/// Sorts a batch by an integer column so it lines up with `ORDER BY`.
pub fn sort_batch(batch: &RecordBatch, column: &str) -> RecordBatch {
    let idx = batch.schema().index_of(column).unwrap();
    let indices = arrow::compute::sort_to_indices(batch.column(idx), None, None).unwrap();
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &indices, None).unwrap())
        .collect();
    RecordBatch::try_new(Arc::clone(&batch.schema()), cols).unwrap()
}

/// Makes a pooler behind `url` open `n` server sessions at once (one transaction per
/// client, all overlapping), so that with `server_round_robin` the next transactions of
/// one client are handed different sessions: what a pooler under load does anyway.
pub fn warm_pool(url: &str, n: usize) {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                connect(&url)
                    .batch_execute("SELECT pg_sleep(0.3)")
                    .expect("an overlapping transaction through the pooler");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Asserts that no server session of the pool behind `url` holds a prepared statement:
/// one that outlived its transaction would be executed, or collide, on the session a
/// transaction pooler hands the next client. Asks over the simple protocol (a prepared
/// statement of the check's own would be one), on more sessions than the pool holds.
pub fn assert_no_statement_left_in_the_pool(url: &str) {
    let mut probe = connect(url);
    for _ in 0..8 {
        let rows = probe
            .simple_query(
                "SELECT string_agg(name || ': ' || statement, '; ') FROM pg_prepared_statements",
            )
            .unwrap();
        let leaked = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(leaked, None, "prepared statements left on a pooled session");
    }
}
