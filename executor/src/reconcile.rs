//! `rivet reconcile`: reads every chunk of a plan from the source again (the same
//! statements `apply` sends, nothing written) and compares it with what the manifest
//! says was exported: the row count of each chunk and, with `--checksum`, an
//! order-independent checksum of its rows against the rows in the chunk's Parquet files.
//! A difference means the source changed in that chunk's key range since the export.

use std::fmt::Write as _;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use rivet_schema::plan::{Plan, PlannedExport};
use rivet_sources::{open_chunk_source, ConnectionSettings, ReadFailure};
use serde::Serialize;

use crate::dest::Destination;
use crate::error::ExecError;
use crate::manifest::Manifest;

/// One chunk compared.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkCheck {
    pub export: String,
    pub chunk: String,
    pub exported_rows: Option<u64>,
    pub source_rows: u64,
    /// With `--checksum`: whether the rows' checksums are equal (None when not
    /// computed, e.g. CSV output).
    pub checksum_equal: Option<bool>,
    pub drifted: bool,
}

/// Order-independent checksum of rows: the wrapping sum of an xxHash3 of each row's
/// cells (their display text, separated by a unit separator, NULL marked apart).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowSum {
    pub rows: u64,
    pub sum: u64,
}

impl RowSum {
    /// Adds the rows of a batch, looking only at `columns` (by name, in order).
    pub fn add(&mut self, batch: &RecordBatch, columns: &[&str]) -> Result<(), String> {
        let options = FormatOptions::default();
        let arrays: Vec<_> = columns
            .iter()
            .map(|c| {
                batch
                    .column_by_name(c)
                    .ok_or_else(|| format!("column `{c}` is missing"))
            })
            .collect::<Result<_, _>>()?;
        let formatters: Vec<_> = arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let mut row_text = String::new();
        for row in 0..batch.num_rows() {
            row_text.clear();
            for (a, f) in arrays.iter().zip(&formatters) {
                if a.is_null(row) {
                    row_text.push('\u{0}');
                } else {
                    let _ = write!(row_text, "{}", f.value(row));
                }
                row_text.push('\u{1f}');
            }
            self.sum = self
                .sum
                .wrapping_add(xxhash_rust::xxh3::xxh3_64(row_text.as_bytes()));
            self.rows += 1;
        }
        Ok(())
    }
}

fn exported(manifest: &Manifest, chunk: &str) -> (Option<u64>, Vec<String>) {
    let files: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| f.chunk_id == chunk)
        .collect();
    if files.is_empty() {
        return (None, Vec::new());
    }
    (
        Some(files.iter().map(|f| f.rows).sum()),
        files.iter().map(|f| f.path.clone()).collect(),
    )
}

/// Compares every chunk of `plan` with the source and with what its manifest recorded.
pub fn reconcile(plan: &Plan, checksum: bool) -> Result<Vec<ChunkCheck>, ExecError> {
    let settings = ConnectionSettings::resolve(&plan.body.source)?;
    let mut source = open_chunk_source(&settings)?;
    let rt = crate::dest::runtime()?;
    let mut out = Vec::new();
    for e in &plan.body.exports {
        if e.chunks.is_empty() {
            continue;
        }
        let dest = Destination::open(&e.name, &e.destination, rt.handle())?;
        let manifest = crate::validate::manifest_of(plan, e, &dest)?;
        let columns: Vec<&str> = e.columns.iter().map(|c| c.name.as_str()).collect();
        for c in &e.chunks {
            let (exported_rows, files) = match &manifest {
                Some(m) => exported(m, &c.id),
                None => (None, Vec::new()),
            };
            let mut live = RowSum::default();
            let label = format!("export {}, chunk {}", e.name, c.id);
            let mut failed = None;
            let read = source.read_chunk(&crate::request::chunk_read(e, c)?, &label, &mut |b| {
                if checksum {
                    if let Err(err) = live.add(&b, &columns) {
                        failed = Some(err);
                        return Err(rivet_sources::SinkClosed);
                    }
                } else {
                    live.rows += b.num_rows() as u64;
                }
                Ok(())
            });
            match read {
                Ok(_) => {}
                Err(ReadFailure::Source(err)) => {
                    return Err(ExecError::Chunk {
                        export: e.name.clone(),
                        chunk: c.id.clone(),
                        detail: settings.redact(&err.to_string()),
                        transient: err.is_transient(),
                    })
                }
                Err(ReadFailure::SinkClosed) => {
                    return Err(ExecError::Internal(failed.unwrap_or_default()))
                }
            }
            let checksum_equal = if checksum && e.format == rivet_schema::config::Format::Parquet {
                Some(file_sum(e, &dest, &files, &columns)? == live)
            } else {
                None
            };
            let drifted = exported_rows != Some(live.rows) || checksum_equal == Some(false);
            out.push(ChunkCheck {
                export: e.name.clone(),
                chunk: c.id.clone(),
                exported_rows,
                source_rows: live.rows,
                checksum_equal,
                drifted,
            });
        }
    }
    Ok(out)
}

/// The row checksum of a chunk's Parquet files as written.
fn file_sum(
    e: &PlannedExport,
    dest: &Destination,
    files: &[String],
    columns: &[&str],
) -> Result<RowSum, ExecError> {
    let mut sum = RowSum::default();
    for f in files {
        let Some(bytes) = dest.read(&e.name, f)? else {
            continue;
        };
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .and_then(|b| b.build())
        .map_err(|err| ExecError::Internal(format!("{f}: {err}")))?;
        for batch in reader {
            let batch = batch.map_err(|err| ExecError::Internal(format!("{f}: {err}")))?;
            sum.add(&batch, columns)
                .map_err(|err| ExecError::Internal(format!("{f}: {err}")))?;
        }
    }
    Ok(sum)
}
