//! Exit codes are API (docs/exit-codes.md): 0 success, 1 runtime failure, 2 usage or
//! invalid config, 3 plan refused (seal, stale, version), 4 validation failed.

use rivet_executor::ExecError;
use rivet_planner::PlanError;
use rivet_schema::{ConfigError, PlanFileError};

pub const RUNTIME: u8 = 1;
pub const USAGE: u8 = 2;
pub const REFUSED: u8 = 3;

/// A usage problem found by the CLI itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error from any layer to its exit code.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<UsageError>().is_some() {
        return USAGE;
    }
    if let Some(e) = err.downcast_ref::<PlanError>() {
        return if e.is_config_error() { USAGE } else { RUNTIME };
    }
    if err.downcast_ref::<PlanFileError>().is_some() {
        return REFUSED;
    }
    if let Some(e) = err.downcast_ref::<ExecError>() {
        return e.exit_code() as u8;
    }
    RUNTIME
}
