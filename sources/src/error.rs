//! Source errors. Messages never contain credentials: anything that came from a
//! connection string goes through [`crate::conn_string::redact`] first.

impl SourceError {
    /// True when the connection settings themselves are unusable (a variable not set
    /// or empty, an unreadable `url_file`, a URL the driver cannot read): fixing the
    /// config or the environment is the only cure, so the CLI exits 2 as for any
    /// invalid config.
    pub fn is_settings_error(&self) -> bool {
        matches!(
            self,
            SourceError::MissingEnv { .. }
                | SourceError::EmptyEnv { .. }
                | SourceError::UrlFile { .. }
                | SourceError::Settings { .. }
        )
    }

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
    #[error("environment variable `{var}` (named by source.{key}) is set but empty; it should hold the {what}")]
    EmptyEnv {
        key: &'static str,
        var: String,
        what: &'static str,
    },
    /// Connection settings that cannot be used as they are (a URL the driver cannot
    /// read, a URL for another engine, a bad TLS file): `key` is the config key to fix.
    #[error("{key}: {detail}")]
    Settings { key: String, detail: String },
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
