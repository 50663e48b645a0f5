//! SQL Server health from the dynamic management views: active requests with their
//! waits, blocking chains, sessions idle inside an open transaction, and connections.
//! SQL Server has no read-only session; these are SELECTs on DMVs only (they need
//! `VIEW SERVER STATE`, or `VIEW DATABASE STATE` on Azure SQL), and the connection asks
//! for `ApplicationIntent=ReadOnly`, which routes to a readable secondary when there is one.

use serde_json::{Map, Value};
use tiberius::ColumnData;

use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::health::{ChunkExplain, HealthReport, HealthRow, HealthSection, Pressure};
use crate::ChunkRead;

/// User requests running now (this session excluded), longest first.
pub const ACTIVE_REQUESTS_SQL: &str = "SELECT TOP (50) CAST(r.session_id AS bigint) AS session_id, \
s.login_name AS login_name, DB_NAME(r.database_id) AS db, r.status AS status, r.command AS command, \
r.wait_type AS wait_type, CAST(r.wait_time AS bigint) AS wait_ms, \
CAST(r.blocking_session_id AS bigint) AS blocking_session_id, \
CAST(r.total_elapsed_time / 1000.0 AS float) AS query_seconds, CAST(r.cpu_time AS bigint) AS cpu_ms, \
CAST(r.logical_reads AS bigint) AS logical_reads, LEFT(t.text, 300) AS query \
FROM sys.dm_exec_requests r JOIN sys.dm_exec_sessions s ON s.session_id = r.session_id \
OUTER APPLY sys.dm_exec_sql_text(r.sql_handle) t \
WHERE s.is_user_process = 1 AND r.session_id <> @@SPID \
ORDER BY r.total_elapsed_time DESC";

/// Requests blocked by another session, with what the blocker last ran.
pub const BLOCKING_SQL: &str =
    "SELECT TOP (50) CAST(r.session_id AS bigint) AS waiting_session_id, \
r.wait_type AS wait_type, CAST(r.wait_time / 1000.0 AS float) AS waiting_seconds, \
r.wait_resource AS wait_resource, LEFT(t.text, 300) AS waiting_query, \
CAST(r.blocking_session_id AS bigint) AS blocking_session_id, b.status AS blocking_status, \
LEFT(bt.text, 300) AS blocking_query \
FROM sys.dm_exec_requests r OUTER APPLY sys.dm_exec_sql_text(r.sql_handle) t \
LEFT JOIN sys.dm_exec_connections bc ON bc.session_id = r.blocking_session_id \
LEFT JOIN sys.dm_exec_sessions b ON b.session_id = r.blocking_session_id \
OUTER APPLY sys.dm_exec_sql_text(bc.most_recent_sql_handle) bt \
WHERE r.blocking_session_id <> 0 ORDER BY r.wait_time DESC";

/// Sleeping sessions that hold a transaction open.
pub const IDLE_IN_TRANSACTION_SQL: &str =
    "SELECT TOP (50) CAST(s.session_id AS bigint) AS session_id, \
s.login_name AS login_name, DB_NAME(s.database_id) AS db, \
CAST(s.open_transaction_count AS bigint) AS open_transactions, \
CAST(DATEDIFF(SECOND, s.last_request_end_time, SYSDATETIME()) AS float) AS idle_seconds, \
CAST(DATEDIFF(SECOND, at.transaction_begin_time, SYSDATETIME()) AS float) AS transaction_seconds \
FROM sys.dm_exec_sessions s \
OUTER APPLY (SELECT MIN(a.transaction_begin_time) AS transaction_begin_time \
FROM sys.dm_tran_session_transactions st JOIN sys.dm_tran_active_transactions a \
ON a.transaction_id = st.transaction_id WHERE st.session_id = s.session_id) at \
WHERE s.is_user_process = 1 AND s.status = 'sleeping' AND s.open_transaction_count > 0 \
AND s.session_id <> @@SPID ORDER BY at.transaction_begin_time";

/// User connections against the configured limit (0 = the server's own maximum).
pub const CONNECTIONS_SQL: &str = "SELECT CAST(COUNT(*) AS bigint) AS connections, \
CAST(@@MAX_CONNECTIONS AS bigint) AS max_connections \
FROM sys.dm_exec_sessions WHERE is_user_process = 1";

fn cell(v: &ColumnData<'_>) -> Value {
    match v {
        ColumnData::U8(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I16(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I32(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I64(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::F32(x) => x.map(|f| Value::from(f64::from(f))).unwrap_or(Value::Null),
        ColumnData::F64(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::Bit(x) => x.map(Value::from).unwrap_or(Value::Null),
        ColumnData::String(x) => x
            .as_ref()
            .map(|s| Value::from(s.to_string()))
            .unwrap_or(Value::Null),
        other => Value::from(format!("{other:?}")),
    }
}

fn rows_json(rows: &[tiberius::Row]) -> Vec<HealthRow> {
    rows.iter()
        .map(|r| {
            let mut m = Map::new();
            for (col, v) in r.cells() {
                m.insert(col.name().to_owned(), cell(v));
            }
            m
        })
        .collect()
}

async fn select(client: &mut super::MsClient, sql: &str) -> Result<Vec<HealthRow>, String> {
    let stream = client.simple_query(sql).await.map_err(|e| e.to_string())?;
    let rows = stream
        .into_first_result()
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows_json(&rows))
}

async fn section(client: &mut super::MsClient, name: &str, sql: &str) -> HealthSection {
    match select(client, sql).await {
        Ok(r) => HealthSection::rows(name, r),
        Err(why) => HealthSection::missing(name, format!("cannot read: {why}")),
    }
}

/// The pressure numbers from the sections.
pub fn pressure(sections: &[HealthSection]) -> Pressure {
    crate::health::pressure_of(sections, "query_seconds", 0)
}

/// Reads the health report from the DMVs.
pub fn health(settings: &ConnectionSettings) -> Result<HealthReport, SourceError> {
    let (rt, mut client) = super::connect_read_intent(settings)?;
    rt.block_on(async {
        let version = select(
            &mut client,
            "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS v",
        )
        .await
        .map_err(|detail| SourceError::Query {
            context: "source health: server version".into(),
            detail,
            transient: false,
        })?
        .first()
        .and_then(|r| r.get("v").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
        let sections = vec![
            section(&mut client, "active_queries", ACTIVE_REQUESTS_SQL).await,
            section(&mut client, "lock_waits", BLOCKING_SQL).await,
            section(&mut client, "idle_in_transaction", IDLE_IN_TRANSACTION_SQL).await,
            section(&mut client, "connections", CONNECTIONS_SQL).await,
        ];
        Ok(HealthReport {
            engine: "mssql".into(),
            server_version: version,
            read_only_session: false,
            pressure: pressure(&sections),
            sections,
        })
    })
}

/// The batch `explain_chunk` asks SQL Server to plan: the chunk's SELECT with its bound
/// parameters declared as local variables of the same names holding the same values
/// (`DECLARE @P1 bigint = 5, @P2 nvarchar(max) = N'…';`), since a SHOWPLAN batch
/// cannot take bound parameters. Values are encoded literals (integers as digits, text
/// as `N'…'` with quotes doubled); nothing is substituted into the SELECT's text.
pub fn showplan_batch(sql: &str, params: &[super::reader::MsParam]) -> String {
    use super::reader::MsParam;
    if params.is_empty() {
        return sql.to_owned();
    }
    let decls: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            MsParam::Int(v) => format!("@P{} bigint = {v}", i + 1),
            MsParam::Text(t) => format!("@P{} nvarchar(max) = N'{}'", i + 1, t.replace('\'', "''")),
        })
        .collect();
    format!("DECLARE {};\n{sql}", decls.join(", "))
}

/// The batch a chunk read sends, with its parameters, and SQL Server's estimated plan
/// (`SET SHOWPLAN_XML ON`: the batch is compiled, not run) on a read-intent session.
pub fn explain(
    settings: &ConnectionSettings,
    req: &ChunkRead,
) -> Result<ChunkExplain, SourceError> {
    let (sql, params) = super::reader::chunk_batch(req);
    let batch = showplan_batch(&sql, &params);
    let (rt, mut client) = super::connect_read_intent(settings)?;
    let q = |what: &str| {
        let what = what.to_owned();
        move |e: tiberius::error::Error| SourceError::Query {
            context: format!("EXPLAIN of the chunk's batch: {what}"),
            detail: e.to_string(),
            transient: false,
        }
    };
    let plans: Vec<String> = rt.block_on(async {
        client
            .simple_query("SET SHOWPLAN_XML ON")
            .await
            .map_err(q("SET SHOWPLAN_XML ON"))?
            .into_results()
            .await
            .map_err(q("SET SHOWPLAN_XML ON"))?;
        let results = client
            .simple_query(batch.as_str())
            .await
            .map_err(q("compiling the batch"))?
            .into_results()
            .await
            .map_err(q("reading the plan"))?;
        client
            .simple_query("SET SHOWPLAN_XML OFF")
            .await
            .map_err(q("SET SHOWPLAN_XML OFF"))?
            .into_results()
            .await
            .map_err(q("SET SHOWPLAN_XML OFF"))?;
        let mut plans = Vec::new();
        for row in results.iter().flatten() {
            let xml: Option<&str> = row.try_get(0).map_err(q("reading the plan's XML"))?;
            plans.extend(xml.map(str::to_owned));
        }
        Ok::<_, SourceError>(plans)
    })?;
    if plans.is_empty() {
        return Err(SourceError::Query {
            context: "EXPLAIN of the chunk's batch".into(),
            detail: "SET SHOWPLAN_XML ON returned no plan".into(),
            transient: false,
        });
    }
    Ok(ChunkExplain {
        engine: "mssql".into(),
        sql,
        parameters: params
            .iter()
            .map(|p| match p {
                super::reader::MsParam::Int(i) => i.to_string(),
                super::reader::MsParam::Text(t) => t.clone(),
            })
            .collect(),
        plan: plans
            .into_iter()
            .map(|xml| {
                let mut m = Map::new();
                m.insert("showplan_xml".into(), Value::from(xml));
                m
            })
            .collect(),
        note: Some("SQL Server's estimated plan (SHOWPLAN_XML) of the chunk's SELECT, with the bounds declared as local variables; apply binds them as parameters, which may estimate differently".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_queries_only_read_dynamic_management_views() {
        for sql in [
            ACTIVE_REQUESTS_SQL,
            BLOCKING_SQL,
            IDLE_IN_TRANSACTION_SQL,
            CONNECTIONS_SQL,
        ] {
            assert!(sql.starts_with("SELECT "), "{sql}");
            assert!(!sql.contains(';'), "{sql}");
            let upper = sql.to_uppercase();
            let words: Vec<&str> = upper
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect();
            for word in [
                "INSERT", "UPDATE", "DELETE", "EXEC", "EXECUTE", "KILL", "MERGE",
            ] {
                assert!(!words.contains(&word), "{word} in {sql}");
            }
        }
        assert!(ACTIVE_REQUESTS_SQL.contains("r.session_id <> @@SPID"));
        assert!(BLOCKING_SQL.contains("r.blocking_session_id <> 0"));
        assert!(IDLE_IN_TRANSACTION_SQL.contains("open_transaction_count > 0"));
    }

    #[test]
    fn the_showplan_batch_declares_the_parameters_as_encoded_literals() {
        use crate::mssql::reader::MsParam;
        let sql = "SELECT [a] FROM [dbo].[t] WHERE [a] >= @P1 AND [b] < @P2";
        assert_eq!(showplan_batch(sql, &[]), sql);
        let b = showplan_batch(sql, &[MsParam::Int(-5), MsParam::Text("it's @P1".into())]);
        assert_eq!(
            b,
            format!("DECLARE @P1 bigint = -5, @P2 nvarchar(max) = N'it''s @P1';\n{sql}")
        );
    }

    #[test]
    fn pressure_counts_sections_and_takes_the_longest() {
        let row = |k: &str, v: f64| {
            let mut m = Map::new();
            m.insert(k.into(), Value::from(v));
            m
        };
        let sections = vec![
            HealthSection::rows(
                "active_queries",
                vec![row("query_seconds", 3.5), row("query_seconds", 12.0)],
            ),
            HealthSection::rows("lock_waits", vec![row("waiting_seconds", 1.0)]),
            HealthSection::missing("idle_in_transaction", "no privilege".into()),
        ];
        let p = pressure(&sections);
        assert_eq!(
            (p.active_queries, p.lock_waits, p.idle_in_transaction),
            (2, 1, 0)
        );
        assert_eq!(p.longest_query_seconds, 12.0);
    }
}
