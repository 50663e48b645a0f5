//! `rivet reconcile plan.json`: re-reads every chunk from the source and compares it
//! with what was exported; exit 4 when any chunk drifted.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::read_plan;
use crate::exit::Status;

/// `rivet reconcile`: one line per drifted chunk; exit 4 when any.
pub fn reconcile(plan_path: &Path, checksum: bool, as_json: bool) -> Result<Status> {
    let plan = read_plan(plan_path)?;
    let checks = rivet_executor::reconcile::reconcile(&plan, checksum)?;
    let drifted: Vec<_> = checks.iter().filter(|c| c.drifted).collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "chunks_checked": checks.len(),
                "drifted": drifted.len(),
                "chunks": checks,
            }))?
        );
    } else {
        for c in &drifted {
            let exported = c
                .exported_rows
                .map_or("not exported by this plan".to_owned(), |n| {
                    format!("{n} rows exported")
                });
            let sums = match c.checksum_equal {
                Some(false) => ", row checksums differ",
                _ => "",
            };
            println!(
                "DRIFT export {}, chunk {}: {exported}, {} rows in the source now{sums}",
                c.export, c.chunk, c.source_rows
            );
        }
        println!(
            "{} chunk(s) checked, {} drifted{}",
            checks.len(),
            drifted.len(),
            if checksum {
                " (rows and checksums)"
            } else {
                " (row counts)"
            }
        );
    }
    Ok(if drifted.is_empty() {
        Status::Success
    } else {
        Status::CheckFailed
    })
}
