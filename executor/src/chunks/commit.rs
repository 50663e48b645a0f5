//! Committing a chunk whose rows are all read: wait for its encoder, rename each part
//! into place (locally) and fsync the directory, then record the chunk with its files,
//! rows, bytes and checksums and its journal entry in one state transaction. Nothing is
//! recorded before the files are durable under their final names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rivet_schema::layout::part_file_name;

use super::read::{remove_temp_files, ReadChunk};
use super::ChunkContext;
use crate::dest::Destination;
use crate::durable::sync_dir;
use crate::error::ExecError;
use crate::lock_state;
use crate::progress::ProgressEvent;
use crate::state::{ChunkCommit, CommittedFile};

/// Waits for the encoder, renames the file into place and records the commit.
pub(super) fn commit(ctx: &ChunkContext<'_>, read: ReadChunk<'_, '_>) -> Result<(), ExecError> {
    let ReadChunk {
        export: e,
        chunk: c,
        encoder,
        temp_path,
        stats,
        measure,
        started,
        read_ms,
    } = read;
    let fail = |err: ExecError| {
        remove_temp_files(&temp_path);
        ctx.record_failure(e, c, &err);
        err
    };
    let parts = encoder
        .join()
        .unwrap_or_else(|_| {
            Err(crate::writer::WriteError::Encode(
                "the encoder thread panicked".into(),
            ))
        })
        .map_err(|failure| fail(ctx.write_failure(e, c, failure)))?;
    let dest = ctx.dest(e)?;
    let werr = |path: &Path, err: std::io::Error| ExecError::Write {
        export: e.name.clone(),
        path: path.display().to_string(),
        detail: err.to_string(),
    };
    ctx.locks.check().map_err(&fail)?;
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
    let mut notes = serde_json::Map::new();
    if !stats.nulled_values.is_empty() {
        let map: BTreeMap<&str, u64> = stats
            .nulled_values
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        notes.insert("nulled_values".into(), serde_json::json!(map));
    }
    if stats.batches_over_memory_target > 0 {
        notes.insert(
            "batches_over_memory_target".into(),
            stats.batches_over_memory_target.into(),
        );
        tracing::warn!(export = %e.name, chunk = %c.id, batches = stats.batches_over_memory_target, target_bytes = e.tuning.batch_memory_bytes, "batches grew past tuning.max_batch_memory_mb");
    }
    for (column, n) in &stats.nulled_values {
        tracing::warn!(export = %e.name, chunk = %c.id, column = %column, count = n, "values with no Arrow representation were written as NULL (see docs/types.md)");
    }
    lock_state(ctx.state).chunk_committed(&ChunkCommit {
        digest: ctx.digest,
        run_id: ctx.run_id,
        export: &e.name,
        chunk_id: &c.id,
        rows: stats.rows,
        files: &files,
        duration_ms: started.elapsed().as_millis() as u64,
        read_ms,
        notes: (!notes.is_empty()).then_some(notes),
    })?;
    ctx.measures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(e.name.clone())
        .or_default()
        .merge(e.quality.as_ref(), measure);
    (ctx.progress)(ProgressEvent::ChunkCommitted {
        export: e.name.clone(),
        chunk: c.id.clone(),
        rows: stats.rows,
        bytes,
    });
    Ok(())
}
