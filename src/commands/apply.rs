//! `rivet apply plan.json`, `rivet apply rivet.yaml` and `rivet run`: progress on
//! stderr, and when asked, the run's metrics and OpenLineage events written at its end.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rivet_executor::lineage::{run_events, EventType};
use rivet_executor::{apply_plan, new_run_id, ApplyOptions, FinalizedExport};
use rivet_schema::Plan;

use super::{beside, plan::plan_inputs, read_plan, write_plan_file, STATE_FILE};
use crate::cli::MetricsArgs;
use crate::exit::{Status, UsageError};
use crate::progress::{Mode, Reporter};

/// `rivet apply rivet.yaml` plans and applies in one step, like `rivet run`.
pub fn is_config_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Appends OpenLineage events as JSON lines.
fn write_lineage(path: &Path, events: &[serde_json::Value]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the OpenLineage file {}", path.display()))?;
    for e in events {
        writeln!(f, "{e}")
            .with_context(|| format!("cannot write the OpenLineage file {}", path.display()))?;
    }
    Ok(())
}

/// Writes the run's metrics (from the state database) where asked.
fn write_metrics(state: &Path, run_id: &str, out: &MetricsArgs) -> Result<()> {
    if out.metrics_file.is_none() && out.metrics_json.is_none() {
        return Ok(());
    }
    let store = rivet_executor::StateStore::open_read_only(state)?;
    let m = rivet_executor::metrics::run_metrics(&store, run_id)?;
    if let Some(p) = &out.metrics_file {
        rivet_executor::durable::write_atomic(
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rivet_executor::metrics::prometheus(&m).as_bytes(),
        )
        .with_context(|| format!("cannot write the metrics file {}", p.display()))?;
    }
    if let Some(p) = &out.metrics_json {
        std::fs::write(p, serde_json::to_string_pretty(&m)? + "\n")
            .with_context(|| format!("cannot write the metrics file {}", p.display()))?;
    }
    Ok(())
}

/// Applies a sealed plan, showing progress.
pub fn apply(
    plan: &Plan,
    label: &str,
    state: &Path,
    resume: bool,
    mode: Mode,
    outputs: &MetricsArgs,
) -> Result<Status> {
    let reporter = Reporter::new(mode);
    let run_id = new_run_id();
    let source_target = rivet_sources::ConnectionSettings::resolve(&plan.body.source)
        .map(|s| s.target.clone())
        .unwrap_or_default();
    if let Some(p) = &outputs.openlineage_file {
        write_lineage(
            p,
            &run_events(plan, &run_id, EventType::Start, &source_target, &[]),
        )?;
    }
    let on_event = |ev| reporter.event(ev);
    let opts = ApplyOptions {
        run_id: run_id.clone(),
        plan_label: label.to_owned(),
        state_path: state.to_owned(),
        resume,
        progress: &on_event,
    };
    let result = apply_plan(plan, &opts);
    reporter.finish();
    // Metrics and lineage describe failed runs too; their own errors must not hide the
    // apply's.
    let finished: &[FinalizedExport] = result.as_ref().map(|o| o.exports.as_slice()).unwrap_or(&[]);
    if let Some(p) = &outputs.openlineage_file {
        let kind = if result.is_ok() {
            EventType::Complete
        } else {
            EventType::Fail
        };
        let events = run_events(plan, &run_id, kind, &source_target, finished);
        if let Err(e) = write_lineage(p, &events) {
            tracing::error!("{e:#}");
        }
    }
    if state.exists() {
        if let Err(e) = write_metrics(state, &run_id, outputs) {
            tracing::error!("{e:#}");
        }
    }
    let outcome = result?;
    for done in &outcome.exports {
        let dest = plan
            .body
            .export(&done.export)
            .map(|e| e.destination.display())
            .ok_or_else(|| anyhow::anyhow!("the plan has no export {}", done.export))?;
        crate::say!(
            "  {}: {} rows, {} bytes, {} file(s) -> {dest}",
            done.export,
            done.rows,
            done.bytes,
            done.files
        );
    }
    crate::say!(
        "applied sha256:{} as {}: {} chunk(s) run, {} skipped; state in {}",
        outcome.digest,
        outcome.run_id,
        outcome.chunks_run,
        outcome.chunks_skipped,
        state.display()
    );
    Ok(Status::Success)
}

/// The kept plan of the latest run that did not succeed, for `run --resume`.
fn plan_to_resume(state: &Path) -> Result<(Plan, String)> {
    if !state.exists() {
        return Err(UsageError(format!(
            "nothing to resume: there is no state database at {}; run without --resume",
            state.display()
        ))
        .into());
    }
    let store = rivet_executor::StateStore::open_read_only(state)?;
    let latest = store.recent_runs(1)?.into_iter().next().ok_or_else(|| {
        UsageError(format!(
            "nothing to resume: no run is recorded in {}; run without --resume",
            state.display()
        ))
    })?;
    if latest.status == "succeeded" {
        return Err(UsageError(format!(
            "nothing to resume: the latest run ({}) succeeded; run without --resume to plan and apply again",
            latest.run_id
        ))
        .into());
    }
    let path = PathBuf::from(&latest.plan_path);
    let plan = read_plan(&path).with_context(|| {
        format!(
            "the plan of run {} ({}) cannot be read",
            latest.run_id, latest.plan_path
        )
    })?;
    Ok((plan, latest.plan_path))
}

/// `rivet run -c rivet.yaml`: plans, keeps the plan under `.rivet_plans/` beside the
/// state database, and applies it; with `resume`, applies the interrupted run's kept
/// plan again instead.
pub fn run(
    config_path: &Path,
    state: Option<PathBuf>,
    resume: bool,
    as_of: Option<&str>,
    mode: Mode,
    outputs: &MetricsArgs,
) -> Result<Status> {
    let state = state.unwrap_or_else(|| beside(config_path, STATE_FILE));
    if resume {
        if as_of.is_some() {
            return Err(UsageError(
                "`--as-of` makes a new plan; `--resume` finishes the interrupted run's plan as it was sealed — give one of them".into(),
            )
            .into());
        }
        let (plan, label) = plan_to_resume(&state)?;
        crate::say!("resuming the plan kept at {label}");
        return apply(&plan, &label, &state, true, mode, outputs);
    }
    let config = rivet_planner::load_config(config_path)?;
    let inputs = plan_inputs(&config, &state, as_of)?;
    let plan = rivet_planner::plan_from_config(&config, &inputs)?;
    let kept = beside(&state, ".rivet_plans").join(format!("{}.json", plan.seal.digest));
    write_plan_file(&kept, &plan)?;
    crate::say!("planned {}", rivet_planner::summary_line(&plan));
    crate::say!("plan kept at {}", kept.display());
    apply(
        &plan,
        &kept.display().to_string(),
        &state,
        false,
        mode,
        outputs,
    )
}
