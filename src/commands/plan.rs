//! `rivet plan`, `rivet plan show`, `rivet plan diff`.

use std::path::Path;

use anyhow::Result;

use super::{read_plan, write_plan_file};
use crate::exit::{Status, UsageError};

/// Parses `--as-of` (a date, or an RFC 3339 time; default now) into seconds since
/// 1970-01-01 UTC.
fn as_of_seconds(as_of: Option<&str>) -> Result<i64> {
    let Some(text) = as_of else {
        return Ok(chrono::Utc::now().timestamp());
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    Err(UsageError(format!(
        "--as-of `{text}` is not a date (2026-11-27) or an RFC 3339 time (2026-11-27T08:00:00Z)"
    ))
    .into())
}

/// Planning inputs: the reference time and the committed incremental positions of the
/// config's incremental exports (from the state database, when there is one).
pub(super) fn plan_inputs(
    config: &rivet_schema::Config,
    state: &Path,
    as_of: Option<&str>,
) -> Result<rivet_planner::PlanInputs> {
    let mut inputs = rivet_planner::PlanInputs {
        as_of: as_of_seconds(as_of)?,
        cursors: Default::default(),
    };
    let incremental: Vec<&str> = config
        .exports
        .iter()
        .filter(|e| {
            matches!(
                e.mode,
                rivet_schema::config::ExportMode::Incremental
                    | rivet_schema::config::ExportMode::Cdc
            )
        })
        .map(|e| e.name.as_str())
        .collect();
    if !incremental.is_empty() && state.exists() {
        let store = rivet_executor::StateStore::open_read_only(state)?;
        for name in incremental {
            if let Some(c) = store.cursor(name)? {
                inputs.cursors.insert(name.to_owned(), c);
            }
        }
    }
    Ok(inputs)
}

/// `rivet plan -c rivet.yaml -o plan.json`.
pub fn plan(config_path: &Path, out: &Path, state: &Path, as_of: Option<&str>) -> Result<Status> {
    let config = rivet_planner::load_config(config_path)?;
    let inputs = plan_inputs(&config, state, as_of)?;
    let plan = rivet_planner::plan_from_config(&config, &inputs)?;
    write_plan_file(out, &plan)?;
    crate::say!("planned {}", rivet_planner::summary_line(&plan));
    crate::say!("wrote {} (sha256:{})", out.display(), plan.seal.digest);
    for w in rivet_planner::slot_warnings(&plan) {
        eprintln!("warning: {w}");
    }
    crate::say!(
        "review it with `rivet plan show {}`, then run `rivet apply {}`",
        out.display(),
        out.display()
    );
    Ok(Status::Success)
}

/// `rivet plan show plan.json [--json]`.
pub fn show(path: &Path, as_json: bool) -> Result<Status> {
    let plan = read_plan(path)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rivet_planner::show_json(&plan))?
        );
    } else {
        print!("{}", rivet_planner::render_plan(&plan));
    }
    Ok(Status::Success)
}

/// `rivet plan diff old.json new.json [--json]`: exit 0 same, 2 different.
pub fn diff(old: &Path, new: &Path, as_json: bool) -> Result<Status> {
    // Exit codes as everywhere else (docs/exit-codes.md): a file that is not a sealed
    // plan is refused with 3, an unreadable one is 1; 2 is taken by "the plans differ".
    let a = read_plan(old)?;
    let b = read_plan(new)?;
    let d = rivet_planner::diff_plans(&a, &b);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", d.render());
    }
    Ok(if d.is_empty() {
        Status::Success
    } else {
        Status::Different
    })
}
