//! Planning errors. `Config` problems (a bad table name, a missing column, a chunk key
//! that is not an integer) and unusable connection settings map to exit code 2 with the
//! key path; other source failures to 1.

use rivet_sources::SourceError;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The config does not fit the source: names the key path and the fix.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    /// The config file itself could not be read or parsed.
    #[error(transparent)]
    ConfigFile(#[from] rivet_schema::ConfigError),
    /// A source failure while planning particular exports (a permission, a timeout).
    /// The message holds the source error's text, so it is not also chained (which
    /// would print it twice).
    #[error("{what}: {cause}")]
    SourceFor { what: String, cause: SourceError },
    /// The source could not be reached or queried.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The compiled plan is inconsistent (a bug in rivet).
    #[error("internal planning error: {0}; please report it")]
    Internal(String),
}

impl PlanError {
    /// Which exit code this error leads to.
    pub fn kind(&self) -> rivet_schema::FailureKind {
        match self {
            PlanError::Config { .. } | PlanError::ConfigFile(_) => rivet_schema::FailureKind::Usage,
            // Connection settings that cannot be used are fixed in the config or the
            // environment it names, like any other config problem.
            PlanError::Source(e) | PlanError::SourceFor { cause: e, .. }
                if e.is_settings_error() =>
            {
                rivet_schema::FailureKind::Usage
            }
            PlanError::Source(_) | PlanError::SourceFor { .. } | PlanError::Internal(_) => {
                rivet_schema::FailureKind::Runtime
            }
        }
    }
}
