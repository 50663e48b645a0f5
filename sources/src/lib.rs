//! Database drivers: connect, introspect the catalog, and read one chunk as a stream of
//! Arrow `RecordBatch`es with faithful types.
//!
//! **Architecture invariant:** this crate knows nothing about plans, files or state. It
//! is handed connection settings, table names and column lists, and it hands back
//! catalog facts and Arrow batches. Adding an engine means adding a module here.
//!
//! Why one long file: the engine-neutral vocabulary every engine module shares (read
//! requests, filters, the one SELECT builder); kept together so engines depend on one
//! place.

pub mod arrow_types;
mod builders;
pub mod conn_string;
pub mod connection;
mod engines;
pub mod error;
pub mod health;
pub mod memory;
pub mod mssql;
pub mod mysql;
pub mod postgres;
pub mod source;
pub mod survey;

pub use conn_string::{inline_url_problems, kind_of_url};
pub use connection::ConnectionSettings;
pub use engines::{
    explain_chunk, open_catalog, open_chunk_source, open_snapshot_holder, open_survey,
    source_health,
};
pub use error::SourceError;
pub use postgres::cdc::{advance_slot, setup as cdc_setup, teardown as cdc_teardown, CdcObjects};
pub use rivet_schema::config::InfinityPolicy;
pub use rivet_schema::plan::ColumnMapping;
use rivet_schema::plan::CursorType;
pub use source::{
    Catalog, ChunkSource, KeyBounds, ReadFailure, SinkClosed, SnapshotHolder, TableRequest,
};
pub use survey::{ConnectionHeadroom, IndexFacts, Survey};

/// What a catalog type resolves to: the wire form the reader decodes, the output type
/// (or why the column cannot be exported), how the value is represented, and the
/// server-side conversion the SELECT list applies. Shared by the engines' type mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub wire_type: String,
    pub logical: Result<rivet_schema::LogicalType, String>,
    pub mapping: ColumnMapping,
    /// The server-side conversion, rendered around the quoted column name by the
    /// engine (`Engine::select_expr`); None reads the column as is.
    pub read: Option<ReadExpr>,
}

/// A server-side conversion of a column in the SELECT list, engine-neutral so the type
/// mappings can be tested without SQL text; each engine renders it around the quoted
/// column name when the plan is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadExpr {
    /// A cast to this type: `"c"::T` on PostgreSQL, `CAST(c AS T)` elsewhere.
    Cast(String),
    /// A function applied to the column: `F(c)`.
    Call(String),
    /// A SQL Server CLR method of the value: `[c].M()`.
    Method(String),
    /// SQL Server `sql_variant`: each value's text in the conversion style that keeps
    /// it exactly for its base type. Only SQL Server produces it.
    VariantText,
}

impl Resolved {
    /// A type read natively.
    pub fn ok(wire: &str, logical: rivet_schema::LogicalType) -> Resolved {
        Resolved {
            wire_type: wire.to_owned(),
            logical: Ok(logical),
            mapping: ColumnMapping::Native,
            read: None,
        }
    }

    /// A type read through a server-side conversion into a native output type.
    pub fn converted(wire: &str, logical: rivet_schema::LogicalType, read: ReadExpr) -> Resolved {
        Resolved {
            read: Some(read),
            ..Resolved::ok(wire, logical)
        }
    }

    /// A type exported as the database's canonical text through `read`.
    pub fn text(wire: &str, logical: rivet_schema::LogicalType, read: ReadExpr) -> Resolved {
        Resolved {
            mapping: ColumnMapping::Text,
            ..Resolved::converted(wire, logical, read)
        }
    }

    /// A type that cannot be exported, and why.
    pub fn refused(wire: &str, reason: String) -> Resolved {
        Resolved {
            wire_type: wire.to_owned(),
            logical: Err(reason),
            mapping: ColumnMapping::Native,
            read: None,
        }
    }
}

/// A column as the source describes it, with the output type Rivet chose for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumn {
    pub name: String,
    /// Type as declared in the catalog (`numeric(12,2)`, `public.mood`, `integer[]`).
    pub declared_type: String,
    /// Base type the engine sends (domains resolved; enums and text-like types as `text`).
    pub wire_type: String,
    /// Output type, or why the column cannot be exported as is.
    pub logical: Result<rivet_schema::LogicalType, String>,
    /// Native, structured, or the database's text through a server-side cast.
    pub mapping: ColumnMapping,
    /// The SELECT-list expression (already quoted and rendered for the engine) when
    /// the column is read through a server-side conversion.
    pub select_expr: Option<String>,
    pub nullable: bool,
    /// Planner statistics on distinct values (`pg_stats.n_distinct`: a count when
    /// positive, minus the fraction of rows when negative); None without statistics.
    pub n_distinct: Option<f64>,
}

/// Catalog facts about one table, gathered in batched queries.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub columns: Vec<SourceColumn>,
    /// Primary key columns in key order (empty when there is none).
    pub primary_key: Vec<String>,
    /// Row estimate from the planner statistics (0 when never analyzed).
    pub row_estimate: u64,
    /// Average bytes per row on disk, from statistics (None when unknown).
    pub avg_row_bytes: Option<u64>,
}

/// What to read for one chunk: the relation, the columns, and an optional key range.
#[derive(Debug, Clone)]
pub struct ChunkRead {
    /// `FROM` target: a quoted table or a parenthesized user query.
    pub relation: RelationRef,
    /// Columns to read, in output order.
    pub columns: Vec<ReadColumn>,
    /// Integer key range (chunked mode); None reads everything.
    pub range: Option<RangeFilter>,
    /// Heap page range `[lower, upper)` (chunked by pages; PostgreSQL only).
    pub pages: Option<(u64, Option<u64>)>,
    /// A snapshot exported by a [`SnapshotHolder`] that the read transaction adopts
    /// before its first statement (PostgreSQL only).
    pub snapshot: Option<String>,
    /// Cursor or time window (`incremental`, `time_window` modes).
    pub window: Option<WindowFilter>,
    /// Rows per emitted batch at most.
    pub batch_rows: usize,
    /// Approximate bytes per emitted batch at most.
    pub batch_bytes: usize,
    /// `SET LOCAL statement_timeout` in milliseconds.
    pub statement_timeout_ms: u64,
    /// `SET LOCAL lock_timeout` in milliseconds.
    pub lock_timeout_ms: u64,
    /// Whole-relation reads go through a server-side cursor fetched in short statements.
    pub use_cursor: bool,
    /// What to do when a batch outgrows `batch_bytes`.
    pub on_batch_memory_exceeded: BatchMemoryPolicy,
    /// What PostgreSQL `infinity` dates and timestamps become.
    pub infinity: InfinityPolicy,
    /// A `cdc` export's log window: read changes instead of rows (then `columns` ends
    /// with the four change columns of [`rivet_schema::plan::cdc_columns`]).
    pub cdc: Option<CdcWindow>,
}

/// The log window of a `cdc` read: the changes of `table` committed inside the window
/// of `log`.
#[derive(Debug, Clone)]
pub struct CdcWindow {
    pub schema: String,
    pub table: String,
    /// Primary key columns: an update that changes them is written as a delete of the
    /// old key followed by the update, so replaying by key stays exact.
    pub key: Vec<String>,
    pub log: CdcLog,
}

/// Which log a window is read from, with its bounds.
#[derive(Debug, Clone)]
pub enum CdcLog {
    /// PostgreSQL: transactions whose commit LSN is in `[start, end)`, through `slot`
    /// and `publication`.
    Slot {
        slot: String,
        publication: String,
        start: u64,
        end: u64,
    },
    /// MySQL/MariaDB: the binary log's events from `start` up to `end` (both at
    /// transaction boundaries), read as replica `server_id`.
    Binlog {
        server_id: u32,
        start: rivet_schema::plan::BinlogPos,
        end: rivet_schema::plan::BinlogPos,
    },
    /// SQL Server: the changes of `capture_instance` with LSNs in `[from, to]`.
    ChangeTable {
        capture_instance: String,
        from: [u8; 10],
        to: [u8; 10],
    },
}

/// A prerequisite of change capture the source does not meet: what is wrong and the
/// statement or action that fixes it. One function per engine decides these, so `rivet
/// plan`, `rivet cdc setup` and `rivet doctor` say the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The export's config key a plan reports it under (`mode` or `table`).
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

/// What planning a SQL Server `cdc` export needs to know about change data capture on
/// the database and the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTableFacts {
    /// `sys.databases.is_cdc_enabled` for the current database.
    pub database_enabled: bool,
    /// The table's capture instances (at most two), with the columns each captures.
    pub instances: Vec<CaptureInstance>,
    /// `sys.fn_cdc_get_max_lsn()`: the end of the window planned now.
    pub max_lsn: [u8; 10],
    /// `sys.fn_cdc_increment_lsn(committed)` when a committed position was given.
    pub after_committed: Option<[u8; 10]>,
    /// The SQL Server Agent's `status_desc`, or why it could not be read.
    pub agent: Result<String, String>,
}

/// One capture instance of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureInstance {
    pub name: String,
    /// `sys.fn_cdc_get_min_lsn(name)`: the oldest change still in its change table.
    pub min_lsn: [u8; 10],
    pub captured_columns: Vec<String>,
}

/// What planning (and reading) a MySQL/MariaDB `cdc` export needs to know about the
/// binary log and the table's columns as the log carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogFacts {
    /// `log_bin` is ON.
    pub log_bin: bool,
    pub binlog_format: String,
    pub row_image: String,
    /// The server's own `server_id` (a replica id must differ from it).
    pub server_id: u32,
    /// The end of the log now (`SHOW MASTER STATUS`).
    pub current: rivet_schema::plan::BinlogPos,
    /// The binary log files on the server, oldest first (each as its start, offset 0),
    /// with their sizes.
    pub files: Vec<(rivet_schema::plan::BinlogPos, u64)>,
    pub retention_seconds: Option<u64>,
    pub gtid_position: Option<String>,
    /// The table's columns in their ordinal order, as the log's row images hold them.
    pub columns: Vec<BinlogColumn>,
}

/// One column of a table as a binary log row image carries it (by position, not by
/// name), with what decoding needs: ENUM/SET labels and the character set of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogColumn {
    pub name: String,
    /// `information_schema.COLUMNS.DATA_TYPE` (`int`, `varchar`, `enum`, ...).
    pub data_type: String,
    /// `COLUMN_TYPE` (`enum('a','b')`, `int(10) unsigned`, ...).
    pub column_type: String,
    /// `CHARACTER_SET_NAME` of text columns.
    pub charset: Option<String>,
}

/// What planning a `cdc` export needs to know about the source's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcFacts {
    /// `wal_level`.
    pub wal_level: String,
    /// `pg_current_wal_lsn()`: the end of the window planned now.
    pub current_lsn: u64,
    /// The slot, when it exists.
    pub slot: Option<SlotFacts>,
    /// Whether the publication exists, and whether it holds the table.
    pub publication: Option<bool>,
    /// The table's `relreplident` (`d`, `n`, `f`, `i`).
    pub replica_identity: u8,
}

/// A replication slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFacts {
    pub plugin: String,
    pub database: String,
    pub slot_type: String,
    pub confirmed_flush: Option<u64>,
    pub restart_lsn: Option<u64>,
    pub wal_status: String,
    pub safe_wal_size: Option<i64>,
}

/// How `batch_bytes` bounds a batch (the reference tool's `on_batch_memory_exceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMemoryPolicy {
    /// Cut the batch as soon as it reaches the memory target (a single row larger than
    /// the target becomes a batch of its own, counted in [`ReadStats`]).
    AutoShrink,
    /// Cut batches by row count only; count batches that outgrow the target.
    Warn,
    /// Cut batches by row count only; fail the chunk when a batch outgrows the target.
    Fail,
}

/// A table or a query to read from.
#[derive(Debug, Clone)]
pub enum RelationRef {
    Table { schema: String, name: String },
    Query(String),
}

/// One column of a read, with the wire and output types fixed at plan time.
#[derive(Debug, Clone)]
pub struct ReadColumn {
    pub name: String,
    pub wire_type: String,
    pub logical: rivet_schema::LogicalType,
    pub nullable: bool,
    /// The plan's SELECT-list expression for the column (a server-side conversion),
    /// sent as `expr AS name`; None selects the column by name.
    pub select_expr: Option<String>,
}

/// A typed value Rivet puts into a `WHERE` clause: a key bound or a window bound. Each
/// engine renders it as a bound parameter or as a literal it encodes itself (never
/// spliced text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Int(i64),
    /// Microseconds since 1970-01-01 00:00, no zone.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00 UTC.
    TimestampUtc(i64),
    /// Days since 1970-01-01.
    Date(i32),
    Text(String),
}

impl SqlValue {
    /// Parses a plan's canonical bound text for a window column type.
    pub fn parse(value_type: CursorType, text: &str) -> Result<SqlValue, String> {
        let bad = |what: &str| format!("`{text}` is not a valid {what} bound");
        Ok(match value_type {
            CursorType::Integer => SqlValue::Int(text.parse().map_err(|_| bad("integer"))?),
            CursorType::Timestamp => SqlValue::Timestamp(
                chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .map_err(|_| bad("timestamp"))?
                    .and_utc()
                    .timestamp_micros(),
            ),
            CursorType::Timestamptz => SqlValue::TimestampUtc(
                chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| bad("timestamptz"))?
                    .timestamp_micros(),
            ),
            CursorType::Date => SqlValue::Date(
                (chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad("date"))?
                    - chrono::NaiveDate::default())
                .num_days() as i32,
            ),
            CursorType::Text => SqlValue::Text(text.to_owned()),
            CursorType::Lsn | CursorType::Binlog | CursorType::MssqlLsn => {
                return Err(format!("`{text}` is a log position, not a row bound"))
            }
        })
    }

    /// The canonical text a plan carries (the inverse of [`SqlValue::parse`]).
    pub fn canonical(&self) -> String {
        match self {
            SqlValue::Int(i) => i.to_string(),
            SqlValue::Timestamp(us) => naive(*us).format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            SqlValue::TimestampUtc(us) => naive(*us).format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
            SqlValue::Date(d) => date(*d).format("%Y-%m-%d").to_string(),
            SqlValue::Text(t) => t.clone(),
        }
    }

    /// The value as SQL date/time text (`2026-11-27 08:00:00.000000`, with `+00:00`
    /// for UTC instants), or the integer or text itself, for engines that bind text
    /// and cast it.
    pub fn sql_text(&self) -> String {
        match self {
            SqlValue::Int(i) => i.to_string(),
            SqlValue::Timestamp(us) => naive(*us).format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            SqlValue::TimestampUtc(us) => {
                naive(*us).format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
            }
            SqlValue::Date(d) => date(*d).format("%Y-%m-%d").to_string(),
            SqlValue::Text(t) => t.clone(),
        }
    }
}

/// The civil date-time of microseconds since the epoch (saturating at chrono's range).
pub fn naive(us: i64) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .naive_utc()
}

fn date(days: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::default() + chrono::TimeDelta::days(i64::from(days))
}

/// `value >= lower AND value < upper` on a cursor or time column, where value is
/// `COALESCE(column, fallback)` when a fallback column is given. Rows whose value is
/// NULL are outside every window.
#[derive(Debug, Clone)]
pub struct WindowFilter {
    pub column: String,
    pub fallback: Option<String>,
    pub lower: Option<SqlValue>,
    pub upper: SqlValue,
}

impl WindowFilter {
    /// The predicate, with identifiers quoted by `quote` and bounds rendered by `bound`.
    pub fn predicate(
        &self,
        quote: impl Fn(&str) -> String,
        mut bound: impl FnMut(&SqlValue) -> String,
    ) -> String {
        let expr = self.expr(&quote);
        let mut conds = Vec::new();
        if let Some(lo) = &self.lower {
            conds.push(format!("{expr} >= {}", bound(lo)));
        }
        conds.push(format!("{expr} < {}", bound(&self.upper)));
        conds.join(" AND ")
    }

    /// The compared expression: the column, or `COALESCE(column, fallback)`.
    pub fn expr(&self, quote: impl Fn(&str) -> String) -> String {
        match &self.fallback {
            Some(fb) => format!("COALESCE({}, {})", quote(&self.column), quote(fb)),
            None => quote(&self.column),
        }
    }
}

/// `column >= lower AND column < upper`, plus NULL keys when `include_null`.
#[derive(Debug, Clone)]
pub struct RangeFilter {
    pub column: String,
    pub lower: Option<i64>,
    pub upper: Option<i64>,
    pub include_null: bool,
}

impl RangeFilter {
    /// The `WHERE` predicate for this range: `k >= lo AND k < hi` (each side optional),
    /// `OR k IS NULL` when NULL keys belong here. `quote` quotes the column for the
    /// engine; `bound` renders a bound as a literal or as a placeholder (recording the
    /// parameter), so no value is ever spliced in unchecked.
    pub fn predicate(
        &self,
        quote: impl Fn(&str) -> String,
        mut bound: impl FnMut(&SqlValue) -> String,
    ) -> String {
        let k = quote(&self.column);
        let mut conds = Vec::new();
        if let Some(lo) = self.lower {
            conds.push(format!("{k} >= {}", bound(&SqlValue::Int(lo))));
        }
        if let Some(hi) = self.upper {
            conds.push(format!("{k} < {}", bound(&SqlValue::Int(hi))));
        }
        let range = if conds.is_empty() {
            format!("{k} IS NOT NULL")
        } else {
            conds.join(" AND ")
        };
        if self.include_null {
            format!("(({range}) OR {k} IS NULL)")
        } else {
            range
        }
    }
}

impl ChunkRead {
    /// Refuses what only the PostgreSQL reader does (page ranges, an exported snapshot):
    /// a plan that asks another engine for them was not made by this planner.
    pub fn refuse_postgres_only(&self, label: &str) -> Result<(), SourceError> {
        let what = if self.pages.is_some() {
            "a page-range chunk"
        } else if self.snapshot.is_some() {
            "an exported snapshot"
        } else {
            return Ok(());
        };
        Err(SourceError::Query {
            context: label.to_owned(),
            detail: format!(
                "the plan asks for {what}, which only PostgreSQL sources read; plan again with this version of rivet"
            ),
            transient: false,
        })
    }

    /// `SELECT cols FROM rel [WHERE key range AND window]`, the only SQL shape a chunk
    /// read sends. `quote` quotes identifiers for the engine; `bound` renders each bound
    /// as a literal or as a placeholder (recording the parameter).
    pub fn select_sql(
        &self,
        quote: impl Fn(&str) -> String,
        bound: impl FnMut(&SqlValue) -> String,
    ) -> String {
        let cols = self
            .columns
            .iter()
            .map(|c| match &c.select_expr {
                Some(expr) => format!("{expr} AS {}", quote(&c.name)),
                None => quote(&c.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {cols} FROM {}{}",
            self.relation.from_clause(&quote),
            self.where_clause(&quote, bound)
        )
    }

    /// ` WHERE …` for the key range and the window (empty when there is neither).
    pub fn where_clause(
        &self,
        quote: impl Fn(&str) -> String,
        mut bound: impl FnMut(&SqlValue) -> String,
    ) -> String {
        let mut conds = Vec::new();
        if let Some(r) = &self.range {
            conds.push(r.predicate(&quote, &mut bound));
        }
        if let Some((lower, upper)) = self.pages {
            // PostgreSQL TID range scan (14+): integers from the plan, nothing else.
            conds.push(match upper {
                Some(upper) => {
                    format!("ctid >= '({lower},0)'::tid AND ctid < '({upper},0)'::tid")
                }
                None => format!("ctid >= '({lower},0)'::tid"),
            });
        }
        if let Some(w) = &self.window {
            conds.push(w.predicate(&quote, &mut bound));
        }
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    }
}

impl RelationRef {
    /// The `FROM` target: a quoted `schema.table`, or the user query as a subquery.
    pub fn from_clause(&self, quote: impl Fn(&str) -> String) -> String {
        match self {
            RelationRef::Table { schema, name } => format!("{}.{}", quote(schema), quote(name)),
            RelationRef::Query(sql) => {
                format!("({}) AS rivet_query", sql.trim().trim_end_matches(';'))
            }
        }
    }
}

impl BatchMemoryPolicy {
    /// Whether a batch of `rows` rows and `bytes` wire bytes must be cut now (`force` at
    /// the end of a chunk), and whether it is over the memory target; `fail` turns an
    /// over-target batch into an error naming `label`.
    pub fn decide(
        self,
        req: &ChunkRead,
        rows: usize,
        bytes: usize,
        force: bool,
        label: &str,
    ) -> Result<(bool, bool), SourceError> {
        let over = bytes > req.batch_bytes;
        let cut_by_memory = match self {
            BatchMemoryPolicy::AutoShrink => bytes >= req.batch_bytes,
            BatchMemoryPolicy::Warn => false,
            BatchMemoryPolicy::Fail if over => {
                return Err(SourceError::BatchMemoryExceeded {
                    relation: label.to_owned(),
                    rows,
                    bytes,
                    target: req.batch_bytes,
                })
            }
            BatchMemoryPolicy::Fail => false,
        };
        Ok((
            rows > 0 && (force || rows >= req.batch_rows || cut_by_memory),
            over,
        ))
    }
}

/// Counters a read reports besides its batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub rows: u64,
    /// Values that could not be represented and were written as NULL (e.g. `infinity`
    /// dates), per column name.
    pub nulled_values: Vec<(String, u64)>,
    /// Batches that grew past the memory target (see [`BatchMemoryPolicy`]).
    pub batches_over_memory_target: u64,
}
