//! Batched catalog introspection: one round trip per kind of fact (relations with their
//! keys and statistics, columns, the closure of types involved, key bounds), however
//! many tables the config names.
//!
//! Why one long file: each `Catalog` method and the batched query it runs sit together,
//! with the one transaction helper they all go through ([`begin_read`], `read_tx!`).

use std::collections::HashMap;

use tokio_postgres::{Client, GenericClient, Transaction};

use super::types::{resolve, select_expr, PgSession, PgTypeRow};
use super::{error_text, quote_ident};
use crate::error::SourceError;
use crate::source::{identity_of, Catalog, KeyBounds, TableRequest};
use crate::{RelationRef, SourceColumn, TableInfo};
use rivet_schema::plan::SourceIdentity;

pub(super) fn query_err(context: &str) -> impl Fn(tokio_postgres::Error) -> SourceError + '_ {
    move |e| SourceError::Query {
        context: context.to_owned(),
        detail: error_text(&e),
        transient: super::is_transient(&e),
    }
}

/// `(schema, name, oid, reltuples, relpages, primary key columns)` of one relation.
type RelationRow = (String, String, u32, f64, i64, Vec<String>);

/// Describes every requested table, in request order.
async fn describe_tables(
    client: &impl GenericClient,
    requests: &[TableRequest],
) -> Result<Vec<TableInfo>, SourceError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let schemas: Vec<Option<String>> = requests.iter().map(|r| r.schema.clone()).collect();
    let names: Vec<String> = requests.iter().map(|r| r.name.clone()).collect();
    let rels = client
        .query(
            "SELECT r.ord, n.nspname, c.relname, c.oid, c.reltuples::float8, c.relpages::int8, \
                    COALESCE((SELECT array_agg(a.attname::text ORDER BY k.n) \
                              FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum), \
                             '{}'::text[]) \
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(sch, rel, ord) \
             JOIN pg_namespace n ON n.nspname = COALESCE(r.sch, current_schema()) \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel \
                            AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             ORDER BY r.ord",
            &[&schemas, &names],
        )
        .await
        .map_err(query_err("reading table definitions from pg_class"))?;
    let mut found: HashMap<i64, RelationRow> = HashMap::new();
    for row in &rels {
        found.insert(
            row.get(0),
            (
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
            ),
        );
    }
    for (i, r) in requests.iter().enumerate() {
        if !found.contains_key(&(i as i64 + 1)) {
            return Err(SourceError::TableNotFound {
                table: match &r.schema {
                    Some(s) => format!("{s}.{}", r.name),
                    None => r.name.clone(),
                },
            });
        }
    }
    let oids: Vec<u32> = found.values().map(|v| v.2).collect();
    let cols = client
        .query(
            "SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.atttypid, a.atttypmod, a.attnotnull \
             FROM pg_attribute a \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .await
        .map_err(query_err("reading column definitions from pg_attribute"))?;
    let type_oids: Vec<u32> = cols.iter().map(|r| r.get::<_, u32>(3)).collect();
    let types = type_closure(client, &type_oids).await?;
    let session = session_facts(client).await?;
    let stats = client
        .query(
            "SELECT c.oid, s.attname::text, s.n_distinct::float8 \
             FROM pg_stats s \
             JOIN pg_namespace n ON n.nspname = s.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename \
             WHERE c.oid = ANY($1) \
             ORDER BY s.inherited",
            &[&oids],
        )
        .await
        .map_err(query_err("reading column statistics from pg_stats"))?;
    let mut n_distinct: HashMap<(u32, String), f64> = HashMap::new();
    for r in &stats {
        n_distinct.entry((r.get(0), r.get(1))).or_insert(r.get(2));
    }
    let mut by_rel: HashMap<u32, Vec<SourceColumn>> = HashMap::new();
    for row in &cols {
        let resolved = resolve(&types, session, row.get(3), row.get(4));
        let key: (u32, String) = (row.get(0), row.get(1));
        let name: String = row.get(1);
        by_rel.entry(row.get(0)).or_default().push(SourceColumn {
            select_expr: resolved.read.as_ref().map(|r| select_expr(&name, r)),
            mapping: resolved.mapping,
            name,
            declared_type: row.get(2),
            wire_type: resolved.wire_type,
            logical: resolved.logical,
            nullable: !row.get::<_, bool>(5),
            n_distinct: n_distinct.get(&key).copied(),
        });
    }
    let mut out = Vec::with_capacity(requests.len());
    for i in 0..requests.len() {
        let (schema, name, oid, reltuples, relpages, pk) = found
            .remove(&(i as i64 + 1))
            .expect("every request was checked to have a relation above");
        let row_estimate = if reltuples > 0.0 {
            reltuples.round() as u64
        } else {
            0
        };
        let avg_row_bytes = (reltuples > 0.0 && relpages > 0)
            .then(|| ((relpages as f64 * 8192.0) / reltuples).ceil() as u64);
        out.push(TableInfo {
            schema,
            name,
            columns: by_rel.get(&oid).cloned().unwrap_or_default(),
            primary_key: pk,
            row_estimate,
            avg_row_bytes,
        });
    }
    Ok(out)
}

/// Every `pg_type` row reachable from `roots` through domains and array elements.
async fn type_closure(
    client: &impl GenericClient,
    roots: &[u32],
) -> Result<HashMap<u32, PgTypeRow>, SourceError> {
    let rows = client
        .query(
            "WITH RECURSIVE ty(oid) AS ( \
                 SELECT unnest($1::oid[]) \
                 UNION \
                 SELECT x.next FROM ty JOIN pg_type t ON t.oid = ty.oid \
                 CROSS JOIN LATERAL (VALUES (t.typbasetype), (t.typelem)) AS x(next) \
                 WHERE x.next <> 0) \
             SELECT t.oid, n.nspname::text, t.typname::text, t.typtype::text, t.typbasetype, \
                    t.typtypmod, t.typelem, t.typcategory::text, e.extname::text, en.nspname::text \
             FROM ty JOIN pg_type t ON t.oid = ty.oid JOIN pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid \
                                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' \
             LEFT JOIN pg_extension e ON e.oid = d.refobjid \
             LEFT JOIN pg_namespace en ON en.oid = e.extnamespace",
            &[&roots],
        )
        .await
        .map_err(query_err("reading type definitions from pg_type"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let first = |s: String| s.bytes().next().unwrap_or(b'?');
            let t = PgTypeRow {
                oid: r.get(0),
                namespace: r.get(1),
                name: r.get(2),
                typtype: first(r.get(3)),
                basetype: r.get(4),
                basetypmod: r.get(5),
                elem: r.get(6),
                category: first(r.get(7)),
                extension: r
                    .get::<_, Option<String>>(8)
                    .zip(r.get::<_, Option<String>>(9)),
            };
            (t.oid, t)
        })
        .collect())
}

/// Session settings that change how a type reads (`money`'s fractional digits).
async fn session_facts(client: &impl GenericClient) -> Result<PgSession, SourceError> {
    let row = client
        .query_one("SELECT scale(0::money::numeric)", &[])
        .await
        .map_err(query_err("reading the session's lc_monetary digits"))?;
    let digits: i32 = row.get(0);
    let money_scale = i8::try_from(digits).map_err(|_| SourceError::Query {
        context: "reading the session's lc_monetary digits".into(),
        detail: format!("money has {digits} fractional digits, more than a decimal scale holds"),
        transient: false,
    })?;
    Ok(PgSession { money_scale })
}

/// Describes a query's result columns without running it (a prepared statement).
/// Nullability is unknown for query results, so every column is nullable.
async fn describe_query(
    client: &impl GenericClient,
    sql: &str,
) -> Result<Vec<SourceColumn>, SourceError> {
    let stmt = client
        .prepare(sql)
        .await
        .map_err(query_err("describing the export's query"))?;
    let oids: Vec<u32> = stmt.columns().iter().map(|c| c.type_().oid()).collect();
    let typmods: Vec<i32> = stmt.columns().iter().map(|c| c.type_modifier()).collect();
    let types = type_closure(client, &oids).await?;
    let session = session_facts(client).await?;
    let declared: Vec<String> = client
        .query(
            "SELECT format_type(t, m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS x(t, m, n) ORDER BY n",
            &[&oids, &typmods],
        )
        .await
        .map_err(query_err("naming the query's result types"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(stmt
        .columns()
        .iter()
        .zip(declared)
        .map(|(c, declared_type)| {
            let resolved = resolve(&types, session, c.type_().oid(), c.type_modifier());
            SourceColumn {
                select_expr: resolved.read.as_ref().map(|r| select_expr(c.name(), r)),
                mapping: resolved.mapping,
                name: c.name().to_owned(),
                declared_type,
                wire_type: resolved.wire_type,
                logical: resolved.logical,
                nullable: true,
                n_distinct: None,
            }
        })
        .collect())
}

/// `min` and `max` of each `(relation, integer column)`, in one statement.
/// Runs in a read-only transaction with `SET LOCAL statement_timeout`, so a key
/// without an index (or a slow query) cannot hold the source for long.
async fn key_bounds(
    client: &mut Client,
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
                "SELECT {i}::int4, min({col})::int8, max({col})::int8 FROM {}",
                rel.from_clause(quote_ident)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(query_err("starting the key-bounds transaction"))?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {statement_timeout_ms}"
    ))
    .await
    .map_err(query_err("setting statement_timeout"))?;
    let rows = tx
        .query(sql.as_str(), &[])
        .await
        .map_err(query_err("reading chunk key bounds (min/max)"))?;
    // Rows hold their named statement: read them (and let them go) before the commit,
    // or the statement is closed after it, on whichever session a pooler hands out.
    let mut out = vec![(None, None); requests.len()];
    for r in rows {
        let i: i32 = r.get(0);
        out[i as usize] = (r.get(1), r.get(2));
    }
    tx.commit()
        .await
        .map_err(query_err("ending the key-bounds transaction"))?;
    Ok(out)
}

/// The PostgreSQL catalog connection: a `tokio-postgres` client on a private
/// current-thread runtime, so that opening it can be bounded as a whole (TCP, TLS
/// handshake and login) by `source.connect_timeout`; each catalog call is one
/// `block_on`.
pub struct PgCatalog {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) client: Client,
    /// Kept to open the second connection of the pooler probe.
    settings: crate::ConnectionSettings,
}

impl PgCatalog {
    /// Opens the catalog connection (see [`super::open`]).
    pub fn connect(settings: &crate::ConnectionSettings) -> Result<Self, SourceError> {
        let (runtime, client) = super::open(settings)?;
        Ok(PgCatalog {
            runtime,
            client,
            settings: settings.clone(),
        })
    }

    /// The settings the connection was opened with.
    pub(super) fn settings(&self) -> &crate::ConnectionSettings {
        &self.settings
    }
}

/// Starts the `READ ONLY` transaction a catalog call runs in (see [`read_tx!`]).
pub(super) async fn begin_read<'c>(
    client: &'c mut Client,
    what: &str,
) -> Result<Transaction<'c>, SourceError> {
    client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(query_err(&format!("starting the transaction for {what}")))
}

/// Commits a transaction started by [`begin_read`].
pub(super) async fn end_read(tx: Transaction<'_>, what: &str) -> Result<(), SourceError> {
    tx.commit()
        .await
        .map_err(query_err(&format!("ending the transaction for {what}")))
}

/// The database's identity: the cluster's `system_identifier` (from
/// `pg_control_system()`, executable by every role unless revoked; a physical standby
/// has its primary's), the database name and its oid. Where EXECUTE on
/// `pg_control_system()` was revoked, the fact says so instead of guessing, and the
/// database name and oid still tell databases apart.
async fn identity(client: &impl GenericClient) -> Result<SourceIdentity, SourceError> {
    let row = client
        .query_one(
            "SELECT current_database()::text, \
                    (SELECT oid::int8 FROM pg_database WHERE datname = current_database()), \
                    has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')",
            &[],
        )
        .await
        .map_err(query_err("reading the database's identity"))?;
    let (database, oid, may_read_control): (String, i64, bool) =
        (row.get(0), row.get(1), row.get(2));
    let system_identifier = if may_read_control {
        client
            .query_one(
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            )
            .await
            .map_err(query_err(
                "reading system_identifier from pg_control_system()",
            ))?
            .get(0)
    } else {
        "not readable (EXECUTE on pg_control_system() revoked for this role)".to_owned()
    };
    Ok(identity_of([
        ("system_identifier", system_identifier),
        ("database", database),
        ("database_oid", oid.to_string()),
    ]))
}

impl Catalog for PgCatalog {
    fn connection_path(&mut self) -> Result<rivet_schema::plan::ConnectionPath, SourceError> {
        super::pooler::probe(self)
    }

    fn cdc_facts(
        &mut self,
        schema: &str,
        table: &str,
        slot: &str,
        publication: &str,
    ) -> Result<crate::CdcFacts, SourceError> {
        read_tx!(self, "reading the change-capture settings", |tx| {
            super::cdc::facts(&tx, schema, table, slot, publication).await?
        })
    }

    fn identity(&mut self) -> Result<SourceIdentity, SourceError> {
        read_tx!(self, "reading the database's identity", |tx| identity(&tx)
            .await?)
    }

    fn describe_tables(
        &mut self,
        requests: &[TableRequest],
    ) -> Result<Vec<TableInfo>, SourceError> {
        read_tx!(self, "reading table definitions", |tx| {
            describe_tables(&tx, requests).await?
        })
    }

    fn describe_query(&mut self, sql: &str) -> Result<Vec<SourceColumn>, SourceError> {
        read_tx!(self, "describing the export's query", |tx| {
            describe_query(&tx, sql).await?
        })
    }

    fn key_bounds(
        &mut self,
        requests: &[(RelationRef, String)],
        statement_timeout_ms: u64,
    ) -> Result<Vec<KeyBounds>, SourceError> {
        self.runtime
            .block_on(key_bounds(&mut self.client, requests, statement_timeout_ms))
    }

    fn heap_pages(
        &mut self,
        table: &RelationRef,
    ) -> Result<Result<(u64, u64), String>, SourceError> {
        let RelationRef::Table { schema, name } = table else {
            return Ok(Err("a query has no pages of its own".into()));
        };
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let (version, kind, pages, page_bytes): (i32, String, i64, i64) =
            read_tx!(self, "reading the table's size in pages", |tx| {
                let row = tx
                    .query_one(
                        "SELECT current_setting('server_version_num')::int, c.relkind::text, \
                                pg_relation_size(c.oid) / current_setting('block_size')::int8, \
                                current_setting('block_size')::int8 \
                         FROM pg_class c WHERE c.oid = $1::text::regclass",
                        &[&qualified],
                    )
                    .await
                    .map_err(query_err("reading the table's size in pages"))?;
                (row.get(0), row.get(1), row.get(2), row.get(3))
            })?;
        Ok(if version < 140_000 {
            Err(format!(
                "the server is PostgreSQL {}, and TID range scans need 14 or later",
                version / 10_000
            ))
        } else if kind != "r" && kind != "m" {
            Err(format!(
                "{qualified} is not a plain table (relkind `{kind}`; a partitioned table's rows live in its partitions: export each partition)"
            ))
        } else {
            Ok((pages.max(0) as u64, page_bytes.max(1) as u64))
        })
    }

    fn can_read(&mut self, relation: &RelationRef) -> Result<(), SourceError> {
        let sql = format!(
            "SELECT 1 FROM {} LIMIT 0",
            relation.from_clause(quote_ident)
        );
        read_tx!(self, "reading the relation", |tx| {
            tx.query(sql.as_str(), &[])
                .await
                .map_err(query_err("reading the relation (SELECT … LIMIT 0)"))?;
        })
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
            "SELECT max({expr})::text FROM {}",
            relation.from_clause(quote_ident)
        );
        let client = &mut self.client;
        self.runtime.block_on(async move {
            let tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(query_err("starting the cursor high-water mark transaction"))?;
            tx.batch_execute(&format!(
                "SET LOCAL statement_timeout = {statement_timeout_ms}"
            ))
            .await
            .map_err(query_err("setting statement_timeout"))?;
            let max: Option<String> = tx
                .query_one(sql.as_str(), &[])
                .await
                .map_err(query_err("reading the cursor high-water mark (max)"))?
                .get(0);
            tx.commit()
                .await
                .map_err(query_err("ending the high-water mark transaction"))?;
            Ok(max)
        })
    }
}
