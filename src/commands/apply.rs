//! `rivet apply plan.json`, `rivet apply rivet.yaml` and `rivet run`, with a progress
//! bar on stderr.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use rivet_executor::{apply_plan, ApplyOptions, ProgressEvent};
use rivet_schema::Plan;

use super::{beside, plan::plan_inputs, write_plan_file, STATE_FILE};
use crate::exit::Status;

/// `rivet apply rivet.yaml` plans and applies in one step, like `rivet run`.
pub fn is_config_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} chunks {msg}",
        )
        .expect("the progress template is valid"),
    );
    bar
}

/// Applies a sealed plan, showing progress.
pub fn apply(plan: &Plan, label: &str, state: &Path, resume: bool) -> Result<Status> {
    let bar = progress_bar();
    let rows = AtomicU64::new(0);
    let on_event = |ev: ProgressEvent| match ev {
        ProgressEvent::Started {
            chunks_to_run,
            chunks_skipped,
            estimated_rows,
        } => {
            bar.set_length(chunks_to_run as u64);
            if chunks_skipped > 0 {
                bar.println(format!(
                    "resuming: {chunks_skipped} chunk(s) already committed are skipped"
                ));
            }
            bar.set_message(format!("~{estimated_rows} rows estimated"));
        }
        ProgressEvent::ChunkCommitted {
            export,
            chunk,
            rows: r,
            bytes,
        } => {
            let total = rows.fetch_add(r, Ordering::Relaxed) + r;
            bar.inc(1);
            bar.set_message(format!(
                "{total} rows; last {chunk} ({export}: {r} rows, {bytes} bytes)"
            ));
        }
        ProgressEvent::ExportFinalized {
            export,
            rows,
            files,
        } => {
            bar.println(format!("export {export}: {rows} rows in {files} file(s), manifest.json and _SUCCESS written"));
        }
    };
    let opts = ApplyOptions {
        plan_label: label.to_owned(),
        state_path: state.to_owned(),
        resume,
        progress: &on_event,
    };
    let result = apply_plan(plan, &opts);
    bar.finish_and_clear();
    let outcome = result?;
    for done in &outcome.exports {
        let dest = plan
            .body
            .export(&done.export)
            .map(|e| e.destination.display())
            .ok_or_else(|| anyhow::anyhow!("the plan has no export {}", done.export))?;
        eprintln!(
            "  {}: {} rows, {} bytes, {} file(s) -> {dest}",
            done.export, done.rows, done.bytes, done.files
        );
    }
    eprintln!(
        "applied sha256:{} as {}: {} chunk(s) run, {} skipped; state in {}",
        outcome.digest,
        outcome.run_id,
        outcome.chunks_run,
        outcome.chunks_skipped,
        state.display()
    );
    Ok(Status::Success)
}

/// `rivet run -c rivet.yaml`: plans, keeps the plan under `.rivet_plans/` beside the
/// state database, and applies it.
pub fn run(
    config_path: &Path,
    state: Option<PathBuf>,
    resume: bool,
    as_of: Option<&str>,
) -> Result<Status> {
    let config = rivet_planner::load_config(config_path)?;
    let state = state.unwrap_or_else(|| beside(config_path, STATE_FILE));
    let inputs = plan_inputs(&config, &state, as_of)?;
    let plan = rivet_planner::plan_from_config(&config, &inputs)?;
    let kept = beside(&state, ".rivet_plans").join(format!("{}.json", plan.seal.digest));
    write_plan_file(&kept, &plan)?;
    eprintln!("planned {}", rivet_planner::summary_line(&plan));
    eprintln!("plan kept at {}", kept.display());
    apply(&plan, &kept.display().to_string(), &state, resume)
}
