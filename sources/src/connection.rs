//! Turning secret-free connection settings (URL by reference or structured keys) into a
//! live connection string, and keeping the secret out of every message.

use rivet_schema::config::SourceConfig;

use crate::error::SourceError;

/// A resolved connection: the string the driver needs plus the secrets to redact.
/// Deliberately not `Debug`, so it cannot be logged by accident.
pub struct ConnectionSettings {
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
            let secrets = url_password(&url).into_iter().collect();
            let target = describe_url(&url);
            return Ok(ConnectionSettings {
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

fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, pw) = userinfo.split_once(':')?;
    let mut found = vec![pw.to_owned()];
    if let Some(q) = url.split_once('?') {
        for kv in q.1.split('&') {
            if let Some(v) = kv.strip_prefix("password=") {
                found.push(v.to_owned());
            }
        }
    }
    found.into_iter().find(|p| !p.is_empty())
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
        let pw = url_password(url).unwrap();
        assert_eq!(pw, "s3cr%3At");
        assert_eq!(redact("failed for s3cr%3At", &[pw]), "failed for ***");
    }
}
