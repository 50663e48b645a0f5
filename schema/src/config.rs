//! The YAML configuration a user writes: one source and a list of exports. The types
//! are the single source of truth for the config's JSON Schema (`rivet schema config`)
//! and for the generated reference in `docs/config-reference.md`.
//!
//! Why one long file: it is the config's type tree, each field with the doc comment that
//! becomes its line in the generated reference; splitting it would scatter one schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole `rivet.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database to read from.
    pub source: SourceConfig,
    /// Tuning applied to every export unless the export sets its own `tuning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    /// Whether the exports of one wave run at the same time (default `true`), sharing
    /// `tuning.max_source_connections`; `false` runs them one after another. (The
    /// reference tool ran them as separate processes; Rivet runs them in one process.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_export_processes: Option<bool>,
    /// The tables or queries to export, each to its own destination.
    #[schemars(length(min = 1))]
    pub exports: Vec<ExportConfig>,
}

/// Database engines Rivet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// PostgreSQL 12 and later (`postgres://` URLs).
    Postgres,
    /// MySQL 8 and MariaDB 10.5 and later (`mysql://` URLs).
    Mysql,
    /// SQL Server 2012 and later, Azure SQL (`sqlserver://` URLs); see docs/sources/mssql.md.
    Mssql,
}

/// Where the source database is and how to authenticate. Credentials are only ever
/// given by reference (an environment variable or a file), so a config and the plan made
/// from it can be committed and reviewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Engine of the source database.
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// Connection URL written inline. Must not contain a password; use `url_env` or
    /// `url_file` for URLs that carry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Name of an environment variable holding the connection URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Path of a file whose first line is the connection URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// Host name or IP address (structured form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// TCP port (structured form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User name (structured form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Name of an environment variable holding the password (structured form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Database name (structured form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// TLS to the database. Overrides the URL's `sslmode` / `sslrootcert`. Without
    /// either, `prefer` (TLS when the server offers it, unverified, like libpq).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `all` (default): every column exports, as text through a server-side cast when
    /// no native or structured type holds its values; `strict`: refuse such columns at
    /// plan time instead. An export's own `types` overrides this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<TypesPolicy>,
    /// What PostgreSQL `infinity` / `-infinity` dates and timestamps become: `clamp`
    /// (default) the largest / smallest value of the output type, `null` NULL (counted
    /// and warned). An export's own `infinity` overrides this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infinity: Option<InfinityPolicy>,
    /// MySQL/MariaDB only: export `TINYINT(1)` columns as Boolean (0 is false, any other
    /// value true) instead of Int8 (the default, which keeps every value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tinyint1_as_boolean: Option<bool>,
    /// How long opening a connection may take, from the TCP connect through the TLS
    /// handshake to the end of the login: whole seconds (`10`) or text with a unit
    /// (`"500ms"`, `"10s"`, `"2m"`). Overrides the URL's `connect_timeout` (seconds).
    /// Default 10 s. A connection that times out is not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<TimeLimit>,
}

/// A length of time written as whole seconds (`10`) or as text with a unit (`"500ms"`,
/// `"10s"`, `"2m"`), the way sizes are written in `max_file_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TimeLimit {
    Seconds(u64),
    Text(String),
}

impl TimeLimit {
    /// The length of time, or why the text is not one. Zero is refused: a limit of
    /// nothing would fail every attempt.
    pub fn duration(&self) -> Result<std::time::Duration, String> {
        let how = "write whole seconds (`10`) or a number with a unit: `500ms`, `10s`, `2m`";
        let duration = match self {
            TimeLimit::Seconds(n) => std::time::Duration::from_secs(*n),
            TimeLimit::Text(t) => {
                let text = t.trim();
                let split = text
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(text.len());
                let (number, unit) = text.split_at(split);
                let number: f64 = number
                    .parse()
                    .map_err(|_| format!("`{text}` is not a length of time; {how}"))?;
                let millis = match unit.trim() {
                    "ms" => number,
                    "s" | "" => number * 1e3,
                    "m" | "min" => number * 60e3,
                    other => return Err(format!("unknown time unit `{other}` in `{text}`; {how}")),
                };
                if !millis.is_finite() || millis > 86_400_000.0 {
                    return Err(format!("`{text}` is longer than a day; {how}"));
                }
                std::time::Duration::from_millis(millis.round() as u64)
            }
        };
        if duration.as_secs() > 86_400 {
            return Err(format!(
                "{} s is longer than a day; {how}",
                duration.as_secs()
            ));
        }
        if duration.is_zero() {
            return Err(format!("a limit of zero would fail every attempt; {how}"));
        }
        Ok(duration)
    }
}

/// Whether columns without a native or structured type export as text or are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypesPolicy {
    /// Every column exports; types without a faithful Arrow type as the database's
    /// canonical text, through a server-side cast recorded in the plan.
    #[default]
    All,
    /// Columns that would export as text are refused at plan time, all listed at once.
    Strict,
}

/// What an infinite date or timestamp becomes in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InfinityPolicy {
    /// `infinity` becomes the largest value of the Arrow type and `-infinity` its
    /// negation (DuckDB's own encoding of infinite dates and timestamps), so both stay
    /// distinct from NULL and sort after / before every finite value.
    #[default]
    Clamp,
    /// Both become NULL; each occurrence is counted in the journal and warned.
    Null,
}

/// TLS settings for the source connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// How much TLS to insist on.
    pub mode: TlsMode,
    /// PEM file with the CA certificate(s) that signed the server certificate, for
    /// `verify-ca` and `verify-full` (default: the system's trusted roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// TLS modes, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it; do not verify the certificate.
    Prefer,
    /// Always use TLS; do not verify the certificate.
    Require,
    /// Always use TLS; verify the certificate chain, not the host name.
    VerifyCa,
    /// Always use TLS; verify the chain and that the certificate names the host.
    VerifyFull,
}

/// Export modes Rivet knows. All run on PostgreSQL; `cdc` is refused on MySQL/MariaDB
/// and SQL Server with a message naming docs/cdc.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportMode {
    /// The whole table or query as one chunk, read through a server-side cursor.
    #[default]
    Full,
    /// Key-range chunks on an integer column, each read in its own short transaction.
    Chunked,
    /// Only rows whose `cursor_column` moved past the position committed by the last
    /// run, up to a high-water mark sealed in the plan (docs/semantics.md).
    Incremental,
    /// Only rows whose `time_column` falls in the `days_window` days before `--as-of`.
    TimeWindow,
    /// Change data capture from the source's log (PostgreSQL logical decoding): each
    /// run exports the changes committed in a log window sealed at plan time
    /// (docs/cdc.md).
    Cdc,
}

/// Which point in time an export's chunks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Each chunk reads its own snapshot, taken when its short transaction starts.
    #[default]
    PerChunk,
    /// Every chunk reads the snapshot the export took when it started.
    Snapshot,
}

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Parquet,
    Csv,
}

/// Compression codec. Parquet takes all of them (default `zstd`); CSV takes `gzip`,
/// `zstd` or `none` (default `none`) and compresses the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Snappy,
    Gzip,
    Lz4,
    None,
}

/// Codec presets of the reference tool, mapped onto `compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompressionProfile {
    /// No compression (`compression: none`).
    None,
    /// Snappy (`compression: snappy`; Parquet only).
    Fast,
    /// Zstd (`compression: zstd`).
    Balanced,
    /// Zstd at a high level: refused, Rivet writes Zstd at one level.
    Compact,
}

/// How Parquet row groups are cut, as the reference tool wrote it. Rivet cuts a row
/// group when its buffered data reaches a memory target (`tuning.row_group_mb`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetOptions {
    /// `auto` and `fixed_memory` cut row groups by memory, as Rivet always does;
    /// `fixed_rows` is refused (Rivet does not cut by row count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_strategy: Option<RowGroupStrategy>,
    /// Target row group size in MB, the same as this export's `tuning.row_group_mb`
    /// (giving both with different values is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_row_group_mb: Option<u32>,
}

/// Row group strategies of the reference tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowGroupStrategy {
    /// Rivet's own: by memory.
    Auto,
    /// By a fixed number of rows: refused.
    FixedRows,
    /// By memory (`target_row_group_mb` or `tuning.row_group_mb`).
    FixedMemory,
}

/// One table or query to export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Unique name of the export; used in chunk ids, the manifest and the state journal.
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"))]
    pub name: String,
    /// Table to export: `name` (in the connection's default schema, normally `public`) or
    /// `schema.table`. Names are exact catalog
    /// names (case and spaces kept); quote a dot inside a name as `"my.schema"."my.table"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A SELECT statement to export instead of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Read the SELECT statement from this file (relative paths resolve against the
    /// config file's directory); the plan seals the statement itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_file: Option<String>,
    /// How rows are split into chunks.
    #[serde(default)]
    pub mode: ExportMode,
    /// Integer column to split `chunked` exports on; defaults to a single-column integer
    /// primary key. A PostgreSQL (14+) table with neither is split into ranges of its
    /// heap pages instead (docs/semantics.md says what that guarantees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_column: Option<String>,
    /// Width of each chunk's key range (in key values, not rows), or pages per chunk when
    /// a table is split by heap pages. Defaults to a size computed from the table's
    /// average row width (or the page size) so that a chunk is about the chunk target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub chunk_size: Option<u64>,
    /// Which point in time the chunks of the export read: `per_chunk` (default; each
    /// chunk is its own short snapshot) or `snapshot` (every chunk reads one snapshot
    /// exported when the export starts, held open by one more connection for the export's
    /// duration; PostgreSQL only). See docs/execution.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// Export only these columns, in this order (default: all columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Output format.
    #[serde(default)]
    pub format: Format,
    /// Compression codec (default `zstd` for Parquet, `none` for CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// The reference tool's codec presets: `none`, `fast` (Snappy), `balanced` (Zstd).
    /// `compact` (Zstd at a high level) is refused: Rivet writes Zstd at one level;
    /// use `compression: zstd`. Not together with `compression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_profile: Option<CompressionProfile>,
    /// The reference tool's Parquet row-group options (see [`ParquetOptions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<ParquetOptions>,
    /// Where the files go.
    pub destination: DestinationConfig,
    /// Wave this export runs in (lower first; default 1). Every export of a wave finishes
    /// before the next wave starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub wave: Option<u32>,
    /// Tuning for this export; overrides the top-level `tuning` key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    /// Column whose growth marks new or changed rows in `incremental` mode: an integer,
    /// date, timestamp, timestamptz or text column (or query result column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_column: Option<String>,
    /// Used where `cursor_column` is NULL (`COALESCE(cursor_column, fallback)`), e.g.
    /// `updated_at` falling back to `created_at`; must have the same type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_fallback_column: Option<String>,
    /// How far the window's upper bound stays behind, so that transactions committing
    /// late with an older cursor value are not skipped: seconds for date and time
    /// cursors (the bound is `--as-of` minus this), values for integer cursors (the bound
    /// is the maximum minus this). Not allowed for text cursors. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_lag: Option<u64>,
    /// Column holding each row's time for `time_window` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// How `time_column` stores time: `timestamp` (a date, timestamp or timestamptz
    /// column; default) or `unix` (integer seconds since 1970-01-01 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column_type: Option<TimeColumnType>,
    /// Window length in days for `time_window` mode: rows from `--as-of` (truncated to
    /// the day, UTC) minus this many days, up to but excluding `--as-of`'s day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub days_window: Option<u32>,
    /// Columns Rivet appends to every row: `exported_at` (`_rivet_exported_at`, the
    /// apply run's start, timestamp UTC), `plan_digest` (`_rivet_plan_digest`),
    /// `chunk_id` (`_rivet_chunk_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_columns: Option<Vec<MetaColumn>>,
    /// `all` or `strict` for this export (see the source's `types`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<TypesPolicy>,
    /// `clamp` or `null` for this export (see the source's `infinity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infinity: Option<InfinityPolicy>,
    /// Write no file for a chunk that read no rows (the manifest lists only files with
    /// rows; `_SUCCESS` is still written). Default false: every chunk has a file, an
    /// empty one carrying the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_empty: Option<bool>,
    /// Split a chunk's output into several files of about this size: bytes as an
    /// integer, or text with a unit (`256MB`, `1GiB`; KB/MB/GB are powers of 1000,
    /// KiB/MiB/GiB of 1024). A file can pass the limit by up to one batch (and for
    /// Parquet one row group). Default: one file per chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<FileSize>,
    /// What to do when the relation's columns changed — between plan and apply, or
    /// since the last applied run (remembered in the state database): `fail` (default)
    /// refuses (exit 3); `warn` goes on, logging and journaling the change; `continue`
    /// goes on, journaling it. A planned column that was dropped or retyped, or became
    /// nullable, is always refused: it cannot be exported as planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_schema_drift: Option<SchemaDriftPolicy>,
    /// Warn (and journal `shape_drift`) when the widest text, JSON or binary value of a
    /// column grows past this many times the widest of the last applied run (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub shape_drift_warn_factor: Option<f64>,
    /// Quality gates checked during apply; a failing gate fails the export (exit 4),
    /// is journaled, and `_SUCCESS` is not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Change data capture settings of a `cdc` export (docs/cdc.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdc: Option<CdcConfig>,
}

/// Where a `cdc` export reads the log from. The reference tool's keys are recognized:
/// `checkpoint` (a file) is replaced by the state database, `until_current: true` is
/// what every sealed window does (it ends at the log position read at plan time), and
/// `server_id` is the replica id MySQL/MariaDB binary log capture registers with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdcConfig {
    /// PostgreSQL logical replication slot (`pgoutput`) the export reads; created by
    /// `rivet cdc setup`. Default `rivet_<export name>` (lowercase, `_` for other
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// PostgreSQL publication holding the export's table; created by `rivet cdc
    /// setup`. Default: the slot's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
    /// Not used: Rivet keeps the committed log position in its state database
    /// (`rivet state`), moved only after a window's `_SUCCESS`. Refused with that advice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// `true` (the only value): a window ends at the log position read at plan time.
    /// Continuous capture (`false`) is not offered; schedule `rivet run` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_current: Option<bool>,
    /// SQL Server: the capture instance to read (default: the table's only one; required
    /// while a table has two, during a schema change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_instance: Option<String>,
    /// MySQL/MariaDB: the replica id apply registers with to read the binary log
    /// (1 to 4294967295; default derived from the table and export, so exports never
    /// share one). PostgreSQL uses `slot` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
}

impl CdcConfig {
    /// The slot name for an export: `slot`, or `rivet_<export>` made a valid slot name.
    pub fn slot_name(cfg: Option<&CdcConfig>, export: &str) -> String {
        if let Some(s) = cfg.and_then(|c| c.slot.clone()) {
            return s;
        }
        let mut name: String = format!("rivet_{export}")
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        name.truncate(63);
        name
    }

    /// The publication name for an export: `publication`, or the slot's name.
    pub fn publication_name(cfg: Option<&CdcConfig>, export: &str) -> String {
        cfg.and_then(|c| c.publication.clone())
            .unwrap_or_else(|| CdcConfig::slot_name(cfg, export))
    }
}

/// Quality gates of one export (docs/validation.md#quality-gates).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// Fewest rows the export may have (checked even when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count_min: Option<u64>,
    /// Most rows the export may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count_max: Option<u64>,
    /// Per column: the largest share of NULLs allowed, from 0 to 1 (`{email: 0.01}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_ratio_max: Option<std::collections::BTreeMap<String, f64>>,
    /// Columns whose non-NULL values must be unique across the whole export (checked
    /// with a 64-bit xxHash3 of each typed value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_columns: Option<Vec<String>>,
    /// Most distinct values remembered per unique column (default 10,000,000, about
    /// 80 MB each); past it the gate fails with a message saying so, never silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub unique_max_entries: Option<u64>,
}

/// A size in bytes (`1048576`) or with a unit (`"256MB"`, `"1GiB"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FileSize {
    Bytes(u64),
    Text(String),
}

impl FileSize {
    /// The size in bytes, or why the text is not a size.
    pub fn bytes(&self) -> Result<u64, String> {
        let text = match self {
            FileSize::Bytes(n) => return Ok(*n),
            FileSize::Text(t) => t.trim(),
        };
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| {
            format!("`{text}` is not a size; write e.g. `256MB`, `1GiB` or a number of bytes")
        })?;
        let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" | "k" => 1e3,
            "mb" | "m" => 1e6,
            "gb" | "g" => 1e9,
            "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "tib" => 1024.0f64.powi(4),
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ))
            }
        };
        Ok((number * factor).round() as u64)
    }
}

/// How an export reacts to changed columns (see `on_schema_drift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaDriftPolicy {
    /// Refuse the plan (exit 3).
    #[default]
    Fail,
    /// Go on; log a warning and journal `schema_drift`.
    Warn,
    /// Go on; journal `schema_drift` only.
    Continue,
}

/// A column Rivet adds to every exported row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetaColumn {
    /// `_rivet_exported_at`: when the apply run started (timestamp, UTC).
    ExportedAt,
    /// `_rivet_plan_digest`: the sha256 of the plan that wrote the row.
    PlanDigest,
    /// `_rivet_chunk_id`: the chunk that read the row (`orders/00003`).
    ChunkId,
}

impl MetaColumn {
    /// The column's name in the output files.
    pub fn column_name(self) -> &'static str {
        match self {
            MetaColumn::ExportedAt => "_rivet_exported_at",
            MetaColumn::PlanDigest => "_rivet_plan_digest",
            MetaColumn::ChunkId => "_rivet_chunk_id",
        }
    }
}

/// How a `time_window` export's `time_column` stores time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeColumnType {
    /// A date, timestamp or timestamptz column.
    #[default]
    Timestamp,
    /// Integer seconds since 1970-01-01 UTC.
    Unix,
}

/// Destination kinds Rivet writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// A directory on the local filesystem (`path`).
    Local,
    /// Amazon S3 or an S3-compatible store (`bucket`, `prefix`, `region`, `endpoint`).
    S3,
    /// Google Cloud Storage (`bucket`, `prefix`, `credentials_file`).
    Gcs,
    /// Azure Blob Storage (`account`, `container`, `prefix`).
    Azure,
    /// Standard output: one export with one chunk, for piping into another program.
    Stdout,
}

/// Where an export's files are written. Credentials are given only by reference
/// (environment variable names, file paths); with none, each cloud's standard chain is
/// used (docs/destinations/).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Kind of destination.
    #[serde(rename = "type")]
    pub kind: DestinationKind,
    /// Directory for `local` destinations; relative paths resolve against the working
    /// directory of `rivet apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bucket for `s3` and `gcs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket or container (`exports/orders`); objects are
    /// written under `<prefix>/part-00001.parquet`, `<prefix>/manifest.json`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `s3`: the bucket's region (default: `AWS_REGION` / `AWS_DEFAULT_REGION`, else
    /// `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `s3`: endpoint of an S3-compatible store (`http://127.0.0.1:9000`); `azure`:
    /// blob endpoint (e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `s3`: address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most
    /// S3-compatible stores want this). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// `s3`: environment variable holding the access key id (with `secret_key_env`);
    /// default: the standard AWS chain (env, profile, web identity, instance metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_env: Option<String>,
    /// `s3`: environment variable holding the secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
    /// `s3`: environment variable holding a session token (temporary credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
    /// `gcs`: service-account JSON key file; default: application default credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// `azure`: storage account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `azure`: blob container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `azure`: environment variable holding the account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_env: Option<String>,
    /// `azure`: environment variable holding a SAS token (`sv=…&sig=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sas_token_env: Option<String>,
    /// `azure`: environment variable holding an OAuth bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
}

/// Source-protection and memory settings. Every key is optional; `profile` supplies the
/// defaults and explicit keys override it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// Preset: `safe` (small chunks, one connection), `balanced` (default), `fast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Chunks of one export read at the same time, each on its own connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub parallelism: Option<u32>,
    /// Rows per Arrow batch handed from the reader to the writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub batch_size: Option<u32>,
    /// Memory target for one batch; the batch is cut when it reaches this size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_batch_memory_mb: Option<u32>,
    /// What the memory target means: `auto_shrink` (default) cuts a batch as soon as it
    /// reaches `max_batch_memory_mb`; `warn` cuts by `batch_size` rows only and logs and
    /// journals batches that outgrow the target; `fail` cuts by rows and fails the chunk
    /// when a batch outgrows the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_batch_memory_exceeded: Option<BatchMemoryPolicy>,
    /// Target size of a Parquet row group before compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub row_group_mb: Option<u32>,
    /// `statement_timeout` set with `SET LOCAL` in every read transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub statement_timeout_ms: Option<u64>,
    /// `lock_timeout` set with `SET LOCAL` in every read transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub lock_timeout_ms: Option<u64>,
    /// Retries of a chunk after a transient source error (dropped connection, deadlock,
    /// serialization failure, lock timeout, too many connections, server restarting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_retries: Option<u32>,
    /// First retry delay; each further retry doubles it (at most 30 s), with jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retry_backoff_ms: Option<u64>,
    /// Target bytes of source data per chunk when `chunk_size` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub chunk_target_mb: Option<u32>,
    /// Source connections an apply may hold at once, over all exports running together
    /// (top-level `tuning` only). Default by profile: safe 1, balanced 2, fast 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub max_source_connections: Option<u32>,
    /// The reference tool's process-wide RSS guard (pause reading past this many MB).
    /// Rivet has none: its memory is bounded by construction (`max_batch_memory_mb` per
    /// batch, a bounded queue per reading chunk, `parallelism` chunks at once), so
    /// planning refuses this key and says to set those instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_threshold_mb: Option<u32>,
    /// The reference tool's name for `max_batch_memory_mb`: the memory target of one
    /// batch, batches being cut when they reach it. Giving both with different values
    /// is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub batch_size_memory_mb: Option<u32>,
}

/// Policy for batches that outgrow `max_batch_memory_mb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchMemoryPolicy {
    #[default]
    AutoShrink,
    Warn,
    Fail,
}

/// Tuning presets. See `docs/execution.md` for what each sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Safe,
    #[default]
    Balanced,
    Fast,
}
