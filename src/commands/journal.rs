//! `rivet journal`: every step of a run (default: the latest), from the state database.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{open_state_read_only, run_or_latest};
use crate::exit::Status;

pub fn show(path: &Path, run_id: Option<String>, as_json: bool) -> Result<Status> {
    let store = open_state_read_only(path)?;
    let run_id = run_or_latest(&store, path, run_id)?;
    let entries = store.journal_of(&run_id)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"format_version": 1, "run_id": run_id, "entries": entries})
            )?
        );
        return Ok(Status::Success);
    }
    for e in entries {
        println!(
            "{}  {:<18} {}{}{}",
            e.at,
            e.event,
            e.export.as_deref().unwrap_or(""),
            e.chunk_id
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default()
        );
    }
    Ok(Status::Success)
}
