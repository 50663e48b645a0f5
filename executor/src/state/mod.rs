//! The state database and journal (SQLite, `.rivet_state.db`). It answers "what has been
//! committed for this plan?" for `--resume`, and keeps an append-only journal of every
//! step for `rivet state` and audits. It stores plan bodies, digests, counts and
//! checksums — never credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::error::ExecError;

mod chunks;
mod positions;
mod runs;

pub use chunks::ChunkCommit;
pub use positions::{ShapeColumn, ShapeKey};

/// Handle on the state database.
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

/// An export's columns and widest value per text, JSON and binary column, as its last
/// finalized run wrote them to its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedShape {
    pub columns: Vec<ShapeColumn>,
    pub widths: BTreeMap<String, u64>,
}

/// A committed chunk as recorded in state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedChunk {
    pub chunk_id: String,
    pub export: String,
    pub rows: u64,
    pub bytes: u64,
    /// The chunk's files: one, several with `max_file_size`, none with `skip_empty`
    /// and no rows.
    pub files: Vec<CommittedFile>,
}

/// One file a committed chunk wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CommittedFile {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// One run, as `rivet state` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub plan_digest: String,
    pub plan_path: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

/// Progress of one export of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct ExportProgress {
    pub export: String,
    pub chunks_total: u64,
    pub chunks_committed: u64,
    pub chunks_failed: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// One journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub run_id: String,
    pub at: String,
    pub event: String,
    pub export: Option<String>,
    pub chunk_id: Option<String>,
    pub detail: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plans (
    plan_digest TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    first_seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    plan_digest TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    plan_digest TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    export TEXT NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT NOT NULL,
    file TEXT NOT NULL,
    rows INTEGER,
    bytes INTEGER,
    sha256 TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    error TEXT,
    parts TEXT,
    read_ms INTEGER,
    PRIMARY KEY (plan_digest, chunk_id)
);
CREATE TABLE IF NOT EXISTS cursors (
    export TEXT PRIMARY KEY,
    cursor_column TEXT NOT NULL,
    value_type TEXT NOT NULL,
    position TEXT NOT NULL,
    seq INTEGER NOT NULL,
    plan_digest TEXT NOT NULL,
    run_id TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS export_shapes (
    export TEXT NOT NULL,
    relation TEXT NOT NULL,
    destination TEXT NOT NULL,
    columns TEXT NOT NULL,
    widths TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    run_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (export, relation, destination)
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    export TEXT,
    chunk_id TEXT,
    detail TEXT
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl StateStore {
    /// Opens (creating if needed) the state database at `path`.
    pub fn open(path: &Path) -> Result<Self, ExecError> {
        let err = |e: rusqlite::Error| ExecError::State {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ExecError::State {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // NORMAL in WAL mode: a commit survives any crash of this process (the WAL is
        // written before commit returns) and the file is never corrupted; only a power
        // loss or OS crash can undo the last commits, and those are records that a
        // resume recomputes (a chunk is re-read into the same file name, an export is
        // finalized again). The one record that cannot be recomputed, an incremental
        // cursor, is committed with FULL (see `commit_cursor`). FULL everywhere cost
        // ~5 fsyncs per export, which dominated applies of many small tables.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // Columns added since the first state databases were made.
        for (column, ddl) in [
            ("parts", "ALTER TABLE chunks ADD COLUMN parts TEXT"),
            ("read_ms", "ALTER TABLE chunks ADD COLUMN read_ms INTEGER"),
        ] {
            let present: bool = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('chunks') WHERE name = ?1",
                    [column],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(err)?
                > 0;
            if !present {
                conn.execute_batch(ddl).map_err(err)?;
            }
        }
        Ok(StateStore {
            conn,
            path: path.to_owned(),
        })
    }

    /// Opens an existing state database without writing to it (for `rivet state`,
    /// `rivet journal` and other read commands): no schema is created, no run is
    /// touched. A missing file is an error that says where Rivet looked.
    pub fn open_read_only(path: &Path) -> Result<Self, ExecError> {
        if !path.exists() {
            return Err(ExecError::State {
                path: path.display().to_string(),
                detail: "no state database here; it is created by `rivet apply` (give --state to read another one)".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.busy_timeout(Duration::from_secs(30)).map(|_| c))
        .map_err(|e| ExecError::State {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(StateStore {
            conn,
            path: path.to_owned(),
        })
    }

    /// The state database's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A state error with this database's path.
    fn error(&self, detail: impl Into<String>) -> ExecError {
        ExecError::State {
            path: self.path.display().to_string(),
            detail: detail.into(),
        }
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> ExecError + '_ {
        move |e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }
}
