//! Chunk rows: which chunks of a plan are started, committed (with their files, rows,
//! bytes and checksums) or failed. `--resume` and finalize read them.

use rusqlite::params;

use super::{CommittedChunk, CommittedFile, StateStore, NOW};
use crate::error::ExecError;

/// A committed chunk, as [`StateStore::chunk_committed`] records it.
#[derive(Debug)]
pub struct ChunkCommit<'a> {
    pub digest: &'a str,
    pub run_id: &'a str,
    pub export: &'a str,
    pub chunk_id: &'a str,
    pub rows: u64,
    pub files: &'a [CommittedFile],
    /// From the start of the read to the commit.
    pub duration_ms: u64,
    /// The source read alone (the chunk's statement as the client saw it).
    pub read_ms: u64,
    /// Extra facts for the journal entry (`nulled_values`, …).
    pub notes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl StateStore {
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

    /// Records a chunk whose files are durable under their final names, and its journal
    /// entry, in one transaction.
    pub fn chunk_committed(&self, c: &ChunkCommit<'_>) -> Result<(), ExecError> {
        let bytes: u64 = c.files.iter().map(|f| f.bytes).sum();
        let (sha256, parts) = match c.files {
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
                 duration_ms = ?6, parts = ?7, read_ms = ?8, run_id = ?9, finished_at = {NOW} \
                 WHERE plan_digest = ?1 AND chunk_id = ?2"
            ),
            params![
                c.digest,
                c.chunk_id,
                c.rows as i64,
                bytes as i64,
                sha256,
                c.duration_ms as i64,
                parts,
                c.read_ms as i64,
                c.run_id
            ],
        )
        .map_err(self.err())?;
        let mut summary = serde_json::json!({
            "rows": c.rows,
            "bytes": bytes,
            "files": c.files.len(),
            "sha256": sha256,
            "duration_ms": c.duration_ms,
            "read_ms": c.read_ms,
        });
        if let Some(notes) = &c.notes {
            for (k, v) in notes {
                summary[k.as_str()] = v.clone();
            }
        }
        tx.execute(
            &format!("INSERT INTO journal (run_id, at, event, export, chunk_id, detail) VALUES (?1, {NOW}, 'chunk_committed', ?2, ?3, ?4)"),
            params![c.run_id, c.export, c.chunk_id, summary.to_string()],
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
}
