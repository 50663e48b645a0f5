//! Turning secret-free connection settings (URL by reference or structured keys) into a
//! live connection string, and keeping the secret out of every message. Everything a
//! connection string says is read by the engine's own driver parser
//! ([`crate::conn_string`]); nothing is guessed from how the text looks.

use std::time::Duration;

use rivet_schema::config::{SourceConfig, SourceKind, TlsMode};

use crate::conn_string::{
    check_form, describe_target, driver_password, engine_name, redact, take_rivet_params,
    url_passwords,
};
use crate::error::SourceError;

/// How long opening a connection may take when neither `source.connect_timeout` nor the
/// URL's `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A resolved connection: the string the driver needs plus the secrets to redact.
/// Deliberately not `Debug`, so it cannot be logged by accident.
#[derive(Clone)]
pub struct ConnectionSettings {
    /// Engine to open.
    pub kind: SourceKind,
    /// Driver connection string (may contain the password).
    pub(crate) conn: ConnTarget,
    /// Safe description for messages: `host:port/database`.
    pub target: String,
    /// Effective TLS mode: the config's `tls`, else the URL's `sslmode`, else `prefer`.
    pub tls_mode: TlsMode,
    /// CA certificates for verification: `tls.ca_file`, else the URL's `sslrootcert`.
    pub ca_file: Option<String>,
    /// Limit on opening one connection (TCP connect, TLS handshake and login).
    pub connect_timeout: Duration,
    timeout_from: TimeoutFrom,
    /// The config key the connection string came from (`source.url_env`, …), for
    /// messages about it.
    pub(crate) key: &'static str,
    secrets: Vec<String>,
}

/// Where the connect timeout in force was set, so a timeout message can say which
/// knob to turn.
#[derive(Clone, Copy)]
enum TimeoutFrom {
    Config,
    Url,
    Default,
}

impl ConnectionSettings {
    /// The single-threaded I/O runtime that drives one async connection (PostgreSQL,
    /// SQL Server). Each connection has its own, so that a connection and its runtime
    /// live and die together on whichever worker thread holds them.
    pub(crate) fn io_runtime(&self) -> Result<tokio::runtime::Runtime, SourceError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Connect {
                target: self.target.clone(),
                detail: format!("cannot start the I/O runtime: {e}"),
                transient: false,
            })
    }
}

#[derive(Clone)]
pub(crate) enum ConnTarget {
    Url(String),
    Parts {
        host: String,
        port: u16,
        user: Option<String>,
        password: Option<String>,
        database: Option<String>,
    },
}

/// Where a connection URL was read from.
enum UrlOrigin<'a> {
    Inline,
    Env(&'a str),
    File(&'a str),
}

impl UrlOrigin<'_> {
    fn key(&self) -> &'static str {
        match self {
            UrlOrigin::Inline => "source.url",
            UrlOrigin::Env(_) => "source.url_env",
            UrlOrigin::File(_) => "source.url_file",
        }
    }

    /// How a message refers to the URL without repeating it.
    fn the_url(&self) -> String {
        match self {
            UrlOrigin::Inline => "the URL".into(),
            UrlOrigin::Env(var) => format!("the URL in environment variable `{var}`"),
            UrlOrigin::File(path) => format!("the URL in `{path}`"),
        }
    }
}

impl ConnectionSettings {
    /// Resolves `url_env` / `url_file` / structured keys from the environment, and reads
    /// the connection string with the engine's own parser: a string the driver cannot
    /// read, an empty variable or file, or a password in an inline `url` is a settings
    /// error naming the config key.
    pub fn resolve(source: &SourceConfig) -> Result<Self, SourceError> {
        let env = |key: &'static str, var: &str, what: &'static str| match std::env::var(var) {
            Err(_) => Err(SourceError::MissingEnv {
                key,
                var: var.to_owned(),
            }),
            Ok(v) if v.trim().is_empty() => Err(SourceError::EmptyEnv {
                key,
                var: var.to_owned(),
                what,
            }),
            Ok(v) => Ok(v),
        };
        let (config_timeout, config_timeout_set) = match &source.connect_timeout {
            Some(t) => (
                t.duration().map_err(|detail| SourceError::Settings {
                    key: "source.connect_timeout".into(),
                    detail,
                })?,
                true,
            ),
            None => (DEFAULT_CONNECT_TIMEOUT, false),
        };
        let url = if let Some(url) = &source.url {
            Some((url.clone(), UrlOrigin::Inline))
        } else if let Some(var) = &source.url_env {
            Some((env("url_env", var, "connection URL")?, UrlOrigin::Env(var)))
        } else if let Some(path) = &source.url_file {
            let text = std::fs::read_to_string(path).map_err(|e| SourceError::UrlFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            Some((
                text.lines().next().unwrap_or("").to_owned(),
                UrlOrigin::File(path),
            ))
        } else {
            None
        };
        if let Some((url, origin)) = url {
            let url = url.trim();
            let mut secrets = url_passwords(url);
            let fail = |detail: String| SourceError::Settings {
                key: origin.key().into(),
                detail: format!("{}: {}", origin.the_url(), redact(&detail, &secrets)),
            };
            if url.is_empty() {
                return Err(fail("is empty; it should hold the connection URL".into()));
            }
            check_form(source.kind, url).map_err(&fail)?;
            let (driver_string, params) = take_rivet_params(source.kind, url).map_err(&fail)?;
            let password = driver_password(source.kind, &driver_string).map_err(|m| {
                fail(format!(
                    "the {} driver cannot read it: {m}",
                    engine_name(source.kind)
                ))
            })?;
            if password.is_some() && matches!(origin, UrlOrigin::Inline) {
                return Err(fail(
                    "contains a password; move the URL into an environment variable \
                     (`url_env`) or a file (`url_file`) so the config and plan stay secret-free"
                        .into(),
                ));
            }
            secrets.extend(password);
            secrets.sort();
            secrets.dedup();
            let (connect_timeout, timeout_from) = match params.connect_timeout {
                _ if config_timeout_set => (config_timeout, TimeoutFrom::Config),
                Some(d) => (d, TimeoutFrom::Url),
                None => (DEFAULT_CONNECT_TIMEOUT, TimeoutFrom::Default),
            };
            return Ok(ConnectionSettings {
                kind: source.kind,
                target: describe_target(source.kind, &driver_string),
                conn: ConnTarget::Url(driver_string),
                tls_mode: source
                    .tls
                    .as_ref()
                    .map(|t| t.mode)
                    .or(params.tls_mode)
                    .unwrap_or(TlsMode::Prefer),
                ca_file: source
                    .tls
                    .as_ref()
                    .and_then(|t| t.ca_file.clone())
                    .or(params.ca_file),
                connect_timeout,
                timeout_from,
                key: origin.key(),
                secrets,
            });
        }
        let password = match &source.password_env {
            Some(var) => Some(env("password_env", var, "password")?),
            None => None,
        };
        let host = source.host.clone().unwrap_or_else(|| "localhost".into());
        let port = source.port.unwrap_or(match source.kind {
            SourceKind::Postgres => 5432,
            SourceKind::Mysql => 3306,
            SourceKind::Mssql => 1433,
        });
        let target = format!(
            "{host}:{port}/{}",
            source.database.as_deref().unwrap_or("(default database)")
        );
        Ok(ConnectionSettings {
            kind: source.kind,
            tls_mode: source
                .tls
                .as_ref()
                .map(|t| t.mode)
                .unwrap_or(TlsMode::Prefer),
            ca_file: source.tls.as_ref().and_then(|t| t.ca_file.clone()),
            connect_timeout: config_timeout,
            timeout_from: if config_timeout_set {
                TimeoutFrom::Config
            } else {
                TimeoutFrom::Default
            },
            key: "source",
            secrets: password.iter().filter(|p| !p.is_empty()).cloned().collect(),
            conn: ConnTarget::Parts {
                host,
                port,
                user: source.user.clone(),
                password,
                database: source.database.clone(),
            },
            target,
        })
    }

    /// Removes every known secret from a message.
    pub fn redact(&self, message: &str) -> String {
        redact(message, &self.secrets)
    }

    /// The error for a connection that did not open within [`Self::connect_timeout`]:
    /// names the target, the limit and the key that sets it. Not transient: a server
    /// that accepts TCP and then stays silent is usually stuck, and each retry would
    /// wait as long again.
    pub fn connect_timed_out(&self) -> SourceError {
        let limit = human_duration(self.connect_timeout);
        let knob = match self.timeout_from {
            TimeoutFrom::Config => "the limit is source.connect_timeout".to_owned(),
            TimeoutFrom::Url => {
                "the limit is the URL's connect_timeout (source.connect_timeout overrides it)"
                    .to_owned()
            }
            TimeoutFrom::Default => format!(
                "the limit is the default of source.connect_timeout ({})",
                human_duration(DEFAULT_CONNECT_TIMEOUT)
            ),
        };
        SourceError::Connect {
            target: self.target.clone(),
            detail: format!(
                "no answer within {limit} (TCP connect, TLS handshake and login); {knob}; raise it if the server is only slow"
            ),
            transient: false,
        }
    }
}

/// `10 s` or `500 ms`.
fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
