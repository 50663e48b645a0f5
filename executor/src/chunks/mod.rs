//! Running the chunks of one export. Each worker owns one source connection and reads
//! its chunks one after another; every chunk's batches go through a bounded channel to
//! an encoder thread that writes and finishes the file ([`read`]). The worker starts
//! reading the next chunk while the previous chunk's encoder finishes, so the source is
//! never idle waiting for compression, and at most two chunks per worker are in memory.
//!
//! A chunk is committed (rename into place, fsync, state row) only after its encoder
//! finished cleanly ([`commit`]); any failure removes the temporary file.

mod commit;
mod read;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::Scope;

use rivet_schema::plan::{PlannedChunk, PlannedExport};
use rivet_sources::{ChunkSource, ConnectionSettings};

use crate::dest::Destination;
use crate::error::ExecError;
use crate::lock_state;
use crate::progress::{Progress, ProgressEvent};
use crate::quality::ExportMeasure;
use crate::retry::RetryPolicy;
use crate::state::StateStore;

use self::commit::commit;
use self::read::{read_chunk, ReadChunk};

/// What every chunk of a run shares.
pub struct ChunkContext<'a> {
    /// Source connections shared by every export of the run.
    pub pool: &'a crate::pool::SourcePool<'a>,
    /// The destinations' locks: a chunk is committed only while they are still held.
    pub locks: &'a crate::lock::DestinationLocks,
    pub settings: &'a ConnectionSettings,
    /// Each export's destination, by export name.
    pub dests: &'a HashMap<String, Destination>,
    /// Quality measurements of committed chunks, by export name.
    pub measures: &'a Mutex<HashMap<String, ExportMeasure>>,
    /// The run's start, microseconds since the epoch (the `exported_at` meta column).
    pub started_at_us: i64,
    pub digest: &'a str,
    pub run_id: &'a str,
    pub state: &'a Mutex<StateStore>,
    pub progress: Progress<'a>,
    /// The snapshot id each running `consistency: snapshot` export reads, by export name.
    pub snapshots: &'a Mutex<HashMap<String, String>>,
}

impl ChunkContext<'_> {
    /// The snapshot the export's chunks adopt, when it runs with `consistency: snapshot`.
    fn snapshot_of(&self, e: &PlannedExport) -> Result<Option<String>, ExecError> {
        if e.consistency != rivet_schema::config::Consistency::Snapshot {
            return Ok(None);
        }
        match self
            .snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.name)
        {
            Some(id) => Ok(Some(id.clone())),
            None => Err(ExecError::Internal(format!(
                "export {} reads with consistency: snapshot but no snapshot is held for it",
                e.name
            ))),
        }
    }

    fn dest(&self, e: &PlannedExport) -> Result<&Destination, ExecError> {
        self.dests
            .get(&e.name)
            .ok_or_else(|| ExecError::Internal(format!("no destination for export {}", e.name)))
    }

    /// The error of a chunk whose file could not be written: the destination's (disk
    /// full, permission, network) names where; an encoding failure names the chunk.
    fn write_failure(
        &self,
        e: &PlannedExport,
        c: &PlannedChunk,
        failure: crate::writer::WriteError,
    ) -> ExecError {
        match failure {
            crate::writer::WriteError::Sink(detail) => ExecError::Write {
                export: e.name.clone(),
                path: format!(
                    "{}/{} (chunk {})",
                    e.destination.display().trim_end_matches('/'),
                    c.file,
                    c.id
                ),
                detail,
            },
            crate::writer::WriteError::Encode(detail) => ExecError::Encode {
                export: e.name.clone(),
                chunk: c.id.clone(),
                detail,
            },
        }
    }

    /// Records a chunk's failure in state. The failure itself is what the user sees;
    /// a state database that cannot record it is logged, not allowed to hide it.
    fn record_failure(&self, e: &PlannedExport, c: &PlannedChunk, err: &ExecError) {
        if let Err(state_error) = lock_state(self.state).chunk_failed(
            self.digest,
            self.run_id,
            &e.name,
            &c.id,
            &err.to_string(),
        ) {
            tracing::error!(export = %e.name, chunk = %c.id, error = %state_error, "the state database could not record the chunk's failure");
        }
    }
}

/// Runs `chunks` on `parallelism` workers; stops handing out chunks at the first
/// failure and returns it.
pub fn run_chunks(
    ctx: &ChunkContext<'_>,
    parallelism: u32,
    chunks: Vec<(&PlannedExport, &PlannedChunk)>,
) -> Result<(), ExecError> {
    if chunks.is_empty() {
        return Ok(());
    }
    let workers = (parallelism.max(1) as usize).min(chunks.len());
    let queue = Mutex::new(chunks.into_iter().collect::<VecDeque<_>>());
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(), ExecError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| worker(s, ctx, &queue, &failed)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ExecError::Internal("a worker thread panicked".into())))
            })
            .collect()
    });
    results
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|_| ())
}

fn worker<'scope, 'a>(
    s: &'scope Scope<'scope, '_>,
    ctx: &'scope ChunkContext<'a>,
    queue: &Mutex<VecDeque<(&'a PlannedExport, &'a PlannedChunk)>>,
    failed: &AtomicBool,
) -> Result<(), ExecError>
where
    'a: 'scope,
{
    let mut client: Option<Box<dyn ChunkSource>> = None;
    let mut pending: Option<ReadChunk<'scope, 'a>> = None;
    let result = (|| -> Result<(), ExecError> {
        loop {
            if failed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let Some((e, c)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                return Ok(());
            };
            let policy = RetryPolicy {
                max_retries: e.tuning.max_retries,
                base_backoff_ms: e.tuning.retry_backoff_ms,
            };
            let read = policy
                .run(
                    |attempt| {
                        if attempt > 0 && client.take().is_some() {
                            // A new connection for a retry: the old one may be broken.
                            ctx.pool.forget();
                        }
                        let conn = match &mut client {
                            Some(conn) => conn,
                            None => client.insert(ctx.pool.take()?),
                        };
                        read_chunk(s, ctx, conn.as_mut(), e, c)
                    },
                    |retry| {
                        tracing::warn!(export = %e.name, chunk = %c.id, attempt = retry.attempt, error = %retry.error, "transient source error; retrying the chunk");
                        (ctx.progress)(ProgressEvent::ChunkRetry {
                            export: e.name.clone(),
                            chunk: c.id.clone(),
                            attempt: retry.attempt,
                        });
                        lock_state(ctx.state).journal(
                            ctx.run_id,
                            "chunk_retry",
                            Some(&e.name),
                            Some(&c.id),
                            Some(&retry.detail()),
                        )
                    },
                )
                .inspect_err(|err| ctx.record_failure(e, c, err))?;
            if let Some(previous) = pending.replace(read) {
                commit(ctx, previous)?;
            }
        }
    })();
    let result = match (result, pending.take()) {
        (Ok(()), Some(last)) => commit(ctx, last),
        (Err(err), Some(last)) => {
            // The previous chunk was read completely; if its file encodes cleanly it is
            // committed, so a later `--resume` does not read it again.
            if let Err(commit_error) = commit(ctx, last) {
                tracing::warn!(error = %commit_error, "the chunk read before the failure could not be committed either");
            }
            Err(err)
        }
        (r, None) => r,
    };
    // A connection that saw no failure serves the next export; any other is dropped.
    match (client, &result) {
        (Some(conn), Ok(())) => ctx.pool.give_back(conn),
        (Some(_), Err(_)) => ctx.pool.forget(),
        (None, _) => {}
    }
    if result.is_err() {
        failed.store(true, Ordering::SeqCst);
    }
    result
}
