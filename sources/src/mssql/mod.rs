//! SQL Server (`source.type: mssql`): connection through `tiberius` on a small
//! current-thread tokio runtime behind the same synchronous [`Catalog`] and
//! [`ChunkSource`] traits as the other engines, batched `sys.*` introspection, and
//! key-range chunk reads with the bounds as bound parameters (`@P1`, `@P2`).
//!
//! SQL Server has no per-statement server-side timeout: the statement limit is enforced
//! by the client (the connection is dropped when it passes, which makes the server
//! abandon the query), and `SET LOCK_TIMEOUT` is sent in the same batch as the read.
//! No SQL Server can run on the development machines: everything here that needs no
//! server is tested offline; the live path is tested when `RIVET_TEST_MSSQL_URL` points
//! at one (docs/sources/mssql.md).
//!
//! [`Catalog`]: crate::Catalog
//! [`ChunkSource`]: crate::ChunkSource

mod catalog;
pub mod cdc;
pub mod health;
mod reader;
mod survey;
pub mod types;

pub use catalog::MsCatalog;
pub use reader::MsReader;

use rivet_schema::config::TlsMode;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::conn_string::parse_sqlserver_url as parse_url;
use crate::connection::{ConnTarget, ConnectionSettings};
use crate::error::SourceError;

/// The tiberius client type Rivet uses.
pub(crate) type MsClient = Client<Compat<TcpStream>>;

/// Quotes an identifier for SQL Server, whatever characters it holds.
pub fn quote_ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// Builds the tiberius configuration from resolved settings. URLs have the form
/// `sqlserver://user:password@host:port/database` (also `mssql://`). A named
/// instance is reached through its TCP port (SQL Browser lookups are not done).
pub(crate) fn config(settings: &ConnectionSettings) -> Result<Config, SourceError> {
    let mut config = Config::new();
    let settings_err = |detail: String| SourceError::Settings {
        key: settings.key.into(),
        detail: settings.redact(&detail),
    };
    match &settings.conn {
        ConnTarget::Url(url) => {
            let parts = parse_url(url).map_err(settings_err)?;
            config.host(&parts.host);
            if let Some(port) = parts.port {
                config.port(port);
            }
            if let Some(db) = &parts.database {
                config.database(db);
            }
            if let Some(user) = &parts.user {
                config.authentication(AuthMethod::sql_server(
                    user,
                    parts.password.as_deref().unwrap_or(""),
                ));
            }
        }
        ConnTarget::Parts {
            host,
            port,
            user,
            password,
            database,
        } => {
            config.host(host);
            config.port(*port);
            if let Some(db) = database {
                config.database(db);
            }
            if let Some(user) = user {
                config.authentication(AuthMethod::sql_server(
                    user,
                    password.as_deref().unwrap_or(""),
                ));
            }
        }
    }
    config.application_name("rivet");
    apply_tls(&mut config, settings.tls_mode, settings.ca_file.as_deref());
    Ok(config)
}

/// TLS per `source.tls.mode`. SQL Server always offers TLS (with a self-signed
/// certificate when none is configured), so `prefer` and `require` encrypt without
/// verifying; `verify-ca` and `verify-full` both verify the chain *and* the host name,
/// since the driver cannot skip the host-name check alone (docs/sources/mssql.md).
fn apply_tls(config: &mut Config, mode: TlsMode, ca_file: Option<&str>) {
    match mode {
        TlsMode::Disable => config.encryption(EncryptionLevel::NotSupported),
        TlsMode::Prefer | TlsMode::Require => {
            config.encryption(EncryptionLevel::Required);
            config.trust_cert();
        }
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            config.encryption(EncryptionLevel::Required);
            if let Some(ca) = ca_file {
                config.trust_cert_ca(ca);
            }
        }
    }
}

/// Opens a runtime and a logged-in client, following Azure SQL's gateway redirection.
pub(crate) fn connect(settings: &ConnectionSettings) -> Result<(Runtime, MsClient), SourceError> {
    connect_with(settings, config(settings)?)
}

/// Like [`connect`], asking for `ApplicationIntent=ReadOnly` (a readable secondary
/// when the server has one); SQL Server has no read-only session to ask for.
pub(crate) fn connect_read_intent(
    settings: &ConnectionSettings,
) -> Result<(Runtime, MsClient), SourceError> {
    let mut config = config(settings)?;
    config.readonly(true);
    connect_with(settings, config)
}

fn connect_with(
    settings: &ConnectionSettings,
    mut config: Config,
) -> Result<(Runtime, MsClient), SourceError> {
    let rt = settings.io_runtime()?;
    let connect_err = |detail: String, transient: bool| SourceError::Connect {
        target: settings.target.clone(),
        detail: settings.redact(&detail),
        transient,
    };
    let timeout = settings.connect_timeout;
    let attempts = async {
        for _ in 0..3 {
            let tcp = TcpStream::connect(config.get_addr())
                .await
                .map_err(|e| connect_err(e.to_string(), true))?;
            let _ = tcp.set_nodelay(true);
            match Client::connect(config.clone(), tcp.compat_write()).await {
                Ok(client) => return Ok(client),
                Err(tiberius::error::Error::Routing { host, port }) => {
                    config.host(host);
                    config.port(port);
                }
                Err(e) => return Err(connect_err(e.to_string(), is_transient(&e))),
            }
        }
        Err(connect_err(
            "the server redirected the connection more than twice".into(),
            false,
        ))
    };
    // One limit over the whole connect, redirections included: TCP, TLS and login.
    let client = rt
        .block_on(async { tokio::time::timeout(timeout, attempts).await })
        .map_err(|_| settings.connect_timed_out())??;
    Ok((rt, client))
}

/// SQL Server failures worth retrying: I/O and TLS resets, deadlock victim (1205), lock
/// request timeout (1222), and Azure SQL's transient set (service busy 40501, database
/// unavailable 40613, resource limits 10928/10929, failover 40197/49918/49919/49920,
/// 4221 login during recovery, 233/10053/10054/10060/64 connection drops).
pub fn is_transient(e: &tiberius::error::Error) -> bool {
    use tiberius::error::Error;
    match e {
        Error::Io { .. } | Error::Tls(_) | Error::Routing { .. } => true,
        Error::Server(t) => is_transient_code(t.code()),
        _ => false,
    }
}

/// The TDS error numbers [`is_transient`] retries.
pub fn is_transient_code(code: u32) -> bool {
    matches!(
        code,
        64 | 233
            | 1205
            | 1222
            | 4221
            | 10053
            | 10054
            | 10060
            | 10928
            | 10929
            | 40197
            | 40501
            | 40613
            | 49918
            | 49919
            | 49920
    )
}

pub(crate) fn query_err(context: &str) -> impl Fn(tiberius::error::Error) -> SourceError + '_ {
    move |e| SourceError::Query {
        context: context.to_owned(),
        detail: e.to_string(),
        transient: is_transient(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bracket_quoted() {
        assert_eq!(quote_ident("Order Items"), "[Order Items]");
        assert_eq!(quote_ident("we]ird[name"), "[we]]ird[name]");
    }

    #[test]
    fn transient_codes_are_the_retryable_ones() {
        assert!(is_transient_code(1205));
        assert!(is_transient_code(40613));
        assert!(!is_transient_code(208)); // invalid object name
        assert!(!is_transient_code(18456)); // login failed
        assert!(!is_transient_code(102)); // syntax error
    }
}
