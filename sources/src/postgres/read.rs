//! The SQL a chunk read sends: quoted identifiers, the plan's key and window bounds as
//! literals Rivet encodes itself from typed values, nothing spliced from user input.

use super::quote_ident;
use crate::{ChunkRead, SqlValue};

/// The SELECT a chunk runs. Identifiers are quoted; the only values are the plan's
/// bounds, written as literals (COPY takes no bind parameters): see [`literal`].
pub fn select_sql(req: &ChunkRead) -> String {
    req.select_sql(quote_ident, literal)
}

/// A typed SQL literal: integers as digits, dates and times as formatted text with an
/// explicit cast, text as an escape string (`E'…'` with backslashes and quotes doubled),
/// which reads the same whatever `standard_conforming_strings` says.
pub fn literal(v: &SqlValue) -> String {
    match v {
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Timestamp(_) => format!("'{}'::timestamp", v.sql_text()),
        SqlValue::TimestampUtc(_) => format!("'{}'::timestamptz", v.sql_text()),
        SqlValue::Date(_) => format!("'{}'::date", v.sql_text()),
        SqlValue::Text(t) => format!("E'{}'", t.replace('\\', "\\\\").replace('\'', "''")),
    }
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
                select_expr: None,
            }],
            range,
            pages: None,
            snapshot: None,
            window: None,
            batch_rows: 10,
            batch_bytes: 10,
            statement_timeout_ms: 1,
            lock_timeout_ms: 1,
            use_cursor: false,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
            infinity: crate::InfinityPolicy::Clamp,
            cdc: None,
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

    #[test]
    fn converted_columns_are_selected_through_the_plans_expression() {
        let mut r = req(None);
        r.columns.push(ReadColumn {
            name: "we\"ird".into(),
            wire_type: "text".into(),
            logical: LogicalType::Utf8,
            nullable: true,
            select_expr: Some(r#""we""ird"::text"#.into()),
        });
        assert_eq!(
            select_sql(&r),
            r#"SELECT "Id", "we""ird"::text AS "we""ird" FROM "Sales ""EU"""."order items""#
        );
    }

    #[test]
    fn window_bounds_are_typed_literals_and_text_is_escaped() {
        use rivet_schema::plan::CursorType;
        let mut r = req(None);
        r.window = Some(crate::WindowFilter {
            column: "updated_at".into(),
            fallback: Some("created_at".into()),
            lower: Some(
                SqlValue::parse(CursorType::Timestamptz, "2026-11-27T08:00:00.5Z").unwrap(),
            ),
            upper: SqlValue::parse(CursorType::Timestamptz, "2026-11-28T00:00:00Z").unwrap(),
        });
        assert_eq!(
            select_sql(&r),
            r#"SELECT "Id" FROM "Sales ""EU"""."order items" WHERE COALESCE("updated_at", "created_at") >= '2026-11-27 08:00:00.500000+00:00'::timestamptz AND COALESCE("updated_at", "created_at") < '2026-11-28 00:00:00.000000+00:00'::timestamptz"#
        );
        assert_eq!(
            literal(&SqlValue::Text(r"it's \ 'x".into())),
            r"E'it''s \\ ''x'"
        );
        assert_eq!(literal(&SqlValue::Date(0)), "'1970-01-01'::date");
        assert_eq!(literal(&SqlValue::Int(-3)), "-3");
        for (t, text) in [
            (CursorType::Timestamp, "2026-11-27T08:00:00.123456"),
            (CursorType::Timestamptz, "1969-12-31T23:59:59Z"),
            (CursorType::Date, "0001-01-01"),
            (CursorType::Integer, "-42"),
        ] {
            assert_eq!(SqlValue::parse(t, text).unwrap().canonical(), text);
        }
        assert!(SqlValue::parse(CursorType::Date, "yesterday").is_err());
    }
}
