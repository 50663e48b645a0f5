//! `rivet metrics [RUN] [--json]`: a past run's metrics from the state database, in
//! the same form `rivet apply --metrics-file` writes.

use std::path::Path;

use anyhow::Result;

use super::{open_state_read_only, run_or_latest};
use crate::exit::Status;

pub fn show(path: &Path, run_id: Option<String>, as_json: bool) -> Result<Status> {
    let store = open_state_read_only(path)?;
    let run_id = run_or_latest(&store, path, run_id)?;
    let m = rivet_executor::metrics::run_metrics(&store, &run_id)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        print!("{}", rivet_executor::metrics::prometheus(&m));
    }
    Ok(Status::Success)
}
