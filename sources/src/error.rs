//! Source errors. Messages never contain credentials: anything that came from a
//! connection string goes through [`crate::connection::redact`] first.

impl SourceError {
    /// True for failures that a retry on a fresh connection may cure: a dropped
    /// connection, deadlock, serialization failure, lock timeout, too many connections,
    /// a server starting up or shutting down. Syntax, permission, missing objects and
    /// statement timeouts are permanent.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SourceError::Connect {
                transient: true,
                ..
            } | SourceError::Query {
                transient: true,
                ..
            }
        )
    }
}

/// Why talking to a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("environment variable `{var}` (named by source.{key}) is not set; export it before running rivet")]
    MissingEnv { key: &'static str, var: String },
    #[error("cannot read source.url_file `{path}`: {detail}")]
    UrlFile { path: String, detail: String },
    #[error("invalid connection settings ({origin}): {detail}")]
    Settings { origin: String, detail: String },
    #[error("cannot connect to {target}: {detail}; check the host, port, credentials and that the server accepts connections")]
    Connect {
        target: String,
        detail: String,
        /// Worth retrying (server starting up, too many connections, network).
        transient: bool,
    },
    #[error("{context}: {detail}")]
    Query {
        context: String,
        detail: String,
        /// Worth retrying on a new connection (see [`SourceError::is_transient`]).
        transient: bool,
    },
    #[error("table `{table}` was not found in the source database; check the schema and exact name (names are case-sensitive)")]
    TableNotFound { table: String },
    #[error("{relation}: a batch of {rows} row(s) reached {bytes} bytes, over the {target}-byte memory target, and on_batch_memory_exceeded is `fail`; raise tuning.max_batch_memory_mb, lower tuning.batch_size, or use `auto_shrink`")]
    BatchMemoryExceeded {
        relation: String,
        rows: usize,
        bytes: usize,
        target: usize,
    },
    #[error("column `{column}` of {relation}: cannot decode value: {detail}")]
    Decode {
        relation: String,
        column: String,
        detail: String,
    },
}
