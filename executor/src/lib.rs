//! Sealed plan → files. Verifies the seal and that the source still has the shape the
//! plan was made against, walks the plan's DAG wave by wave, reads each chunk through
//! `rivet-sources`, encodes Parquet or CSV, writes each file so that it appears under its
//! final name only when complete (local rename, object-store PUT or completed multipart
//! upload, see [`dest`]), records every step in the SQLite state journal, and finishes
//! each export with `manifest.json` and then `_SUCCESS`.
//!
//! **Architecture invariant:** the executor never depends on the planner. It replays
//! the plan it is given and refuses one it cannot trust; it never re-plans.

mod apply;
mod chunks;
pub mod dest;
mod error;
mod manifest;
pub mod quality;
pub mod reconcile;
pub mod repair;
mod stale;
pub mod state;
pub mod validate;
mod writer;

pub use apply::{apply_plan, ApplyOptions, ApplyOutcome, ProgressEvent};
pub use error::ExecError;
pub use manifest::{Manifest, ManifestFile, MANIFEST_FILE, SUCCESS_FILE};
pub use state::StateStore;
