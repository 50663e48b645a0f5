//! What the state database says about recent work, in one value: the recent runs (a
//! run recorded as running whose process no longer holds the state lock is reported as
//! interrupted), the per-export progress of the latest plan, and the committed
//! incremental positions. `rivet state` prints it and `rivet-mcp`'s `state_summary`
//! returns it; both open the database read-only and never write to it.

use std::path::Path;

use serde::Serialize;

use crate::error::ExecError;
use crate::state::{ExportProgress, RunRecord, StateStore};

/// One committed incremental position: where the export's next window starts.
#[derive(Debug, Clone, Serialize)]
pub struct CursorPosition {
    pub export: String,
    pub column: String,
    pub value_type: rivet_schema::plan::CursorType,
    pub position: String,
    pub window: u32,
}

/// The state database's answer to "what has run, and how far did it get?".
#[derive(Debug, Clone, Serialize)]
pub struct StateSummary {
    pub format_version: u32,
    pub runs: Vec<RunRecord>,
    pub latest_plan_digest: Option<String>,
    pub exports: Vec<ExportProgress>,
    pub cursors: Vec<CursorPosition>,
}

/// Reads the summary from the state database at `path`, opened read-only; `limit`
/// bounds the number of runs listed (newest first).
pub fn state_summary(path: &Path, limit: u32) -> Result<StateSummary, ExecError> {
    let store = StateStore::open_read_only(path)?;
    let mut runs = store.recent_runs(limit)?;
    // A run recorded as running whose process no longer holds the state lock died
    // (killed, crashed). Reading does not write: the next apply records it.
    let holder = crate::lock::state_holder(path);
    for r in runs.iter_mut().filter(|r| r.status == "running") {
        if holder.as_ref().is_none_or(|h| h.run_id != r.run_id) {
            r.status = "interrupted".into();
            r.error = Some(
                "the process ended without finishing (killed or crashed); no apply holds the state lock"
                    .into(),
            );
        }
    }
    let latest_plan_digest = runs.first().map(|r| r.plan_digest.clone());
    let exports = match &latest_plan_digest {
        Some(d) => store.export_progress(d)?,
        None => Vec::new(),
    };
    let cursors = store
        .cursors()?
        .into_iter()
        .map(|(export, c)| CursorPosition {
            export,
            column: c.column,
            value_type: c.value_type,
            position: c.position,
            window: c.seq,
        })
        .collect();
    Ok(StateSummary {
        format_version: 1,
        runs,
        latest_plan_digest,
        exports,
        cursors,
    })
}
