//! Batched `information_schema` introspection: one round trip each for tables, columns,
//! primary keys and JSON check constraints, whatever the number of tables.

use std::collections::HashMap;

use mysql::prelude::Queryable;
use mysql::Value;

use super::types::{from_catalog, from_column, select_expr};
use super::{connect, query_err, quote_ident, scoped_select, Flavor};
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{identity_of, Catalog, KeyBounds, TableRequest};
use crate::{RelationRef, SourceColumn, TableInfo};
use rivet_schema::plan::SourceIdentity;

/// The MySQL/MariaDB catalog connection.
pub struct MyCatalog {
    pub(super) conn: mysql::Conn,
    pub(super) flavor: Flavor,
    /// Kept to open the second connection of the pooler probe.
    settings: ConnectionSettings,
}

impl MyCatalog {
    pub fn connect(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (conn, flavor) = connect(settings)?;
        Ok(MyCatalog {
            conn,
            flavor,
            settings: settings.clone(),
        })
    }

    fn connection_id(&mut self) -> Result<u64, SourceError> {
        let id: Option<Value> = self
            .conn
            .query_first("SELECT CONNECTION_ID()")
            .map_err(query_err("probing for a proxy: CONNECTION_ID()"))?;
        id.as_ref()
            .and_then(number)
            .ok_or_else(|| SourceError::Query {
                context: "probing for a proxy: CONNECTION_ID()".into(),
                detail: format!("the server answered {id:?}, not a number"),
                transient: false,
            })
    }
}

/// The verdict from the connection ids one client connection saw over three statements
/// and the id a second connection saw meanwhile (see
/// [`crate::source::pooling_verdict`]), and the version comment: ProxySQL answers
/// `SELECT @@version_comment LIMIT 1` itself, with its own name. A server that gives no
/// comment (NULL) names no proxy, and the evidence says so.
fn judge_path(
    own: [u64; 3],
    other: u64,
    comment: Option<&str>,
) -> rivet_schema::plan::ConnectionPath {
    let (pooling, mut evidence) = crate::source::pooling_verdict(
        own,
        other,
        ("server connection", "CONNECTION_ID()", "statements"),
    );
    let proxy = comment
        .is_some_and(|c| c.to_ascii_lowercase().contains("proxysql"))
        .then(|| "proxysql".to_owned());
    evidence.push_str(&match comment {
        Some(c) => format!("; @@version_comment is `{c}`"),
        None => "; @@version_comment is NULL".to_owned(),
    });
    rivet_schema::plan::ConnectionPath {
        pooling,
        proxy,
        evidence,
    }
}

/// `(?, ?), (?, ?), …` and the matching parameters.
pub(super) fn pairs(keys: &[(String, String)]) -> (String, Vec<Value>) {
    let placeholders = vec!["(?, ?)"; keys.len()].join(", ");
    let params = keys
        .iter()
        .flat_map(|(s, t)| [Value::from(s.as_str()), Value::from(t.as_str())])
        .collect();
    (placeholders, params)
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::NULL => String::new(),
        other => other.as_sql(true).trim_matches('\'').to_owned(),
    }
}

pub(super) fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::UInt(u) => Some(*u),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        _ => None,
    }
}

impl Catalog for MyCatalog {
    fn connection_path(&mut self) -> Result<rivet_schema::plan::ConnectionPath, SourceError> {
        let comment: Option<Value> = self
            .conn
            .query_first("SELECT @@version_comment LIMIT 1")
            .map_err(query_err("probing for a proxy: @@version_comment"))?;
        let first = self.connection_id()?;
        let second = self.connection_id()?;
        let other = MyCatalog::connect(&self.settings)?.connection_id()?;
        let third = self.connection_id()?;
        Ok(judge_path(
            [first, second, third],
            other,
            comment
                .filter(|v| *v != Value::NULL)
                .as_ref()
                .map(text)
                .as_deref(),
        ))
    }

    /// A chunk here is one streamed SELECT held open while rows are decoded; a quarter
    /// of PostgreSQL's target (which reads through COPY) keeps each statement well
    /// under a second.
    fn default_chunk_target_bytes(&self, profile_target: u64) -> u64 {
        profile_target / 4
    }

    /// MySQL: `@@server_uuid` (made once per server data directory) and the default
    /// schema. MariaDB has no server UUID: `@@server_uid` is what it offers, a hash it
    /// derives from the host's hardware address and the port. Replicas have their own.
    fn identity(&mut self) -> Result<SourceIdentity, SourceError> {
        let (name, sql) = match self.flavor {
            Flavor::MySql => ("server_uuid", "SELECT @@server_uuid, DATABASE()"),
            Flavor::MariaDb => ("server_uid", "SELECT @@server_uid, DATABASE()"),
        };
        let row: Option<(Value, Value)> = self
            .conn
            .query_first(sql)
            .map_err(query_err("reading the server's identity"))?;
        let (server, schema) = row.unwrap_or((Value::NULL, Value::NULL));
        Ok(identity_of([
            (name, text(&server)),
            ("schema", text(&schema)),
        ]))
    }

    fn describe_tables(
        &mut self,
        requests: &[TableRequest],
    ) -> Result<Vec<TableInfo>, SourceError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let default_db: Option<String> = self
            .conn
            .query_first("SELECT DATABASE()")
            .map_err(query_err("reading the default database"))?
            .flatten();
        let keys: Vec<(String, String)> = requests
            .iter()
            .map(|r| {
                (
                    r.schema
                        .clone()
                        .or_else(|| default_db.clone())
                        .unwrap_or_default(),
                    r.name.clone(),
                )
            })
            .collect();
        let (filter, params) = pairs(&keys);
        let tables: Vec<mysql::Row> = self
            .conn
            .exec(
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES \
                     WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({filter})"
                ),
                params.clone(),
            )
            .map_err(query_err("reading table definitions from information_schema.TABLES"))?;
        let mut stats: HashMap<(String, String), (u64, Option<u64>)> = HashMap::new();
        for r in &tables {
            let key = (text(&r[0]), text(&r[1]));
            stats.insert(
                key,
                (number(&r[2]).unwrap_or(0), number(&r[3]).filter(|n| *n > 0)),
            );
        }
        for (r, key) in requests.iter().zip(&keys) {
            if !stats.contains_key(key) {
                return Err(SourceError::TableNotFound {
                    table: match &r.schema {
                        Some(s) => format!("{s}.{}", r.name),
                        None => r.name.clone(),
                    },
                });
            }
        }
        let columns: Vec<mysql::Row> = self
            .conn
            .exec(
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
                            COALESCE(NUMERIC_PRECISION, DATETIME_PRECISION), NUMERIC_SCALE \
                     FROM information_schema.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({filter}) \
                     ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
                ),
                params.clone(),
            )
            .map_err(query_err("reading column definitions from information_schema.COLUMNS"))?;
        let keys_rows: Vec<mysql::Row> = self
            .conn
            .exec(
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE CONSTRAINT_NAME = 'PRIMARY' AND (TABLE_SCHEMA, TABLE_NAME) IN ({filter}) \
                     ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
                ),
                params.clone(),
            )
            .map_err(query_err("reading primary keys from information_schema.KEY_COLUMN_USAGE"))?;
        // MariaDB's JSON is LONGTEXT with a json_valid() check; find those columns.
        let json_rows: Vec<mysql::Row> = match self.flavor {
            Flavor::MariaDb => self
                .conn
                .exec(
                    format!(
                        "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                         WHERE (CONSTRAINT_SCHEMA, TABLE_NAME) IN ({filter}) AND CHECK_CLAUSE LIKE 'json_valid(%'"
                    ),
                    params,
                )
                .map_err(query_err("reading JSON checks from information_schema.CHECK_CONSTRAINTS"))?,
            Flavor::MySql => Vec::new(),
        };
        let json_checks: Vec<(String, String, String)> = json_rows
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]), text(&r[2])))
            .collect();
        let mut by_table: HashMap<(String, String), Vec<SourceColumn>> = HashMap::new();
        for r in &columns {
            let key = (text(&r[0]), text(&r[1]));
            let name = text(&r[2]);
            let is_json = json_checks.iter().any(|(s, t, clause)| {
                (s, t) == (&key.0, &key.1)
                    && clause == &format!("json_valid({})", quote_ident(&name))
            });
            let resolved = from_catalog(
                self.flavor,
                &text(&r[3]),
                &text(&r[4]),
                number(&r[6]),
                number(&r[7]),
                is_json,
            );
            by_table.entry(key).or_default().push(SourceColumn {
                select_expr: resolved.read.as_ref().map(|r| select_expr(&name, r)),
                mapping: resolved.mapping,
                name,
                declared_type: text(&r[4]),
                wire_type: resolved.wire_type,
                logical: resolved.logical,
                nullable: text(&r[5]) == "YES",
                n_distinct: None,
            });
        }
        let mut pks: HashMap<(String, String), Vec<String>> = HashMap::new();
        for r in &keys_rows {
            pks.entry((text(&r[0]), text(&r[1])))
                .or_default()
                .push(text(&r[2]));
        }
        Ok(keys
            .iter()
            .map(|key| {
                let (rows, avg) = stats[key];
                TableInfo {
                    schema: key.0.clone(),
                    name: key.1.clone(),
                    columns: by_table.get(key).cloned().unwrap_or_default(),
                    primary_key: pks.get(key).cloned().unwrap_or_default(),
                    row_estimate: rows,
                    avg_row_bytes: avg,
                }
            })
            .collect())
    }

    fn describe_query(&mut self, sql: &str) -> Result<Vec<SourceColumn>, SourceError> {
        let stmt = self
            .conn
            .prep(sql)
            .map_err(query_err("describing the export's query"))?;
        let columns = stmt
            .columns()
            .iter()
            .map(|c| {
                let resolved = from_column(
                    c.column_type(),
                    c.flags(),
                    c.column_length(),
                    c.decimals(),
                    c.character_set(),
                );
                SourceColumn {
                    select_expr: resolved
                        .read
                        .as_ref()
                        .map(|r| select_expr(&c.name_str(), r)),
                    mapping: resolved.mapping,
                    name: c.name_str().into_owned(),
                    declared_type: format!("{:?}", c.column_type())
                        .trim_start_matches("MYSQL_TYPE_")
                        .to_lowercase(),
                    wire_type: resolved.wire_type,
                    logical: resolved.logical,
                    nullable: true,
                    n_distinct: None,
                }
            })
            .collect();
        let _ = self.conn.close(stmt);
        Ok(columns)
    }

    fn key_bounds(
        &mut self,
        requests: &[(RelationRef, String)],
        statement_timeout_ms: u64,
    ) -> Result<Vec<KeyBounds>, SourceError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let sql = requests
            .iter()
            .enumerate()
            .map(|(i, (rel, col))| {
                let col = quote_ident(col);
                format!(
                    "SELECT {i}, MIN({col}), MAX({col}) FROM {}",
                    rel.from_clause(quote_ident)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows: Vec<mysql::Row> = self
            .conn
            .query(scoped_select(self.flavor, &sql, statement_timeout_ms))
            .map_err(query_err("reading chunk key bounds (MIN/MAX)"))?;
        let bad = |detail: String| SourceError::Query {
            context: "reading chunk key bounds (MIN/MAX)".into(),
            detail,
            transient: false,
        };
        let mut filled: Vec<Option<KeyBounds>> = vec![None; requests.len()];
        for r in rows {
            let slot = number(&r[0])
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < requests.len())
                .ok_or_else(|| {
                    bad(format!(
                        "the server returned an unknown row index {:?}",
                        r[0]
                    ))
                })?;
            let (rel, col) = &requests[slot];
            let bound = |v: &Value| -> Result<Option<i64>, SourceError> {
                match v {
                    Value::NULL => Ok(None),
                    Value::Int(n) => Ok(Some(*n)),
                    Value::UInt(n) => i64::try_from(*n).map(Some).map_err(|_| {
                        bad(format!("{}.{col}: key value {n} is above the largest signed 64-bit integer; chunk on another column or use mode: full", rel.from_clause(quote_ident)))
                    }),
                    Value::Bytes(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .map(Some)
                        .ok_or_else(|| {
                            bad(format!(
                                "{}.{col}: the bound `{}` is not an integer; chunked mode needs an integer key",
                                rel.from_clause(quote_ident),
                                String::from_utf8_lossy(b)
                            ))
                        }),
                    other => Err(bad(format!(
                        "{}.{col}: the bound {other:?} is not an integer; chunked mode needs an integer key",
                        rel.from_clause(quote_ident)
                    ))),
                }
            };
            filled[slot] = Some((bound(&r[1])?, bound(&r[2])?));
        }
        filled
            .into_iter()
            .zip(requests)
            .map(|(b, (rel, col))| {
                b.ok_or_else(|| {
                    bad(format!(
                        "no MIN/MAX row came back for {}.{col}",
                        rel.from_clause(quote_ident)
                    ))
                })
            })
            .collect()
    }

    fn binlog_facts(
        &mut self,
        schema: &str,
        table: &str,
        probe_as: Option<u32>,
    ) -> Result<crate::BinlogFacts, SourceError> {
        let facts = super::binlog::facts(&mut self.conn, schema, table)?;
        if let Some(server_id) = probe_as.filter(|id| facts.log_bin && *id != facts.server_id) {
            super::binlog::probe_replica(&self.settings, server_id, &facts.current)?;
        }
        Ok(facts)
    }

    fn can_read(&mut self, relation: &RelationRef) -> Result<(), SourceError> {
        let sql = format!(
            "SELECT 1 FROM {} LIMIT 0",
            relation.from_clause(quote_ident)
        );
        self.conn
            .query_drop(sql)
            .map_err(query_err("reading the relation (SELECT … LIMIT 0)"))
    }

    fn max_value(
        &mut self,
        relation: &RelationRef,
        column: &str,
        fallback: Option<&str>,
        statement_timeout_ms: u64,
    ) -> Result<Option<String>, SourceError> {
        let expr = crate::source::cursor_expr(quote_ident, column, fallback);
        let sql = format!(
            "SELECT CAST(MAX({expr}) AS CHAR) FROM {}",
            relation.from_clause(quote_ident)
        );
        let value: Option<Option<String>> = self
            .conn
            .query_first(scoped_select(self.flavor, &sql, statement_timeout_ms))
            .map_err(query_err("reading the cursor high-water mark (MAX)"))?;
        Ok(value.flatten())
    }
}

#[cfg(test)]
mod path_tests {
    use super::judge_path;
    use rivet_schema::plan::Pooling;

    #[test]
    fn proxysql_is_named_and_multiplexing_is_transaction_pooling() {
        let p = judge_path([5, 5, 5], 6, Some("MariaDB Server"));
        assert_eq!((p.pooling, p.proxy), (Pooling::Session, None));
        let p = judge_path([5, 9, 5], 6, Some("(ProxySQL)"));
        assert_eq!(p.pooling, Pooling::Transaction);
        assert_eq!(p.proxy.as_deref(), Some("proxysql"));
        assert!(
            p.evidence.contains("changed between statements"),
            "{}",
            p.evidence
        );
        assert_eq!(judge_path([5, 5, 5], 5, None).pooling, Pooling::Transaction);
    }
}
