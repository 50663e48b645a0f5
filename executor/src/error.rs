//! Executor errors, each with the kind of failure the CLI maps to an exit code: refused
//! plans (seal, version, staleness), failed checks (quality gates), unusable connection
//! settings (usage), runtime failures.

use rivet_schema::{FailureKind, PlanFileError};
use rivet_sources::SourceError;

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot read plan file {path}: {detail}")]
    ReadPlan { path: String, detail: String },
    /// Seal, format version or structure problem (exit 3).
    #[error(transparent)]
    PlanRefused(#[from] PlanFileError),
    /// The source changed shape since planning (exit 3).
    #[error("stale plan: export {export}: {relation}: {change} since the plan was made; re-run `rivet plan` and review the new plan")]
    Stale {
        export: String,
        relation: String,
        change: String,
    },
    /// The columns differ from what the last run of the export wrote to the same
    /// destination, and `on_schema_drift: fail` refuses that (exit 3). Planning again
    /// does not help: the history is in the state database.
    #[error("export {export}: the columns differ from what its last run wrote to {destination}: {changes}; `on_schema_drift: fail` (the default) keeps one shape per destination. If the change is intended, set `on_schema_drift: warn` (or `continue`) on this export, plan again and apply — or export to a new destination")]
    DriftSinceLastRun {
        export: String,
        destination: String,
        changes: String,
    },
    /// The source is another database than the one the plan was made against (exit 3).
    #[error("the source is not the database this plan was made against ({}); point the connection at the planned database, or re-run `rivet plan` against this one and review the new plan", differences.join("; "))]
    OtherSource { differences: Vec<String> },
    #[error("export {export}: {detail}")]
    Source { export: String, detail: String },
    /// The source could not be reached (the message names the target and the key).
    #[error(transparent)]
    Connect(#[from] SourceError),
    #[error("export {export}, chunk {chunk}: {detail}")]
    Chunk {
        export: String,
        chunk: String,
        detail: String,
        /// A retry on a new connection may succeed.
        transient: bool,
    },
    #[error("export {export}: cannot write {path}: {detail}; check that the destination exists, is writable and has free space")]
    Write {
        export: String,
        path: String,
        detail: String,
    },
    #[error("export {export}, chunk {chunk}: cannot encode the output file: {detail}")]
    Encode {
        export: String,
        chunk: String,
        detail: String,
    },
    /// A destination that cannot be set up (missing credential variable, bad option).
    #[error("export {export}: destination: {detail}")]
    Config { export: String, detail: String },
    /// Quality gates failed (exit 4).
    #[error("export {export}: quality gate(s) failed: {}; no _SUCCESS was written (see `rivet journal`)", failures.join("; "))]
    Quality {
        export: String,
        failures: Vec<String>,
    },
    /// Another apply holds the state database or a destination.
    #[error("cannot lock the {what}: {detail}")]
    Locked { what: String, detail: String },
    #[error("state database {path}: {detail}")]
    State { path: String, detail: String },
    #[error("internal error: {0}; please report it with the plan file")]
    Internal(String),
}

impl ExecError {
    /// True when retrying the chunk on a new connection may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ExecError::Chunk { transient, .. } => *transient,
            ExecError::Connect(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Which exit code this error leads to (see docs/exit-codes.md).
    pub fn kind(&self) -> FailureKind {
        match self {
            ExecError::PlanRefused(_)
            | ExecError::Stale { .. }
            | ExecError::OtherSource { .. }
            | ExecError::DriftSinceLastRun { .. } => FailureKind::Refused,
            ExecError::Connect(e) if e.is_settings_error() => FailureKind::Usage,
            ExecError::Quality { .. } => FailureKind::CheckFailed,
            _ => FailureKind::Runtime,
        }
    }
}
