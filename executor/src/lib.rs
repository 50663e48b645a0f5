//! Sealed plan → files. Verifies the seal and that the source still has the shape the
//! plan was made against, walks the plan's DAG wave by wave, reads each chunk through
//! `rivet-sources`, encodes Parquet or CSV, writes each file so that it appears under its
//! final name only when complete (local rename, object-store PUT or completed multipart
//! upload, see [`dest`]), records every step in the SQLite state journal, and finishes
//! each export with `manifest.json` and then `_SUCCESS`.
//!
//! **Architecture invariant:** the executor never depends on the planner. It replays
//! the plan it is given and refuses one it cannot trust; it never re-plans.
//!
//! Modules, top-down: [`apply`] orchestrates; `preflight` checks the plan still fits;
//! `chunks` reads, encodes and commits chunks; `finalize` writes manifests and
//! `_SUCCESS`; `validate`, `reconcile` and `repair` check and mend what was written.
//! `summary` reads what the state database says for `rivet state` and `rivet-mcp`.
//! Below them: `request` (the read a chunk sends), `retry`, `drift`, `stale`,
//! `writer` (Parquet/CSV), [`dest`] (where files go), `durable` (atomic local
//! writes), [`state`] (the SQLite journal), `progress`.

mod apply;
mod cdc;
mod chunks;
pub mod dest;
pub mod doctor;
pub mod drift;
pub mod durable;
mod error;
mod finalize;
pub mod lineage;
pub mod lock;
mod manifest;
pub mod metrics;
mod pool;
mod preflight;
pub mod progress;
pub mod quality;
pub mod reconcile;
pub mod repair;
pub mod request;
mod retry;
mod stale;
pub mod state;
pub mod summary;
pub mod validate;
mod writer;

use std::sync::{Mutex, MutexGuard};

pub use apply::{apply_plan, new_run_id, ApplyOptions, ApplyOutcome};
pub use error::ExecError;
pub use finalize::FinalizedExport;
pub use manifest::{Manifest, ManifestFile, MANIFEST_FILE, SUCCESS_FILE};
pub use progress::ProgressEvent;
pub use state::StateStore;

/// The shared state database. A worker that panicked while holding it cannot have left
/// a half-done SQLite transaction (rusqlite rolls back on drop), so a poisoned lock is
/// still safe to use.
pub(crate) fn lock_state(state: &Mutex<StateStore>) -> MutexGuard<'_, StateStore> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}
