//! Plans, runs and the journal: what ran, when, how it ended, and every step it took.

use rusqlite::{params, OptionalExtension};

use super::{ExportProgress, JournalEntry, RunRecord, StateStore, NOW};
use crate::error::ExecError;

impl StateStore {
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

    /// Marks every run still `running` as `interrupted`, with its in-flight chunks.
    /// Only an apply that holds the state database's lock may call this: while it holds
    /// the lock no other apply runs, so a `running` row is a process that died (killed,
    /// crashed, its machine gone) — whatever its pid or host.
    pub fn mark_abandoned_runs(&self) -> Result<usize, ExecError> {
        let chunks = self
            .conn
            .execute(
                &format!("UPDATE chunks SET status = 'interrupted', finished_at = {NOW} WHERE status = 'started' AND run_id IN (SELECT run_id FROM runs WHERE status = 'running')"),
                [],
            )
            .map_err(self.err())?;
        let runs = self
            .conn
            .execute(
                &format!("UPDATE runs SET status = 'interrupted', finished_at = {NOW}, error = 'the process ended without finishing (killed or crashed)' WHERE status = 'running'"),
                [],
            )
            .map_err(self.err())?;
        tracing::debug!(runs, chunks, "marked abandoned runs as interrupted");
        Ok(runs)
    }

    /// Whether a run with this id is recorded here.
    pub fn has_run(&self, run_id: &str) -> Result<bool, ExecError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM runs WHERE run_id = ?1",
                [run_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(self.err())
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
                .map_err(|e| {
                    self.error(format!(
                        "the stored body of plan {digest} cannot be read ({e}); it was written by another version of rivet"
                    ))
                })?
                .exports
                .iter()
                .map(|e| (e.name.clone(), e.chunks.len() as u64))
                .collect(),
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

/// One committed chunk of a run, for metrics.
#[derive(Debug, Clone)]
pub struct ChunkTiming {
    pub export: String,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    /// None for chunks committed by versions that did not record it.
    pub read_ms: Option<u64>,
}

impl StateStore {
    /// A run by id.
    pub fn run(&self, run_id: &str) -> Result<Option<super::RunRecord>, ExecError> {
        self.conn
            .query_row(
                "SELECT run_id, plan_digest, plan_path, started_at, finished_at, status, error FROM runs WHERE run_id = ?1",
                [run_id],
                |r| {
                    Ok(super::RunRecord {
                        run_id: r.get(0)?,
                        plan_digest: r.get(1)?,
                        plan_path: r.get(2)?,
                        started_at: r.get(3)?,
                        finished_at: r.get(4)?,
                        status: r.get(5)?,
                        error: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// The chunks a run committed.
    pub fn chunk_timings(&self, run_id: &str) -> Result<Vec<ChunkTiming>, ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT export, rows, bytes, duration_ms, read_ms FROM chunks WHERE run_id = ?1 AND status = 'committed' ORDER BY chunk_id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(ChunkTiming {
                    export: r.get(0)?,
                    rows: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                    duration_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                    read_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// When each export was last finalized, in any run (`export_finalized` entries).
    pub fn last_success(&self) -> Result<Vec<(String, String)>, ExecError> {
        let mut stmt = self
            .conn
            .prepare("SELECT export, max(at) FROM journal WHERE event = 'export_finalized' AND export IS NOT NULL GROUP BY export ORDER BY export")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}
