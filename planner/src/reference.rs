//! The reference tool's config keys, accepted as written: each is mapped onto the key
//! Rivet already has with the same meaning (`compression_profile` → `compression`,
//! `parquet.target_row_group_mb` → `tuning.row_group_mb`, `tuning.batch_size_memory_mb`
//! → `tuning.max_batch_memory_mb`), or refused with what to use instead where Rivet's
//! design replaces it. Planning compiles the normalized config, so the plan records
//! only Rivet's own settings.

use rivet_schema::config::{
    Compression, CompressionProfile, Config, Format, RowGroupStrategy, Tuning,
};

use crate::error::PlanError;

fn refuse(path: String, message: impl Into<String>) -> PlanError {
    PlanError::Config {
        path,
        message: message.into(),
    }
}

/// `batch_size_memory_mb` onto `max_batch_memory_mb`; `memory_threshold_mb` refused.
fn tuning(t: &mut Tuning, at: &str) -> Result<(), PlanError> {
    if t.memory_threshold_mb.is_some() {
        return Err(refuse(
            format!("{at}.memory_threshold_mb"),
            "Rivet has no process-wide RSS guard: its memory is bounded by construction, a \
             few batches of max_batch_memory_mb plus one open row group (row_group_mb) per \
             reading chunk, times parallelism (docs/execution.md, Pipelining and memory). \
             Remove this key and set tuning.max_batch_memory_mb, tuning.row_group_mb and \
             tuning.parallelism (or profile: safe) to fit the host",
        ));
    }
    if let Some(mb) = t.batch_size_memory_mb.take() {
        match t.max_batch_memory_mb {
            Some(other) if other != mb => {
                return Err(refuse(
                    format!("{at}.batch_size_memory_mb"),
                    format!(
                        "{mb} contradicts max_batch_memory_mb {other}; both name the memory target of one batch, keep one"
                    ),
                ))
            }
            _ => t.max_batch_memory_mb = Some(mb),
        }
    }
    Ok(())
}

/// The config with every reference key mapped onto Rivet's own.
pub(crate) fn normalize(config: &Config) -> Result<Config, PlanError> {
    let mut c = config.clone();
    if let Some(t) = c.tuning.as_mut() {
        tuning(t, "tuning")?;
    }
    for (i, e) in c.exports.iter_mut().enumerate() {
        let at = |key: &str| format!("exports[{i}].{key}");
        if let Some(t) = e.tuning.as_mut() {
            tuning(t, &at("tuning"))?;
        }
        if let Some(profile) = e.compression_profile.take() {
            if e.compression.is_some() {
                return Err(refuse(
                    at("compression_profile"),
                    "give either compression or compression_profile, not both",
                ));
            }
            let codec = match profile {
                CompressionProfile::None => Compression::None,
                CompressionProfile::Fast => Compression::Snappy,
                CompressionProfile::Balanced => Compression::Zstd,
                CompressionProfile::Compact => {
                    return Err(refuse(
                        at("compression_profile"),
                        "`compact` asks for Zstd at a high level, and Rivet writes Zstd at one level; use `compression: zstd` (or `compression_profile: balanced`)",
                    ))
                }
            };
            if e.format == Format::Csv && codec == Compression::Snappy {
                return Err(refuse(
                    at("compression_profile"),
                    "`fast` is Snappy, which applies to Parquet only; CSV takes `none` or `balanced` (zstd)",
                ));
            }
            e.compression = Some(codec);
        }
        if let Some(p) = e.parquet.take() {
            if e.format != Format::Parquet {
                return Err(refuse(
                    at("parquet"),
                    "applies to `format: parquet` only; remove it",
                ));
            }
            if p.row_group_strategy == Some(RowGroupStrategy::FixedRows) {
                return Err(refuse(
                    at("parquet.row_group_strategy"),
                    "Rivet cuts row groups by memory, not by a row count; use `fixed_memory` (or `auto`) with parquet.target_row_group_mb",
                ));
            }
            if let Some(mb) = p.target_row_group_mb {
                let t = e.tuning.get_or_insert_with(Tuning::default);
                match t.row_group_mb {
                    Some(other) if other != mb => {
                        return Err(refuse(
                            at("parquet.target_row_group_mb"),
                            format!("{mb} contradicts tuning.row_group_mb {other}; both name the row group target, keep one"),
                        ))
                    }
                    _ => t.row_group_mb = Some(mb),
                }
            }
        }
    }
    Ok(c)
}
