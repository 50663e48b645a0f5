//! Turning secret-free connection settings (URL by reference or structured keys) into a
//! live connection string, and keeping the secret out of every message.

use rivet_schema::config::SourceConfig;

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
            return Ok(ConnectionSettings {
                kind: source.kind,
                conn: ConnTarget::Url(url),
                target,
                secrets,
            });
        }
        let password = match &source.password_env {
            Some(var) => Some(env("password_env", var)?),
            None => None,
        };
        let host = source.host.clone().unwrap_or_else(|| "localhost".into());
        let port = source.port.unwrap_or(5432);
        let target = format!(
            "{host}:{port}/{}",
            source.database.as_deref().unwrap_or("(default database)")
        );
        Ok(ConnectionSettings {
            kind: source.kind,
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

fn percent_decode(s: &str) -> String {
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
