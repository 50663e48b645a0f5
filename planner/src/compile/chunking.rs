//! Chunked exports: the integer key to split on (the config's `chunk_column` or a
//! single-column integer primary key), a chunk size from statistics when none is given,
//! and the half-open key ranges that cover the whole key space exactly once; or, for a
//! table without an integer key, half-open ranges of its heap pages.

use rivet_schema::config::{Compression, ExportConfig, Format};
use rivet_schema::layout::{chunk_file_name, chunk_id};
use rivet_schema::plan::{KeyRange, PageChunking, PageRange, PlannedChunk};
use rivet_schema::LogicalType;
use rivet_sources::SourceColumn;

use super::{cfg_err, Described, MAX_CHUNKS};
use crate::error::PlanError;

/// The integer column to chunk on and whether it is nullable.
pub(super) fn chunk_key_column(
    i: usize,
    e: &ExportConfig,
    d: &Described,
) -> Result<(String, bool), PlanError> {
    let what = d.relation.display_name();
    let is_int = |c: &SourceColumn| c.logical.as_ref().is_ok_and(LogicalType::is_integer);
    match &e.chunk_column {
        Some(name) => {
            let c = d
                .columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| d.no_such_column(format!("exports[{i}].chunk_column"), name))?;
            if !is_int(c) {
                return Err(cfg_err(
                    format!("exports[{i}].chunk_column"),
                    format!(
                        "column `{name}` of {what} is `{}`; chunked mode needs an integer column \
                         (smallint, integer or bigint): pick one, or use `mode: full`",
                        c.declared_type
                    ),
                ));
            }
            Ok((c.name.clone(), c.nullable))
        }
        None => {
            let pk = &d.primary_key;
            let single = (pk.len() == 1)
                .then(|| d.columns.iter().find(|c| c.name == pk[0]))
                .flatten()
                .filter(|c| is_int(c));
            match single {
                Some(c) => Ok((c.name.clone(), c.nullable)),
                None => {
                    let why = match pk.len() {
                        0 => format!("{what} has no primary key"),
                        1 => format!(
                            "the primary key `{}` of {what} is not an integer column",
                            pk[0]
                        ),
                        _ => format!(
                            "the primary key of {what} has {} columns ({})",
                            pk.len(),
                            pk.join(", ")
                        ),
                    };
                    Err(cfg_err(
                        format!("exports[{i}].chunk_column"),
                        format!(
                            "chunked mode needs a single integer key and {why}; set `chunk_column` \
                             to an integer column, or use `mode: full`"
                        ),
                    ))
                }
            }
        }
    }
}

/// What a chunked export is split on.
pub(super) enum ChunkBy {
    /// An integer column, and whether it is nullable.
    Key(String, bool),
    /// The table's heap pages (PostgreSQL TID ranges), with the page size in bytes.
    Pages { pages: u64, page_bytes: u64 },
}

/// The error for a chunked export with neither an integer key nor page ranges: the
/// missing-key message, with why pages cannot be used either.
pub(super) fn no_key_and_no_pages(no_key: PlanError, why_not_pages: &str) -> PlanError {
    match no_key {
        PlanError::Config { path, message } => PlanError::Config {
            path,
            message: format!(
                "{message} (a table without one is chunked by heap pages on PostgreSQL 14 and later, but here {why_not_pages})"
            ),
        },
        other => other,
    }
}

/// Half-open page ranges of `pages_per_chunk` pages covering the table's heap; the last
/// has no upper bound, so pages added after planning are read too.
pub(super) fn split_pages(
    i: usize,
    export: &str,
    planned: &PageChunking,
    rows: u64,
    format: Format,
    compression: Compression,
) -> Result<Vec<PlannedChunk>, PlanError> {
    let per_chunk = planned.pages_per_chunk.max(1);
    let n = u128::from(planned.pages.div_ceil(per_chunk).max(1));
    if n > MAX_CHUNKS {
        return Err(cfg_err(
            format!("exports[{i}].chunk_size"),
            format!(
                "chunk_size {per_chunk} (pages per chunk) over {} pages would make {n} chunks \
                 (at most {MAX_CHUNKS}); raise chunk_size or omit it to size chunks from the target",
                planned.pages
            ),
        ));
    }
    let n = n as u32;
    let per_chunk_rows = rows.div_ceil(u64::from(n));
    Ok((0..n)
        .map(|k| {
            let seq = k + 1;
            PlannedChunk {
                id: chunk_id(export, seq),
                seq,
                range: None,
                pages: Some(PageRange {
                    lower: u64::from(k) * per_chunk,
                    upper: (seq < n).then(|| u64::from(seq) * per_chunk),
                }),
                row_estimate: per_chunk_rows,
                file: chunk_file_name(seq, format, compression),
            }
        })
        .collect())
}

/// Key-range width so a chunk holds about `target_bytes` of source data.
pub(super) fn default_chunk_size(
    min: Option<i64>,
    max: Option<i64>,
    rows: u64,
    row_bytes: u64,
    target_bytes: u64,
) -> u64 {
    let (Some(min), Some(max)) = (min, max) else {
        return 1;
    };
    let span = (i128::from(max) - i128::from(min) + 1).max(1) as u128;
    let target_rows = (u128::from(target_bytes) / u128::from(row_bytes)).max(1);
    // Without statistics (never analyzed, or a query) assume every key value is a row:
    // more, smaller chunks are the safe side for the source.
    let rows = if rows == 0 { span } else { u128::from(rows) };
    let size = (target_rows * span).div_ceil(rows).max(1);
    size.min(u128::from(u64::MAX)) as u64
}

#[allow(clippy::too_many_arguments)]
pub(super) fn split_chunks(
    i: usize,
    export: &str,
    min: Option<i64>,
    max: Option<i64>,
    nullable: bool,
    chunk_size: u64,
    rows: u64,
    format: Format,
    compression: Compression,
) -> Result<Vec<PlannedChunk>, PlanError> {
    let whole = |row_estimate| {
        vec![PlannedChunk {
            id: chunk_id(export, 1),
            seq: 1,
            range: Some(KeyRange {
                lower: None,
                upper: None,
                include_null: nullable,
            }),
            pages: None,
            row_estimate,
            file: chunk_file_name(1, format, compression),
        }]
    };
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(whole(rows));
    };
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    let n = span.div_ceil(u128::from(chunk_size.max(1)));
    if n > MAX_CHUNKS {
        return Err(cfg_err(
            format!("exports[{i}].chunk_size"),
            format!(
                "chunk_size {chunk_size} over the key range {min}..={max} would make {n} chunks \
                 (at most {MAX_CHUNKS}); raise chunk_size or omit it to size chunks from statistics"
            ),
        ));
    }
    if n <= 1 {
        return Ok(whole(rows));
    }
    let n = n as u32;
    let per_chunk = rows.div_ceil(u64::from(n));
    Ok((0..n)
        .map(|k| {
            let seq = k + 1;
            let lo = i128::from(min) + i128::from(k) * i128::from(chunk_size);
            let hi = lo + i128::from(chunk_size);
            PlannedChunk {
                id: chunk_id(export, seq),
                seq,
                range: Some(KeyRange {
                    lower: (k > 0).then_some(lo as i64),
                    upper: (seq < n).then_some(hi as i64),
                    include_null: nullable && k == 0,
                }),
                pages: None,
                row_estimate: per_chunk,
                file: chunk_file_name(seq, format, compression),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_whole_key_space_with_open_ends() {
        let c = split_chunks(
            0,
            "t",
            Some(1),
            Some(250),
            true,
            100,
            250,
            Format::Parquet,
            Compression::Zstd,
        )
        .unwrap();
        let ranges: Vec<_> = c.iter().map(|c| c.range.clone().unwrap()).collect();
        assert_eq!(ranges.len(), 3);
        assert_eq!(
            (ranges[0].lower, ranges[0].upper, ranges[0].include_null),
            (None, Some(101), true)
        );
        assert_eq!(
            (ranges[1].lower, ranges[1].upper, ranges[1].include_null),
            (Some(101), Some(201), false)
        );
        assert_eq!((ranges[2].lower, ranges[2].upper), (Some(201), None));
        assert_eq!(c[2].id, "t/00003");
        assert_eq!(c[2].file, "part-00003.parquet");
    }

    #[test]
    fn extreme_key_ranges_do_not_overflow() {
        let c = split_chunks(
            0,
            "t",
            Some(i64::MIN),
            Some(i64::MAX),
            false,
            u64::MAX / 4 + 1,
            10,
            Format::Csv,
            Compression::None,
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert!(split_chunks(
            0,
            "t",
            Some(0),
            Some(10_000_000),
            false,
            1,
            10,
            Format::Csv,
            Compression::None
        )
        .is_err());
    }

    #[test]
    fn default_chunk_size_follows_row_width_and_density() {
        // 1M rows over keys 1..=2M (half dense), 100 bytes a row, 10 MB target → 100k rows → 200k keys
        assert_eq!(
            default_chunk_size(Some(1), Some(2_000_000), 1_000_000, 100, 10_000_000),
            200_000
        );
        // no statistics: assume dense keys
        assert_eq!(
            default_chunk_size(Some(1), Some(2_000_000), 0, 100, 10_000_000),
            100_000
        );
    }
}
