//! Running the chunks of one export. Each worker owns one source connection and reads
//! its chunks one after another; every chunk's batches go through a bounded channel to
//! an encoder thread that writes and finishes the file. The worker starts reading the
//! next chunk while the previous chunk's encoder finishes, so the source is never idle
//! waiting for compression, and at most two chunks per worker are in memory.
//!
//! A chunk is committed (rename into place, fsync, state row) only after its encoder
//! finished cleanly; any failure removes the temporary file.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use rivet_schema::config::BatchMemoryPolicy;
use rivet_schema::plan::{PlannedChunk, PlannedExport, Relation};
use rivet_sources::{
    open_chunk_source, ChunkRead, ChunkSource, ConnectionSettings, RangeFilter, ReadColumn,
    ReadFailure, ReadStats, RelationRef, SinkClosed, SqlValue, WindowFilter,
};

use crate::apply::{lock, sync_dir, ApplyOptions, ProgressEvent, TEMP_PREFIX};
use crate::dest::{Destination, FileSink, LocalSink, ObjectSink, StdoutSink};
use crate::error::ExecError;
use crate::quality::{ChunkMeasure, ExportMeasure};
use crate::state::{CommittedFile, StateStore};
use crate::writer::{export_schema, with_meta, ChunkWriter, MetaValues};

/// Batches in flight between a reader and its encoder.
const CHANNEL_BATCHES: usize = 1;

/// What every chunk of a run shares.
pub struct ChunkContext<'a> {
    pub settings: &'a ConnectionSettings,
    /// Each export's destination, by export name.
    pub dests: &'a std::collections::HashMap<String, Destination>,
    /// Quality measurements of committed chunks, by export name.
    pub measures: &'a Mutex<std::collections::HashMap<String, ExportMeasure>>,
    /// The run's start, microseconds since the epoch (the `exported_at` meta column).
    pub started_at_us: i64,
    pub digest: &'a str,
    pub run_id: &'a str,
    pub state: &'a Mutex<StateStore>,
    pub opts: &'a ApplyOptions<'a>,
}

/// One finished output file of a chunk (a chunk has several with `max_file_size`).
#[derive(Debug)]
struct Part {
    /// The local temporary file to rename (None when the sink published it itself).
    temp_path: Option<PathBuf>,
    rows: u64,
    bytes: u64,
    sha256: String,
}

/// The final file name of a chunk's `k`-th part (from 1): the plan's name for the
/// first, `part-00003-002.parquet` for the second, and so on.
pub(crate) fn part_file_name(file: &str, k: usize) -> String {
    if k <= 1 {
        return file.to_owned();
    }
    match file.find('.') {
        Some(dot) => format!("{}-{k:03}{}", &file[..dot], &file[dot..]),
        None => format!("{file}-{k:03}"),
    }
}

/// A chunk whose rows are all read and whose encoder may still be finishing.
struct ReadChunk<'scope, 'a> {
    export: &'a PlannedExport,
    chunk: &'a PlannedChunk,
    encoder: ScopedJoinHandle<'scope, Result<Vec<Part>, String>>,
    temp_path: PathBuf,
    stats: ReadStats,
    /// Measurements of this attempt (value widths; gate counts when the export has
    /// gates), merged into the export's only when the chunk commits.
    measure: ChunkMeasure,
    started: Instant,
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
            let mut attempt = 0;
            let read = loop {
                let attempt_result = match &mut client {
                    Some(conn) => read_chunk(s, ctx, conn.as_mut(), e, c),
                    None => open_chunk_source(ctx.settings)
                        .map_err(ExecError::from)
                        .and_then(|conn| read_chunk(s, ctx, client.insert(conn).as_mut(), e, c)),
                };
                match attempt_result {
                    Ok(read) => break read,
                    Err(err) if err.is_transient() && attempt < e.tuning.max_retries => {
                        attempt += 1;
                        // A new connection for the retry: the old one may be broken.
                        client = None;
                        let wait = backoff(e.tuning.retry_backoff_ms, attempt);
                        let detail = format!(
                            "{{\"attempt\":{attempt},\"of\":{},\"backoff_ms\":{},\"error\":{}}}",
                            e.tuning.max_retries,
                            wait.as_millis(),
                            serde_json::Value::from(err.to_string())
                        );
                        tracing::warn!(export = %e.name, chunk = %c.id, attempt, error = %err, "transient source error; retrying the chunk");
                        lock(ctx.state).journal(
                            ctx.run_id,
                            "chunk_retry",
                            Some(&e.name),
                            Some(&c.id),
                            Some(&detail),
                        )?;
                        std::thread::sleep(wait);
                    }
                    Err(err) => {
                        record_failure(ctx, e, c, &err);
                        return Err(err);
                    }
                }
            };
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
            let _ = commit(ctx, last);
            Err(err)
        }
        (r, None) => r,
    };
    if result.is_err() {
        failed.store(true, Ordering::SeqCst);
    }
    result
}

/// `base * 2^(attempt-1)`, at most 30 s, scaled by a jitter factor in [0.5, 1.5) so
/// that parallel workers do not retry in lockstep.
pub(crate) fn backoff(base_ms: u64, attempt: u32) -> std::time::Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.5 + f64::from(nanos % 1_000) / 1_000.0;
    std::time::Duration::from_millis((capped as f64 * jitter) as u64)
}

fn record_failure(ctx: &ChunkContext<'_>, e: &PlannedExport, c: &PlannedChunk, err: &ExecError) {
    let _ = lock(ctx.state).chunk_failed(ctx.digest, ctx.run_id, &e.name, &c.id, &err.to_string());
}

/// Removes a chunk's temporary file and its further parts' temporary files.
fn remove_temp_files(temp_path: &Path) {
    let _ = fs::remove_file(temp_path);
    let (Some(dir), Some(name)) = (temp_path.parent(), temp_path.file_name()) else {
        return;
    };
    let prefix = format!("{}-part", name.to_string_lossy());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn temp_path_for(e: &PlannedExport, c: &PlannedChunk) -> PathBuf {
    Path::new(&e.destination.path).join(format!("{TEMP_PREFIX}{}-{}", c.file, std::process::id()))
}

/// Reads one chunk, feeding a new encoder thread; returns once every row is read.
fn read_chunk<'scope, 'a>(
    s: &'scope Scope<'scope, '_>,
    ctx: &ChunkContext<'_>,
    client: &mut dyn ChunkSource,
    e: &'a PlannedExport,
    c: &'a PlannedChunk,
) -> Result<ReadChunk<'scope, 'a>, ExecError> {
    lock(ctx.state).chunk_started(ctx.digest, ctx.run_id, &e.name, &c.id, &c.file)?;
    let started = Instant::now();
    let temp_path = temp_path_for(e, c);
    let werr = |detail: String| ExecError::Write {
        export: e.name.clone(),
        path: temp_path.display().to_string(),
        detail,
    };
    let dictionary_off: Vec<String> = e
        .columns
        .iter()
        .filter(|c| !c.dictionary)
        .map(|c| c.name.clone())
        .collect();
    let schema = export_schema(e);
    let meta = MetaValues {
        exported_at_us: ctx.started_at_us,
        plan_digest: ctx.digest.to_owned(),
        chunk_id: c.id.clone(),
    };
    let dest = ctx
        .dests
        .get(&e.name)
        .ok_or_else(|| ExecError::Internal(format!("no destination for export {}", e.name)))?;
    let open = {
        let schema = schema.clone();
        let base = temp_path.clone();
        let (format, compression, row_group_bytes) =
            (e.format, e.compression, e.tuning.row_group_bytes);
        let chunk_file = c.file.clone();
        let object = match dest {
            Destination::Object(o) => Some(o.clone()),
            _ => None,
        };
        let stdout = matches!(dest, Destination::Stdout);
        move |k: usize| -> Result<(Option<PathBuf>, ChunkWriter), String> {
            let (path, sink): (Option<PathBuf>, Box<dyn FileSink>) = match &object {
                Some(o) => (
                    None,
                    Box::new(ObjectSink::new(o, &part_file_name(&chunk_file, k))),
                ),
                None if stdout => (None, Box::new(StdoutSink::new())),
                None => {
                    let path = if k <= 1 {
                        base.clone()
                    } else {
                        PathBuf::from(format!("{}-part{k}", base.display()))
                    };
                    let sink = LocalSink::create(&path)
                        .map_err(|err| format!("{}: {err}", path.display()))?;
                    (Some(path), Box::new(sink))
                }
            };
            let off: Vec<&str> = dictionary_off.iter().map(String::as_str).collect();
            let writer = ChunkWriter::create(
                sink,
                schema.clone(),
                format,
                compression,
                row_group_bytes,
                &off,
            )?;
            Ok((path, writer))
        }
    };
    let (first_path, first_writer) = open(1).map_err(werr)?;
    let max_bytes = e.max_file_bytes;
    // `None` marks the end of a complete read. A channel that closes without it means
    // the read failed: the encoder then drops its writer unfinished, so no truncated
    // file is ever published (an object upload is aborted, not completed).
    let (tx, rx) = sync_channel::<Option<RecordBatch>>(CHANNEL_BATCHES);
    let encoder = s.spawn(move || -> Result<Vec<Part>, String> {
        let mut parts = Vec::new();
        let (mut path, mut writer) = (first_path, first_writer);
        let mut rows = 0u64;
        let mut complete = false;
        for message in rx {
            let Some(batch) = message else {
                complete = true;
                break;
            };
            if max_bytes.is_some_and(|m| rows > 0 && writer.size_estimate() >= m) {
                let (next_path, next_writer) = open(parts.len() + 2)?;
                let done = std::mem::replace(&mut writer, next_writer);
                let (bytes, sha256) = done.finish()?;
                parts.push(Part {
                    temp_path: std::mem::replace(&mut path, next_path),
                    rows,
                    bytes,
                    sha256,
                });
                rows = 0;
            }
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        if !complete {
            return Err("the read stopped before the end of the chunk".into());
        }
        let (bytes, sha256) = writer.finish()?;
        parts.push(Part {
            temp_path: path,
            rows,
            bytes,
            sha256,
        });
        Ok(parts)
    });
    let label = format!("export {}, chunk {}", e.name, c.id);
    let mut meta_failed = None;
    let mut measure = ChunkMeasure::default();
    let read = client.read_chunk(&chunk_read(e, c), &label, &mut |batch| {
        let batch = with_meta(batch, &schema, &e.meta_columns, &meta).map_err(|err| {
            meta_failed = Some(err.to_string());
            SinkClosed
        })?;
        measure.observe_widths(&batch);
        if let Some(q) = &e.quality {
            measure.observe(q, &batch);
        }
        tx.send(Some(batch)).map_err(|_| SinkClosed)
    });
    if read.is_ok() {
        // If the encoder already stopped, joining it (at commit) reports why.
        let _ = tx.send(None);
    }
    drop(tx);
    match read {
        Ok(stats) => Ok(ReadChunk {
            export: e,
            chunk: c,
            encoder,
            temp_path,
            stats,
            measure,
            started,
        }),
        Err(failure) => {
            // The encoder's own error explains a closed channel better than the reader can.
            let encoded = encoder
                .join()
                .unwrap_or_else(|_| Err("the encoder thread panicked".into()));
            remove_temp_files(&temp_path);
            Err(match (failure, encoded) {
                (ReadFailure::Source(err), _) => {
                    // The source names the chunk by `label`; the error names it already.
                    let text = err.to_string();
                    let text = text.strip_prefix(&format!("{label}: ")).unwrap_or(&text);
                    ExecError::Chunk {
                        export: e.name.clone(),
                        chunk: c.id.clone(),
                        detail: ctx.settings.redact(text),
                        transient: err.is_transient(),
                    }
                }
                (ReadFailure::SinkClosed, _) if meta_failed.is_some() => ExecError::Encode {
                    export: e.name.clone(),
                    chunk: c.id.clone(),
                    detail: format!("adding meta columns: {}", meta_failed.unwrap_or_default()),
                },
                (ReadFailure::SinkClosed, Err(detail)) => ExecError::Encode {
                    export: e.name.clone(),
                    chunk: c.id.clone(),
                    detail,
                },
                (ReadFailure::SinkClosed, Ok(_)) => {
                    ExecError::Internal("the encoder stopped before the reader".into())
                }
            })
        }
    }
}

/// Waits for the encoder, renames the file into place and records the commit.
fn commit(ctx: &ChunkContext<'_>, read: ReadChunk<'_, '_>) -> Result<(), ExecError> {
    let ReadChunk {
        export: e,
        chunk: c,
        encoder,
        temp_path,
        stats,
        measure,
        started,
    } = read;
    let fail = |err: ExecError| {
        remove_temp_files(&temp_path);
        record_failure(ctx, e, c, &err);
        err
    };
    let parts = encoder
        .join()
        .unwrap_or_else(|_| Err("the encoder thread panicked".into()))
        .map_err(|detail| {
            fail(ExecError::Encode {
                export: e.name.clone(),
                chunk: c.id.clone(),
                detail,
            })
        })?;
    let dest = ctx
        .dests
        .get(&e.name)
        .ok_or_else(|| ExecError::Internal(format!("no destination for export {}", e.name)))?;
    let werr = |path: &Path, err: std::io::Error| ExecError::Write {
        export: e.name.clone(),
        path: path.display().to_string(),
        detail: err.to_string(),
    };
    let mut files = Vec::with_capacity(parts.len());
    if e.skip_empty && stats.rows == 0 {
        // `skip_empty`: no file for a chunk without rows (and none left from a run in
        // which it had rows). Object-store parts are already uploaded: delete them.
        remove_temp_files(&temp_path);
        for k in 1..=parts.len().max(1) {
            dest.remove(&e.name, &part_file_name(&c.file, k))
                .map_err(&fail)?;
        }
    } else {
        for (k, part) in parts.iter().enumerate() {
            let name = part_file_name(&c.file, k + 1);
            if let (Some(temp), Destination::Local(dir)) = (&part.temp_path, dest) {
                let final_path = dir.join(&name);
                fs::rename(temp, &final_path).map_err(|err| fail(werr(&final_path, err)))?;
            }
            files.push(CommittedFile {
                file: name,
                rows: part.rows,
                bytes: part.bytes,
                sha256: part.sha256.clone(),
            });
        }
    }
    if let Destination::Local(dir) = dest {
        sync_dir(dir).map_err(|err| fail(werr(dir, err)))?;
    }
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let mut notes = Vec::new();
    if !stats.nulled_values.is_empty() {
        let map: std::collections::BTreeMap<&str, u64> = stats
            .nulled_values
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        notes.push(format!(
            "\"nulled_values\":{}",
            serde_json::to_string(&map).unwrap_or_default()
        ));
    }
    if stats.batches_over_memory_target > 0 {
        notes.push(format!(
            "\"batches_over_memory_target\":{}",
            stats.batches_over_memory_target
        ));
    }
    let nulled = (!notes.is_empty()).then(|| notes.join(","));
    if stats.batches_over_memory_target > 0 {
        tracing::warn!(export = %e.name, chunk = %c.id, batches = stats.batches_over_memory_target, target_bytes = e.tuning.batch_memory_bytes, "batches grew past tuning.max_batch_memory_mb");
    }
    for (column, n) in &stats.nulled_values {
        tracing::warn!(export = %e.name, chunk = %c.id, column = %column, count = n, "values with no Arrow representation (PostgreSQL infinity, MySQL zero dates) were written as NULL");
    }
    lock(ctx.state).chunk_committed(
        ctx.digest,
        ctx.run_id,
        &e.name,
        &c.id,
        stats.rows,
        &files,
        started.elapsed().as_millis() as u64,
        nulled.as_deref(),
    )?;
    ctx.measures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(e.name.clone())
        .or_default()
        .merge(e.quality.as_ref(), measure);
    (ctx.opts.progress)(ProgressEvent::ChunkCommitted {
        export: e.name.clone(),
        chunk: c.id.clone(),
        rows: stats.rows,
        bytes,
    });
    Ok(())
}

/// The row window of an `incremental` or `time_window` export, as typed bounds. Plans
/// are sealed and their bounds were written by the planner, so a bound that does not
/// parse means a planner bug; it reads nothing rather than everything.
fn window_filter(e: &PlannedExport) -> Option<WindowFilter> {
    let w = e.window.as_ref()?;
    let parse = |text: &str| SqlValue::parse(w.value_type, text);
    let upper = match w.upper.as_deref().map(parse) {
        Some(Ok(v)) => v,
        _ => {
            return Some(WindowFilter {
                column: w.column.clone(),
                fallback: w.fallback_column.clone(),
                lower: None,
                upper: SqlValue::Int(i64::MIN),
            })
        }
    };
    Some(WindowFilter {
        column: w.column.clone(),
        fallback: w.fallback_column.clone(),
        lower: w.lower.as_deref().and_then(|l| parse(l).ok()),
        upper,
    })
}

/// The source read for one chunk, built from the plan alone.
pub(crate) fn chunk_read(e: &PlannedExport, c: &PlannedChunk) -> ChunkRead {
    ChunkRead {
        relation: match &e.relation {
            Relation::Table { schema, name } => RelationRef::Table {
                schema: schema.clone(),
                name: name.clone(),
            },
            Relation::Query { sql } => RelationRef::Query(sql.clone()),
        },
        columns: e
            .columns
            .iter()
            .map(|col| ReadColumn {
                name: col.name.clone(),
                wire_type: col.wire_type.clone(),
                logical: col.logical.clone(),
                nullable: col.nullable,
            })
            .collect(),
        range: match (&c.range, &e.chunk_key) {
            (Some(r), Some(k)) => Some(RangeFilter {
                column: k.column.clone(),
                lower: r.lower,
                upper: r.upper,
                include_null: r.include_null,
            }),
            _ => None,
        },
        window: window_filter(e),
        batch_rows: e.tuning.batch_rows.max(1) as usize,
        batch_bytes: e.tuning.batch_memory_bytes.max(1) as usize,
        statement_timeout_ms: e.tuning.statement_timeout_ms,
        lock_timeout_ms: e.tuning.lock_timeout_ms,
        use_cursor: c.range.is_none(),
        on_batch_memory_exceeded: match e.tuning.on_batch_memory_exceeded {
            BatchMemoryPolicy::AutoShrink => rivet_sources::BatchMemoryPolicy::AutoShrink,
            BatchMemoryPolicy::Warn => rivet_sources::BatchMemoryPolicy::Warn,
            BatchMemoryPolicy::Fail => rivet_sources::BatchMemoryPolicy::Fail,
        },
    }
}
