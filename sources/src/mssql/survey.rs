//! SQL Server answers for `init` and `check` (see [`Survey`]): tables and index keys
//! from `sys.*` with names as bound parameters, connection use from
//! `sys.dm_exec_sessions` (without VIEW SERVER STATE a login sees only its own
//! sessions, so the headroom is then optimistic — docs/operations.md says so). No
//! histogram: `DBCC SHOW_STATISTICS` needs more than read access.

use super::catalog::{cell, text, values_list, MsCatalog, CATALOG_TIMEOUT};
use crate::error::SourceError;
use crate::source::TableRequest;
use crate::survey::{ConnectionHeadroom, IndexFacts, Survey};

/// User tables of the given schemas (`@P1…`), or of `SCHEMA_NAME()` when none.
pub fn list_tables_sql(schemas: usize) -> String {
    let filter = if schemas == 0 {
        "s.name = SCHEMA_NAME()".to_owned()
    } else {
        let params: Vec<String> = (1..=schemas).map(|i| format!("@P{i}")).collect();
        format!("s.name IN ({})", params.join(", "))
    };
    format!(
        "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id \
         WHERE t.is_ms_shipped = 0 AND {filter} ORDER BY s.name, t.name"
    )
}

/// Key columns of the enabled, unfiltered indexes of `n` `(schema, table)` pairs.
pub fn indexes_sql(n: usize) -> String {
    format!(
        "SELECT r.i, ix.name, CAST(ix.is_unique AS int), c.name \
         FROM (VALUES {}) AS r(i, sch, tab) \
         JOIN sys.schemas s ON s.name = r.sch \
         JOIN sys.tables t ON t.schema_id = s.schema_id AND t.name = r.tab \
         JOIN sys.indexes ix ON ix.object_id = t.object_id AND ix.type > 0 \
              AND ix.is_disabled = 0 AND ix.has_filter = 0 \
         JOIN sys.index_columns ic ON ic.object_id = ix.object_id AND ic.index_id = ix.index_id \
              AND ic.key_ordinal > 0 AND ic.is_included_column = 0 \
         JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id \
         ORDER BY r.i, ix.name, ic.key_ordinal",
        values_list(n)
    )
}

/// The connection limit and the user sessions open now.
pub const CONNECTIONS_SQL: &str = "SELECT CAST(@@MAX_CONNECTIONS AS bigint), \
     CAST((SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE is_user_process = 1) AS bigint)";

impl Survey for MsCatalog {
    fn list_tables(&mut self, schemas: &[String]) -> Result<Vec<TableRequest>, SourceError> {
        let params: Vec<&dyn tiberius::ToSql> =
            schemas.iter().map(|s| s as &dyn tiberius::ToSql).collect();
        let results = self.results(
            "listing tables from sys.tables",
            &list_tables_sql(schemas.len()),
            &params,
            CATALOG_TIMEOUT,
        )?;
        let mut out = Vec::new();
        for row in results.first().map(Vec::as_slice).unwrap_or_default() {
            out.push(TableRequest {
                schema: Some(text(row, 0)?),
                name: text(row, 1)?,
            });
        }
        Ok(out)
    }

    fn indexes(&mut self, tables: &[TableRequest]) -> Result<Vec<Vec<IndexFacts>>, SourceError> {
        let mut out: Vec<Vec<IndexFacts>> = vec![Vec::new(); tables.len()];
        if tables.is_empty() {
            return Ok(out);
        }
        let schemas: Vec<String> = tables
            .iter()
            .map(|t| t.schema.clone().unwrap_or_else(|| "dbo".to_owned()))
            .collect();
        let mut params: Vec<&dyn tiberius::ToSql> = Vec::new();
        for (s, t) in schemas.iter().zip(tables) {
            params.push(s);
            params.push(&t.name);
        }
        let results = self.results(
            "reading index keys from sys.indexes",
            &indexes_sql(tables.len()),
            &params,
            CATALOG_TIMEOUT,
        )?;
        for row in results.first().map(Vec::as_slice).unwrap_or_default() {
            let i = cell::<i32>(row, 0)?.unwrap_or(-1) as usize;
            let name = text(row, 1)?;
            let unique = cell::<i32>(row, 2)?.unwrap_or(0) == 1;
            let column = text(row, 3)?;
            let Some(slot) = out.get_mut(i) else { continue };
            match slot.last_mut() {
                Some(ix) if ix.name == name => ix.columns.push(column),
                _ => slot.push(IndexFacts {
                    name,
                    columns: vec![column],
                    unique,
                }),
            }
        }
        Ok(out)
    }

    fn connections(&mut self) -> Result<ConnectionHeadroom, SourceError> {
        let results = self.results(
            "reading @@MAX_CONNECTIONS and sys.dm_exec_sessions",
            CONNECTIONS_SQL,
            &[],
            CATALOG_TIMEOUT,
        )?;
        let row = results.first().and_then(|r| r.first());
        // No row or a NULL is an error, never a guessed 0 (check's headroom warning
        // would be wrong either way).
        let n = |idx: usize| -> Result<u64, SourceError> {
            let value = match row {
                Some(r) => cell::<i64>(r, idx)?,
                None => None,
            };
            value
                .map(|v| v.max(0) as u64)
                .ok_or_else(|| SourceError::Query {
                    context: "reading @@MAX_CONNECTIONS and sys.dm_exec_sessions".into(),
                    detail: format!("the server returned no value in column {idx}"),
                    transient: false,
                })
        };
        Ok(ConnectionHeadroom {
            max_connections: n(0)?,
            reserved: 0,
            in_use: n(1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_listing_binds_schemas_or_uses_the_default() {
        assert!(list_tables_sql(0).contains("s.name = SCHEMA_NAME()"));
        assert!(list_tables_sql(2).contains("s.name IN (@P1, @P2)"));
    }

    #[test]
    fn index_query_binds_every_table_and_skips_filtered_and_included() {
        let sql = indexes_sql(2);
        assert!(sql.contains("(0, @P1, @P2), (1, @P3, @P4)"));
        assert!(sql.contains("has_filter = 0"));
        assert!(sql.contains("is_included_column = 0"));
        assert!(!sql.contains('\''), "no literal text spliced in: {sql}");
    }

    #[test]
    fn connection_query_counts_user_sessions() {
        assert!(CONNECTIONS_SQL.contains("is_user_process = 1"));
    }
}
