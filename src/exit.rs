//! Exit codes are API (docs/exit-codes.md), and this is the one place they are written
//! down: 0 success, 1 runtime failure, 2 usage or invalid config, 3 plan refused (seal,
//! stale, version), 4 validation or a quality gate failed; `plan diff` exits 2 when the
//! plans differ. Library errors say what kind of failure they are
//! ([`FailureKind`]); commands that end normally say how ([`Status`]).

use rivet_executor::ExecError;
use rivet_planner::PlanError;
use rivet_schema::{ConfigError, FailureKind, PlanFileError};

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// `plan diff`: the plans differ.
    Different,
    /// Checks ran and found problems (`validate`, `reconcile`): exit 4.
    CheckFailed,
    /// Checks ran and some could not pass (`doctor`): exit 1.
    ChecksFailed,
}

/// A usage problem found by the CLI itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code of a command that ended normally.
pub fn code(status: Status) -> u8 {
    match status {
        Status::Success => 0,
        Status::ChecksFailed => code_of_kind(FailureKind::Runtime),
        Status::Different => 2,
        Status::CheckFailed => code_of_kind(FailureKind::CheckFailed),
    }
}

fn code_of_kind(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Runtime => 1,
        FailureKind::Usage => 2,
        FailureKind::Refused => 3,
        FailureKind::CheckFailed => 4,
    }
}

/// The kind of failure of an error from any layer.
pub fn kind_of(err: &anyhow::Error) -> FailureKind {
    if err.downcast_ref::<UsageError>().is_some() {
        return FailureKind::Usage;
    }
    if let Some(e) = err.downcast_ref::<ConfigError>() {
        return e.kind();
    }
    if let Some(e) = err.downcast_ref::<PlanError>() {
        return e.kind();
    }
    if let Some(e) = err.downcast_ref::<PlanFileError>() {
        return e.kind();
    }
    if let Some(e) = err.downcast_ref::<ExecError>() {
        return e.kind();
    }
    FailureKind::Runtime
}

/// The exit code of a failed command.
pub fn code_for(err: &anyhow::Error) -> u8 {
    code_of_kind(kind_of(err))
}
