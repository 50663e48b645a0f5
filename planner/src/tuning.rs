//! Profiles and tuning overrides resolved into the concrete numbers a plan records.
//! See docs/execution.md for the table of what each profile sets.

use rivet_schema::config::{Profile, Tuning};
use rivet_schema::plan::PlannedTuning;

const MB: u64 = 1024 * 1024;

/// Concrete defaults of a profile, plus the target bytes per chunk.
struct ProfileDefaults {
    parallelism: u32,
    batch_rows: u32,
    batch_mb: u32,
    row_group_mb: u32,
    statement_timeout_ms: u64,
    lock_timeout_ms: u64,
    chunk_target_mb: u32,
}

fn defaults(profile: Profile) -> ProfileDefaults {
    match profile {
        Profile::Safe => ProfileDefaults {
            parallelism: 1,
            batch_rows: 20_000,
            batch_mb: 4,
            row_group_mb: 16,
            statement_timeout_ms: 30_000,
            lock_timeout_ms: 2_000,
            chunk_target_mb: 16,
        },
        Profile::Balanced => ProfileDefaults {
            parallelism: 1,
            batch_rows: 65_536,
            batch_mb: 8,
            row_group_mb: 32,
            statement_timeout_ms: 120_000,
            lock_timeout_ms: 5_000,
            chunk_target_mb: 64,
        },
        Profile::Fast => ProfileDefaults {
            parallelism: 2,
            batch_rows: 131_072,
            batch_mb: 16,
            row_group_mb: 64,
            statement_timeout_ms: 300_000,
            lock_timeout_ms: 10_000,
            chunk_target_mb: 128,
        },
    }
}

/// The plan's concurrency: `tuning.max_source_connections` (top level) when set, else
/// the profile's default (safe 1, balanced 2, fast 4) raised to the largest export
/// `parallelism`, so that an export never reads with fewer connections than it asked
/// for unless the user capped them; and `parallel_export_processes` (default on).
pub fn resolve_concurrency(
    config: &rivet_schema::Config,
    exports: &[rivet_schema::plan::PlannedExport],
) -> rivet_schema::plan::PlannedConcurrency {
    let global = config.tuning.as_ref();
    let profile = global.and_then(|t| t.profile).unwrap_or_default();
    let default = match profile {
        Profile::Safe => 1,
        Profile::Balanced => 2,
        Profile::Fast => 4,
    };
    let widest = exports
        .iter()
        .map(|e| e.tuning.parallelism)
        .max()
        .unwrap_or(1);
    let max_source_connections = match global.and_then(|t| t.max_source_connections) {
        Some(cap) => {
            for e in exports.iter().filter(|e| e.tuning.parallelism > cap) {
                tracing::warn!(
                    export = %e.name,
                    "export `{}` has parallelism {} but tuning.max_source_connections is {cap}: \
                     at most {cap} of its chunks are read at once",
                    e.name,
                    e.tuning.parallelism
                );
            }
            cap
        }
        None => default.max(widest),
    };
    rivet_schema::plan::PlannedConcurrency {
        max_source_connections,
        concurrent_exports: config.parallel_export_processes.unwrap_or(true),
    }
}

/// Merges the top-level and per-export tuning (export wins key by key) over the
/// profile's defaults. Returns the plan's tuning and the chunk target in bytes.
pub fn resolve_tuning(global: Option<&Tuning>, export: Option<&Tuning>) -> (PlannedTuning, u64) {
    let pick = |f: &dyn Fn(&Tuning) -> Option<u64>| -> Option<u64> {
        export.and_then(f).or_else(|| global.and_then(f))
    };
    let profile = export
        .and_then(|t| t.profile)
        .or_else(|| global.and_then(|t| t.profile))
        .unwrap_or_default();
    let d = defaults(profile);
    let parallelism = pick(&|t| t.parallelism.map(u64::from)).unwrap_or(u64::from(d.parallelism));
    let batch_rows = pick(&|t| t.batch_size.map(u64::from)).unwrap_or(u64::from(d.batch_rows));
    let batch_mb = pick(&|t| t.max_batch_memory_mb.map(u64::from)).unwrap_or(u64::from(d.batch_mb));
    let row_group_mb =
        pick(&|t| t.row_group_mb.map(u64::from)).unwrap_or(u64::from(d.row_group_mb));
    let chunk_mb =
        pick(&|t| t.chunk_target_mb.map(u64::from)).unwrap_or(u64::from(d.chunk_target_mb));
    let tuning = PlannedTuning {
        profile: match profile {
            Profile::Safe => "safe",
            Profile::Balanced => "balanced",
            Profile::Fast => "fast",
        }
        .into(),
        parallelism: parallelism as u32,
        batch_rows: batch_rows as u32,
        batch_memory_bytes: batch_mb * MB,
        on_batch_memory_exceeded: export
            .and_then(|t| t.on_batch_memory_exceeded)
            .or_else(|| global.and_then(|t| t.on_batch_memory_exceeded))
            .unwrap_or_default(),
        row_group_bytes: row_group_mb * MB,
        statement_timeout_ms: pick(&|t| t.statement_timeout_ms).unwrap_or(d.statement_timeout_ms),
        lock_timeout_ms: pick(&|t| t.lock_timeout_ms).unwrap_or(d.lock_timeout_ms),
        max_retries: pick(&|t| t.max_retries.map(u64::from)).unwrap_or(3) as u32,
        retry_backoff_ms: pick(&|t| t.retry_backoff_ms).unwrap_or(500),
    };
    (tuning, chunk_mb * MB)
}
