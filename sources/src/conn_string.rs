//! Connection strings read the way the drivers read them. Rivet takes its own
//! parameters (`sslmode`, `sslrootcert`, `connect_timeout`) out of a URL query or a
//! libpq `key=value` string with a real tokenizer, then asks the engine's own parser
//! what the rest means: whether it parses at all, where it points, and whether it
//! carries a password. Deciding by string matching let `password = x` (spaces around
//! `=`) and `?%70assword=x` (a percent-encoded key) through into committed plans.
//!
//! Why one long file: one tokenizer serves URL and key=value strings for every engine;
//! about 380 of its lines are the tests (proptest included) that keep passwords out.

use std::time::Duration;

use rivet_schema::config::{SourceConfig, SourceKind, TlsMode};
use rivet_schema::ConfigProblem;

/// Rivet's own connection parameters, taken out of a connection string before the
/// driver sees it (the drivers know only some of libpq's TLS modes, and none of them
/// bounds the whole connect).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RivetParams {
    pub tls_mode: Option<TlsMode>,
    pub ca_file: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// The engine's name as users know it, for messages.
pub(crate) fn engine_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Postgres => "PostgreSQL",
        SourceKind::Mysql => "MySQL/MariaDB",
        SourceKind::Mssql => "SQL Server",
    }
}

/// The `scheme` of `scheme://…`, when the text starts with one (a `key=value` string
/// whose value holds `://` has no scheme).
fn scheme_of(s: &str) -> Option<&str> {
    let (head, _) = s.split_once("://")?;
    let mut chars = head.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(head)
}

/// The engine a connection string is for, from its scheme (`postgres://`,
/// `postgresql://`, `mysql://`, `sqlserver://`, `mssql://`); libpq `key=value` pairs
/// (no scheme) are PostgreSQL. None for any other scheme.
pub fn kind_of_url(s: &str) -> Option<SourceKind> {
    match scheme_of(s.trim()) {
        None => Some(SourceKind::Postgres),
        Some("postgres" | "postgresql") => Some(SourceKind::Postgres),
        Some("mysql" | "mariadb") => Some(SourceKind::Mysql),
        Some("sqlserver" | "mssql") => Some(SourceKind::Mssql),
        Some(_) => None,
    }
}

/// Checks that the string has a form the engine's driver reads, and says which form is
/// expected when it does not (a `mysql://` URL under `type: postgres`).
pub(crate) fn check_form(kind: SourceKind, s: &str) -> Result<(), String> {
    let scheme = scheme_of(s);
    let (ok, expected) = match kind {
        SourceKind::Postgres => (
            scheme.is_none_or(|sc| sc == "postgres" || sc == "postgresql"),
            "starts with `postgres://` or `postgresql://` (or is libpq `key=value` pairs: `host=db dbname=app user=rivet`)",
        ),
        SourceKind::Mysql => (
            scheme == Some("mysql"),
            "starts with `mysql://` (mysql://user@host:3306/database)",
        ),
        SourceKind::Mssql => (
            matches!(scheme, Some("sqlserver" | "mssql")),
            "starts with `sqlserver://` (sqlserver://user@host:1433/database)",
        ),
    };
    if ok {
        return Ok(());
    }
    let found = match scheme {
        Some(sc) => format!("this one starts with `{sc}://`"),
        None => "this one has no `scheme://`".to_owned(),
    };
    Err(format!(
        "a {} connection URL {expected}; {found}; check `source.type` and the URL",
        engine_name(kind)
    ))
}

/// One parameter of a connection string: its decoded key and value, and its byte span
/// in the original text (so the others can be kept exactly as written).
struct Param {
    key: String,
    value: String,
    span: (usize, usize),
}

/// The parameters of a URL query (`?a=1&b=2`), keys and values percent-decoded.
fn url_params(s: &str) -> (usize, Vec<Param>) {
    let Some(q) = s.find('?') else {
        return (s.len(), Vec::new());
    };
    let mut params = Vec::new();
    let mut start = q + 1;
    for pair in s[q + 1..].split('&') {
        let end = start + pair.len();
        if !pair.is_empty() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push(Param {
                key: percent_decode(k),
                value: percent_decode(v),
                span: (start, end),
            });
        }
        start = end + 1;
    }
    (q, params)
}

/// The parameters of a libpq `key = value` string: whitespace around `=` allowed,
/// values in single quotes with backslash escapes, as libpq (and tokio-postgres) read
/// them.
fn keyword_params(s: &str) -> Result<Vec<Param>, String> {
    let bytes: Vec<(usize, char)> = s.char_indices().collect();
    let at = |i: usize| bytes.get(i).map(|(_, c)| *c);
    let offset = |i: usize| bytes.get(i).map_or(s.len(), |(o, _)| *o);
    let mut i = 0;
    let mut params = Vec::new();
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i).is_none() {
            return Ok(params);
        }
        let start = i;
        while at(i).is_some_and(|c| !c.is_whitespace() && c != '=') {
            i += 1;
        }
        let key: String = bytes[start..i].iter().map(|(_, c)| c).collect();
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i) != Some('=') {
            return Err(format!(
                "`{key}` is not followed by `=` (a key=value connection string is `key=value` pairs separated by spaces)"
            ));
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let mut value = String::new();
        if at(i) == Some('\'') {
            i += 1;
            loop {
                match at(i) {
                    None => return Err(format!("the quoted value of `{key}` is not closed")),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = at(i + 1) {
                            value.push(c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = at(i).filter(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = at(i + 1) {
                        value.push(next);
                    }
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        params.push(Param {
            key,
            value,
            span: (offset(start), offset(i.min(bytes.len()))),
        });
    }
}

/// Takes Rivet's own parameters out of a connection string and returns the rest as
/// the driver should see it, every other parameter exactly as written.
pub(crate) fn take_rivet_params(
    kind: SourceKind,
    s: &str,
) -> Result<(String, RivetParams), String> {
    let is_url = scheme_of(s).is_some();
    let (base_end, params) = if is_url {
        url_params(s)
    } else {
        (0, keyword_params(s)?)
    };
    let mut out = RivetParams::default();
    let mut kept: Vec<&str> = Vec::new();
    for p in &params {
        match p.key.as_str() {
            "sslmode" => {
                out.tls_mode = Some(match p.value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(format!("unknown sslmode `{other}` (use disable, prefer, require, verify-ca or verify-full)")),
                })
            }
            "sslrootcert" => out.ca_file = Some(p.value.clone()),
            "connect_timeout" => out.connect_timeout = Some(timeout_seconds(&p.key, &p.value)?),
            "loginTimeout" if kind == SourceKind::Mssql => {
                out.connect_timeout = Some(timeout_seconds(&p.key, &p.value)?)
            }
            _ => kept.push(&s[p.span.0..p.span.1]),
        }
    }
    let rebuilt = if is_url {
        let base = &s[..base_end];
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        kept.join(" ")
    };
    Ok((rebuilt, out))
}

/// A URL's `connect_timeout`: whole seconds, as libpq reads it, but never "no limit".
fn timeout_seconds(key: &str, value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= 86_400 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "the URL's `{key}` must be a whole number of seconds from 1 to 86400 (Rivet never waits without a limit)"
        )),
    }
}

/// The password the engine's driver would send, as the driver's own parser reads the
/// string (after [`take_rivet_params`]); an error when the driver cannot read it. The
/// error text comes from the driver and must still be redacted by the caller.
pub(crate) fn driver_password(
    kind: SourceKind,
    driver_string: &str,
) -> Result<Option<String>, String> {
    let password = match kind {
        SourceKind::Postgres => driver_string
            .parse::<tokio_postgres::Config>()
            .map_err(|e| error_chain(&e))?
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        SourceKind::Mysql => mysql::Opts::from_url(driver_string)
            .map_err(|e| e.to_string())?
            .get_pass()
            .map(str::to_owned),
        SourceKind::Mssql => parse_sqlserver_url(driver_string)?.password,
    };
    Ok(password.filter(|p| !p.is_empty()))
}

/// Problems with an inline `source.url`, found when the config is loaded: a form the
/// driver cannot read, or a password (which would be sealed into the plan file). The
/// messages never repeat the URL or anything that may be a password.
pub fn inline_url_problems(source: &SourceConfig) -> Vec<ConfigProblem> {
    let Some(url) = &source.url else {
        return Vec::new();
    };
    let problem = |message: String| {
        vec![ConfigProblem {
            path: "source.url".into(),
            message,
        }]
    };
    let secrets = url_passwords(url);
    let url = url.trim();
    if url.is_empty() {
        return problem("the URL is empty".into());
    }
    if let Err(m) = check_form(source.kind, url) {
        return problem(m);
    }
    let driver_string = match take_rivet_params(source.kind, url) {
        Ok((s, _)) => s,
        Err(m) => return problem(redact(&m, &secrets)),
    };
    match driver_password(source.kind, &driver_string) {
        Err(m) => problem(format!(
            "the {} driver cannot read this URL: {}",
            engine_name(source.kind),
            redact(&m, &secrets)
        )),
        Ok(Some(_)) => problem(
            "this URL contains a password; move the URL into an environment variable \
             (`url_env`) or a file (`url_file`) so the config and plan stay secret-free"
                .into(),
        ),
        Ok(None) => Vec::new(),
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
pub(crate) fn url_passwords(url: &str) -> Vec<String> {
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

/// The pieces of a `sqlserver://` URL.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SqlServerUrl {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
}

/// Parses `sqlserver://[user[:password]@]host[:port][/database]`;
/// user, password and database are percent-decoded. Errors never echo the URL (it may
/// hold the password).
pub(crate) fn parse_sqlserver_url(url: &str) -> Result<SqlServerUrl, String> {
    let rest = url
        .strip_prefix("sqlserver://")
        .or_else(|| url.strip_prefix("mssql://"))
        .ok_or_else(|| {
            "a SQL Server URL starts with `sqlserver://` (sqlserver://user:password@host:1433/database)"
                .to_owned()
        })?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut parts = SqlServerUrl::default();
    if let Some(u) = userinfo {
        let (user, pw) = match u.split_once(':') {
            Some((user, pw)) => (user, Some(pw)),
            None => (u, None),
        };
        parts.user = Some(percent_decode(user));
        parts.password = pw.map(percent_decode);
    }
    let (host, port) = match hostport.strip_prefix('[') {
        Some(inner) => {
            let (h, after) = inner
                .split_once(']')
                .ok_or("the SQL Server URL has an unclosed `[` in its host")?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` in the SQL Server URL is not a number"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err("the SQL Server URL has no host".into());
    }
    parts.host = host.to_owned();
    parts.port = port;
    if !path.is_empty() {
        parts.database = Some(percent_decode(path));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "instance" | "instanceName" => {
                return Err("named instances are reached through their TCP port: use sqlserver://host:PORT/database (find the port in SQL Server Configuration Manager)".into())
            }
            "user" => parts.user = Some(percent_decode(v)),
            "password" => parts.password = Some(percent_decode(v)),
            "database" => parts.database = Some(percent_decode(v)),
            other => {
                return Err(format!(
                    "unknown SQL Server URL parameter `{other}` (known: user, password, database; TLS is set with source.tls)"
                ))
            }
        }
    }
    Ok(parts)
}

/// An error with its chain of causes, `a: b: c` (the driver's parse errors put the
/// useful part in the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// `host:port/database` as the engine's driver reads the connection string; never the
/// user, password or other parameters.
pub(crate) fn describe_target(kind: SourceKind, driver_string: &str) -> String {
    let described = match kind {
        SourceKind::Postgres => driver_string
            .parse::<tokio_postgres::Config>()
            .ok()
            .map(|c| {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                let hosts = if hosts.is_empty() {
                    "localhost".to_owned()
                } else {
                    hosts.join(",")
                };
                let port = c.get_ports().first().copied().unwrap_or(5432);
                let db = c.get_dbname().or(c.get_user()).unwrap_or("");
                format!("{hosts}:{port}/{db}")
            }),
        SourceKind::Mysql => mysql::Opts::from_url(driver_string).ok().map(|o| {
            format!(
                "{}:{}/{}",
                o.get_ip_or_hostname(),
                o.get_tcp_port(),
                o.get_db_name().unwrap_or("")
            )
        }),
        SourceKind::Mssql => parse_sqlserver_url(driver_string).ok().map(|p| {
            format!(
                "{}:{}/{}",
                p.host,
                p.port.unwrap_or(1433),
                p.database.as_deref().unwrap_or("")
            )
        }),
    };
    described.unwrap_or_else(|| "the configured database".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn source(kind: SourceKind, url: &str) -> SourceConfig {
        let kind = match kind {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Mssql => "mssql",
        };
        serde_json::from_value(serde_json::json!({"type": kind, "url": url})).unwrap()
    }

    #[test]
    fn rivet_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let (url, p) = take_rivet_params(
            SourceKind::Postgres,
            "postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert_eq!(p.tls_mode, Some(TlsMode::VerifyFull));
        assert_eq!(p.ca_file.as_deref(), Some("/ca.pem"));
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(3)));
        // Whitespace around `=` and quoted values with two spaces survive untouched.
        let (kv, p) = take_rivet_params(
            SourceKind::Postgres,
            "host=h  sslmode = require user='a  b' password='it\\'s'",
        )
        .unwrap();
        assert_eq!(kv, "host=h user='a  b' password='it\\'s'");
        assert_eq!(p.tls_mode, Some(TlsMode::Require));
        // A percent-encoded key is still the key.
        let (_, p) =
            take_rivet_params(SourceKind::Mysql, "mysql://h/db?%73slmode=require").unwrap();
        assert_eq!(p.tls_mode, Some(TlsMode::Require));
        assert!(
            take_rivet_params(SourceKind::Postgres, "postgres://h/db?sslmode=sometimes").is_err()
        );
        for bad in ["0", "-1", "2.5", "soon"] {
            let err = take_rivet_params(
                SourceKind::Postgres,
                &format!("postgres://h/db?connect_timeout={bad}"),
            )
            .unwrap_err();
            assert!(err.contains("connect_timeout"), "{err}");
        }
        let (_, p) =
            take_rivet_params(SourceKind::Mssql, "sqlserver://h/db?loginTimeout=7").unwrap();
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(7)));
        assert!(take_rivet_params(SourceKind::Postgres, "host=h user").is_err());
        assert!(take_rivet_params(SourceKind::Postgres, "host='h").is_err());
    }

    #[test]
    fn a_url_for_another_engine_names_the_expected_scheme() {
        let err = check_form(SourceKind::Postgres, "mysql://u@h/db").unwrap_err();
        assert!(
            err.contains("postgres://") && err.contains("`mysql://`"),
            "{err}"
        );
        let err = check_form(SourceKind::Mysql, "postgres://u@h/db").unwrap_err();
        assert!(
            err.contains("mysql://") && err.contains("`postgres://`"),
            "{err}"
        );
        let err = check_form(SourceKind::Mysql, "host=h").unwrap_err();
        assert!(err.contains("no `scheme://`"), "{err}");
        assert!(check_form(SourceKind::Mssql, "mssql://h").is_ok());
        assert!(check_form(SourceKind::Postgres, "host=h options='-c a=b://c'").is_ok());
    }

    #[test]
    fn passwords_are_found_by_the_drivers_own_parsers() {
        let pw = |kind, s: &str| driver_password(kind, s).unwrap();
        assert_eq!(
            pw(SourceKind::Postgres, "host=h password = x"),
            Some("x".into())
        );
        assert_eq!(
            pw(SourceKind::Postgres, "postgres://u@h/db?%70assword=x"),
            Some("x".into())
        );
        assert_eq!(pw(SourceKind::Postgres, "postgres://u:@h/db"), None);
        assert_eq!(pw(SourceKind::Postgres, "host=h user=password"), None);
        assert_eq!(
            pw(SourceKind::Mysql, "mysql://u@h/db?p%61ssword=y"),
            Some("y".into())
        );
        assert_eq!(
            pw(SourceKind::Mysql, "mysql://u:z%40@h/db"),
            Some("z@".into())
        );
        assert_eq!(
            pw(SourceKind::Mssql, "sqlserver://h/db?password=w"),
            Some("w".into())
        );
        assert_eq!(pw(SourceKind::Mssql, "sqlserver://u@h/db"), None);
        // Case matters to the drivers: `PASSWORD=` is no key they know, so the string is
        // unreadable (and refused), never read as password-free.
        assert!(driver_password(SourceKind::Postgres, "host=h PASSWORD=x").is_err());
        assert!(driver_password(SourceKind::Mysql, "mysql://h/db?Password=x").is_err());
    }

    #[test]
    fn inline_url_problems_refuse_passwords_and_unreadable_urls_without_echoing() {
        let problems = inline_url_problems(&source(
            SourceKind::Postgres,
            "host=h user=u password = 'Hunter two'",
        ));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "source.url");
        assert!(problems[0].message.contains("contains a password"));
        let problems =
            inline_url_problems(&source(SourceKind::Postgres, "host=h passwrd=Hunter2x"));
        assert!(problems[0].message.contains("cannot read"), "{problems:?}");
        assert!(inline_url_problems(&source(SourceKind::Postgres, "postgres://u@h/db")).is_empty());
        assert!(inline_url_problems(&source(SourceKind::Mysql, "mysql://u@h/db")).is_empty());
    }

    #[test]
    fn redaction_drops_the_password_as_written_and_decoded() {
        let url = "postgres://alice:s3cr%3At@db.internal:5433/sales?sslmode=disable";
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

    #[test]
    fn urls_parse_with_encoded_credentials_and_instances() {
        let p = parse_sqlserver_url("sqlserver://rivet:p%40ss%3Aw@db.internal:1533/Sales%20DB")
            .unwrap();
        assert_eq!(
            p,
            SqlServerUrl {
                host: "db.internal".into(),
                port: Some(1533),
                user: Some("rivet".into()),
                password: Some("p@ss:w".into()),
                database: Some("Sales DB".into()),
            }
        );
        let p = parse_sqlserver_url("mssql://[::1]:1433").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", Some(1433)));
        assert!(parse_sqlserver_url("postgres://h/db").is_err());
        assert!(parse_sqlserver_url("sqlserver://h/db?instance=SQLEXPRESS")
            .unwrap_err()
            .contains("TCP port"));
        let p = parse_sqlserver_url("sqlserver://[fe80::1]").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("fe80::1", None));
        let err = parse_sqlserver_url("sqlserver://u:secret@h:notaport/db").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(parse_sqlserver_url("sqlserver://h/db?encrypt=true")
            .unwrap_err()
            .contains("source.tls"));
    }

    #[test]
    fn targets_name_host_port_and_database_as_the_driver_reads_them() {
        assert_eq!(
            describe_target(
                SourceKind::Postgres,
                "postgres://alice:s3cr%3At@db.internal:5433/sales"
            ),
            "db.internal:5433/sales"
        );
        assert_eq!(
            describe_target(
                SourceKind::Postgres,
                "host = db port=6543 dbname='my db' password=x"
            ),
            "db:6543/my db"
        );
        assert_eq!(
            describe_target(SourceKind::Mysql, "mysql://u:pw@10.0.0.5/shop"),
            "10.0.0.5:3306/shop"
        );
        assert_eq!(
            describe_target(SourceKind::Mssql, "sqlserver://u:pw@sql.internal/Sales"),
            "sql.internal:1433/Sales"
        );
    }

    /// A connection string carrying `password`, written one of the many ways the
    /// drivers accept (or nearly accept).
    #[derive(Debug, Clone)]
    struct Spelling {
        kind: SourceKind,
        in_userinfo: bool,
        key_case: Vec<bool>,
        key_escapes: Vec<bool>,
        value_escapes: Vec<bool>,
        spaces: (usize, usize),
        quoted: bool,
        position: usize,
    }

    const OTHERS_URL: [&str; 3] = [
        "application_name=etl",
        "connect_timeout=5",
        "sslmode=require",
    ];
    const OTHERS_MY: [&str; 2] = ["connect_timeout=5", "stmt_cache_size=4"];
    const OTHERS_KV: [&str; 4] = [
        "host=db.internal",
        "dbname=app",
        "user=rivet",
        "sslmode=prefer",
    ];

    fn escape_all(text: &str, escapes: &[bool]) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                let reserved = !(c.is_ascii_alphanumeric() || "-._~".contains(c));
                if reserved || escapes.get(i).copied().unwrap_or(false) {
                    let mut buf = [0u8; 4];
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| format!("%{b:02X}"))
                        .collect::<String>()
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    fn key(s: &Spelling) -> String {
        "password"
            .chars()
            .zip(&s.key_case)
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    fn write(s: &Spelling, password: Option<&str>) -> String {
        let ws = |n: usize| " \t".repeat(n).chars().take(n).collect::<String>();
        match s.kind {
            SourceKind::Postgres if !s.in_userinfo && s.spaces.0 < 3 => {
                // libpq key=value form.
                let mut parts: Vec<String> = OTHERS_KV.iter().map(|p| p.to_string()).collect();
                if let Some(pw) = password {
                    let needs_quotes = pw.is_empty()
                        || pw
                            .chars()
                            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
                    let value = if needs_quotes || s.quoted {
                        format!("'{}'", pw.replace('\\', "\\\\").replace('\'', "\\'"))
                    } else {
                        pw.to_owned()
                    };
                    let at = s.position % (parts.len() + 1);
                    parts.insert(
                        at,
                        format!("{}{}={}{value}", key(s), ws(s.spaces.0), ws(s.spaces.1)),
                    );
                }
                parts.join(&format!(" {}", ws(s.spaces.1)))
            }
            kind => {
                let (scheme, others): (&str, &[&str]) = match kind {
                    SourceKind::Postgres => ("postgres", &OTHERS_URL),
                    SourceKind::Mysql => ("mysql", &OTHERS_MY),
                    SourceKind::Mssql => ("sqlserver", &[]),
                };
                let mut params: Vec<String> = others.iter().map(|p| p.to_string()).collect();
                let mut userinfo = "rivet".to_owned();
                if let Some(pw) = password {
                    let value = escape_all(pw, &s.value_escapes);
                    if s.in_userinfo {
                        userinfo = format!("rivet:{value}");
                    } else {
                        let at = s.position % (params.len() + 1);
                        params.insert(
                            at,
                            format!("{}={value}", escape_all(&key(s), &s.key_escapes)),
                        );
                    }
                }
                let query = if params.is_empty() {
                    String::new()
                } else {
                    format!("?{}", params.join("&"))
                };
                format!("{scheme}://{userinfo}@db.internal:4000/app{query}")
            }
        }
    }

    fn spelling() -> impl Strategy<Value = Spelling> {
        (
            prop_oneof![
                Just(SourceKind::Postgres),
                Just(SourceKind::Mysql),
                Just(SourceKind::Mssql)
            ],
            any::<bool>(),
            proptest::collection::vec(proptest::bool::weighted(0.1), 8),
            proptest::collection::vec(any::<bool>(), 8),
            proptest::collection::vec(any::<bool>(), 16),
            (0usize..4, 0usize..3),
            any::<bool>(),
            0usize..8,
        )
            .prop_map(
                |(
                    kind,
                    in_userinfo,
                    key_case,
                    key_escapes,
                    value_escapes,
                    spaces,
                    quoted,
                    position,
                )| {
                    Spelling {
                        kind,
                        in_userinfo,
                        key_case,
                        key_escapes,
                        value_escapes,
                        spaces,
                        quoted,
                        position,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// However the password is spelled, an inline URL carrying it is refused, and
        /// the refusal never repeats it.
        #[test]
        fn an_inline_password_is_refused_however_it_is_spelled(
            s in spelling(),
            tail in "[A-Za-z0-9 '\\\\!#$%^&*()=+?/:;,.<>@-]{1,10}",
        ) {
            let password = format!("Zq7{tail}");
            let url = write(&s, Some(&password));
            let problems = inline_url_problems(&source(s.kind, &url));
            prop_assert_eq!(problems.len(), 1, "accepted: {}", url);
            prop_assert_eq!(problems[0].path.as_str(), "source.url");
            prop_assert!(!problems[0].message.contains(&password), "echoed: {}", problems[0].message);
            prop_assert!(!problems[0].message.contains(&escape_all(&password, &[])), "echoed: {}", problems[0].message);
        }

        /// The same strings without a password are accepted: the check is not a
        /// refusal of everything unusual.
        #[test]
        fn the_same_urls_without_a_password_are_accepted(s in spelling()) {
            let s = Spelling { key_case: vec![false; 8], ..s };
            let url = write(&s, None);
            let problems = inline_url_problems(&source(s.kind, &url));
            prop_assert!(problems.is_empty(), "{}: {:?}", url, problems);
        }
    }
}
