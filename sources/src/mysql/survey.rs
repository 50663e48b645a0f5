//! MySQL/MariaDB answers for `init` and `check` (see [`Survey`]): tables and index
//! keys from `information_schema`, connection use from `Threads_connected` (a global
//! status every account may read). No histogram: MySQL 8 keeps them only after an
//! explicit `ANALYZE TABLE … UPDATE HISTOGRAM` and MariaDB's need `mysql.column_stats`
//! access, so `check` judges key gaps from the bounds and the row estimate instead.

use mysql::prelude::Queryable;
use mysql::Value;

use super::catalog::{number, pairs, text, MyCatalog};
use super::query_err;
use crate::error::SourceError;
use crate::source::TableRequest;
use crate::survey::{ConnectionHeadroom, IndexFacts, Survey};

/// Base tables of the given schemas (`?` placeholders appended), or of `DATABASE()`.
pub fn list_tables_sql(schemas: usize) -> String {
    let filter = if schemas == 0 {
        "TABLE_SCHEMA = DATABASE()".to_owned()
    } else {
        format!("TABLE_SCHEMA IN ({})", vec!["?"; schemas].join(", "))
    };
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_TYPE = 'BASE TABLE' AND {filter} ORDER BY TABLE_SCHEMA, TABLE_NAME"
    )
}

/// Index key columns of the given `(schema, table)` pairs (`filter` from `pairs`).
/// `COLUMN_NAME` is NULL for a functional key part, which ends the column list.
pub fn indexes_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME \
         FROM information_schema.STATISTICS WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({filter}) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    )
}

impl Survey for MyCatalog {
    fn list_tables(&mut self, schemas: &[String]) -> Result<Vec<TableRequest>, SourceError> {
        let params: Vec<Value> = schemas.iter().map(|s| Value::from(s.as_str())).collect();
        let rows: Vec<mysql::Row> = self
            .conn
            .exec(list_tables_sql(schemas.len()), params)
            .map_err(query_err("listing tables from information_schema.TABLES"))?;
        Ok(rows
            .iter()
            .map(|r| TableRequest {
                schema: Some(text(&r[0])),
                name: text(&r[1]),
            })
            .collect())
    }

    fn indexes(&mut self, tables: &[TableRequest]) -> Result<Vec<Vec<IndexFacts>>, SourceError> {
        let mut out = vec![Vec::new(); tables.len()];
        if tables.is_empty() {
            return Ok(out);
        }
        let default_db: Option<String> = self
            .conn
            .query_first("SELECT DATABASE()")
            .map_err(query_err("reading the default database"))?
            .flatten();
        let keys: Vec<(String, String)> = tables
            .iter()
            .map(|t| {
                let schema = t.schema.clone().or_else(|| default_db.clone());
                (schema.unwrap_or_default(), t.name.clone())
            })
            .collect();
        let (filter, params) = pairs(&keys);
        let rows: Vec<mysql::Row> =
            self.conn
                .exec(indexes_sql(&filter), params)
                .map_err(query_err(
                    "reading index keys from information_schema.STATISTICS",
                ))?;
        // (table position, index name) → facts, with a flag once a functional part ended it.
        let mut current: Option<(usize, String, bool)> = None;
        for r in &rows {
            let key = (text(&r[0]), text(&r[1]));
            let Some(pos) = keys.iter().position(|k| *k == key) else {
                continue;
            };
            let index = text(&r[2]);
            let column = match &r[4] {
                Value::NULL => None,
                v => Some(text(v)),
            };
            let same = matches!(&current, Some((p, n, _)) if *p == pos && *n == index);
            if !same {
                out[pos].push(IndexFacts {
                    name: index.clone(),
                    columns: Vec::new(),
                    unique: number(&r[3]) == Some(0),
                });
                current = Some((pos, index, false));
            }
            let ended = current.as_ref().map(|c| c.2).unwrap_or(false);
            match column {
                Some(c) if !ended => {
                    if let Some(ix) = out[pos].last_mut() {
                        ix.columns.push(c);
                    }
                }
                _ => {
                    if let Some(c) = current.as_mut() {
                        c.2 = true;
                    }
                }
            }
        }
        Ok(out)
    }

    fn connections(&mut self) -> Result<ConnectionHeadroom, SourceError> {
        let max: Option<Value> = self
            .conn
            .query_first("SELECT @@max_connections")
            .map_err(query_err("reading @@max_connections"))?;
        let status: Option<(Value, Value)> = self
            .conn
            .query_first("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            .map_err(query_err("reading the Threads_connected status"))?;
        // A figure the server did not give as a number is an error: a guessed 0 would
        // turn `rivet check`'s headroom warning into nonsense, either way.
        let unreadable = |what: &str, v: Option<&Value>| SourceError::Query {
            context: format!("reading {what}"),
            detail: format!("the server answered {v:?}, not a number"),
            transient: false,
        };
        let max_connections = max
            .as_ref()
            .and_then(number)
            .ok_or_else(|| unreadable("@@max_connections", max.as_ref()))?;
        let in_use = status
            .as_ref()
            .and_then(|(_, v)| number(v))
            .ok_or_else(|| {
                unreadable(
                    "the Threads_connected status",
                    status.as_ref().map(|s| &s.1),
                )
            })?;
        Ok(ConnectionHeadroom {
            max_connections,
            reserved: 0,
            in_use,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_listing_binds_every_schema() {
        assert!(list_tables_sql(0).contains("TABLE_SCHEMA = DATABASE()"));
        assert!(list_tables_sql(2).contains("TABLE_SCHEMA IN (?, ?)"));
    }
}
