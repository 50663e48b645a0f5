//! MySQL and MariaDB health from `information_schema` (processlist, InnoDB
//! transactions and lock waits — `performance_schema.data_lock_waits` on MySQL 8) and
//! the binary-log settings and files, and EXPLAIN of a chunk's SELECT. The session is
//! made read-only (`SET SESSION TRANSACTION READ ONLY`) before anything else runs.

use mysql::prelude::Queryable;
use mysql::{Row, Value};
use serde_json::Map;

use super::{error_text, Flavor};
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::health::{ChunkExplain, HealthReport, HealthRow, HealthSection};
use crate::ChunkRead;

/// Sessions running a statement, longest first (this session and idle ones excluded).
pub const PROCESSLIST_SQL: &str = "SELECT ID AS id, USER AS user_name, DB AS db, COMMAND AS command, \
TIME AS seconds, STATE AS state, LEFT(INFO, 300) AS query \
FROM information_schema.PROCESSLIST \
WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') AND ID <> CONNECTION_ID() \
ORDER BY TIME DESC LIMIT 50";

/// Sessions that hold an InnoDB transaction open while doing nothing.
pub const IDLE_IN_TRANSACTION_SQL: &str = "SELECT p.ID AS id, p.USER AS user_name, p.DB AS db, \
p.TIME AS idle_seconds, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS transaction_seconds, \
t.trx_rows_locked AS rows_locked, t.trx_rows_modified AS rows_modified \
FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
WHERE p.COMMAND = 'Sleep' ORDER BY t.trx_started LIMIT 50";

/// Connections against the server's limit.
pub const CONNECTIONS_SQL: &str =
    "SELECT COUNT(*) AS connections, @@max_connections AS max_connections \
FROM information_schema.PROCESSLIST";

/// InnoDB lock waits with the blocking transaction's session.
pub fn lock_waits_sql(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT r.trx_mysql_thread_id AS waiting_id, \
TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS waiting_seconds, LEFT(r.trx_query, 300) AS waiting_query, \
b.trx_mysql_thread_id AS blocking_id, LEFT(b.trx_query, 300) AS blocking_query \
FROM information_schema.INNODB_LOCK_WAITS w \
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id \
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
ORDER BY waiting_seconds DESC LIMIT 50",
        Flavor::MySql => "SELECT r.trx_mysql_thread_id AS waiting_id, \
TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS waiting_seconds, LEFT(r.trx_query, 300) AS waiting_query, \
b.trx_mysql_thread_id AS blocking_id, LEFT(b.trx_query, 300) AS blocking_query \
FROM performance_schema.data_lock_waits w \
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID \
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID \
ORDER BY waiting_seconds DESC LIMIT 50",
    }
}

/// The binary-log settings that decide how long a change stays readable.
pub const BINLOG_SETTINGS_SQL: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
('log_bin', 'binlog_format', 'binlog_row_image', 'expire_logs_days', 'binlog_expire_logs_seconds', 'max_binlog_size')";

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::NULL => serde_json::Value::Null,
        Value::Bytes(b) => serde_json::Value::from(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => f64::from(*f).into(),
        Value::Double(d) => (*d).into(),
        other => serde_json::Value::from(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}

fn row_json(row: &Row) -> HealthRow {
    let mut out = Map::new();
    for (i, col) in row.columns_ref().iter().enumerate() {
        let v = row.as_ref(i).map(json).unwrap_or(serde_json::Value::Null);
        out.insert(col.name_str().to_lowercase(), v);
    }
    out
}

/// Runs a SELECT over the binary protocol, so numbers come back typed.
fn select(conn: &mut mysql::Conn, sql: &str) -> Result<Vec<HealthRow>, String> {
    let rows: Vec<Row> = conn.exec(sql, ()).map_err(|e| error_text(&e))?;
    Ok(rows.iter().map(row_json).collect())
}

fn section(conn: &mut mysql::Conn, name: &str, sql: &str) -> HealthSection {
    match select(conn, sql) {
        Ok(r) => HealthSection::rows(name, r),
        Err(why) => HealthSection::missing(name, format!("cannot read: {why}")),
    }
}

fn setup_err(what: &str) -> impl Fn(mysql::Error) -> SourceError + '_ {
    move |e| SourceError::Query {
        context: format!("source health: {what}"),
        detail: error_text(&e),
        transient: super::is_transient(&e),
    }
}

/// Opens a connection whose transactions are read-only, and says which server it is.
fn open_read_only(
    settings: &ConnectionSettings,
) -> Result<(mysql::Conn, Flavor, String, bool), SourceError> {
    let (mut conn, flavor) = super::connect(settings)?;
    conn.query_drop("SET SESSION TRANSACTION READ ONLY")
        .map_err(setup_err("making the session read-only"))?;
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .map_err(setup_err("server version"))?;
    let read_only_var = match flavor {
        Flavor::MariaDb => "SELECT @@session.tx_read_only",
        Flavor::MySql => "SELECT @@session.transaction_read_only",
    };
    let read_only: Option<i64> = conn
        .query_first(read_only_var)
        .map_err(setup_err("session mode"))?;
    Ok((
        conn,
        flavor,
        version.unwrap_or_default(),
        read_only == Some(1),
    ))
}

fn binlog(conn: &mut mysql::Conn) -> HealthSection {
    let settings: Vec<(String, String)> = match conn.query(BINLOG_SETTINGS_SQL) {
        Ok(s) => s,
        Err(e) => {
            return HealthSection::missing(
                "binlog_retention",
                format!("cannot read: {}", error_text(&e)),
            )
        }
    };
    let mut row = Map::new();
    for (k, v) in &settings {
        row.insert(k.clone(), serde_json::Value::from(v.as_str()));
    }
    let get = |k: &str| {
        settings
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let retention = super::binlog::retention_seconds(
        get("binlog_expire_logs_seconds"),
        get("expire_logs_days"),
    );
    row.insert(
        "retention_seconds".into(),
        retention
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null),
    );
    let mut note = match retention {
        Some(_) => "binary logs older than retention_seconds are purged automatically".to_owned(),
        None => "no automatic expiry: binary logs are kept until purged by hand".to_owned(),
    };
    if settings.iter().any(|(k, v)| k == "log_bin" && v == "ON") {
        match conn.query::<Row, _>("SHOW BINARY LOGS") {
            Ok(files) => {
                let sizes: Vec<u64> = files
                    .iter()
                    .filter_map(|r| {
                        r.as_ref(1)
                            .map(json)
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    })
                    .collect();
                row.insert("binlog_files".into(), (files.len() as u64).into());
                row.insert("binlog_bytes".into(), sizes.iter().sum::<u64>().into());
                if let Some(first) = files.first().and_then(|r| r.as_ref(0)) {
                    row.insert("oldest_binlog".into(), json(first));
                }
            }
            Err(e) => {
                note.push_str(&format!(
                    "; the list of binary logs cannot be read: {} (it needs the REPLICATION CLIENT / BINLOG MONITOR privilege)",
                    error_text(&e)
                ));
            }
        }
    } else {
        note = "binary logging is off (log_bin=OFF): no change history to read".into();
    }
    HealthSection::rows("binlog_retention", vec![row]).with_note(note)
}

/// Reads the health report on a read-only session.
pub fn health(settings: &ConnectionSettings) -> Result<HealthReport, SourceError> {
    let (mut conn, flavor, version, read_only) = open_read_only(settings)?;
    let sections = vec![
        section(&mut conn, "active_queries", PROCESSLIST_SQL),
        section(&mut conn, "lock_waits", lock_waits_sql(flavor)),
        section(&mut conn, "idle_in_transaction", IDLE_IN_TRANSACTION_SQL),
        section(&mut conn, "connections", CONNECTIONS_SQL),
        binlog(&mut conn),
    ];
    let pressure = crate::health::pressure_of(&sections, "seconds", 0);
    Ok(HealthReport {
        engine: match flavor {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        }
        .into(),
        server_version: version,
        read_only_session: read_only,
        pressure,
        sections,
    })
}

/// EXPLAIN (not executed) of the SELECT a chunk read sends, with its bound parameters.
pub fn explain(
    settings: &ConnectionSettings,
    req: &ChunkRead,
) -> Result<ChunkExplain, SourceError> {
    let (mut conn, flavor, _, _) = open_read_only(settings)?;
    let (sql, params) = super::reader::select_with_params(req);
    let parameters = params.iter().map(|v| v.as_sql(true)).collect();
    let rows: Vec<Row> = conn
        .exec(format!("EXPLAIN {sql}"), params)
        .map_err(setup_err("EXPLAIN of the chunk's SELECT"))?;
    Ok(ChunkExplain {
        engine: match flavor {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        }
        .into(),
        sql,
        parameters,
        plan: rows.iter().map(row_json).collect(),
        note: Some(format!(
            "apply sends this SELECT with a per-statement limit of {} ms and the UTC time zone",
            req.statement_timeout_ms
        )),
    })
}
