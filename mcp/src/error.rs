//! Why a tool call failed, as the client sees it: the message of the library error
//! (already free of secrets where it was built) or a usage problem naming the argument.
//! A failed call is a tool result marked as an error, not a protocol error, so the
//! agent reads the reason.

/// A tool call that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not say what to work on (which argument, and what to give).
    #[error("{0}")]
    Usage(String),
    #[error("cannot read plan file {path}: {detail}")]
    ReadPlan { path: String, detail: String },
    #[error(transparent)]
    PlanFile(#[from] rivet_schema::PlanFileError),
    #[error(transparent)]
    Config(#[from] rivet_schema::ConfigError),
    #[error(transparent)]
    Source(#[from] rivet_sources::SourceError),
    #[error(transparent)]
    Exec(#[from] rivet_executor::ExecError),
    #[error("the tool's worker stopped: {0}")]
    Worker(String),
}
