//! PostgreSQL health from the statistics views (`pg_stat_activity`, `pg_locks` through
//! `pg_blocking_pids`, `pg_replication_slots`, `pg_stat_statements` when installed,
//! `pg_stat_checkpointer` or `pg_stat_bgwriter`), and EXPLAIN of a chunk's SELECT. Every
//! statement runs in a `READ ONLY` transaction of its own, which the server enforces and
//! which a transaction-pooling proxy passes through (pgBouncer refuses the startup
//! option `default_transaction_read_only` would need).

use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::error_text;
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::health::{rows_of, ChunkExplain, HealthReport, HealthRow, HealthSection, Pressure};
use crate::ChunkRead;

/// Client sessions running a statement, longest first (this session excluded).
pub const ACTIVE_SQL: &str = "SELECT pid::int8 AS pid, usename::text AS user_name, \
datname::text AS database, application_name, state, wait_event_type, wait_event, \
round(EXTRACT(EPOCH FROM clock_timestamp() - query_start)::numeric, 3)::float8 AS query_seconds, \
round(EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::numeric, 3)::float8 AS transaction_seconds, \
left(query, 300) AS query \
FROM pg_stat_activity \
WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid() \
ORDER BY query_start NULLS LAST LIMIT 50";

/// Sessions waiting on a lock, with the sessions blocking them.
pub const LOCK_WAITS_SQL: &str = "SELECT w.pid::int8 AS waiting_pid, w.usename::text AS waiting_user, \
w.wait_event_type, w.wait_event, \
round(EXTRACT(EPOCH FROM clock_timestamp() - w.state_change)::numeric, 3)::float8 AS waiting_seconds, \
left(w.query, 300) AS waiting_query, b.pid::int8 AS blocking_pid, b.usename::text AS blocking_user, \
b.state AS blocking_state, left(b.query, 300) AS blocking_query \
FROM pg_stat_activity w \
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) \
JOIN pg_stat_activity b ON b.pid = blocker.pid \
ORDER BY waiting_seconds DESC NULLS LAST LIMIT 50";

/// Sessions inside a transaction doing nothing, oldest transaction first.
pub const IDLE_IN_TRANSACTION_SQL: &str = "SELECT pid::int8 AS pid, usename::text AS user_name, \
datname::text AS database, application_name, state, \
round(EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::numeric, 3)::float8 AS transaction_seconds, \
round(EXTRACT(EPOCH FROM clock_timestamp() - state_change)::numeric, 3)::float8 AS idle_seconds, \
left(query, 300) AS last_query \
FROM pg_stat_activity \
WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid() \
ORDER BY xact_start NULLS LAST LIMIT 50";

/// Client connections against the server's limit.
pub const CONNECTIONS_SQL: &str = "SELECT count(*)::int8 AS connections, \
current_setting('max_connections')::int8 AS max_connections \
FROM pg_stat_activity WHERE backend_type = 'client backend'";

/// Replication slots with the WAL they hold back (PostgreSQL 13 and later).
pub const SLOTS_SQL: &str = "WITH here AS (SELECT CASE WHEN pg_is_in_recovery() \
THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn) \
SELECT slot_name::text AS slot_name, plugin::text AS plugin, slot_type, database::text AS database, \
active, wal_status, \
pg_wal_lsn_diff(here.lsn, restart_lsn)::float8 AS retained_wal_bytes, \
pg_wal_lsn_diff(here.lsn, confirmed_flush_lsn)::float8 AS confirmed_lag_bytes, \
safe_wal_size::float8 AS safe_wal_size_bytes \
FROM pg_replication_slots, here ORDER BY slot_name";

/// Checkpoints the server ran on schedule against those WAL volume forced
/// (`pg_stat_checkpointer` from PostgreSQL 17, `pg_stat_bgwriter` before).
pub fn checkpoints_sql(version_num: i64) -> &'static str {
    if version_num >= 170000 {
        "SELECT num_timed::int8 AS timed, num_requested::int8 AS requested, stats_reset::text AS since, \
current_setting('checkpoint_timeout') AS checkpoint_timeout, current_setting('max_wal_size') AS max_wal_size \
FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_timed::int8 AS timed, checkpoints_req::int8 AS requested, stats_reset::text AS since, \
current_setting('checkpoint_timeout') AS checkpoint_timeout, current_setting('max_wal_size') AS max_wal_size \
FROM pg_stat_bgwriter"
    }
}

/// The ten statements that read and wrote the most blocks, from `pg_stat_statements`
/// in the schema it is installed in (`total_exec_time` from PostgreSQL 13).
pub fn statements_sql(schema: &str, version_num: i64) -> String {
    let time = if version_num >= 130000 {
        "total_exec_time"
    } else {
        "total_time"
    };
    format!(
        "SELECT queryid::text AS queryid, calls::int8 AS calls, \
shared_blks_read::int8 AS shared_blks_read, shared_blks_written::int8 AS shared_blks_written, \
(temp_blks_read + temp_blks_written)::int8 AS temp_blks, \
round({time}::numeric, 3)::float8 AS total_ms, left(query, 300) AS query \
FROM {}.pg_stat_statements \
ORDER BY shared_blks_read + shared_blks_written + temp_blks_read + temp_blks_written DESC LIMIT 10",
        super::quote_ident(schema)
    )
}

/// One row as JSON. The queries above cast every column to a type listed here, so any
/// other type is a mistake in this file, reported as such.
fn row_json(row: &Row) -> Result<HealthRow, String> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::TEXT || *t == Type::NAME || *t == Type::VARCHAR {
            row.try_get::<_, Option<String>>(i)
                .map(|v| v.map(Value::from))
        } else if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::from))
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map(|v| v.map(Value::from))
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::from))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map(|v| v.map(Value::from))
        } else {
            return Err(format!("column `{}` has unexpected type {t}", col.name()));
        };
        let v = v.map_err(|e| format!("column `{}`: {e}", col.name()))?;
        out.insert(col.name().to_owned(), v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Runs one statement in a `READ ONLY` transaction of its own, as an unnamed statement:
/// the rows outlive the transaction, and an unnamed statement needs no close that could
/// reach another pooled session.
async fn in_read_only(client: &Client, sql: &str) -> Result<Vec<Row>, tokio_postgres::Error> {
    client.batch_execute("BEGIN READ ONLY").await?;
    let rows = client.query_typed(sql, &[]).await;
    let end = client
        .batch_execute(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await;
    let rows = rows?;
    end?;
    Ok(rows)
}

async fn rows(client: &Client, sql: &str) -> Result<Vec<HealthRow>, String> {
    let rows = in_read_only(client, sql)
        .await
        .map_err(|e| error_text(&e))?;
    rows.iter().map(row_json).collect()
}

async fn section(client: &Client, name: &str, sql: &str) -> HealthSection {
    match rows(client, sql).await {
        Ok(r) => HealthSection::rows(name, r),
        Err(why) => HealthSection::missing(name, format!("cannot read: {why}")),
    }
}

async fn one<T>(client: &Client, what: &str, sql: &str) -> Result<T, SourceError>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let rows = in_read_only(client, sql)
        .await
        .map_err(|e| SourceError::Query {
            context: format!("source health: {what}"),
            detail: error_text(&e),
            transient: super::is_transient(&e),
        })?;
    rows.first()
        .ok_or("the server returned no row".to_owned())
        .and_then(|r| r.try_get::<_, T>(0).map_err(|e| e.to_string()))
        .map_err(|detail| SourceError::Query {
            context: format!("source health: {what}"),
            detail,
            transient: false,
        })
}

async fn report(client: &Client) -> Result<HealthReport, SourceError> {
    let version: String = one(client, "server version", "SHOW server_version").await?;
    let version_num: i64 = one(
        client,
        "server version",
        "SELECT current_setting('server_version_num')::int8",
    )
    .await?;
    let read_only: String = one(client, "transaction mode", "SHOW transaction_read_only").await?;
    let mut sections = vec![
        section(client, "active_queries", ACTIVE_SQL).await,
        section(client, "lock_waits", LOCK_WAITS_SQL).await,
        section(client, "idle_in_transaction", IDLE_IN_TRANSACTION_SQL).await,
        section(client, "connections", CONNECTIONS_SQL).await,
    ];
    sections.push(if version_num >= 130000 {
        section(client, "replication_slots", SLOTS_SQL).await.with_note(
            "wal_status `unreserved` means the slot's WAL may be removed at the next checkpoint, `lost` that it was",
        )
    } else {
        HealthSection::missing(
            "replication_slots",
            format!("wal_status needs PostgreSQL 13 or later; this server is {version}"),
        )
    });
    let pgss: Option<String> = in_read_only(
        client,
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements'",
    )
    .await
        .map_err(|e| SourceError::Query {
            context: "source health: pg_stat_statements".into(),
            detail: error_text(&e),
            transient: super::is_transient(&e),
        })?
        .first()
        .map(|r| r.get(0));
    sections.push(match pgss {
        Some(schema) => section(
            client,
            "top_io_statements",
            &statements_sql(&schema, version_num),
        )
        .await
        .with_note(
            "the statements that read and wrote the most blocks since the statistics were reset",
        ),
        None => HealthSection::missing(
            "top_io_statements",
            "the pg_stat_statements extension is not installed in this database".into(),
        ),
    });
    let mut checkpoints = section(client, "checkpoints", checkpoints_sql(version_num)).await;
    for row in &mut checkpoints.rows {
        let timed = row.get("timed").and_then(Value::as_f64).unwrap_or(0.0);
        let requested = row.get("requested").and_then(Value::as_f64).unwrap_or(0.0);
        let share = if timed + requested > 0.0 {
            requested / (timed + requested)
        } else {
            0.0
        };
        row.insert(
            "requested_share".into(),
            Value::from((share * 1000.0).round() / 1000.0),
        );
    }
    sections.push(checkpoints.with_note(
        "requested checkpoints are forced by WAL volume before checkpoint_timeout; a high requested_share means write pressure (raise max_wal_size)",
    ));
    let pressure = pressure(&sections);
    Ok(HealthReport {
        engine: "postgres".into(),
        server_version: version,
        read_only_session: read_only == "on",
        pressure,
        sections,
    })
}

fn pressure(sections: &[HealthSection]) -> Pressure {
    let slots_at_risk = rows_of(sections, "replication_slots")
        .iter()
        .filter(|r| {
            matches!(
                r.get("wal_status").and_then(Value::as_str),
                Some("unreserved" | "lost")
            )
        })
        .count() as u64;
    crate::health::pressure_of(sections, "query_seconds", slots_at_risk)
}

/// Reads the health report, each statement in a read-only transaction, plus the
/// pooler's own figures when the source is reached through one.
pub fn health(settings: &ConnectionSettings) -> Result<HealthReport, SourceError> {
    let (rt, client) = super::open(settings)?;
    let mut report = rt.block_on(report(&client))?;
    report.sections.push(pooler_section(settings));
    Ok(report)
}

/// The integer columns of pgBouncer's `SHOW POOLS` (1.18 and later); every other
/// column is text.
const POOL_NUMBERS: &[&str] = &[
    "cl_active",
    "cl_waiting",
    "cl_active_cancel_req",
    "cl_waiting_cancel_req",
    "cl_cancel_req",
    "sv_active",
    "sv_active_cancel",
    "sv_being_canceled",
    "sv_idle",
    "sv_used",
    "sv_tested",
    "sv_login",
    "maxwait",
    "maxwait_us",
];

/// `SHOW POOLS` from pgBouncer's console (database `pgbouncer`, simple protocol only),
/// with the source's credentials: the user must be in pgBouncer's `stats_users` or
/// `admin_users`.
fn pgbouncer_pools(settings: &ConnectionSettings) -> Result<Vec<HealthRow>, String> {
    let mut config = super::driver_config(settings).map_err(|e| e.to_string())?;
    config.dbname("pgbouncer");
    let (rt, client) = super::open_with(settings, config).map_err(|e| e.to_string())?;
    let messages = rt
        .block_on(client.simple_query("SHOW POOLS"))
        .map_err(|e| error_text(&e))?;
    let mut out = Vec::new();
    for m in messages {
        let tokio_postgres::SimpleQueryMessage::Row(row) = m else {
            continue;
        };
        let mut r = HealthRow::new();
        for (i, col) in row.columns().iter().enumerate() {
            let text = row.get(i);
            let v = match text {
                None => Value::Null,
                Some(t) if POOL_NUMBERS.contains(&col.name()) => {
                    Value::from(t.parse::<i64>().map_err(|_| {
                        format!(
                            "SHOW POOLS column `{}` is `{t}`, not an integer",
                            col.name()
                        )
                    })?)
                }
                Some(t) => Value::from(t),
            };
            r.insert(col.name().to_owned(), v);
        }
        out.push(r);
    }
    Ok(out)
}

/// The `pooler` section: pgBouncer's pools when a transaction pooler was found on the
/// path, else why there is nothing to show.
fn pooler_section(settings: &ConnectionSettings) -> HealthSection {
    use rivet_schema::plan::Pooling;
    let path = match super::PgCatalog::connect(settings)
        .and_then(|mut c| super::pooler::probe(&mut c))
    {
        Ok(p) => p,
        Err(e) => return HealthSection::missing("pooler", format!("cannot probe the path: {e}")),
    };
    if path.pooling == Pooling::Session && path.proxy.is_none() {
        return HealthSection::missing(
            "pooler",
            format!("no transaction pooler on the path ({})", path.evidence),
        );
    }
    match pgbouncer_pools(settings) {
        Ok(rows) => HealthSection::rows("pooler", rows).with_note(
            "pgBouncer SHOW POOLS: cl_waiting clients wait for a server session, maxwait is the longest wait in seconds; sv_active + sv_idle + sv_used are the server sessions open",
        ),
        Err(why) => HealthSection::missing(
            "pooler",
            format!(
                "transaction pooling{} ({}), but pgBouncer's console (database `pgbouncer`) did not answer SHOW POOLS: {why}; add this user to pgBouncer's stats_users to see its pools",
                path.proxy.as_deref().map_or(String::new(), |p| format!(" through {p}")),
                path.evidence
            ),
        ),
    }
}

/// EXPLAIN (without ANALYZE: nothing is executed) of the SELECT a chunk read sends.
pub fn explain(
    settings: &ConnectionSettings,
    req: &ChunkRead,
) -> Result<ChunkExplain, SourceError> {
    let (rt, client) = super::open(settings)?;
    let sql = super::select_sql(req);
    let lines = rt
        .block_on(in_read_only(&client, &format!("EXPLAIN {sql}")))
        .map_err(|e| SourceError::Query {
            context: "EXPLAIN of the chunk's SELECT".into(),
            detail: error_text(&e),
            transient: super::is_transient(&e),
        })?;
    let plan = lines
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("line".into(), Value::from(r.get::<_, String>(0)));
            m
        })
        .collect();
    Ok(ChunkExplain {
        engine: "postgres".into(),
        sql,
        parameters: Vec::new(),
        plan,
        note: Some(if req.use_cursor {
            "apply reads this whole relation through a server-side cursor on this SELECT".into()
        } else {
            "apply streams this SELECT through COPY … TO STDOUT (FORMAT binary)".into()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_dependent_views_are_chosen_by_server_version() {
        assert!(checkpoints_sql(170002).contains("pg_stat_checkpointer"));
        assert!(checkpoints_sql(150020).contains("pg_stat_bgwriter"));
        let new = statements_sql("ext\"s", 160000);
        assert!(
            new.contains("FROM \"ext\"\"s\".pg_stat_statements"),
            "{new}"
        );
        assert!(new.contains("total_exec_time"));
        assert!(statements_sql("public", 120000).contains("round(total_time::numeric"));
    }

    #[test]
    fn health_queries_are_single_selects_that_skip_this_session() {
        for sql in [
            ACTIVE_SQL,
            LOCK_WAITS_SQL,
            IDLE_IN_TRANSACTION_SQL,
            CONNECTIONS_SQL,
            SLOTS_SQL,
        ] {
            assert!(
                sql.starts_with("SELECT ") || sql.starts_with("WITH "),
                "{sql}"
            );
            assert!(!sql.contains(';'), "{sql}");
        }
        assert!(ACTIVE_SQL.contains("pid <> pg_backend_pid()"));
        assert!(IDLE_IN_TRANSACTION_SQL.contains("pid <> pg_backend_pid()"));
        assert!(SLOTS_SQL.contains("wal_status"));
    }
}
