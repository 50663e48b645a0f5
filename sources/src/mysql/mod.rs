//! MySQL and MariaDB (`source.type: mysql`): connection, batched `information_schema`
//! introspection, and key-range chunk reads over the binary protocol (prepared
//! statements with bound key bounds), decoded into Arrow.
//!
//! Everything session-like is scoped to one statement or one transaction:
//! `SET TRANSACTION ISOLATION LEVEL` applies to the next transaction only, and the
//! statement limit and UTC time zone ride on the statement itself (`SET STATEMENT … FOR`
//! on MariaDB, optimizer hints on MySQL), so nothing leaks through ProxySQL-style poolers.

pub mod binlog;
mod catalog;
pub mod health;
mod reader;
mod survey;
pub mod types;

pub use catalog::MyCatalog;
pub use reader::MyReader;

use mysql::prelude::Queryable;
use rivet_schema::config::TlsMode;

use crate::connection::{ConnTarget, ConnectionSettings};
use crate::error::SourceError;

/// Quotes an identifier for MySQL/MariaDB, whatever characters it holds.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Which server dialect to speak for per-statement settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// Prefixes `select` with the statement timeout and UTC time zone for one statement.
pub fn scoped_select(flavor: Flavor, select: &str, statement_timeout_ms: u64) -> String {
    match flavor {
        Flavor::MariaDb => format!(
            "SET STATEMENT max_statement_time = {}, time_zone = '+00:00' FOR {select}",
            (statement_timeout_ms as f64 / 1000.0).max(0.001)
        ),
        Flavor::MySql => {
            let rest = select.trim_start().strip_prefix("SELECT").unwrap_or(select);
            format!(
                "SELECT /*+ MAX_EXECUTION_TIME({statement_timeout_ms}) SET_VAR(time_zone = '+00:00') */{rest}"
            )
        }
    }
}

fn opts(settings: &ConnectionSettings) -> Result<mysql::Opts, SourceError> {
    let builder = match &settings.conn {
        ConnTarget::Url(url) => {
            let opts = mysql::Opts::from_url(url).map_err(|e| SourceError::Settings {
                key: settings.key.into(),
                detail: settings.redact(&e.to_string()),
            })?;
            mysql::OptsBuilder::from_opts(opts)
        }
        ConnTarget::Parts {
            host,
            port,
            user,
            password,
            database,
        } => mysql::OptsBuilder::new()
            .ip_or_hostname(Some(host.clone()))
            .tcp_port(*port)
            .user(user.clone())
            .pass(password.clone())
            .db_name(database.clone()),
    };
    let ssl = match settings.tls_mode {
        // The driver has no "TLS if offered": `prefer` connects in plain text (documented).
        TlsMode::Disable | TlsMode::Prefer => None,
        TlsMode::Require => Some(
            mysql::SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        TlsMode::VerifyCa => {
            Some(mysql::SslOpts::default().with_danger_skip_domain_validation(true))
        }
        TlsMode::VerifyFull => Some(mysql::SslOpts::default()),
    }
    .map(|ssl| match &settings.ca_file {
        Some(path) => ssl.with_root_cert_path(Some(std::path::PathBuf::from(path))),
        None => ssl,
    });
    Ok(builder
        .ssl_opts(ssl)
        .tcp_connect_timeout(Some(settings.connect_timeout))
        .into())
}

/// Opens a connection and finds out whether the server is MariaDB or MySQL, all within
/// `settings.connect_timeout`: TCP connect, TLS handshake, login and the version query.
///
/// The driver bounds only the TCP connect, and its socket read timeouts would stay on
/// the connection for every later query (failing long but legitimate statements), so
/// the attempt runs on its own thread and is abandoned when the limit passes. An
/// abandoned attempt holds one socket on a server that does not answer; its thread ends
/// when the server answers or closes, or with the process.
pub(crate) fn connect(settings: &ConnectionSettings) -> Result<(mysql::Conn, Flavor), SourceError> {
    let opts = opts(settings)?;
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("rivet-mysql-connect".into())
        .spawn(move || {
            let attempt = mysql::Conn::new(opts).and_then(|mut conn| {
                let version: Option<String> = conn.query_first("SELECT VERSION()")?;
                Ok((conn, version))
            });
            // The receiver is gone when the caller gave up; the connection closes here.
            let _ = done.send(attempt);
        })
        .map_err(|e| SourceError::Connect {
            target: settings.target.clone(),
            detail: format!("cannot start a connection thread: {e}"),
            transient: false,
        })?;
    let (conn, version) = match outcome.recv_timeout(settings.connect_timeout) {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => {
            return Err(SourceError::Connect {
                target: settings.target.clone(),
                detail: settings.redact(&error_text(&e)),
                transient: is_transient(&e),
            })
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Err(settings.connect_timed_out()),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            return Err(SourceError::Connect {
                target: settings.target.clone(),
                detail: "the connection thread stopped without an answer".into(),
                transient: false,
            })
        }
    };
    let flavor = if version.unwrap_or_default().contains("MariaDB") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Ok((conn, flavor))
}

/// A driver error as a sentence: the server's message with its error number and
/// SQLSTATE, or what failed on the client side, never the driver's `MySqlError { … }`
/// debug-like wrapping.
pub fn error_text(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!(
            "{} (MySQL error {}, SQLSTATE {})",
            m.message, m.code, m.state
        ),
        mysql::Error::IoError(io) => format!("network error: {io}"),
        mysql::Error::CodecError(c) => format!("protocol error: {c}"),
        mysql::Error::DriverError(d) => d.to_string(),
        mysql::Error::UrlError(u) => format!("invalid connection URL: {u}"),
        mysql::Error::TlsError(t) => format!("TLS error: {t}"),
        mysql::Error::FromRowError(_) | mysql::Error::FromValueError(_) => {
            format!("unexpected value from the server: {e}")
        }
    }
}

/// MySQL/MariaDB failures worth retrying: the connection itself (I/O, server gone away
/// 2006, lost connection 2013, killed 1927, shutdown 1053), lock wait timeout 1205,
/// deadlock 1213, too many connections 1040 and 1203.
pub fn is_transient(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) => true,
        mysql::Error::MySqlError(m) => matches!(
            m.code,
            1040 | 1053 | 1203 | 1205 | 1213 | 1927 | 2006 | 2013
        ),
        mysql::Error::DriverError(d) => matches!(
            d,
            mysql::DriverError::ConnectTimeout | mysql::DriverError::PacketOutOfSync
        ),
        _ => false,
    }
}

pub(crate) fn query_err(context: &str) -> impl Fn(mysql::Error) -> SourceError + '_ {
    move |e| SourceError::Query {
        context: context.to_owned(),
        detail: error_text(&e),
        transient: is_transient(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_statement_settings_ride_on_the_statement() {
        assert_eq!(
            scoped_select(Flavor::MariaDb, "SELECT `a` FROM `t`", 1500),
            "SET STATEMENT max_statement_time = 1.5, time_zone = '+00:00' FOR SELECT `a` FROM `t`"
        );
        assert_eq!(
            scoped_select(Flavor::MySql, "SELECT `a` FROM `t`", 1500),
            "SELECT /*+ MAX_EXECUTION_TIME(1500) SET_VAR(time_zone = '+00:00') */ `a` FROM `t`"
        );
        assert_eq!(quote_ident("we`ird name"), "`we``ird name`");
    }
}
