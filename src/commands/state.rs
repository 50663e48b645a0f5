//! `rivet state` (recent runs, per-export progress, incremental positions) and
//! `rivet state reset-cursor`. Showing state never writes to the state database.

use std::path::Path;

use super::require_state;
use crate::exit::{Status, UsageError};
use anyhow::Result;

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
    require_state(path)?;
    let summary = rivet_executor::summary::state_summary(path, limit)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(Status::Success);
    }
    let runs = &summary.runs;
    if runs.is_empty() {
        println!("no runs recorded in {}", path.display());
        return Ok(Status::Success);
    }
    if !summary.cursors.is_empty() {
        println!("incremental positions (the next window starts here):");
        for c in &summary.cursors {
            println!(
                "  {:<24} {} = {} after window {}",
                c.export,
                c.column,
                serde_json::Value::from(c.position.as_str()),
                c.window
            );
        }
    }
    println!("recent runs ({}):", path.display());
    for r in runs {
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
    if let Some(d) = &summary.latest_plan_digest {
        println!(
            "exports of the latest plan (sha256:{}):",
            &d[..12.min(d.len())]
        );
        for p in &summary.exports {
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
