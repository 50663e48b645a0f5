//! `rivet metrics [RUN] [--json]`: a past run's metrics from the state database, in
//! the same form `rivet apply --metrics-file` writes.

use std::path::Path;

use anyhow::Result;

use super::open_state_read_only;
use crate::exit::{Status, UsageError};

pub fn show(path: &Path, run_id: Option<String>, as_json: bool) -> Result<Status> {
    let store = open_state_read_only(path)?;
    let run_id = match run_id {
        Some(r) => r,
        None => store
            .recent_runs(1)?
            .into_iter()
            .next()
            .map(|r| r.run_id)
            .ok_or_else(|| UsageError(format!("no runs recorded in {}", path.display())))?,
    };
    let m = rivet_executor::metrics::run_metrics(&store, &run_id)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        print!("{}", rivet_executor::metrics::prometheus(&m));
    }
    Ok(Status::Success)
}
