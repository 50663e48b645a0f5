//! PostgreSQL: connection, batched catalog introspection, and chunk reads through
//! `COPY … TO STDOUT (FORMAT binary)` (key-range chunks) or a server-side cursor
//! (whole-relation reads), both decoded straight into Arrow.

/// Runs `$body` (which may `.await?`) inside one `READ ONLY` transaction on a
/// [`PgCatalog`]'s connection, bound to `$tx`. The driver prepares every statement
/// under a name, and a transaction-pooling proxy (pgBouncer in transaction mode) hands
/// the client another server session after every transaction: a statement prepared
/// outside a transaction may be executed on a session that never saw it, or leak into
/// one another client then uses. Inside one transaction, parse, execute and close all
/// reach the same session, and the server itself refuses any write. A `Row` holds its
/// statement, which is closed when the last row goes: `$body` must read what it needs
/// out of its rows and return owned values, never rows.
macro_rules! read_tx {
    ($cat:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let what: &str = $what;
        let client = &mut $cat.client;
        $cat.runtime.block_on(async {
            let $tx = $crate::postgres::catalog::begin_read(client, what).await?;
            #[allow(clippy::let_unit_value)]
            let out = $body;
            $crate::postgres::catalog::end_read($tx, what).await?;
            Ok::<_, $crate::error::SourceError>(out)
        })
    }};
}

mod catalog;
pub mod cdc;
mod copy_binary;
pub mod decode;
pub mod health;
pub mod pgoutput;
mod pooler;
mod read;
mod reader;
mod survey;
pub mod types;

/// The PostgreSQL connection type callers hold between calls.
pub use catalog::PgCatalog;
pub use read::select_sql;
pub use reader::{ChunkReader, PgSnapshot};

use rivet_schema::config::TlsMode;

use crate::connection::{ConnTarget, ConnectionSettings};
use crate::error::SourceError;

/// Quotes an identifier for PostgreSQL, whatever characters it holds.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connection settings for the driver: nothing session-level is set here, because
/// every setting Rivet needs is applied with `SET LOCAL` inside a transaction, so
/// nothing leaks through a transaction-pooling proxy.
fn driver_config(settings: &ConnectionSettings) -> Result<tokio_postgres::Config, SourceError> {
    let mut config = match &settings.conn {
        ConnTarget::Url(url) => {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| SourceError::Settings {
                    key: settings.key.into(),
                    detail: settings.redact(&error_text(&e)),
                })?
        }
        ConnTarget::Parts {
            host,
            port,
            user,
            password,
            database,
        } => {
            let mut c = tokio_postgres::Config::new();
            c.host(host).port(*port);
            match user {
                Some(u) => c.user(u),
                None => {
                    return Err(SourceError::Settings {
                        key: "source.user".into(),
                        detail: "`user` is required with the structured connection keys".into(),
                    })
                }
            };
            if let Some(p) = password {
                c.password(p);
            }
            if let Some(d) = database {
                c.dbname(d);
            }
            c
        }
    };
    config.ssl_mode(match settings.tls_mode {
        TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
        TlsMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    if config.get_application_name().is_none() {
        config.application_name("rivet");
    }
    Ok(config)
}

/// The TLS connector for these settings, built once per process and shared: building
/// one loads and parses the system's CA bundle, which cost more than the connection
/// itself when an apply opened hundreds of connections (one per small export).
fn tls_connector(
    settings: &ConnectionSettings,
) -> Result<postgres_native_tls::MakeTlsConnector, SourceError> {
    type Cache =
        std::collections::HashMap<(TlsMode, Option<String>), postgres_native_tls::MakeTlsConnector>;
    static CONNECTORS: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
    let key = (settings.tls_mode, settings.ca_file.clone());
    let cache = CONNECTORS.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let built = build_tls_connector(settings)?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, built.clone());
    Ok(built)
}

/// Builds the TLS connector for the settings' mode: no verification for
/// `prefer`/`require` (libpq's meaning), the chain for `verify-ca`, chain and host name
/// for `verify-full`.
fn build_tls_connector(
    settings: &ConnectionSettings,
) -> Result<postgres_native_tls::MakeTlsConnector, SourceError> {
    let err = |detail: String| SourceError::Settings {
        key: "source.tls".into(),
        detail,
    };
    let mut builder = native_tls::TlsConnector::builder();
    match settings.tls_mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        TlsMode::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        TlsMode::VerifyFull => {}
    }
    if let Some(path) = &settings.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| err(format!("cannot read CA file `{path}`: {e}")))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| err(format!("CA file `{path}` is not a PEM certificate: {e}")))?;
        builder.add_root_certificate(cert);
    }
    let connector = builder.build().map_err(|e| err(e.to_string()))?;
    Ok(postgres_native_tls::MakeTlsConnector::new(connector))
}

fn connect_error(settings: &ConnectionSettings, e: &tokio_postgres::Error) -> SourceError {
    SourceError::Connect {
        target: settings.target.clone(),
        detail: settings.redact(&error_text(e)),
        transient: is_transient(e),
    }
}

/// PostgreSQL's transient failures, by SQLSTATE: connection exceptions (class 08),
/// serialization failure (40001), deadlock (40P01), lock not available (55P03), too many
/// connections (53300), admin/crash shutdown and cannot-connect-now (57P01..57P03).
/// An error with no SQLSTATE is an I/O or protocol failure of the connection itself.
pub fn is_transient(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || matches!(
                    c,
                    // 55006 object in use: a replication slot still held by the
                    // backend of a killed apply, free once that backend notices.
                    "40001" | "40P01" | "55P03" | "55006" | "53300" | "57P01" | "57P02" | "57P03"
                )
        }
        None => e.as_db_error().is_none(),
    }
}

/// Opens a catalog connection.
pub fn connect(settings: &ConnectionSettings) -> Result<PgCatalog, SourceError> {
    PgCatalog::connect(settings)
}

/// Opens a `tokio-postgres` connection on a private current-thread runtime. The whole
/// connect — TCP, TLS handshake and login — runs under `settings.connect_timeout`
/// (the driver's own `connect_timeout` covers only the TCP connect), so a server that
/// accepts TCP and never answers cannot hang the caller.
pub(crate) fn open(
    settings: &ConnectionSettings,
) -> Result<(tokio::runtime::Runtime, tokio_postgres::Client), SourceError> {
    open_with(settings, driver_config(settings)?)
}

fn open_with(
    settings: &ConnectionSettings,
    config: tokio_postgres::Config,
) -> Result<(tokio::runtime::Runtime, tokio_postgres::Client), SourceError> {
    let tls = tls_connector(settings)?;
    let runtime = settings.io_runtime()?;
    let (client, connection) = runtime
        .block_on(async {
            tokio::time::timeout(settings.connect_timeout, config.connect(tls)).await
        })
        .map_err(|_| settings.connect_timed_out())?
        .map_err(|e| connect_error(settings, &e))?;
    runtime.spawn(async move {
        // Errors surface on the client's next call; nothing to do here.
        let _ = connection.await;
    });
    Ok((runtime, client))
}

/// The server's message with SQLSTATE, detail and hint when there is one.
pub fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}
