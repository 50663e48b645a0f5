//! PostgreSQL: connection, batched catalog introspection, and chunk reads through
//! `COPY … TO STDOUT (FORMAT binary)` (key-range chunks) or a server-side cursor
//! (whole-relation reads), both decoded straight into Arrow.

mod catalog;
mod copy_binary;
pub mod decode;
mod read;
mod reader;
pub mod types;

/// The PostgreSQL connection type callers hold between calls.
pub use catalog::PgCatalog;
pub use read::select_sql;
pub use reader::ChunkReader;

use std::time::Duration;

use crate::connection::{ConnTarget, ConnectionSettings};
use crate::error::SourceError;

/// Quotes an identifier for PostgreSQL, whatever characters it holds.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connection settings for both drivers: nothing session-level is set here, because
/// every setting Rivet needs is applied with `SET LOCAL` inside a transaction, so
/// nothing leaks through a transaction-pooling proxy.
fn driver_config(settings: &ConnectionSettings) -> Result<tokio_postgres::Config, SourceError> {
    let mut config = match &settings.conn {
        ConnTarget::Url(url) => {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| SourceError::Settings {
                    origin: "connection URL".into(),
                    detail: settings.redact(&e.to_string()),
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
                        origin: "source".into(),
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
    if config.get_application_name().is_none() {
        config.application_name("rivet");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(15));
    }
    Ok(config)
}

fn connect_error(settings: &ConnectionSettings, e: &postgres::Error) -> SourceError {
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
                    "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03"
                )
        }
        None => e.as_db_error().is_none(),
    }
}

/// Opens a synchronous connection, used for catalog work.
pub fn connect(settings: &ConnectionSettings) -> Result<PgCatalog, SourceError> {
    postgres::Config::from(driver_config(settings)?)
        .connect(postgres::NoTls)
        .map(PgCatalog)
        .map_err(|e| connect_error(settings, &e))
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
