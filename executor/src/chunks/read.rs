//! Reading one chunk: the source connection streams Arrow batches into a bounded
//! channel; an encoder thread writes them as Parquet or CSV through the destination's
//! [`FileSink`] (a local temporary file, an object upload, or stdout), starting a new part
//! file when `max_file_size` is reached. A read that stops before the end of the chunk
//! never publishes a file: the encoder drops its writer unfinished.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use rivet_schema::layout::{part_file_name, temp_file_name};
use rivet_schema::plan::{PlannedChunk, PlannedExport};
use rivet_sources::{ChunkSource, ReadFailure, ReadStats, SinkClosed};

use super::ChunkContext;
use crate::dest::{Destination, FileSink, LocalSink, ObjectSink, StdoutSink};
use crate::error::ExecError;
use crate::lock_state;
use crate::quality::ChunkMeasure;
use crate::request::chunk_read;
use crate::writer::{export_schema, with_meta, ChunkWriter, MetaValues, WriteError};

/// Batches in flight between a reader and its encoder.
const CHANNEL_BATCHES: usize = 1;

/// One finished output file of a chunk (a chunk has several with `max_file_size`).
#[derive(Debug)]
pub(super) struct Part {
    /// The local temporary file to rename (None when the sink published it itself).
    pub(super) temp_path: Option<PathBuf>,
    pub(super) rows: u64,
    pub(super) bytes: u64,
    pub(super) sha256: String,
}

/// A chunk whose rows are all read and whose encoder may still be finishing.
pub(super) struct ReadChunk<'scope, 'a> {
    pub(super) export: &'a PlannedExport,
    pub(super) chunk: &'a PlannedChunk,
    pub(super) encoder: ScopedJoinHandle<'scope, Result<Vec<Part>, WriteError>>,
    pub(super) temp_path: PathBuf,
    pub(super) stats: ReadStats,
    /// Measurements of this attempt (value widths; gate counts when the export has
    /// gates), merged into the export's only when the chunk commits.
    pub(super) measure: ChunkMeasure,
    pub(super) started: Instant,
    /// How long the source read took (the chunk's statement, as the client saw it).
    pub(super) read_ms: u64,
}

/// Removes a chunk's temporary file and its further parts' temporary files.
/// Best effort: a temporary name is never a final one, and the next apply of the
/// export sweeps whatever is left (`prepare_destination`).
pub(super) fn remove_temp_files(temp_path: &Path) {
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
    Path::new(&e.destination.path).join(temp_file_name(&c.file))
}

/// Reads one chunk, feeding a new encoder thread; returns once every row is read.
pub(super) fn read_chunk<'scope, 'a>(
    s: &'scope Scope<'scope, '_>,
    ctx: &ChunkContext<'_>,
    client: &mut dyn ChunkSource,
    e: &'a PlannedExport,
    c: &'a PlannedChunk,
) -> Result<ReadChunk<'scope, 'a>, ExecError> {
    lock_state(ctx.state).chunk_started(ctx.digest, ctx.run_id, &e.name, &c.id, &c.file)?;
    let started = Instant::now();
    let temp_path = temp_path_for(e, c);
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
    let dest = ctx.dest(e)?;
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
        move |k: usize| -> Result<(Option<PathBuf>, ChunkWriter), WriteError> {
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
                        .map_err(|err| WriteError::Sink(format!("{}: {err}", path.display())))?;
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
    let (first_path, first_writer) = open(1).map_err(|f| ctx.write_failure(e, c, f))?;
    let max_bytes = e.max_file_bytes;
    // `None` marks the end of a complete read. A channel that closes without it means
    // the read failed: the encoder then drops its writer unfinished, so no truncated
    // file is ever published (an object upload is aborted, not completed).
    let (tx, rx) = sync_channel::<Option<RecordBatch>>(CHANNEL_BATCHES);
    let encoder = s.spawn(move || -> Result<Vec<Part>, WriteError> {
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
            return Err(WriteError::Encode(
                "the read stopped before the end of the chunk".into(),
            ));
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
    let mut request = chunk_read(e, c)?;
    request.snapshot = ctx.snapshot_of(e)?;
    let read_started = Instant::now();
    let read = client.read_chunk(&request, &label, &mut |batch| {
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
            read_ms: read_started.elapsed().as_millis() as u64,
        }),
        Err(failure) => {
            // The encoder's own error explains a closed channel better than the reader can.
            let encoded = encoder
                .join()
                .unwrap_or_else(|_| Err(WriteError::Encode("the encoder thread panicked".into())));
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
                (ReadFailure::SinkClosed, Err(failure)) => ctx.write_failure(e, c, failure),
                (ReadFailure::SinkClosed, Ok(_)) => {
                    ExecError::Internal("the encoder stopped before the reader".into())
                }
            })
        }
    }
}
