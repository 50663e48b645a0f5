//! `rivet validate`: re-reads what the exports wrote (a plan's, a config's, or one
//! manifest's) and compares it with their manifests; exit 4 on any problem.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{beside, read_plan, STATE_FILE};
use crate::exit::{Status, UsageError};

/// `rivet validate`: re-reads what the exports wrote and compares it with their
/// manifests; exit 4 on any problem.
pub fn validate(
    plan: Option<&Path>,
    manifest: Option<&Path>,
    config: Option<&Path>,
    as_json: bool,
) -> Result<Status> {
    use rivet_executor::dest::Destination;
    use rivet_executor::validate::validate_export;
    let mut reports = Vec::new();
    match (plan, manifest, config) {
        (None, None, Some(config_path)) => {
            let cfg = rivet_planner::load_config(config_path)?;
            let state = beside(config_path, STATE_FILE);
            let store = if state.exists() {
                Some(rivet_executor::StateStore::open_read_only(&state)?)
            } else {
                None
            };
            let rt = rivet_executor::dest::runtime()?;
            for e in &cfg.exports {
                if e.destination.kind == rivet_schema::config::DestinationKind::Stdout {
                    continue;
                }
                let window = if e.mode == rivet_schema::config::ExportMode::Incremental {
                    match store
                        .as_ref()
                        .map(|s| s.cursor(&e.name))
                        .transpose()?
                        .flatten()
                    {
                        Some(c) => Some(c.seq),
                        None => {
                            crate::say!(
                                "export {}: no committed incremental window in {}; skipped",
                                e.name,
                                state.display()
                            );
                            continue;
                        }
                    }
                } else {
                    None
                };
                let planned = rivet_planner::planned_destination(e, window);
                let dest = Destination::open(&e.name, &planned, rt.handle())?;
                reports.push(validate_export(&e.name, &dest)?);
            }
        }
        (_, Some(path), _) if path.to_string_lossy().contains("://") => {
            let url = path.to_string_lossy();
            let url = url.strip_suffix("/manifest.json").unwrap_or(&url);
            let name = url.rsplit('/').next().unwrap_or("export").to_owned();
            let rt = rivet_executor::dest::runtime()?;
            let dest = Destination::from_url(&name, url, rt.handle())?;
            reports.push(validate_export(&name, &dest)?);
        }
        (_, Some(path), _) => {
            let dir = if path.file_name().is_some_and(|n| n == "manifest.json") {
                path.parent().unwrap_or(Path::new(".")).to_path_buf()
            } else {
                path.to_path_buf()
            };
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".into());
            reports.push(validate_export(&name, &Destination::Local(dir))?);
        }
        (Some(plan_path), None, _) => {
            let plan = read_plan(plan_path)?;
            reports = rivet_executor::validate::validate_plan(&plan)?;
        }
        (None, None, None) => {
            return Err(
                UsageError("give a plan file, -c rivet.yaml or --manifest PATH".into()).into(),
            );
        }
    }
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "valid": problems == 0,
                "problems": problems,
                "exports": reports,
            }))?
        );
    } else {
        for r in &reports {
            if r.problems.is_empty() {
                println!(
                    "OK    export {}: {} file(s), {} rows at {}",
                    r.export, r.files_checked, r.rows, r.location
                );
            }
            for p in &r.problems {
                println!("FAIL  export {}: {}: {}", p.export, p.location, p.problem);
            }
        }
        if problems > 0 {
            match plan {
                Some(plan) => println!(
                    "{problems} problem(s); `rivet repair {p} -o repair.json` makes a plan that rewrites only the damaged chunks (review it, then `rivet apply repair.json`)",
                    p = plan.display()
                ),
                None => println!(
                    "{problems} problem(s); apply the export's plan again (or `rivet repair` it) to rewrite the damaged files"
                ),
            }
        }
    }
    Ok(if problems > 0 {
        Status::CheckFailed
    } else {
        Status::Success
    })
}
