//! Turning secret-free connection settings (URL by reference or structured keys) into a
//! live connection string, and keeping the secret out of every message.

use rivet_schema::config::{SourceConfig, TlsMode};

use crate::error::SourceError;

/// A resolved connection: the string the driver needs plus the secrets to redact.
/// Deliberately not `Debug`, so it cannot be logged by accident.
pub struct ConnectionSettings {
    /// Engine to open.
    pub kind: rivet_schema::config::SourceKind,
    /// Driver connection string (may contain the password).
    pub(crate) conn: ConnTarget,
    /// Safe description for messages: `host:port/database`.
    pub target: String,
    /// Effective TLS mode: the config's `tls`, else the URL's `sslmode`, else `prefer`.
    pub tls_mode: TlsMode,
    /// CA certificates for verification: `tls.ca_file`, else the URL's `sslrootcert`.
    pub ca_file: Option<String>,
    secrets: Vec<String>,
}

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

impl ConnectionSettings {
    /// Resolves `url_env` / `url_file` / structured keys from the environment.
    pub fn resolve(source: &SourceConfig) -> Result<Self, SourceError> {
        let env = |key: &'static str, var: &str| {
            std::env::var(var).map_err(|_| SourceError::MissingEnv {
                key,
                var: var.to_owned(),
            })
        };
        let url = if let Some(url) = &source.url {
            Some(url.clone())
        } else if let Some(var) = &source.url_env {
            Some(env("url_env", var)?)
        } else if let Some(path) = &source.url_file {
            let text = std::fs::read_to_string(path).map_err(|e| SourceError::UrlFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        } else {
            None
        };
        if let Some(url) = url {
            let secrets = url_passwords(&url);
            let target = describe_url(&url);
            let (url, url_mode, url_ca) =
                take_tls_params(&url).map_err(|detail| SourceError::Settings {
                    origin: "connection URL".into(),
                    detail,
                })?;
            return Ok(ConnectionSettings {
                kind: source.kind,
                conn: ConnTarget::Url(url),
                target,
                tls_mode: source
                    .tls
                    .as_ref()
                    .map(|t| t.mode)
                    .or(url_mode)
                    .unwrap_or(TlsMode::Prefer),
                ca_file: source
                    .tls
                    .as_ref()
                    .and_then(|t| t.ca_file.clone())
                    .or(url_ca),
                secrets,
            });
        }
        let password = match &source.password_env {
            Some(var) => Some(env("password_env", var)?),
            None => None,
        };
        let host = source.host.clone().unwrap_or_else(|| "localhost".into());
        let port = source.port.unwrap_or(match source.kind {
            rivet_schema::config::SourceKind::Postgres => 5432,
            rivet_schema::config::SourceKind::Mysql => 3306,
            rivet_schema::config::SourceKind::Mssql => 1433,
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
}

/// Removes `sslmode` and `sslrootcert` from a URL or key/value connection string (the
/// driver's parser knows only some of libpq's modes) and returns them parsed.
fn take_tls_params(url: &str) -> Result<(String, Option<TlsMode>, Option<String>), String> {
    let mut mode = None;
    let mut ca = None;
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => {
                mode = Some(match value {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(format!("unknown sslmode `{other}` (use disable, prefer, require, verify-ca or verify-full)")),
                });
                Ok(true)
            }
            "sslrootcert" => {
                ca = Some(value.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rebuilt = if url.contains("://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            let (k, v) = token.split_once('=').unwrap_or((token, ""));
            if !take(k, v.trim_matches('\''))? {
                kept.push(token);
            }
        }
        kept.join(" ")
    };
    Ok((rebuilt, mode, ca))
}

/// Replaces each secret (and its URL-encoded form) with `***`.
pub fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// Every password a connection string carries: the `user:pw@` part of a URL, a
/// `password=` query parameter, or a `password=` key of a key/value string, each also
/// percent-decoded.
fn url_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                found.push(pw.to_owned());
            }
        }
    }
    let mut rest = url;
    while let Some(at) = rest.find("password=") {
        let after = &rest[at + "password=".len()..];
        let (value, tail) = match after.strip_prefix('\'') {
            Some(quoted) => match quoted.find('\'') {
                Some(end) => (&quoted[..end], &quoted[end..]),
                None => (quoted, ""),
            },
            None => {
                let end = after.find(['&', ' ']).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        found.push(value.to_owned());
        rest = tail;
    }
    let decoded: Vec<String> = found.iter().map(|p| percent_decode(p)).collect();
    found.extend(decoded);
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    found
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `host:port/db` from a URL, without user or password.
fn describe_url(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return "the configured database".into();
    };
    let no_query = rest.split('?').next().unwrap_or("");
    let after_user = no_query
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(no_query);
    after_user.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (url, mode, ca) = take_tls_params(
            "postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
        assert_eq!(ca.as_deref(), Some("/ca.pem"));
        let (url, mode, _) = take_tls_params("host=h sslmode=require user=u").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("host=h user=u", Some(TlsMode::Require))
        );
        assert!(take_tls_params("postgres://h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn url_descriptions_and_redaction_drop_the_password() {
        let url = "postgres://alice:s3cr%3At@db.internal:5433/sales?sslmode=disable";
        assert_eq!(describe_url(url), "db.internal:5433/sales");
        let pws = url_passwords(url);
        assert_eq!(pws, vec!["s3cr%3At".to_owned(), "s3cr:t".to_owned()]);
        assert_eq!(
            redact("failed for s3cr%3At and s3cr:t", &pws),
            "failed for *** and ***"
        );
        assert_eq!(
            url_passwords("host=h user=u password='p w'"),
            vec!["p w".to_owned()]
        );
        assert_eq!(
            url_passwords("postgres://h/db?user=u&password=zz"),
            vec!["zz".to_owned()]
        );
    }
}
