//! The state database and journal (SQLite, `.rivet_state.db`). It answers "what has been
//! committed for this plan?" for `--resume`, and keeps an append-only journal of every
//! step for `rivet state` and audits. It stores plan bodies, digests, counts and
//! checksums — never credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use rivet_schema::plan::CommittedCursor;

use crate::error::ExecError;

/// Handle on the state database.
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
}

/// An export's columns (`name type [not null]` lines) and widest value per text,
/// JSON and binary column, as its last finalized run left them.
pub type RecordedShape = (Vec<String>, BTreeMap<String, u64>);

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
CREATE TABLE IF NOT EXISTS shapes (
    export TEXT PRIMARY KEY,
    columns TEXT NOT NULL,
    widths TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    run_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL
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
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // State databases made before `max_file_size` lack the `parts` column.
        let has_parts: bool = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('chunks') WHERE name = 'parts'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if !has_parts {
            conn.execute_batch("ALTER TABLE chunks ADD COLUMN parts TEXT")
                .map_err(err)?;
        }
        Ok(StateStore {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> ExecError + '_ {
        move |e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// The committed position of an incremental export, if it has one.
    pub fn cursor(&self, export: &str) -> Result<Option<CommittedCursor>, ExecError> {
        let row = self
            .conn
            .query_row(
                "SELECT cursor_column, value_type, position, seq FROM cursors WHERE export = ?1",
                params![export],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.err())?;
        row.map(|(column, value_type, position, seq)| {
            let value_type = serde_json::from_value(serde_json::Value::String(value_type))
                .map_err(|e| ExecError::State {
                    path: self.path.display().to_string(),
                    detail: format!("cursor of export {export}: {e}"),
                })?;
            Ok(CommittedCursor {
                column,
                value_type,
                position,
                seq,
            })
        })
        .transpose()
    }

    /// Every committed incremental position, by export name.
    pub fn cursors(&self) -> Result<Vec<(String, CommittedCursor)>, ExecError> {
        let names: Vec<String> = self
            .conn
            .prepare("SELECT export FROM cursors ORDER BY export")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.err())?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(c) = self.cursor(&name)? {
                out.push((name, c));
            }
        }
        Ok(out)
    }

    /// Records an incremental export's new position and journals the move, in one
    /// transaction. Called only after the window's files, manifest and `_SUCCESS` are
    /// durable, so the position is never ahead of the committed files.
    pub fn commit_cursor(
        &mut self,
        export: &str,
        cursor: &CommittedCursor,
        digest: &str,
        run_id: &str,
    ) -> Result<(), ExecError> {
        let value_type = serde_json::to_value(cursor.value_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let tx = self.conn.transaction().map_err(|e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })?;
        tx.execute(
            &format!(
                "INSERT INTO cursors (export, cursor_column, value_type, position, seq, plan_digest, run_id, committed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW}) \
                 ON CONFLICT (export) DO UPDATE SET cursor_column = excluded.cursor_column, \
                 value_type = excluded.value_type, position = excluded.position, seq = excluded.seq, \
                 plan_digest = excluded.plan_digest, run_id = excluded.run_id, committed_at = excluded.committed_at"
            ),
            params![export, cursor.column, value_type, cursor.position, cursor.seq, digest, run_id],
        )
        .and_then(|_| {
            tx.execute(
                &format!("INSERT INTO journal (run_id, at, event, export, detail) VALUES (?1, {NOW}, 'cursor_committed', ?2, ?3)"),
                params![
                    run_id,
                    export,
                    serde_json::json!({"column": cursor.column, "position": cursor.position, "window": cursor.seq}).to_string()
                ],
            )
        })
        .and_then(|_| tx.commit())
        .map_err(|e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// The columns (`name type nullability` lines) and widest values recorded by the
    /// last finalized run of an export.
    pub fn shape(&self, export: &str) -> Result<Option<RecordedShape>, ExecError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT columns, widths FROM shapes WHERE export = ?1",
                params![export],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        Ok(row.map(|(c, w)| {
            (
                serde_json::from_str(&c).unwrap_or_default(),
                serde_json::from_str(&w).unwrap_or_default(),
            )
        }))
    }

    /// Remembers an export's shape after a finalized run.
    pub fn record_shape(
        &self,
        export: &str,
        columns: &[String],
        widths: &BTreeMap<String, u64>,
        digest: &str,
        run_id: &str,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO shapes (export, columns, widths, plan_digest, run_id, recorded_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, {NOW}) ON CONFLICT (export) DO UPDATE SET \
                     columns = excluded.columns, widths = excluded.widths, plan_digest = excluded.plan_digest, \
                     run_id = excluded.run_id, recorded_at = excluded.recorded_at"
                ),
                params![
                    export,
                    serde_json::to_string(columns).unwrap_or_default(),
                    serde_json::to_string(widths).unwrap_or_default(),
                    digest,
                    run_id
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Forgets an incremental export's position: its next plan starts from the
    /// beginning (window 1). Returns whether there was one.
    pub fn reset_cursor(&self, export: &str) -> Result<bool, ExecError> {
        let n = self
            .conn
            .execute("DELETE FROM cursors WHERE export = ?1", params![export])
            .map_err(self.err())?;
        if n > 0 {
            self.conn
                .execute(
                    &format!("INSERT INTO journal (run_id, at, event, export) VALUES ('', {NOW}, 'cursor_reset', ?1)"),
                    params![export],
                )
                .map_err(self.err())?;
        }
        Ok(n > 0)
    }

    /// Keeps the plan body for audit (`rivet run` plans are not written anywhere else).
    pub fn remember_plan(&self, digest: &str, body_json: &str) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!("INSERT OR IGNORE INTO plans (plan_digest, body, first_seen_at) VALUES (?1, ?2, {NOW})"),
                params![digest, body_json],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The stored plan body for a digest.
    pub fn plan_body(&self, digest: &str) -> Result<Option<String>, ExecError> {
        self.conn
            .query_row(
                "SELECT body FROM plans WHERE plan_digest = ?1",
                [digest],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Marks runs left `running` by a process that no longer exists as `interrupted`, and
    /// their in-flight chunks too, so `rivet state` tells the truth after a crash.
    pub fn mark_interrupted_runs(&self) -> Result<(), ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_id FROM runs WHERE status = 'running'")
            .map_err(self.err())?;
        let running: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        for run_id in running {
            let pid = run_id
                .rsplit('-')
                .next()
                .and_then(|pid| pid.parse::<u32>().ok());
            let alive = match pid {
                // Only Linux tells us cheaply whether a pid is alive; elsewhere, assume it is.
                Some(pid) if cfg!(target_os = "linux") => {
                    Path::new(&format!("/proc/{pid}")).exists()
                }
                _ => true,
            };
            if !alive {
                self.conn
                    .execute(
                        &format!("UPDATE runs SET status = 'interrupted', finished_at = {NOW}, error = 'the process ended without finishing (killed or crashed)' WHERE run_id = ?1"),
                        [&run_id],
                    )
                    .map_err(self.err())?;
                self.conn
                    .execute(
                        &format!("UPDATE chunks SET status = 'interrupted', finished_at = {NOW} WHERE run_id = ?1 AND status = 'started'"),
                        [&run_id],
                    )
                    .map_err(self.err())?;
            }
        }
        Ok(())
    }

    pub fn start_run(&self, run_id: &str, digest: &str, plan_path: &str) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!("INSERT INTO runs (run_id, plan_digest, plan_path, started_at, status) VALUES (?1, ?2, ?3, {NOW}, 'running')"),
                params![run_id, digest, plan_path],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn finish_run(
        &self,
        run_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!("UPDATE runs SET finished_at = {NOW}, status = ?2, error = ?3 WHERE run_id = ?1"),
                params![run_id, status, error],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Appends a journal entry.
    pub fn journal(
        &self,
        run_id: &str,
        event: &str,
        export: Option<&str>,
        chunk_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!("INSERT INTO journal (run_id, at, event, export, chunk_id, detail) VALUES (?1, {NOW}, ?2, ?3, ?4, ?5)"),
                params![run_id, event, export, chunk_id, detail],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn chunk_started(
        &self,
        digest: &str,
        run_id: &str,
        export: &str,
        chunk_id: &str,
        file: &str,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO chunks (plan_digest, chunk_id, export, status, run_id, file, started_at) \
                     VALUES (?1, ?2, ?3, 'started', ?4, ?5, {NOW}) \
                     ON CONFLICT (plan_digest, chunk_id) DO UPDATE SET status = 'started', run_id = ?4, \
                       started_at = {NOW}, finished_at = NULL, rows = NULL, bytes = NULL, sha256 = NULL, \
                       duration_ms = NULL, error = NULL"
                ),
                params![digest, chunk_id, export, run_id, file],
            )
            .map_err(self.err())?;
        self.journal(run_id, "chunk_started", Some(export), Some(chunk_id), None)
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    pub fn chunk_committed(
        &self,
        digest: &str,
        run_id: &str,
        export: &str,
        chunk_id: &str,
        rows: u64,
        files: &[CommittedFile],
        duration_ms: u64,
        detail: Option<&str>,
    ) -> Result<(), ExecError> {
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        let (sha256, parts) = match files {
            [one] => (one.sha256.clone(), None),
            many => (
                String::new(),
                Some(serde_json::to_string(many).expect("files always serialize")),
            ),
        };
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        tx.execute(
            &format!(
                "UPDATE chunks SET status = 'committed', rows = ?3, bytes = ?4, sha256 = ?5, \
                 duration_ms = ?6, parts = ?7, finished_at = {NOW} WHERE plan_digest = ?1 AND chunk_id = ?2"
            ),
            params![
                digest,
                chunk_id,
                rows as i64,
                bytes as i64,
                sha256,
                duration_ms as i64,
                parts
            ],
        )
        .map_err(self.err())?;
        let summary = format!(
            "{{\"rows\":{rows},\"bytes\":{bytes},\"files\":{},\"sha256\":\"{sha256}\",\"duration_ms\":{duration_ms}{}}}",
            files.len(),
            detail.map(|d| format!(",{d}")).unwrap_or_default()
        );
        tx.execute(
            &format!("INSERT INTO journal (run_id, at, event, export, chunk_id, detail) VALUES (?1, {NOW}, 'chunk_committed', ?2, ?3, ?4)"),
            params![run_id, export, chunk_id, summary],
        )
        .map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    pub fn chunk_failed(
        &self,
        digest: &str,
        run_id: &str,
        export: &str,
        chunk_id: &str,
        error: &str,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!("UPDATE chunks SET status = 'failed', error = ?3, finished_at = {NOW} WHERE plan_digest = ?1 AND chunk_id = ?2"),
                params![digest, chunk_id, error],
            )
            .map_err(self.err())?;
        self.journal(
            run_id,
            "chunk_failed",
            Some(export),
            Some(chunk_id),
            Some(error),
        )
    }

    /// Chunks of a plan that are committed.
    pub fn committed_chunks(&self, digest: &str) -> Result<Vec<CommittedChunk>, ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT chunk_id, export, file, rows, bytes, sha256, parts FROM chunks WHERE plan_digest = ?1 AND status = 'committed' ORDER BY chunk_id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([digest], |r| {
                let rows = r.get::<_, i64>(3)? as u64;
                let bytes = r.get::<_, i64>(4)? as u64;
                let parts: Option<String> = r.get(6)?;
                let files = match parts {
                    Some(json) => serde_json::from_str(&json).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            6,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    None => vec![CommittedFile {
                        file: r.get(2)?,
                        rows,
                        bytes,
                        sha256: r.get(5)?,
                    }],
                };
                Ok(CommittedChunk {
                    chunk_id: r.get(0)?,
                    export: r.get(1)?,
                    rows,
                    bytes,
                    files,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Most recent runs first.
    pub fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>, ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_id, plan_digest, plan_path, started_at, finished_at, status, error FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(RunRecord {
                    run_id: r.get(0)?,
                    plan_digest: r.get(1)?,
                    plan_path: r.get(2)?,
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    status: r.get(5)?,
                    error: r.get(6)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Per-export progress of a plan, with totals from the stored plan body.
    pub fn export_progress(&self, digest: &str) -> Result<Vec<ExportProgress>, ExecError> {
        let totals: Vec<(String, u64)> = match self.plan_body(digest)? {
            Some(body) => serde_json::from_str::<rivet_schema::PlanBody>(&body)
                .map(|b| {
                    b.exports
                        .iter()
                        .map(|e| (e.name.clone(), e.chunks.len() as u64))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for (export, total) in totals {
            let (committed, failed, rows, bytes): (i64, i64, i64, i64) = self
                .conn
                .query_row(
                    "SELECT COALESCE(SUM(status = 'committed'), 0), COALESCE(SUM(status = 'failed'), 0), \
                            COALESCE(SUM(CASE WHEN status = 'committed' THEN rows END), 0), \
                            COALESCE(SUM(CASE WHEN status = 'committed' THEN bytes END), 0) \
                     FROM chunks WHERE plan_digest = ?1 AND export = ?2",
                    params![digest, export],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(self.err())?;
            out.push(ExportProgress {
                export,
                chunks_total: total,
                chunks_committed: committed as u64,
                chunks_failed: failed as u64,
                rows: rows as u64,
                bytes: bytes as u64,
            });
        }
        Ok(out)
    }

    /// Journal entries of a run, oldest first.
    pub fn journal_of(&self, run_id: &str) -> Result<Vec<JournalEntry>, ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, run_id, at, event, export, chunk_id, detail FROM journal WHERE run_id = ?1 ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(JournalEntry {
                    seq: r.get(0)?,
                    run_id: r.get(1)?,
                    at: r.get(2)?,
                    event: r.get(3)?,
                    export: r.get(4)?,
                    chunk_id: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}
