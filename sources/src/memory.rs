//! A [`Catalog`] held in memory: canned tables, query result columns, key bounds and
//! cursor maxima. It lets the planner compile real plans with no database (golden-plan
//! snapshot tests, offline tests of planning rules), through exactly the trait the live
//! engines implement.

use std::collections::HashMap;

use rivet_schema::plan::SourceIdentity;

use crate::error::SourceError;
use crate::source::{Catalog, KeyBounds, TableRequest};
use crate::{RelationRef, SourceColumn, TableInfo};

/// An in-memory source catalog.
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalog {
    /// Tables by exact schema and name.
    pub tables: Vec<TableInfo>,
    /// The schema a table request without one resolves in.
    pub default_schema: String,
    /// Result columns of queries, by exact SQL text.
    pub queries: HashMap<String, Vec<SourceColumn>>,
    /// `(min, max)` by (`schema.table` or query text, column).
    pub bounds: HashMap<(String, String), KeyBounds>,
    /// Largest cursor values as text by (`schema.table` or query text, column).
    pub max_values: HashMap<(String, String), String>,
    /// Divisor of the profile's chunk target (4 imitates MySQL and SQL Server).
    pub chunk_target_divisor: u64,
    /// What [`Catalog::identity`] reports (no facts by default).
    pub identity: SourceIdentity,
}

fn relation_key(r: &RelationRef) -> String {
    match r {
        RelationRef::Table { schema, name } => format!("{schema}.{name}"),
        RelationRef::Query(sql) => sql.clone(),
    }
}

impl Catalog for MemoryCatalog {
    fn identity(&mut self) -> Result<SourceIdentity, SourceError> {
        Ok(self.identity.clone())
    }

    fn connection_path(&mut self) -> Result<rivet_schema::plan::ConnectionPath, SourceError> {
        Ok(rivet_schema::plan::ConnectionPath {
            pooling: rivet_schema::plan::Pooling::Session,
            proxy: None,
            evidence: "an in-memory catalog (offline planning); no server was probed".into(),
        })
    }

    fn describe_tables(
        &mut self,
        requests: &[TableRequest],
    ) -> Result<Vec<TableInfo>, SourceError> {
        requests
            .iter()
            .map(|r| {
                let schema = r.schema.as_deref().unwrap_or(&self.default_schema);
                self.tables
                    .iter()
                    .find(|t| t.schema == schema && t.name == r.name)
                    .cloned()
                    .ok_or_else(|| SourceError::TableNotFound {
                        table: match &r.schema {
                            Some(s) => format!("{s}.{}", r.name),
                            None => r.name.clone(),
                        },
                    })
            })
            .collect()
    }

    fn describe_query(&mut self, sql: &str) -> Result<Vec<SourceColumn>, SourceError> {
        self.queries
            .get(sql)
            .cloned()
            .ok_or_else(|| SourceError::Query {
                context: "describing a query".into(),
                detail: format!("the in-memory catalog has no query `{sql}`"),
                transient: false,
            })
    }

    fn key_bounds(
        &mut self,
        requests: &[(RelationRef, String)],
        _statement_timeout_ms: u64,
    ) -> Result<Vec<KeyBounds>, SourceError> {
        requests
            .iter()
            .map(|(r, c)| {
                let key = (relation_key(r), c.clone());
                self.bounds
                    .get(&key)
                    .copied()
                    .ok_or_else(|| SourceError::Query {
                        context: "reading key bounds".into(),
                        detail: format!(
                            "the in-memory catalog has no bounds for {}.{}; add them (use (None, None) for an empty table)",
                            key.0, key.1
                        ),
                        transient: false,
                    })
            })
            .collect()
    }

    fn default_chunk_target_bytes(&self, profile_target: u64) -> u64 {
        profile_target / self.chunk_target_divisor.max(1)
    }

    fn can_read(&mut self, _relation: &RelationRef) -> Result<(), SourceError> {
        Ok(())
    }

    fn max_value(
        &mut self,
        relation: &RelationRef,
        column: &str,
        _fallback: Option<&str>,
        _statement_timeout_ms: u64,
    ) -> Result<Option<String>, SourceError> {
        Ok(self
            .max_values
            .get(&(relation_key(relation), column.to_owned()))
            .cloned())
    }
}
