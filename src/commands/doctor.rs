//! `rivet doctor -c rivet.yaml`: one PASS/FAIL line per check of the source, each
//! table or query, and each destination; exit 1 when any fails.

use std::path::Path;

use anyhow::Result;
use rivet_executor::doctor::{check_destinations, check_source, ExportTarget, Level};

use crate::exit::Status;

pub fn doctor(config_path: &Path) -> Result<Status> {
    let config = rivet_planner::load_config(config_path)?;
    let targets: Vec<ExportTarget> = config
        .exports
        .iter()
        .map(|e| ExportTarget {
            name: e.name.clone(),
            table: e.table.clone(),
            query: e.query.clone(),
            destination: rivet_planner::planned_destination(e, None),
            cdc: (e.mode == rivet_schema::config::ExportMode::Cdc).then(|| {
                (
                    rivet_schema::config::CdcConfig::slot_name(e.cdc.as_ref(), &e.name),
                    rivet_schema::config::CdcConfig::publication_name(e.cdc.as_ref(), &e.name),
                )
            }),
        })
        .collect();
    let rt = rivet_executor::dest::runtime()?;
    let (mut checks, sizes) = check_source(&config.source, &targets);
    checks.extend(check_destinations(&targets, &sizes, rt.handle()));
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    for c in &checks {
        let tag = match c.level {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {}: {}", c.what, c.detail);
        if c.level != Level::Pass && !c.fix.is_empty() {
            println!("      fix: {}", c.fix);
        }
    }
    if failed > 0 {
        println!("{failed} check(s) failed");
        Ok(Status::ChecksFailed)
    } else {
        println!("all checks passed");
        Ok(Status::Success)
    }
}
