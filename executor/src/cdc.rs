//! The last step of a `cdc` window: once its files, manifest and `_SUCCESS` exist and
//! the state database holds its end as the export's position (finalize), the
//! replication slot is confirmed up to that end so the server may recycle the WAL.
//! Never before: a crash anywhere earlier leaves the slot where it was, and the window
//! is read again.

use std::sync::Mutex;

use rivet_schema::plan::{parse_lsn, PlannedCdc, PlannedExport, WindowKind};
use rivet_sources::ConnectionSettings;

use crate::error::ExecError;
use crate::state::StateStore;

/// Confirms a finalized `cdc` export's slot up to its window's end, and journals it.
/// Does nothing for other exports, nor for binary log exports: the server keeps no
/// position for them, the state database's committed position is the only one.
pub fn confirm_slot(
    e: &PlannedExport,
    settings: &ConnectionSettings,
    state: &Mutex<StateStore>,
    run_id: &str,
) -> Result<(), ExecError> {
    let (Some(PlannedCdc::Slot(cdc)), Some(end)) = (
        e.cdc.as_ref(),
        e.window
            .as_ref()
            .filter(|w| w.kind == WindowKind::Cdc)
            .and_then(|w| w.upper.as_ref()),
    ) else {
        return Ok(());
    };
    let lsn = parse_lsn(end).map_err(|d| ExecError::Internal(format!("export {}: {d}", e.name)))?;
    rivet_sources::advance_slot(settings, &cdc.slot, lsn).map_err(|err| ExecError::Source {
        export: e.name.clone(),
        detail: format!(
            "the window's files and position are committed, but confirming slot `{}` failed: {}; run `rivet apply` on this plan again to confirm it",
            cdc.slot,
            settings.redact(&err.to_string())
        ),
    })?;
    crate::lock_state(state).journal(
        run_id,
        "slot_confirmed",
        Some(&e.name),
        None,
        Some(&serde_json::json!({"slot": cdc.slot, "lsn": end}).to_string()),
    )
}
