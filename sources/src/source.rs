//! The two traits every engine implements. Planner and executor talk only to these;
//! adding an engine means one new module implementing them and one arm in each opener
//! of [`crate::engines`].

use arrow::record_batch::RecordBatch;
use rivet_schema::plan::SourceIdentity;

use crate::error::SourceError;
use crate::{ChunkRead, ReadStats, RelationRef, SourceColumn, TableInfo};

/// A table to describe; `schema: None` means the connection's default schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRequest {
    pub schema: Option<String>,
    pub name: String,
}

/// `(min, max)` of a chunk key; both None for an empty relation.
pub type KeyBounds = (Option<i64>, Option<i64>);

/// The consumer of a chunk's batches has stopped (its own error explains why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkClosed;

/// A chunk read fails either in the source or because the batch sink stopped.
#[derive(Debug)]
pub enum ReadFailure {
    Source(SourceError),
    SinkClosed,
}

impl From<SourceError> for ReadFailure {
    fn from(e: SourceError) -> Self {
        ReadFailure::Source(e)
    }
}

/// Catalog facts for planning and staleness checks, in batched round trips.
pub trait Catalog {
    /// Which server and database this connection reaches, from facts a least-privileged
    /// reader can see (see [`SourceIdentity`] for the facts per engine). Sealed in the
    /// plan by the planner and compared by the executor before anything is read.
    fn identity(&mut self) -> Result<SourceIdentity, SourceError>;
    /// Whether a proxy pools server sessions between this client and the database
    /// (see [`rivet_schema::plan::ConnectionPath`]), from what the server shows: the
    /// backend/connection id across transactions and connections, version comments.
    fn connection_path(&mut self) -> Result<rivet_schema::plan::ConnectionPath, SourceError>;
    /// Describes every requested table, in request order; a missing table is
    /// [`SourceError::TableNotFound`].
    fn describe_tables(&mut self, requests: &[TableRequest])
        -> Result<Vec<TableInfo>, SourceError>;
    /// Describes a query's result columns without running it.
    fn describe_query(&mut self, sql: &str) -> Result<Vec<SourceColumn>, SourceError>;
    /// `min` and `max` of each `(relation, integer column)`, under a statement timeout.
    fn key_bounds(
        &mut self,
        requests: &[(RelationRef, String)],
        statement_timeout_ms: u64,
    ) -> Result<Vec<KeyBounds>, SourceError>;
    /// How many bytes of source data a chunk should hold when the config sets no
    /// `chunk_target_mb`, given the profile's target. Engines whose chunk is one
    /// streamed statement held open while rows are decoded ask for less.
    fn default_chunk_target_bytes(&self, profile_target: u64) -> u64 {
        profile_target
    }
    /// The table's heap size in pages and the page size in bytes, when the engine can
    /// read a table by page ranges (PostgreSQL 14+ TID range scans on a plain table or
    /// materialized view). `Ok(Err(reason))` means it cannot, so the planner can say why a keyless table is
    /// not chunked.
    fn heap_pages(
        &mut self,
        _table: &RelationRef,
    ) -> Result<Result<(u64, u64), String>, SourceError> {
        Ok(Err(
            "only PostgreSQL 14 and later read a table by page ranges".into(),
        ))
    }
    /// Checks that the connection may read the relation, reading no rows
    /// (`SELECT 1 FROM rel LIMIT 0`); used by `rivet doctor`.
    fn can_read(&mut self, relation: &RelationRef) -> Result<(), SourceError>;
    /// What planning a `cdc` export of `schema.table` through `slot` and `publication`
    /// needs to know about the log. Engines without change capture say so.
    fn cdc_facts(
        &mut self,
        schema: &str,
        table: &str,
        slot: &str,
        publication: &str,
    ) -> Result<crate::CdcFacts, SourceError> {
        let _ = (schema, table, slot, publication);
        Err(SourceError::Query {
            context: "planning a `cdc` export".into(),
            detail: "this engine has no change capture in this version of rivet (docs/cdc.md)"
                .into(),
            transient: false,
        })
    }
    /// What planning a SQL Server `cdc` export of `schema.table` needs to know about
    /// change data capture; `committed` is the position the next window continues from.
    fn change_table_facts(
        &mut self,
        schema: &str,
        table: &str,
        committed: Option<&[u8; 10]>,
    ) -> Result<crate::ChangeTableFacts, SourceError> {
        let _ = (schema, table, committed);
        Err(SourceError::Query {
            context: "planning a `cdc` export".into(),
            detail: "this engine has no change tables".into(),
            transient: false,
        })
    }
    /// What planning a MySQL/MariaDB `cdc` export of `schema.table` needs to know about
    /// the binary log. With `probe_as` (a replica id), also asks for the log as that
    /// replica once, non-blocking at its end, so a missing REPLICATION SLAVE grant is a
    /// plan error rather than an apply failure. Engines without a binary log say so.
    fn binlog_facts(
        &mut self,
        schema: &str,
        table: &str,
        probe_as: Option<u32>,
    ) -> Result<crate::BinlogFacts, SourceError> {
        let _ = (schema, table, probe_as);
        Err(SourceError::Query {
            context: "planning a `cdc` export".into(),
            detail: "this engine has no binary log".into(),
            transient: false,
        })
    }
    /// The largest value of `column` (`COALESCE(column, fallback)` when given) as text,
    /// under a statement timeout; None for an empty relation or all NULLs. Used for
    /// integer and text incremental cursors.
    fn max_value(
        &mut self,
        relation: &RelationRef,
        column: &str,
        fallback: Option<&str>,
        statement_timeout_ms: u64,
    ) -> Result<Option<String>, SourceError>;
}

/// The pooling verdict from the server-session ids one client connection saw over three
/// round trips and the id a second connection saw meanwhile: a direct connection keeps
/// its session for life and two live connections never share one, so a change, or a
/// shared id, means a transaction pooler. `session` names the server session
/// (`server backend`), `probe` the function read (`pg_backend_pid`), `unit` the round
/// trips (`transactions`). The evidence names no id: plans stay deterministic.
pub(crate) fn pooling_verdict<T: PartialEq>(
    own: [T; 3],
    other: T,
    (session, probe, unit): (&str, &str, &str),
) -> (rivet_schema::plan::Pooling, String) {
    use rivet_schema::plan::Pooling;
    let [a, b, c] = own;
    if a != b || b != c {
        (
            Pooling::Transaction,
            format!("the {session} ({probe}) changed between {unit} on one connection"),
        )
    } else if other == a {
        (
            Pooling::Transaction,
            format!("a second client connection was served by the first one's {session} while the first stayed open"),
        )
    } else {
        (
            Pooling::Session,
            format!("one {session} served three {unit} on one connection, and a second connection had its own"),
        )
    }
}

/// An identity from `(name, value)` facts.
pub(crate) fn identity_of<'a>(
    facts: impl IntoIterator<Item = (&'a str, String)>,
) -> SourceIdentity {
    SourceIdentity {
        facts: facts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

/// `column` or `COALESCE(column, fallback)`, quoted for an engine.
pub(crate) fn cursor_expr(
    quote: impl Fn(&str) -> String,
    column: &str,
    fallback: Option<&str>,
) -> String {
    match fallback {
        Some(fb) => format!("COALESCE({}, {})", quote(column), quote(fb)),
        None => quote(column),
    }
}

/// A transaction held open on its own connection so that other connections can read
/// the same snapshot (`consistency: snapshot`): every chunk read of the export adopts
/// [`SnapshotHolder::snapshot_id`]. Dropping the holder ends the transaction.
pub trait SnapshotHolder: Send {
    /// The exported snapshot's id, for [`crate::ChunkRead::snapshot`].
    fn snapshot_id(&self) -> &str;
}

/// Reads chunks as Arrow batches on one connection.
pub trait ChunkSource: Send {
    /// Reads one chunk, handing each finished batch to `sink`. `label` names the chunk
    /// in error messages (e.g. `export orders, chunk orders/00003`).
    fn read_chunk(
        &mut self,
        req: &ChunkRead,
        label: &str,
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<ReadStats, ReadFailure>;
}
