//! PostgreSQL answers for `init` and `check` (see [`Survey`]): tables from `pg_class`,
//! index keys from `pg_index`, connection use from `pg_stat_activity`, and a key's
//! `histogram_bounds` from `pg_stats`.

use super::catalog::{query_err, PgCatalog};
use crate::error::SourceError;
use crate::source::TableRequest;
use crate::survey::{parse_int_array, ConnectionHeadroom, IndexFacts, Survey};

/// Base and partitioned tables (not partitions) of the given schemas, or of
/// `current_schema()` when the list is empty.
pub const LIST_TABLES_SQL: &str = "SELECT n.nspname::text, c.relname::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
       AND (n.nspname = ANY($1) OR (cardinality($1) = 0 AND n.nspname = current_schema())) \
     ORDER BY 1, 2";

/// Valid, non-partial indexes of each `(schema, table)`, key columns in order; an
/// expression key (attnum 0) ends the column list.
pub const INDEXES_SQL: &str = "SELECT r.ord, ic.relname::text, i.indisunique, \
       ARRAY(SELECT a.attname::text \
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE k.n <= i.indnkeyatts \
               AND k.n < COALESCE((SELECT min(z.n) FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS z(attnum, n) \
                                   WHERE z.attnum = 0), 32767) \
             ORDER BY k.n) \
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(sch, rel, ord) \
     JOIN pg_namespace n ON n.nspname = r.sch \
     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel \
     JOIN pg_index i ON i.indrelid = c.oid AND i.indisvalid AND i.indpred IS NULL \
     JOIN pg_class ic ON ic.oid = i.indexrelid \
     ORDER BY r.ord, ic.relname";

/// The connection limit, the administrators' reserve and the client backends open now
/// (a role without `pg_read_all_stats` still sees every backend's existence).
pub const CONNECTIONS_SQL: &str = "SELECT current_setting('max_connections')::int8, \
       current_setting('superuser_reserved_connections')::int8, \
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int8";

/// A column's histogram bounds as text (`{1,5,9}`); inherited statistics last.
pub const HISTOGRAM_SQL: &str = "SELECT histogram_bounds::text FROM pg_stats \
     WHERE schemaname = $1 AND tablename = $2 AND attname = $3 \
     ORDER BY inherited LIMIT 1";

fn schema_of(t: &TableRequest) -> String {
    t.schema.clone().unwrap_or_else(|| "public".to_owned())
}

impl Survey for PgCatalog {
    fn list_tables(&mut self, schemas: &[String]) -> Result<Vec<TableRequest>, SourceError> {
        read_tx!(self, "listing tables", |tx| tx
            .query(LIST_TABLES_SQL, &[&schemas])
            .await
            .map_err(query_err("listing tables from pg_class"))?
            .iter()
            .map(|r| TableRequest {
                schema: Some(r.get(0)),
                name: r.get(1),
            })
            .collect())
    }

    fn indexes(&mut self, tables: &[TableRequest]) -> Result<Vec<Vec<IndexFacts>>, SourceError> {
        let schemas: Vec<String> = tables.iter().map(schema_of).collect();
        let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
        read_tx!(self, "reading index keys", |tx| {
            let rows = tx
                .query(INDEXES_SQL, &[&schemas, &names])
                .await
                .map_err(query_err("reading index keys from pg_index"))?;
            let mut out = vec![Vec::new(); tables.len()];
            for r in &rows {
                let ord: i64 = r.get(0);
                if let Some(slot) = out.get_mut(ord as usize - 1) {
                    slot.push(IndexFacts {
                        name: r.get(1),
                        unique: r.get(2),
                        columns: r.get(3),
                    });
                }
            }
            out
        })
    }

    fn connections(&mut self) -> Result<ConnectionHeadroom, SourceError> {
        read_tx!(self, "reading the connection headroom", |tx| {
            let row = tx
                .query_one(CONNECTIONS_SQL, &[])
                .await
                .map_err(query_err("reading max_connections and pg_stat_activity"))?;
            let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
            ConnectionHeadroom {
                max_connections: n(0),
                reserved: n(1),
                in_use: n(2),
            }
        })
    }

    fn key_histogram(
        &mut self,
        table: &TableRequest,
        column: &str,
    ) -> Result<Option<Vec<i64>>, SourceError> {
        let schema = schema_of(table);
        let bounds: Option<String> = read_tx!(self, "reading a key histogram", |tx| tx
            .query_opt(HISTOGRAM_SQL, &[&schema, &table.name, &column])
            .await
            .map_err(query_err("reading histogram_bounds from pg_stats"))?
            .and_then(|r| r.get(0)))?;
        Ok(bounds.and_then(|t| parse_int_array(&t)))
    }
}
