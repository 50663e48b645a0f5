//! Read-only health of a source database, for deciding whether now is a good time to
//! extract from it: what is running, what waits on locks, which transactions sit idle,
//! what retains write-ahead or binary logs, and how hard the server checkpoints. Each
//! engine fills a [`HealthReport`] from its own system views (`postgres/health.rs`,
//! `mysql/health.rs`, `mssql/health.rs`) on a connection that cannot write where the
//! engine allows it; [`ChunkExplain`] is the database's own EXPLAIN of a chunk's read.
//! `rivet-mcp` serves both; nothing here changes the source.

use serde::Serialize;
use serde_json::{Map, Value};

/// One row of a system view, as column name → JSON value.
pub type HealthRow = Map<String, Value>;

/// One group of facts (active queries, lock waits, replication slots, …).
#[derive(Debug, Clone, Serialize)]
pub struct HealthSection {
    /// Stable name: `active_queries`, `lock_waits`, `idle_in_transaction`, …
    pub name: String,
    /// False when the facts could not be read (not installed, no privilege, version);
    /// `note` then says why.
    pub available: bool,
    /// What the rows mean, or why they are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub rows: Vec<HealthRow>,
}

impl HealthSection {
    /// A section that was read.
    pub fn rows(name: &str, rows: Vec<HealthRow>) -> HealthSection {
        HealthSection {
            name: name.to_owned(),
            available: true,
            note: None,
            rows,
        }
    }

    /// A section that could not be read, and why.
    pub fn missing(name: &str, why: String) -> HealthSection {
        HealthSection {
            name: name.to_owned(),
            available: false,
            note: Some(why),
            rows: Vec::new(),
        }
    }

    /// Adds an explanation to a section that was read.
    pub fn with_note(mut self, note: impl Into<String>) -> HealthSection {
        self.note = Some(note.into());
        self
    }
}

/// The numbers a load decision needs, summed up from the sections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pressure {
    /// Client sessions running a statement now (this one excluded).
    pub active_queries: u64,
    /// Sessions waiting on a lock another session holds.
    pub lock_waits: u64,
    /// Sessions inside a transaction doing nothing.
    pub idle_in_transaction: u64,
    /// The longest-running statement, in seconds.
    pub longest_query_seconds: f64,
    /// The oldest idle-in-transaction transaction, in seconds.
    pub longest_idle_transaction_seconds: f64,
    /// Client connections open now, and the server's limit when known.
    pub connections: u64,
    pub max_connections: Option<u64>,
    /// Replication slots whose retained log is at risk or already lost (PostgreSQL
    /// `wal_status` `unreserved`/`lost`).
    pub replication_slots_at_risk: u64,
}

/// The health of one source, as `rivet-mcp`'s `source_health` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `postgres`, `mysql`, `mariadb` or `mssql`.
    pub engine: String,
    pub server_version: String,
    /// Whether the session that read this report was read-only, as the server says
    /// (PostgreSQL `transaction_read_only`, MySQL/MariaDB `tx_read_only`); SQL Server
    /// has no read-only session and says false.
    pub read_only_session: bool,
    pub pressure: Pressure,
    pub sections: Vec<HealthSection>,
}

/// The SQL one chunk read sends, with the database's plan for it (not executed).
#[derive(Debug, Clone, Serialize)]
pub struct ChunkExplain {
    pub engine: String,
    /// The SELECT exactly as the chunk reader builds it.
    pub sql: String,
    /// Bound parameters, in order, as text (MySQL/MariaDB and SQL Server bind the
    /// bounds; PostgreSQL writes them as typed literals into the SQL).
    pub parameters: Vec<String>,
    /// The database's EXPLAIN output, one row per line or step.
    pub plan: Vec<HealthRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Seconds as a JSON number, or 0 when the value is not a number.
pub(crate) fn seconds_of(row: &HealthRow, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The largest value of a numeric column across rows (0 for none).
pub(crate) fn max_of(rows: &[HealthRow], key: &str) -> f64 {
    rows.iter().map(|r| seconds_of(r, key)).fold(0.0, f64::max)
}

/// The pressure figures every engine derives the same way from its sections:
/// `query_key` names the active queries' duration column; slots at risk are
/// PostgreSQL's own (0 elsewhere).
pub(crate) fn pressure_of(
    sections: &[HealthSection],
    query_key: &str,
    replication_slots_at_risk: u64,
) -> Pressure {
    let active = rows_of(sections, "active_queries");
    let idle = rows_of(sections, "idle_in_transaction");
    let conns = rows_of(sections, "connections").first();
    let count = |key: &str| conns.and_then(|r| r.get(key)).and_then(Value::as_u64);
    Pressure {
        active_queries: active.len() as u64,
        lock_waits: rows_of(sections, "lock_waits").len() as u64,
        idle_in_transaction: idle.len() as u64,
        longest_query_seconds: max_of(active, query_key),
        longest_idle_transaction_seconds: max_of(idle, "transaction_seconds"),
        connections: count("connections").unwrap_or(0),
        max_connections: count("max_connections"),
        replication_slots_at_risk,
    }
}

/// The rows of a section that was read (none for a missing one).
pub(crate) fn rows_of<'a>(sections: &'a [HealthSection], name: &str) -> &'a [HealthRow] {
    sections
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.rows.as_slice())
        .unwrap_or(&[])
}
