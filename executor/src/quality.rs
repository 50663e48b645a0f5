//! Quality gates (`quality:` in the config, sealed in the plan): row counts, per-column
//! NULL ratios and uniqueness, measured on the batches as they are written and checked
//! before an export is finalized. A failing gate fails the export with exit 4, is
//! journaled, and leaves no `_SUCCESS` (and no new manifest).
//!
//! Measurements are taken per chunk attempt and merged only when the chunk commits, so
//! a retried chunk is not counted twice; an export with gates re-reads all its chunks
//! on `--resume` (the counts of earlier runs are not kept).

use std::collections::{HashMap, HashSet};

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use rivet_schema::config::Quality;
use rivet_schema::plan::PlannedExport;

/// Default bound on remembered distinct values per unique column.
pub const DEFAULT_UNIQUE_MAX_ENTRIES: u64 = 10_000_000;

/// What one chunk attempt measured.
#[derive(Debug, Default)]
pub struct ChunkMeasure {
    /// NULLs per `null_ratio_max` column.
    pub nulls: HashMap<String, u64>,
    /// xxHash3-64 of every non-NULL value per unique column.
    pub hashes: HashMap<String, Vec<u64>>,
    /// Widest value in bytes per text, JSON and binary column (shape drift).
    pub widths: HashMap<String, u64>,
}

impl ChunkMeasure {
    /// Records the widest value of every variable-width column of a batch.
    pub fn observe_widths(&mut self, batch: &RecordBatch) {
        use arrow::array::AsArray;
        use arrow::datatypes::DataType;
        for (field, a) in batch.schema().fields().iter().zip(batch.columns()) {
            let widest = match a.data_type() {
                DataType::Utf8 => a
                    .as_string::<i32>()
                    .offsets()
                    .windows(2)
                    .map(|w| (w[1] - w[0]) as u64)
                    .max(),
                DataType::Binary => a
                    .as_binary::<i32>()
                    .offsets()
                    .windows(2)
                    .map(|w| (w[1] - w[0]) as u64)
                    .max(),
                _ => continue,
            };
            let slot = self.widths.entry(field.name().clone()).or_default();
            *slot = (*slot).max(widest.unwrap_or(0));
        }
    }

    /// Measures one batch for the export's gates.
    pub fn observe(&mut self, q: &Quality, batch: &RecordBatch) {
        for column in q.null_ratio_max.iter().flat_map(|m| m.keys()) {
            if let Some(a) = batch.column_by_name(column) {
                *self.nulls.entry(column.clone()).or_default() += a.null_count() as u64;
            }
        }
        let options = FormatOptions::default();
        for column in q.unique_columns.iter().flatten() {
            let Some(a) = batch.column_by_name(column) else {
                continue;
            };
            let Ok(formatter) = ArrayFormatter::try_new(a.as_ref(), &options) else {
                continue;
            };
            let out = self.hashes.entry(column.clone()).or_default();
            let mut text = String::new();
            for row in 0..a.len() {
                if a.is_null(row) {
                    continue;
                }
                text.clear();
                use std::fmt::Write;
                let _ = write!(text, "{}", formatter.value(row));
                out.push(xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
            }
        }
    }
}

/// The export-wide measurements, merged from committed chunks.
#[derive(Debug, Default)]
pub struct ExportMeasure {
    /// Widest value per variable-width column over the committed chunks.
    pub widths: HashMap<String, u64>,
    nulls: HashMap<String, u64>,
    seen: HashMap<String, HashSet<u64>>,
    duplicates: HashMap<String, u64>,
    overflowed: HashSet<String>,
}

impl ExportMeasure {
    /// Adds a committed chunk's measurements (`q`: the export's gates, if any).
    pub fn merge(&mut self, q: Option<&Quality>, chunk: ChunkMeasure) {
        for (c, w) in chunk.widths {
            let slot = self.widths.entry(c).or_default();
            *slot = (*slot).max(w);
        }
        let Some(q) = q else { return };
        for (c, n) in chunk.nulls {
            *self.nulls.entry(c).or_default() += n;
        }
        let bound = q.unique_max_entries.unwrap_or(DEFAULT_UNIQUE_MAX_ENTRIES) as usize;
        for (c, hashes) in chunk.hashes {
            if self.overflowed.contains(&c) {
                continue;
            }
            let seen = self.seen.entry(c.clone()).or_default();
            for h in hashes {
                if !seen.insert(h) {
                    *self.duplicates.entry(c.clone()).or_default() += 1;
                }
                if seen.len() > bound {
                    self.overflowed.insert(c.clone());
                    self.seen.remove(&c);
                    break;
                }
            }
        }
    }

    /// Every gate that fails for an export of `rows` rows, as a sentence each.
    pub fn failures(&self, e: &PlannedExport, rows: u64) -> Vec<String> {
        let Some(q) = &e.quality else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(min) = q.row_count_min {
            if rows < min {
                out.push(format!(
                    "row_count_min: {rows} row(s), at least {min} required"
                ));
            }
        }
        if let Some(max) = q.row_count_max {
            if rows > max {
                out.push(format!(
                    "row_count_max: {rows} row(s), at most {max} allowed"
                ));
            }
        }
        for (column, max) in q.null_ratio_max.iter().flatten() {
            let nulls = self.nulls.get(column).copied().unwrap_or(0);
            let ratio = if rows == 0 {
                0.0
            } else {
                nulls as f64 / rows as f64
            };
            if ratio > *max {
                out.push(format!(
                    "null_ratio_max.{column}: {nulls} of {rows} rows are NULL ({:.4}), at most {max} allowed",
                    ratio
                ));
            }
        }
        for column in q.unique_columns.iter().flatten() {
            if self.overflowed.contains(column) {
                out.push(format!(
                    "unique_columns {column}: more than {} distinct values, the bound set by unique_max_entries; raise it (8 bytes each) or drop the gate — uniqueness was not checked",
                    q.unique_max_entries.unwrap_or(DEFAULT_UNIQUE_MAX_ENTRIES)
                ));
            } else if let Some(d) = self.duplicates.get(column).filter(|d| **d > 0) {
                out.push(format!("unique_columns {column}: {d} duplicate value(s)"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch(values: &[Option<i64>]) -> RecordBatch {
        let a = arrow::array::Int64Array::from(values.to_vec());
        RecordBatch::try_from_iter([("id", Arc::new(a) as arrow::array::ArrayRef)]).unwrap()
    }

    #[test]
    fn gates_fire_at_their_boundaries() {
        let q = Quality {
            row_count_min: Some(4),
            row_count_max: Some(4),
            null_ratio_max: Some([("id".to_owned(), 0.25)].into()),
            unique_columns: Some(vec!["id".into()]),
            unique_max_entries: Some(3),
        };
        let mut m = ChunkMeasure::default();
        m.observe(&q, &batch(&[Some(1), Some(2), None, Some(3)]));
        let mut e = ExportMeasure::default();
        e.merge(Some(&q), m);
        let export = |q: &Quality| PlannedExport {
            quality: Some(q.clone()),
            ..serde_json::from_value(serde_json::json!({
                "name": "x", "relation": {"kind": "query", "sql": "select 1"}, "mode": "full",
                "wave": 1, "columns": [], "primary_key": [], "all_columns": true,
                "row_estimate": 0, "format": "parquet", "compression": "zstd",
                "destination": {"type": "local", "path": "o"},
                "tuning": {"profile": "balanced", "parallelism": 1, "batch_rows": 1,
                    "batch_memory_bytes": 1, "on_batch_memory_exceeded": "auto_shrink",
                    "row_group_bytes": 1, "statement_timeout_ms": 1, "lock_timeout_ms": 1,
                    "max_retries": 0, "retry_backoff_ms": 1},
                "infinity": "clamp", "chunks": []
            }))
            .unwrap()
        };
        // Exactly at every boundary: 4 rows, 1/4 NULL, 3 distinct values.
        assert!(
            e.failures(&export(&q), 4).is_empty(),
            "{:?}",
            e.failures(&export(&q), 4)
        );
        assert_eq!(
            e.failures(&export(&q), 3).len(),
            2,
            "3 rows: min fails, ratio 1/3 > 0.25"
        );
        assert!(e.failures(&export(&q), 5)[0].starts_with("row_count_max"));
        // A duplicate, then past the bound.
        let mut m = ChunkMeasure::default();
        m.observe(&q, &batch(&[Some(3)]));
        e.merge(Some(&q), m);
        assert!(e
            .failures(&export(&q), 4)
            .iter()
            .any(|f| f.contains("1 duplicate")));
        let mut m = ChunkMeasure::default();
        m.observe(&q, &batch(&[Some(9)]));
        e.merge(Some(&q), m);
        assert!(e
            .failures(&export(&q), 4)
            .iter()
            .any(|f| f.contains("unique_max_entries")));
        // row_count_min fires on zero rows.
        let empty = ExportMeasure::default();
        assert!(empty.failures(&export(&q), 0)[0].starts_with("row_count_min"));
    }
}
