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
