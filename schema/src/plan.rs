//! The sealed plan: everything `rivet apply` needs, and nothing it may not see.
//!
//! A plan file is `{format_version, seal, body}`. The seal is sha256 over the canonical
//! JSON of `{format_version, body}` (see [`crate::seal`]), so re-indenting the file keeps
//! it valid while any edited value breaks it. Nothing time- or machine-dependent lives in
//! the body: the same config against the same catalog yields the same digest.
//!
//! Why one long file: it is the plan's type tree, each field documented where it is
//! declared (the JSON Schema and docs/plan-format.md follow it); splitting it would
//! scatter one format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Compression, DestinationKind, Format, SourceConfig};
use crate::types::LogicalType;

/// The plan format this build writes and reads. Bump it when an older executor must
/// refuse plans made by a newer planner.
pub const PLAN_FORMAT_VERSION: u32 = 7;

/// A plan file as written to disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Version of the plan format; executors refuse versions they do not understand.
    pub format_version: u32,
    /// The seal over `format_version` and `body`.
    pub seal: Seal,
    /// The sealed content.
    pub body: PlanBody,
}

/// Proof that the body has not changed since planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Always `sha256`.
    pub algorithm: String,
    /// Lowercase hex sha256 of the canonical JSON of `{format_version, body}`.
    pub digest: String,
}

/// The sealed content of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// How to reach the source, copied from the config; it holds references to
    /// credentials (`url_env`, `url_file`, `password_env`), never secrets.
    pub source: SourceConfig,
    /// Which database the plan was made against, as the source itself reports it;
    /// `apply` refuses the plan when the database it reaches reports another identity.
    pub source_identity: SourceIdentity,
    /// Exports in config order.
    pub exports: Vec<PlannedExport>,
    /// Waves in execution order; each lists the exports that run in it.
    pub waves: Vec<PlannedWave>,
    /// How much of the source an apply may use at once.
    pub concurrency: PlannedConcurrency,
    /// What was found between Rivet and the database when the plan was made (a
    /// transaction-pooling proxy or a direct session), so reviewers see it.
    pub connection_path: ConnectionPath,
}

/// What stands between Rivet and the source database, as observed by the planner. A
/// transaction-pooling proxy (pgBouncer, Odyssey or pgcat in transaction mode,
/// ProxySQL multiplexing) hands the client another server session after every
/// transaction, which breaks anything that lives in a session: Rivet keeps every
/// prepared statement and setting inside one transaction whatever is found, and the
/// plan records the finding so a reviewer knows which path the numbers came through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPath {
    /// How server sessions are handed out to this client connection.
    pub pooling: Pooling,
    /// The proxy product, when the source gave it away (`pgbouncer`, `proxysql`,
    /// `azure_sql_gateway`); None when none was recognized.
    pub proxy: Option<String>,
    /// What was observed, in words (backend ids seen, version comments).
    pub evidence: String,
}

/// How server sessions are handed to a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// One server session for the life of the client connection (a direct connection,
    /// or a proxy in session mode).
    Session,
    /// The server session may change after every transaction.
    Transaction,
}

impl Pooling {
    /// The name used in the plan and in rendered output.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Session => "session",
            Pooling::Transaction => "transaction",
        }
    }
}

/// The source connections an apply may hold at once, and whether the exports of a
/// wave share them by running together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedConcurrency {
    /// Connections open at once over all running exports (chunk readers; the catalog
    /// connection of the staleness check is one more, before any chunk runs).
    pub max_source_connections: u32,
    /// Exports of one wave run at the same time.
    pub concurrent_exports: bool,
}

/// Which server and database a plan was made against: facts a least-privileged reader
/// can see and that stay put while the database lives, by name. A plan applied through
/// a URL that now points at another database (a same-named table elsewhere) is refused
/// instead of exporting that database's rows. The facts per engine (docs/plan-format.md):
/// PostgreSQL `system_identifier`, `database`, `database_oid`; MySQL `server_uuid`,
/// `schema`; MariaDB `server_uid`, `schema`; SQL Server `server_name`, `database`,
/// `database_id`, `service_broker_guid`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIdentity {
    /// Fact name to value, in name order.
    pub facts: std::collections::BTreeMap<String, String>,
}

impl SourceIdentity {
    /// The facts that differ from `live`, as `name: planned …, now …` (a fact missing
    /// on one side counts as differing).
    pub fn differences(&self, live: &SourceIdentity) -> Vec<String> {
        let mut names: Vec<&String> = self.facts.keys().chain(live.facts.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let (planned, now) = (self.facts.get(name), live.facts.get(name));
                (planned != now).then(|| {
                    let show =
                        |v: Option<&String>| v.map_or("(none)".to_owned(), |v| format!("`{v}`"));
                    format!("{name}: planned {}, now {}", show(planned), show(now))
                })
            })
            .collect()
    }
}

/// A barrier-separated group of exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedWave {
    pub wave: u32,
    pub exports: Vec<String>,
}

/// What an export reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Relation {
    /// A catalog table, by exact schema and name.
    Table { schema: String, name: String },
    /// A user query, used as a subquery.
    Query { sql: String },
}

impl Relation {
    /// Human form: `schema.name` or `query`.
    pub fn display_name(&self) -> String {
        match self {
            Relation::Table { schema, name } => format!("{schema}.{name}"),
            Relation::Query { .. } => "query".to_owned(),
        }
    }
}

/// How a planned export is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlannedMode {
    Full,
    Chunked,
}

/// One output column, resolved from the catalog at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedColumn {
    /// Exact column name.
    pub name: String,
    /// Type as declared in the catalog (e.g. `numeric(12,2)`, `public.mood`, `integer[]`).
    pub declared_type: String,
    /// Base type the engine sends on the wire (domains resolved, enums as `enum`).
    pub wire_type: String,
    /// Type in the output files.
    pub logical: LogicalType,
    /// How the value is represented: a native Arrow type, a typed structure, or the
    /// database's canonical text read through [`PlannedColumn::select_expr`].
    pub mapping: ColumnMapping,
    /// The SELECT-list expression the reader sends instead of the bare quoted column
    /// name (a server-side cast or conversion such as `"c"::text`), built by Rivet at
    /// plan time from the quoted identifier; absent when the column is read as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_expr: Option<String>,
    /// Whether the column may hold NULL.
    pub nullable: bool,
    /// Parquet dictionary encoding for this column, chosen from the source's distinct
    /// value statistics (on when values repeat, off for mostly unique values, where a
    /// dictionary costs time and bytes).
    pub dictionary: bool,
}

/// How a column's values are represented in the output, decided at plan time. `plan
/// show` prints it so a reviewer sees which columns did not get a native type, and
/// `types: strict` refuses every `text` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnMapping {
    /// An Arrow type that holds every value of the source type.
    Native,
    /// A typed, lossless structure of the value's parts (PostgreSQL `interval`).
    Structured,
    /// The database's canonical text for the value, produced by a server-side cast
    /// recorded in `select_expr`; the type's input function reads it back equal.
    Text,
}

impl ColumnMapping {
    /// Lowercase name, as in the plan.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnMapping::Native => "native",
            ColumnMapping::Structured => "structured",
            ColumnMapping::Text => "text",
        }
    }
}

/// The integer column an export is chunked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkKey {
    pub column: String,
    /// Key bounds read at plan time (absent for an empty table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Whether the key column may hold NULL; such rows go to the first chunk.
    pub nullable: bool,
    /// Width of each chunk's range in key values.
    pub chunk_size: u64,
}

/// Destination resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedDestination {
    #[serde(rename = "type")]
    pub kind: DestinationKind,
    /// Directory for local destinations, as written in the config (empty otherwise).
    pub path: String,
    /// Bucket or container and key prefix for object stores (absent for `local` and
    /// `stdout`). References to credentials only, never secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<PlannedStore>,
}

/// An object-store location and how to authenticate to it (by reference).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedStore {
    /// S3/GCS bucket, or Azure container.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_style: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Azure storage account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sas_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
}

impl PlannedDestination {
    /// Human form: the directory, `s3://bucket/prefix`, `gs://…`, `azure://account/container/prefix` or `stdout`.
    pub fn display(&self) -> String {
        let join = |a: &str, b: &str| {
            if b.is_empty() {
                a.to_owned()
            } else {
                format!("{a}/{b}")
            }
        };
        match (&self.kind, &self.store) {
            (DestinationKind::S3, Some(s)) => join(&format!("s3://{}", s.bucket), &s.prefix),
            (DestinationKind::Gcs, Some(s)) => join(&format!("gs://{}", s.bucket), &s.prefix),
            (DestinationKind::Azure, Some(s)) => join(
                &format!(
                    "azure://{}/{}",
                    s.account.as_deref().unwrap_or(""),
                    s.bucket
                ),
                &s.prefix,
            ),
            (DestinationKind::Stdout, _) => "stdout".to_owned(),
            _ => self.path.clone(),
        }
    }
}

/// Effective tuning for an export after profile and overrides are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedTuning {
    pub profile: String,
    pub parallelism: u32,
    pub batch_rows: u32,
    pub batch_memory_bytes: u64,
    pub on_batch_memory_exceeded: crate::config::BatchMemoryPolicy,
    pub row_group_bytes: u64,
    pub statement_timeout_ms: u64,
    pub lock_timeout_ms: u64,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
}

/// Half-open key range `[lower, upper)`; a missing bound is unbounded on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<i64>,
    /// Whether rows whose key is NULL belong to this chunk.
    pub include_null: bool,
}

/// How a keyless table is cut into page ranges: its size in pages when planned and the
/// pages each chunk covers. The last chunk has no upper page, so rows in pages added
/// after planning are still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageChunking {
    /// Pages in the table's main fork at plan time.
    pub pages: u64,
    /// Pages per chunk.
    pub pages_per_chunk: u64,
}

/// Half-open page range `[lower, upper)` of a table's heap; no upper bound reads to
/// the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageRange {
    pub lower: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<u64>,
}

fn is_per_chunk(c: &crate::config::Consistency) -> bool {
    *c == crate::config::Consistency::PerChunk
}

/// One unit of work: read, encode, write, record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedChunk {
    /// Stable id `<export>/<seq>`.
    pub id: String,
    pub seq: u32,
    /// Key range (chunked mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<KeyRange>,
    /// Page range (chunked by pages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRange>,
    /// Estimated rows in the chunk.
    pub row_estimate: u64,
    /// Output file name inside the destination.
    pub file: String,
}

/// One export as it will run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedExport {
    pub name: String,
    pub relation: Relation,
    pub mode: PlannedMode,
    pub wave: u32,
    pub columns: Vec<PlannedColumn>,
    /// Primary key columns (empty when the table has none).
    pub primary_key: Vec<String>,
    /// True when the config exported every column (no `columns:` subset); then a column
    /// added to the table since planning also makes the plan stale.
    pub all_columns: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_key: Option<ChunkKey>,
    /// Chunked by physical page ranges (a table without an integer key, PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_chunking: Option<PageChunking>,
    /// Whether every chunk reads one snapshot (`snapshot`) or its own (`per_chunk`).
    #[serde(default, skip_serializing_if = "is_per_chunk")]
    pub consistency: crate::config::Consistency,
    pub row_estimate: u64,
    pub format: Format,
    pub compression: Compression,
    pub destination: PlannedDestination,
    pub tuning: PlannedTuning,
    /// What PostgreSQL `infinity` / `-infinity` dates and timestamps become.
    pub infinity: crate::config::InfinityPolicy,
    /// Columns Rivet appends to every row, after `columns` (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta_columns: Vec<crate::config::MetaColumn>,
    /// Largest output file before a chunk's output continues in another part file
    /// (`part-00003-002.parquet`, …); absent: one file per chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    /// Chunks that read no rows leave no file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_empty: bool,
    /// Repair plans only: the files of the export that stay as they are (listed again
    /// in the rewritten manifest, never touched); `chunks` then holds only the chunks
    /// to rewrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_files: Vec<KeptFile>,
    /// Repair plans only: the digest of the plan whose chunk layout this repairs; the
    /// rewritten manifest keeps naming it, so `validate`/`reconcile`/`repair` of the
    /// original plan go on working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_of: Option<String>,
    /// `on_schema_drift` (absent: `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_schema_drift: Option<crate::config::SchemaDriftPolicy>,
    /// `shape_drift_warn_factor` (absent: 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape_drift_warn_factor: Option<f64>,
    /// Quality gates checked at finalize (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::config::Quality>,
    /// Row window of an `incremental` or `time_window` export, or the log window of a
    /// `cdc` export (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<PlannedWindow>,
    /// Where a `cdc` export reads its log window from (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdc: Option<PlannedCdc>,
    /// A snapshot and a `cdc` export of the same table planned together: the position
    /// from which the changes complete the snapshot (on both exports; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    pub chunks: Vec<PlannedChunk>,
}

/// How a batch snapshot and a `cdc` export of one table fit together (docs/cdc.md,
/// "Starting from a snapshot"): the snapshot is read after `position` (the change
/// window's start, sealed before any apply), so the snapshot followed by every change
/// at or after `position`, replayed by key with the last `_rivet_pos` winning and the
/// snapshot's rows counting as older than every change, is the table with no gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The batch exports of the table (full or chunked, in an earlier wave).
    pub snapshot_exports: Vec<String>,
    /// The `cdc` export whose windows continue them.
    pub cdc_export: String,
    /// The change window's start (its `window.lower`): changes at or after it complete
    /// the snapshot; the ones the snapshot already holds replay to the same rows.
    pub position: String,
}

/// A file a repair plan keeps, exactly as the manifest it came from recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeptFile {
    pub path: String,
    pub chunk_id: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Which rows of the relation an export takes: `lower <= value < upper`, where value is
/// the cursor or time column (`COALESCE`d with the fallback column when there is one).
/// Bounds are canonical text of the column's type (see [`CursorType`]) so a reviewer
/// can read them; a missing bound is unbounded on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedWindow {
    pub kind: WindowKind,
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_column: Option<String>,
    pub value_type: CursorType,
    /// Inclusive lower bound: for `incremental`, the position the last applied window
    /// committed (absent on the first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<String>,
    /// Exclusive upper bound: for `incremental`, the position committed once this
    /// window's files are. Absent when an incremental window is empty (no rows past
    /// the committed position): nothing is read and the position stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<String>,
    /// For `incremental`: this window's number (1 for the first run); its files go to
    /// `window-NNNNN/` under the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
}

/// The windowed modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Incremental,
    TimeWindow,
    /// A range of the source's log: the transactions whose commit position is in
    /// `[lower, upper)` (docs/cdc.md); `column` names the replication slot.
    Cdc,
}

/// Where a `cdc` export reads its log window from, per engine: a PostgreSQL logical
/// replication slot, or the MySQL/MariaDB binary log. The figures are what the
/// reviewer sees in `plan show`; apply reads the log through what is named here, and
/// nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "log", rename_all = "snake_case")]
pub enum PlannedCdc {
    /// PostgreSQL: a `pgoutput` slot and its publication.
    Slot(PlannedSlot),
    /// MySQL/MariaDB: the server's ROW binary log, read as a replica.
    Binlog(PlannedBinlog),
    /// SQL Server: a capture instance's change table, read through
    /// `cdc.fn_cdc_get_all_changes_<capture_instance>`.
    ChangeTable(PlannedChangeTable),
}

/// The capture instance a SQL Server `cdc` export reads, and the window's first LSN.
/// The window is `[from_lsn, window.upper]`, both inclusive, as the change function
/// takes them; `window.lower` is the committed position the window continues from
/// (exclusive; absent on the first window, which starts at the instance's oldest
/// change). `from_lsn` above `window.upper` means an empty window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedChangeTable {
    pub capture_instance: String,
    /// `0x` and 20 hex digits: the first LSN the window reads.
    pub from_lsn: String,
    /// The SQL Server Agent's state at plan time (`Running`, `Stopped`, or why it could
    /// not be read): without it the capture job harvests no changes.
    pub agent: String,
}

impl PlannedCdc {
    /// Whether `_rivet_txid` may be NULL: MySQL transactions logged without a GTID
    /// (`gtid_mode=OFF`) have no id, nor SQL Server changes whose transaction is not in
    /// `cdc.lsn_time_mapping`; PostgreSQL and MariaDB always give one.
    pub fn txid_nullable(&self) -> bool {
        !matches!(self, PlannedCdc::Slot(_))
    }
}

/// The replication slot and publication of a PostgreSQL `cdc` export, and the slot's
/// health at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedSlot {
    /// Logical replication slot (`pgoutput`).
    pub slot: String,
    /// Publication holding the table.
    pub publication: String,
    /// WAL the slot retains at plan time: bytes from its `restart_lsn` to the window's end.
    pub slot_pending_bytes: u64,
    /// The slot's `wal_status` at plan time (`reserved`, `extended`, `unreserved`).
    pub wal_status: String,
    /// Bytes the slot may still fall behind before its WAL may be removed
    /// (`safe_wal_size`; absent when `max_slot_wal_keep_size` is unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_wal_bytes: Option<i64>,
}

/// How a MySQL/MariaDB `cdc` export reads the binary log, and the log's retention at
/// plan time. Nothing on the server holds the log for Rivet (there is no slot): the
/// server purges files by age or by `PURGE BINARY LOGS`, so the plan records how much
/// of the log the window spans and how long the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedBinlog {
    /// The replica id apply registers with (`cdc.server_id`, or derived from the
    /// source and export so two exports never share one).
    pub server_id: u32,
    /// `binlog_row_image` at plan time (always `FULL`: other images are refused).
    pub row_image: String,
    /// Bytes of binary log from the window's start to its end.
    pub window_bytes: u64,
    /// The oldest binary log file still on the server at plan time.
    pub oldest_file: String,
    /// How long the server keeps binary logs, in seconds (absent: until purged by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_seconds: Option<u64>,
    /// The server's GTID position at plan time (MariaDB `gtid_binlog_pos`, MySQL
    /// `gtid_executed`), for the reader; the window itself is file and offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_position: Option<String>,
}

/// Names of the columns a `cdc` export adds after the table's columns.
pub const CDC_COLUMNS: [&str; 4] = ["_rivet_op", "_rivet_pos", "_rivet_commit_ts", "_rivet_txid"];

/// Type of a window column and the text form of its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CursorType {
    /// Decimal integer text (`42`); also `unix` time columns (seconds).
    Integer,
    /// `2026-11-27T00:00:00` (fraction only when not zero), no zone.
    Timestamp,
    /// `2026-11-27T00:00:00Z`, an instant in UTC.
    Timestamptz,
    /// `2026-11-27`.
    Date,
    /// The text itself, compared with the column's collation.
    Text,
    /// A PostgreSQL log position, `16/B374D848` (a `cdc` window).
    Lsn,
    /// A MySQL/MariaDB binary log position, `binlog.000042:1234` (file and byte
    /// offset; a `cdc` window).
    Binlog,
    /// A SQL Server log sequence number, `0x0000002A000001F40003` (a `cdc` window).
    MssqlLsn,
}

/// An incremental export's committed position, as kept in the state database and read
/// at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedCursor {
    pub column: String,
    pub value_type: CursorType,
    /// The upper bound of the last committed window.
    pub position: String,
    /// That window's number.
    pub seq: u32,
}

/// A PostgreSQL log position in its usual text form, `16/B374D848`.
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Reads `16/B374D848` back (the inverse of [`lsn_text`]).
pub fn parse_lsn(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a log position (like `16/B374D848`)");
    let (hi, lo) = text.split_once('/').ok_or_else(bad)?;
    let part = |s: &str| {
        (!s.is_empty() && s.len() <= 8)
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
            .ok_or_else(bad)
    };
    Ok((u64::from(part(hi)?) << 32) | u64::from(part(lo)?))
}

/// A SQL Server LSN (`binary(10)`) as `0x` and 20 uppercase hex digits, the form
/// SQL Server prints; text order is LSN order.
pub fn mssql_lsn_text(lsn: &[u8; 10]) -> String {
    let mut out = String::with_capacity(22);
    out.push_str("0x");
    for b in lsn {
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Reads `0x0000002A000001F40003` back (the inverse of [`mssql_lsn_text`]).
pub fn parse_mssql_lsn(text: &str) -> Result<[u8; 10], String> {
    let bad = || format!("`{text}` is not a SQL Server LSN (like `0x0000002A000001F40003`)");
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 20 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 10];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A position in a MySQL/MariaDB binary log: the file's name and a byte offset in it.
/// Positions order by the file's numeric suffix, then the offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinlogPos {
    /// The file's sequence number (its numeric extension), first so positions order.
    pub index: u64,
    pub file: String,
    pub offset: u64,
}

impl BinlogPos {
    /// A position from a file name such as `binlog.000042` and an offset; a name
    /// without a numeric extension is an error (the server always writes one).
    pub fn new(file: &str, offset: u64) -> Result<Self, String> {
        let index = file
            .rsplit_once('.')
            .map(|(_, n)| n)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                format!("`{file}` is not a binary log file name (like `binlog.000042`)")
            })?;
        if file.contains(':') {
            return Err(format!(
                "`{file}` is not a binary log file name (it holds `:`)"
            ));
        }
        Ok(BinlogPos {
            index,
            file: file.to_owned(),
            offset,
        })
    }

    /// Reads `binlog.000042:1234` back (the inverse of the `Display` form).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a binary log position (like `binlog.000042:1234`)");
        let (file, offset) = text.rsplit_once(':').ok_or_else(bad)?;
        let offset = offset.parse::<u64>().map_err(|_| bad())?;
        BinlogPos::new(file, offset).map_err(|d| format!("{}: {d}", bad()))
    }
}

impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

/// The output columns a `cdc` export adds after the table's columns, with their wire
/// and output types: the operation (`insert`, `update`, `delete`, `truncate`), the
/// change's position (commit LSN and sequence in the transaction, both as fixed-width
/// hex, so text order is log order), the commit time and the transaction id.
pub fn cdc_columns() -> [(&'static str, &'static str, LogicalType); 4] {
    [
        (CDC_COLUMNS[0], "text", LogicalType::Utf8),
        (CDC_COLUMNS[1], "text", LogicalType::Utf8),
        (CDC_COLUMNS[2], "timestamptz", LogicalType::TimestampUtc),
        (CDC_COLUMNS[3], "int8", LogicalType::Int64),
    ]
}

impl PlanBody {
    /// The export with this name.
    pub fn export(&self, name: &str) -> Option<&PlannedExport> {
        self.exports.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_positions_round_trip_through_their_text() {
        for lsn in [0u64, 0x1182_D208, 0x16_B374_D848, u64::MAX] {
            assert_eq!(parse_lsn(&lsn_text(lsn)).unwrap(), lsn);
        }
        assert_eq!(lsn_text(0x16_B374_D848), "16/B374D848");
        let lsn = [0, 0, 0, 0x2A, 0, 0, 1, 0xF4, 0, 3];
        assert_eq!(mssql_lsn_text(&lsn), "0x0000002A000001F40003");
        assert_eq!(parse_mssql_lsn("0x0000002A000001F40003").unwrap(), lsn);
        assert_eq!(parse_mssql_lsn("0x0000002a000001f40003").unwrap(), lsn);
        for bad in [
            "",
            "0x",
            "0000002A000001F40003",
            "0x0000002A000001F4000",
            "0x0000002A000001F4000G",
        ] {
            assert!(parse_mssql_lsn(bad).is_err(), "{bad}");
        }
        let p = BinlogPos::parse("my-bin.log.000042:1234").unwrap();
        assert_eq!(
            (p.index, p.file.as_str(), p.offset),
            (42, "my-bin.log.000042", 1234)
        );
        assert_eq!(p.to_string(), "my-bin.log.000042:1234");
        assert!(
            BinlogPos::parse("binlog.000009:99").unwrap()
                < BinlogPos::parse("binlog.000010:4").unwrap()
        );
        assert!(
            BinlogPos::parse("binlog.1000000:4").unwrap()
                > BinlogPos::parse("binlog.999999:8").unwrap()
        );
        for bad in [
            "",
            "binlog.000001",
            "binlog:4",
            "binlog.:4",
            "binlog.00a1:4",
            "binlog.000001:-1",
            "binlog.000001:",
        ] {
            assert!(BinlogPos::parse(bad).is_err(), "{bad}");
        }
        for bad in ["", "16", "/1", "1/", "x/1", "1/123456789"] {
            assert!(parse_lsn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identities_list_every_fact_that_differs_or_is_missing() {
        let of = |facts: &[(&str, &str)]| SourceIdentity {
            facts: facts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let planned = of(&[("database", "app"), ("system_identifier", "1")]);
        assert!(planned.differences(&planned.clone()).is_empty());
        assert_eq!(
            planned.differences(&of(&[("database", "app_copy"), ("database_oid", "9")])),
            vec![
                "database: planned `app`, now `app_copy`".to_owned(),
                "database_oid: planned (none), now `9`".to_owned(),
                "system_identifier: planned `1`, now (none)".to_owned(),
            ]
        );
    }
}
