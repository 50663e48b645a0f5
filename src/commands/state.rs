//! `rivet state` (recent runs, per-export progress, incremental positions) and
//! `rivet state reset-cursor`. Showing state never writes to the state database.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{open_state_read_only, require_state};
use crate::exit::{Status, UsageError};

/// `rivet state reset-cursor EXPORT`: the export's next plan starts from window 1.
pub fn reset_cursor(path: &Path, export: &str) -> Result<Status> {
    require_state(path)?;
    let _lock = rivet_executor::lock::lock_state(
        path,
        &rivet_executor::lock::Holder::me("state reset-cursor"),
    )?;
    let store = rivet_executor::StateStore::open(path)?;
    if store.reset_cursor(export)? {
        crate::say!(
            "export {export}: committed position forgotten; its next plan starts from the beginning (window 1)"
        );
        Ok(Status::Success)
    } else {
        Err(UsageError(format!(
            "export {export} has no committed position in {}",
            path.display()
        ))
        .into())
    }
}

/// `rivet state reset-shape EXPORT`: the export's next apply has no drift history.
pub fn reset_shape(path: &Path, export: &str) -> Result<Status> {
    require_state(path)?;
    let _lock = rivet_executor::lock::lock_state(
        path,
        &rivet_executor::lock::Holder::me("state reset-shape"),
    )?;
    let store = rivet_executor::StateStore::open(path)?;
    match store.reset_shape(export)? {
        0 => Err(UsageError(format!(
            "export {export} has no recorded shape in {}",
            path.display()
        ))
        .into()),
        n => {
            crate::say!("export {export}: {n} recorded shape(s) forgotten; its next apply compares with nothing");
            Ok(Status::Success)
        }
    }
}

/// `rivet state [--json]`.
pub fn show(path: &Path, limit: u32, as_json: bool) -> Result<Status> {
    let store = open_state_read_only(path)?;
    let mut runs = store.recent_runs(limit)?;
    // A run recorded as running whose process no longer holds the state lock died
    // (killed, crashed). This command does not write: the next apply records it.
    let holder = rivet_executor::lock::state_holder(path);
    for r in runs.iter_mut().filter(|r| r.status == "running") {
        if holder.as_ref().is_none_or(|h| h.run_id != r.run_id) {
            r.status = "interrupted".into();
            r.error = Some(
                "the process ended without finishing (killed or crashed); no apply holds the state lock"
                    .into(),
            );
        }
    }
    let latest_digest = runs.first().map(|r| r.plan_digest.clone());
    let progress = match &latest_digest {
        Some(d) => store.export_progress(d)?,
        None => Vec::new(),
    };
    let cursors: Vec<serde_json::Value> = store
        .cursors()?
        .into_iter()
        .map(|(export, c)| {
            json!({
                "export": export,
                "column": c.column,
                "value_type": c.value_type,
                "position": c.position,
                "window": c.seq,
            })
        })
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "runs": runs,
                "latest_plan_digest": latest_digest,
                "exports": progress,
                "cursors": cursors,
            }))?
        );
        return Ok(Status::Success);
    }
    if runs.is_empty() {
        println!("no runs recorded in {}", path.display());
        return Ok(Status::Success);
    }
    if !cursors.is_empty() {
        println!("incremental positions (the next window starts here):");
        for c in &cursors {
            println!(
                "  {:<24} {} = {} after window {}",
                c["export"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default(),
                c["position"],
                c["window"]
            );
        }
    }
    println!("recent runs ({}):", path.display());
    for r in &runs {
        println!(
            "  {}  {:<9} plan sha256:{}  started {}  finished {}  ({}){}",
            r.run_id,
            r.status,
            &r.plan_digest[..12.min(r.plan_digest.len())],
            r.started_at,
            r.finished_at.as_deref().unwrap_or("-"),
            r.plan_path,
            r.error
                .as_deref()
                .map(|e| format!("\n      error: {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(d) = latest_digest {
        println!(
            "exports of the latest plan (sha256:{}):",
            &d[..12.min(d.len())]
        );
        for p in progress {
            println!(
                "  {:<24} {}/{} chunks committed{}, {} rows, {} bytes",
                p.export,
                p.chunks_committed,
                p.chunks_total,
                if p.chunks_failed > 0 {
                    format!(" ({} failed)", p.chunks_failed)
                } else {
                    String::new()
                },
                p.rows,
                p.bytes
            );
        }
    }
    Ok(Status::Success)
}
