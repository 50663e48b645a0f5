//! Errors a user sees when a config or a plan file is rejected. Each problem carries
//! the key path (`exports[1].chunk_size`) so the message can point at the exact place.

use std::fmt;

/// What kind of failure an error is. Every error type of the library crates says which
/// kind it is, and the binary maps kinds to exit codes in one place (docs/exit-codes.md),
/// so an exit code is never decided twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Something failed while running (source, destination, state): exit 1.
    Runtime,
    /// The command line or the config is wrong: exit 2.
    Usage,
    /// The plan is refused (seal, format version, staleness): exit 3.
    Refused,
    /// What was written does not pass a check (validation, quality gates): exit 4.
    CheckFailed,
}

/// One thing wrong with a config, located by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Key path in the config, e.g. `exports[1].chunk_size` (empty for the document root).
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config could not be used. Maps to exit code 2 in the CLI.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config {file}: {detail}")]
    Unreadable { file: String, detail: String },
    /// The text is not YAML at all.
    #[error("{file}: not valid YAML: {detail}")]
    Syntax { file: String, detail: String },
    /// The YAML parsed but breaks the schema or a semantic rule.
    #[error("{file}: invalid config:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: String,
        problems: Vec<ConfigProblem>,
    },
    /// The file holds no config at all (empty, or only comments).
    #[error("{file}: the config is empty; it needs a `source` and at least one export (see docs/config-reference.md)")]
    Empty { file: String },
}

impl ConfigError {
    /// Always [`FailureKind::Usage`].
    pub fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// Why a plan file was refused. Maps to exit code 3 in the CLI.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("{file}: not a rivet plan (not valid JSON: {detail}); create one with `rivet plan -c rivet.yaml -o plan.json`")]
    NotJson { file: String, detail: String },
    #[error("{file}: not a rivet plan: {detail}; create one with `rivet plan -c rivet.yaml -o plan.json`")]
    NotAPlan { file: String, detail: String },
    #[error("{file}: plan format_version {found} is not understood by this rivet (it reads version {supported}); re-plan with this rivet or apply with the rivet that made the plan")]
    UnknownFormatVersion {
        file: String,
        found: String,
        supported: u32,
    },
    #[error("{file}: seal mismatch: the plan was edited after it was sealed (sealed digest {sealed}, content now hashes to {actual}); plans must not be edited by hand: re-run `rivet plan` and review the new plan")]
    SealMismatch {
        file: String,
        sealed: String,
        actual: String,
    },
    #[error("{file}: sealed plan does not match this rivet's plan types at {path}: {detail}")]
    Malformed {
        file: String,
        path: String,
        detail: String,
    },
}

impl PlanFileError {
    /// Always [`FailureKind::Refused`].
    pub fn kind(&self) -> FailureKind {
        FailureKind::Refused
    }
}
