//! What `rivet init` and `rivet check` need from a source beyond planning: which tables
//! a schema holds, which columns lead an index, how many connections the server has
//! left, and the planner's histogram of a key where the engine keeps one. A separate
//! trait from [`Catalog`] because planning and applying never ask these questions;
//! every engine answers them from its catalog and statistics, reading no rows.

use serde::Serialize;

use crate::error::SourceError;
use crate::source::{Catalog, TableRequest};

/// One index of a table: its key columns in order (an expression column ends the list,
/// since only leading plain columns help a range or a max), and whether it is unique.
/// Partial and invalid indexes are left out: they do not serve a whole-table range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexFacts {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

impl IndexFacts {
    /// True when `column` is the first key column, the only position a range scan on
    /// that column (`WHERE k >= a AND k < b`, `max(k)`) can use.
    pub fn leads_with(&self, column: &str) -> bool {
        self.columns.first().map(String::as_str) == Some(column)
    }
}

/// How many connections the server allows and how many are open now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnectionHeadroom {
    /// The server's connection limit (`max_connections`, `@@MAX_CONNECTIONS`).
    pub max_connections: u64,
    /// Slots kept for administrators (PostgreSQL's `superuser_reserved_connections`).
    pub reserved: u64,
    /// Connections open when asked, this one included. Where the role may see only its
    /// own sessions the engine's docs say so (docs/operations.md).
    pub in_use: u64,
}

impl ConnectionHeadroom {
    /// Connections an ordinary role may still open.
    pub fn free(&self) -> u64 {
        self.max_connections
            .saturating_sub(self.reserved)
            .saturating_sub(self.in_use)
    }
}

/// The questions `init` and `check` ask a source; each engine's catalog connection
/// implements it.
pub trait Survey: Catalog {
    /// Base tables (not views) of the given schemas, or of the connection's default
    /// schema when none is given, sorted by schema then name; each request names its
    /// schema.
    fn list_tables(&mut self, schemas: &[String]) -> Result<Vec<TableRequest>, SourceError>;
    /// The indexes of each table, in request order (each request names its schema).
    fn indexes(&mut self, tables: &[TableRequest]) -> Result<Vec<Vec<IndexFacts>>, SourceError>;
    /// The server's connection limit and current use.
    fn connections(&mut self) -> Result<ConnectionHeadroom, SourceError>;
    /// Equal-frequency histogram bounds of an integer column from the planner's
    /// statistics, or None when the engine keeps none for it (never analyzed, or an
    /// engine that does not keep histograms Rivet can read without extra privileges).
    /// The default is None: MySQL/MariaDB and SQL Server histograms are not read.
    fn key_histogram(
        &mut self,
        _table: &TableRequest,
        _column: &str,
    ) -> Result<Option<Vec<i64>>, SourceError> {
        Ok(None)
    }
}

/// Parses PostgreSQL's text form of an integer array (`{1,5,9}`); None when any
/// element is not an integer.
pub fn parse_int_array(text: &str) -> Option<Vec<i64>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|v| v.trim().trim_matches('"').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arrays_parse_and_other_arrays_do_not() {
        assert_eq!(parse_int_array("{1,5,-9}"), Some(vec![1, 5, -9]));
        assert_eq!(parse_int_array("{}"), Some(vec![]));
        assert_eq!(parse_int_array("{a,b}"), None);
        assert_eq!(parse_int_array("1,2"), None);
    }

    #[test]
    fn headroom_subtracts_reserved_and_open_connections() {
        let h = ConnectionHeadroom {
            max_connections: 100,
            reserved: 3,
            in_use: 90,
        };
        assert_eq!(h.free(), 7);
    }
}
