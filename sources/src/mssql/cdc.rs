//! SQL Server change capture through change data capture's change tables: the facts a
//! plan seals (whether the database and table are enabled, the capture instances and
//! the columns they capture, the log's max LSN, the Agent that runs the capture job)
//! and the one batch that reads a sealed LSN range through
//! `cdc.fn_cdc_get_all_changes_<capture_instance>`.
//!
//! The window batch returns exactly the planned columns, then the four change columns,
//! so the chunk reader streams and decodes it with the batch path's decoders (one type
//! mapping). Updates come as their after image (`N'all'`): SQL Server logs an update
//! that moves a primary key as a delete and an insert. A range whose start the cleanup
//! job has already removed is refused inside the batch (`THROW`), never read short.
//!
//! No SQL Server runs on the development and CI machines: the SQL is tested offline
//! here and live behind `RIVET_TEST_MSSQL_URL` (tests/e2e/mssql.rs).

use tiberius::Row;

use super::catalog::{cell, text, MsCatalog, CATALOG_TIMEOUT};
use super::quote_ident;
use crate::error::SourceError;
use crate::{CaptureInstance, ChangeTableFacts, ChunkRead};

/// The facts: database flag, capture instances with their oldest LSN and captured
/// columns, max LSN, the increment of the committed LSN, then the Agent's state (read
/// in its own batch: it needs VIEW SERVER STATE, which the facts do not).
const FACTS_SQL: &str = "SET NOCOUNT ON;
SELECT CAST(is_cdc_enabled AS int) FROM sys.databases WHERE database_id = DB_ID();
SELECT ct.capture_instance, sys.fn_cdc_get_min_lsn(ct.capture_instance), cc.column_name
  FROM cdc.change_tables ct
  JOIN cdc.captured_columns cc ON cc.object_id = ct.object_id
 WHERE ct.source_object_id = OBJECT_ID(@P1)
 ORDER BY ct.capture_instance, cc.column_ordinal;
SELECT sys.fn_cdc_get_max_lsn(), CASE WHEN @P2 IS NULL THEN NULL ELSE sys.fn_cdc_increment_lsn(CONVERT(binary(10), @P2, 1)) END;";

/// The Agent's state, from `sys.dm_server_services`.
const AGENT_SQL: &str =
    "SELECT status_desc FROM sys.dm_server_services WHERE servicename LIKE N'SQL Server Agent%'";

fn lsn_of(row: &Row, idx: usize, what: &str) -> Result<Option<[u8; 10]>, SourceError> {
    match cell::<&[u8]>(row, idx)? {
        None => Ok(None),
        Some(b) => <[u8; 10]>::try_from(b)
            .map(Some)
            .map_err(|_| SourceError::Query {
                context: format!("reading {what}"),
                detail: format!("the server returned {} bytes, not a 10-byte LSN", b.len()),
                transient: false,
            }),
    }
}

/// Reads the facts for `schema.table` (see [`FACTS_SQL`]).
pub(crate) fn facts(
    catalog: &mut MsCatalog,
    schema: &str,
    table: &str,
    committed: Option<&[u8; 10]>,
) -> Result<ChangeTableFacts, SourceError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let committed_text = committed.map(rivet_schema::plan::mssql_lsn_text);
    let context = format!("reading change data capture facts of {schema}.{table}");
    let results = catalog.results(
        &context,
        FACTS_SQL,
        &[&qualified, &committed_text],
        CATALOG_TIMEOUT,
    )?;
    let short = || SourceError::Query {
        context: context.clone(),
        detail: "the server returned fewer result sets than asked".into(),
        transient: false,
    };
    let [db, instances, lsns] = <[Vec<Row>; 3]>::try_from(results).map_err(|_| short())?;
    let database_enabled = db.first().map(|r| cell::<i32>(r, 0)).transpose()?.flatten() == Some(1);
    let mut out: Vec<CaptureInstance> = Vec::new();
    for r in &instances {
        let name = text(r, 0)?;
        let column = text(r, 2)?;
        match out.last_mut().filter(|i| i.name == name) {
            Some(i) => i.captured_columns.push(column),
            None => {
                let min_lsn =
                    lsn_of(r, 1, "sys.fn_cdc_get_min_lsn")?.ok_or_else(|| SourceError::Query {
                        context: context.clone(),
                        detail: format!("capture instance `{name}` has no minimum LSN"),
                        transient: false,
                    })?;
                out.push(CaptureInstance {
                    name,
                    min_lsn,
                    captured_columns: vec![column],
                });
            }
        }
    }
    let row = lsns.first().ok_or_else(short)?;
    let max_lsn = lsn_of(row, 0, "sys.fn_cdc_get_max_lsn()")?.ok_or_else(|| SourceError::Query {
        context: context.clone(),
        detail: "sys.fn_cdc_get_max_lsn() is NULL: change data capture has not captured anything in this database yet (is the capture job running?)".into(),
        transient: false,
    })?;
    let after_committed = lsn_of(row, 1, "sys.fn_cdc_increment_lsn")?;
    let agent = match catalog.results("reading the SQL Server Agent's state", AGENT_SQL, &[], CATALOG_TIMEOUT) {
        Ok(r) => r
            .first()
            .and_then(|rows| rows.first())
            .map(|row| text(row, 0))
            .transpose()?
            .ok_or_else(|| "no SQL Server Agent service is listed (Azure SQL Database runs capture on its own scheduler)".to_owned()),
        Err(e) => Err(format!("its state cannot be read: {e}")),
    };
    Ok(ChangeTableFacts {
        database_enabled,
        instances: out,
        max_lsn,
        after_committed,
        agent,
    })
}

/// What change data capture of `schema.table` lacks on the server: CDC on the database,
/// a capture instance on the table, a running SQL Server Agent (whose capture job fills
/// the change tables). An Agent whose state cannot be read is not reported here: plan
/// warns and doctor says so, since Azure SQL Database has no Agent to read.
pub fn unmet_prerequisite(f: &ChangeTableFacts, schema: &str, table: &str) -> Option<crate::Unmet> {
    let literal = |s: &str| s.replace('\'', "''");
    if !f.database_enabled {
        return Some(crate::Unmet {
            key: "mode",
            problem: "change data capture is not enabled on this database".into(),
            fix: "a member of sysadmin runs `EXEC sys.sp_cdc_enable_db;` in it (docs/cdc.md#sql-server)".into(),
        });
    }
    if f.instances.is_empty() {
        return Some(crate::Unmet {
            key: "table",
            problem: format!("{schema}.{table} is not tracked by change data capture"),
            fix: format!(
                "a db_owner runs `EXEC sys.sp_cdc_enable_table @source_schema = N'{}', @source_name = N'{}', @role_name = NULL;` (the SQL Server Agent must run the capture job)",
                literal(schema),
                literal(table)
            ),
        });
    }
    match &f.agent {
        Ok(state) if !state.eq_ignore_ascii_case("Running") => Some(crate::Unmet {
            key: "mode",
            problem: format!(
                "the SQL Server Agent is `{state}`: the capture job that copies changes into the change tables does not run, so a window would miss changes"
            ),
            fix: "start the SQL Server Agent service".into(),
        }),
        _ => None,
    }
}

/// The batch that reads `[from, to]` of `capture_instance` as the request's columns:
/// the planned table columns, then `_rivet_op`, `_rivet_pos` (start LSN and sequence
/// value as hex, so text order is log order), `_rivet_commit_ts` (the transaction's
/// end time from `cdc.lsn_time_mapping`, moved to UTC by the server's offset now) and
/// `_rivet_txid` (the low 8 bytes of its `tran_id`). LSNs are written as binary
/// literals of validated bytes; identifiers are quoted.
pub fn change_batch(
    req: &ChunkRead,
    capture_instance: &str,
    from: &[u8; 10],
    to: &[u8; 10],
) -> String {
    let ntable = req.columns.len() - 4;
    let cols: Vec<String> = req.columns[..ntable]
        .iter()
        .map(|c| format!("c.{}", quote_ident(&c.name)))
        .collect();
    let function = format!(
        "cdc.{}",
        quote_ident(&format!("fn_cdc_get_all_changes_{capture_instance}"))
    );
    let from = rivet_schema::plan::mssql_lsn_text(from);
    let to = rivet_schema::plan::mssql_lsn_text(to);
    let instance = capture_instance.replace('\'', "''");
    format!(
        "SET NOCOUNT ON; SET LOCK_TIMEOUT {lock};
DECLARE @from binary(10) = {from}, @to binary(10) = {to};
IF sys.fn_cdc_get_min_lsn(N'{instance}') = 0x00000000000000000000
    THROW 50001, N'capture instance {instance} does not exist any more: plan again (and take a new snapshot if it was recreated)', 1;
IF sys.fn_cdc_get_min_lsn(N'{instance}') > @from
    THROW 50002, N'the change table of capture instance {instance} no longer holds the start of this window: the cleanup job removed changes that were never exported; reset the position with rivet state reset-cursor and take a new snapshot', 1;
SELECT {cols},
       CASE c.__$operation WHEN 1 THEN N'delete' WHEN 2 THEN N'insert' WHEN 4 THEN N'update' END,
       CONVERT(varchar(20), c.__$start_lsn, 2) + '-' + CONVERT(varchar(20), c.__$seqval, 2),
       CAST(DATEADD(minute, DATEDIFF(minute, SYSDATETIME(), SYSUTCDATETIME()), m.tran_end_time) AS datetime2(7)),
       CONVERT(bigint, SUBSTRING(m.tran_id, 3, 8))
  FROM {function}(@from, @to, N'all') AS c
  LEFT JOIN cdc.lsn_time_mapping AS m ON m.start_lsn = c.__$start_lsn
 ORDER BY c.__$start_lsn, c.__$seqval, c.__$operation",
        lock = req.lock_timeout_ms,
        cols = cols.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CdcLog, CdcWindow, ReadColumn, RelationRef};
    use rivet_schema::LogicalType;

    fn req(columns: &[&str]) -> ChunkRead {
        let mut cols: Vec<ReadColumn> = columns
            .iter()
            .map(|n| ReadColumn {
                name: (*n).to_owned(),
                wire_type: "int".into(),
                logical: LogicalType::Int32,
                nullable: true,
                select_expr: None,
            })
            .collect();
        for (name, wire, logical) in rivet_schema::plan::cdc_columns() {
            cols.push(ReadColumn {
                name: name.into(),
                wire_type: wire.into(),
                logical,
                nullable: false,
                select_expr: None,
            });
        }
        ChunkRead {
            cdc: Some(CdcWindow {
                schema: "dbo".into(),
                table: "t".into(),
                key: vec!["id".into()],
                log: CdcLog::ChangeTable {
                    capture_instance: "dbo_t".into(),
                    from: [0; 10],
                    to: [0; 10],
                },
            }),
            relation: RelationRef::Table {
                schema: "dbo".into(),
                name: "t".into(),
            },
            columns: cols,
            range: None,
            window: None,
            batch_rows: 1,
            batch_bytes: 1,
            statement_timeout_ms: 1,
            lock_timeout_ms: 5000,
            use_cursor: false,
            pages: None,
            snapshot: None,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
            infinity: crate::InfinityPolicy::Clamp,
        }
    }

    #[test]
    fn the_window_batch_quotes_names_and_writes_lsns_as_literals() {
        let r = req(&["id", "we]ird"]);
        let from = [0, 0, 0, 0x2A, 0, 0, 1, 0xF4, 0, 3];
        let to = [0, 0, 0, 0x2B, 0, 0, 0, 0x10, 0, 1];
        let sql = change_batch(&r, "dbo_it's]", &from, &to);
        assert!(sql.contains("@from binary(10) = 0x0000002A000001F40003, @to binary(10) = 0x0000002B000000100001"), "{sql}");
        assert!(sql.contains("SELECT c.[id], c.[we]]ird],"), "{sql}");
        assert!(
            sql.contains("FROM cdc.[fn_cdc_get_all_changes_dbo_it's]]](@from, @to, N'all') AS c"),
            "{sql}"
        );
        assert!(
            sql.contains("sys.fn_cdc_get_min_lsn(N'dbo_it''s]')"),
            "{sql}"
        );
        assert!(
            sql.contains("WHEN 1 THEN N'delete' WHEN 2 THEN N'insert' WHEN 4 THEN N'update'"),
            "{sql}"
        );
        assert!(sql
            .trim_end()
            .ends_with("ORDER BY c.__$start_lsn, c.__$seqval, c.__$operation"));
        // The planned columns on the first line, then the four change columns.
        let select = &sql[sql.find("SELECT c.").unwrap()..sql.find("  FROM").unwrap()];
        assert_eq!(select.matches(",\n").count(), 4, "{select}");
    }
}
