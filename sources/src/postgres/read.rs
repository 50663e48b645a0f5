//! The SQL a chunk read sends: quoted identifiers, the plan's integer key bounds as
//! integer literals, nothing spliced from user input.

use super::quote_ident;
use crate::ChunkRead;

/// The SELECT a chunk runs. Identifiers are quoted; the only values are the plan's
/// integer key bounds, written as integer literals (COPY takes no bind parameters).
pub fn select_sql(req: &ChunkRead) -> String {
    req.select_sql(quote_ident, |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RelationRef;
    use crate::{RangeFilter, ReadColumn};
    use rivet_schema::LogicalType;

    fn req(range: Option<RangeFilter>) -> ChunkRead {
        ChunkRead {
            relation: RelationRef::Table {
                schema: "Sales \"EU\"".into(),
                name: "order items".into(),
            },
            columns: vec![ReadColumn {
                name: "Id".into(),
                wire_type: "int8".into(),
                logical: LogicalType::Int64,
                nullable: false,
            }],
            range,
            batch_rows: 10,
            batch_bytes: 10,
            statement_timeout_ms: 1,
            lock_timeout_ms: 1,
            use_cursor: false,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
        }
    }

    #[test]
    fn select_quotes_identifiers_and_writes_integer_bounds() {
        assert_eq!(
            select_sql(&req(None)),
            r#"SELECT "Id" FROM "Sales ""EU"""."order items""#
        );
        let r = RangeFilter {
            column: "Id".into(),
            lower: Some(-5),
            upper: Some(100),
            include_null: true,
        };
        assert_eq!(
            select_sql(&req(Some(r))),
            r#"SELECT "Id" FROM "Sales ""EU"""."order items" WHERE (("Id" >= -5 AND "Id" < 100) OR "Id" IS NULL)"#
        );
    }
}
