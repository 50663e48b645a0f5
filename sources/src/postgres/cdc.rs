//! PostgreSQL change capture through a logical replication slot (`pgoutput`): the
//! facts a plan seals (log end, slot health, publication, replica identity), the
//! explicit setup and teardown of the slot and publication, reading one sealed window
//! of changes into Arrow batches, and confirming the slot once the window is durable.
//!
//! A window is read in one pass with `pg_logical_slot_peek_binary_changes(slot, end,
//! NULL, 'proto_version', '1', 'publication_names', pub, 'binary', 'true')`, whose
//! rows stream through `query_raw`. `peek` leaves the slot where it is, so a window
//! can be read again until it is committed; `pg_replication_slot_advance` moves the
//! slot only after the window's files, manifest and `_SUCCESS` exist. With the
//! `binary` option every value arrives in its type's send format, which is what
//! `COPY … (FORMAT binary)` produces, so the batch path's decoders convert it: one
//! type mapping for batch and change capture.
//!
//! Why one long file: slot facts, setup/teardown, the window reader and the slot
//! confirmation share the slot's SQL and its error advice; the message parser itself is
//! in `pgoutput.rs`.

use arrow::record_batch::RecordBatch;
use futures_util::StreamExt;
use rivet_schema::plan::lsn_text;

use super::decode::ColumnDecoder;
use super::pgoutput::{self, Message, Value};
use super::{error_text, quote_ident};
use crate::builders::Batcher;
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ReadFailure, SinkClosed};
use crate::{CdcFacts, CdcWindow, ChunkRead, ReadStats, SlotFacts};

fn q(context: String) -> impl Fn(tokio_postgres::Error) -> SourceError {
    move |e| SourceError::Query {
        context: context.clone(),
        detail: error_text(&e),
        transient: super::is_transient(&e),
    }
}

/// A log position the server printed (`pg_lsn` as text); one that does not parse is an
/// error naming `what`, never an absent position.
fn lsn_of(text: Option<String>, what: &str) -> Result<Option<u64>, SourceError> {
    text.map(|t| {
        rivet_schema::plan::parse_lsn(&t).map_err(|detail| SourceError::Query {
            context: format!("reading {what}"),
            detail: format!("the server printed `{t}`: {detail}"),
            transient: false,
        })
    })
    .transpose()
}

/// The facts `rivet plan` seals for a `cdc` export.
pub(crate) async fn facts(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    table: &str,
    slot: &str,
    publication: &str,
) -> Result<CdcFacts, SourceError> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), pg_current_wal_lsn()::text, \
                    (SELECT c.relreplident::text FROM pg_class c JOIN pg_namespace n \
                       ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2), \
                    (SELECT EXISTS (SELECT 1 FROM pg_publication_tables t \
                       WHERE t.pubname = $3 AND t.schemaname = $1 AND t.tablename = $2) \
                     FROM pg_publication p WHERE p.pubname = $3)",
            &[&schema, &table, &publication],
        )
        .await
        .map_err(q(format!(
            "reading the log position and replication settings for {schema}.{table}"
        )))?;
    let current: String = row.get(1);
    let slot_row = client
        .query_opt(
            "SELECT COALESCE(plugin, ''), COALESCE(database, ''), slot_type, \
                    confirmed_flush_lsn::text, restart_lsn::text, COALESCE(wal_status, ''), \
                    safe_wal_size \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q(format!("reading replication slot `{slot}`")))?;
    Ok(CdcFacts {
        wal_level: row.get(0),
        current_lsn: rivet_schema::plan::parse_lsn(&current).map_err(|d| SourceError::Query {
            context: "reading pg_current_wal_lsn()".into(),
            detail: d,
            transient: false,
        })?,
        replica_identity: row
            .get::<_, Option<String>>(2)
            .and_then(|s| s.bytes().next())
            .ok_or_else(|| SourceError::TableNotFound {
                table: format!("{schema}.{table}"),
            })?,
        publication: row.get(3),
        slot: match slot_row {
            None => None,
            Some(r) => Some(SlotFacts {
                plugin: r.get(0),
                database: r.get(1),
                slot_type: r.get(2),
                confirmed_flush: lsn_of(r.get(3), &format!("slot `{slot}`'s confirmed_flush_lsn"))?,
                restart_lsn: lsn_of(r.get(4), &format!("slot `{slot}`'s restart_lsn"))?,
                wal_status: r.get(5),
                safe_wal_size: r.get(6),
            }),
        },
    })
}

/// The replication objects of one `cdc` export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcObjects {
    pub export: String,
    /// None: the connection's default schema (as for batch exports).
    pub schema: Option<String>,
    pub table: String,
    pub slot: String,
    pub publication: String,
}

/// A prerequisite the connection's role or the server does not meet, with the SQL
/// that fixes it.
fn unmet(what: String) -> SourceError {
    SourceError::Settings {
        key: "source".into(),
        detail: what,
    }
}

/// One statement as a single unnamed Parse/Bind/Execute/Sync exchange with text
/// parameters, returning its first row: no named prepared statement outlives it, so it
/// is safe outside a transaction behind a transaction-pooling proxy (where the next
/// message may reach another server session). Setup, teardown and slot advance run
/// outside transactions because a slot cannot be created in one that has written.
async fn unnamed(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    let typed: Vec<_> = params
        .iter()
        .map(|p| (*p, tokio_postgres::types::Type::TEXT))
        .collect();
    Ok(client.query_typed(sql, &typed).await?.into_iter().next())
}

/// The error for a statement that always returns a row and returned none.
fn no_row(context: &'static str) -> impl FnOnce() -> SourceError {
    move || SourceError::Query {
        context: context.into(),
        detail: "the server returned no row".into(),
        transient: false,
    }
}

/// Creates the publication and the `pgoutput` slot of each export, skipping those that
/// exist (a slot of another plugin or database is an error). Checks the prerequisites
/// first and returns one line per object created or found.
pub fn setup(
    settings: &ConnectionSettings,
    objects: &[CdcObjects],
) -> Result<Vec<String>, SourceError> {
    let (runtime, client) = super::open(settings)?;
    runtime.block_on(async {
        let row = unnamed(&client,
                "SELECT current_setting('wal_level'), \
                        (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
                        current_user::text, current_setting('max_replication_slots')::int, \
                        (SELECT count(*)::int FROM pg_replication_slots), current_database()::text",
                &[],
            )
            .await
            .map_err(q("checking the prerequisites of change capture".into()))?
            .ok_or_else(no_row("checking the prerequisites of change capture"))?;
        let (wal_level, replication, user, max_slots, used): (String, bool, String, i32, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let db: String = row.get(5);
        if wal_level != "logical" {
            return Err(unmet(format!(
                "change capture needs wal_level = logical (it is `{wal_level}`); run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart PostgreSQL"
            )));
        }
        if !replication {
            return Err(unmet(format!(
                "role `{user}` lacks the REPLICATION attribute that logical slots need; run `ALTER ROLE {} REPLICATION;` as a superuser",
                quote_ident(&user)
            )));
        }
        let mut out = Vec::new();
        let mut new_slots = 0;
        let default_schema: String = unnamed(&client,"SELECT current_schema()::text", &[])
            .await
            .map_err(q("reading the default schema".into()))?
            .ok_or_else(no_row("reading the default schema"))?
            .get(0);
        for o in objects {
            let o = &CdcObjects {
                schema: Some(o.schema.clone().unwrap_or_else(|| default_schema.clone())),
                ..o.clone()
            };
            let schema = o.schema.as_deref().unwrap_or_default();
            let exists: Option<bool> = unnamed(&client,
                    "SELECT (SELECT EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = $1 \
                              AND t.schemaname = $2 AND t.tablename = $3) \
                             FROM pg_publication WHERE pubname = $1)",
                    &[&o.publication, &schema, &o.table],
                )
                .await
                .map_err(q(format!("export {}: reading publication `{}`", o.export, o.publication)))?
                .ok_or_else(no_row("reading the publication"))?
                .get(0);
            let table = format!("{}.{}", quote_ident(schema), quote_ident(&o.table));
            match exists {
                Some(true) => out.push(format!("export {}: publication `{}` already holds {}.{}", o.export, o.publication, schema, o.table)),
                Some(false) => {
                    return Err(unmet(format!(
                        "export {}: publication `{}` exists but does not hold {}.{}; run `ALTER PUBLICATION {} ADD TABLE {table};` or choose another `cdc.publication`",
                        o.export, o.publication, schema, o.table, quote_ident(&o.publication)
                    )))
                }
                None => {
                    client
                        .batch_execute(&format!(
                            "CREATE PUBLICATION {} FOR TABLE {table}",
                            quote_ident(&o.publication)
                        ))
                        .await
                        .map_err(|e| {
                            let mut detail = error_text(&e);
                            if e.as_db_error().is_some_and(|d| d.code().code() == "42501") {
                                detail.push_str(&format!(
                                    "; a publication needs CREATE on the database and ownership of the table: run `GRANT CREATE ON DATABASE {} TO {}; ALTER TABLE {table} OWNER TO {};` as their owner, or have an owner run `CREATE PUBLICATION {} FOR TABLE {table};`",
                                    quote_ident(&db), quote_ident(&user), quote_ident(&user), quote_ident(&o.publication)
                                ));
                            }
                            SourceError::Settings {
                                key: "source".into(),
                                detail: format!("export {}: creating publication `{}`: {detail}", o.export, o.publication),
                            }
                        })?;
                    out.push(format!("export {}: created publication `{}` for {}.{}", o.export, o.publication, schema, o.table));
                }
            }
            let slot: Option<(String, String)> = unnamed(&client,
                    "SELECT COALESCE(plugin, ''), COALESCE(database, '') FROM pg_replication_slots WHERE slot_name = $1",
                    &[&o.slot],
                )
                .await
                .map_err(q(format!("export {}: reading slot `{}`", o.export, o.slot)))?
                .map(|r| (r.get(0), r.get(1)));
            match slot {
                Some((plugin, database)) if plugin == "pgoutput" && database == db => {
                    out.push(format!("export {}: slot `{}` already exists", o.export, o.slot))
                }
                Some((plugin, database)) => {
                    return Err(unmet(format!(
                        "export {}: slot `{}` exists with plugin `{plugin}` in database `{database}`, not `pgoutput` in `{db}`; choose another `cdc.slot` or drop it with `SELECT pg_drop_replication_slot('{}');`",
                        o.export, o.slot, o.slot
                    )))
                }
                None => {
                    if used + new_slots >= max_slots {
                        return Err(unmet(format!(
                            "export {}: all {max_slots} replication slots (max_replication_slots) are in use; run `ALTER SYSTEM SET max_replication_slots = {};` as a superuser and restart PostgreSQL, or drop an unused slot",
                            o.export,
                            max_slots + objects.len() as i32
                        )));
                    }
                    unnamed(&client,
                            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                            &[&o.slot],
                        )
                        .await
                        .map_err(q(format!("export {}: creating slot `{}`", o.export, o.slot)))?;
                    new_slots += 1;
                    out.push(format!("export {}: created slot `{}` (pgoutput)", o.export, o.slot));
                }
            }
        }
        Ok(out)
    })
}

/// Drops each export's slot and publication (those that exist); one line per object.
pub fn teardown(
    settings: &ConnectionSettings,
    objects: &[CdcObjects],
) -> Result<Vec<String>, SourceError> {
    let (runtime, client) = super::open(settings)?;
    runtime.block_on(async {
        let mut out = Vec::new();
        for o in objects {
            let dropped = unnamed(&client,
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&o.slot],
                )
                .await
                .map_err(q(format!("export {}: dropping slot `{}`", o.export, o.slot)))?;
            out.push(match dropped {
                Some(_) => format!("export {}: dropped slot `{}`", o.export, o.slot),
                None => format!("export {}: slot `{}` did not exist", o.export, o.slot),
            });
            client
                .batch_execute(&format!(
                    "DROP PUBLICATION IF EXISTS {}",
                    quote_ident(&o.publication)
                ))
                .await
                .map_err(q(format!(
                    "export {}: dropping publication `{}`",
                    o.export, o.publication
                )))?;
            out.push(format!(
                "export {}: publication `{}` dropped (if it existed)",
                o.export, o.publication
            ));
        }
        Ok(out)
    })
}

/// Moves the slot's confirmed position to `end` (never backwards): called only after
/// the window ending there is committed in the state database.
pub fn advance_slot(
    settings: &ConnectionSettings,
    slot: &str,
    end: u64,
) -> Result<(), SourceError> {
    let (runtime, client) = super::open(settings)?;
    runtime.block_on(async {
        let confirmed: Option<String> = unnamed(&client,
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(q(format!("reading slot `{slot}`")))?
            .ok_or_else(|| SourceError::Query {
                context: format!("confirming slot `{slot}`"),
                detail: "the slot no longer exists; the window's files and checkpoint are committed, but the next window cannot be read: run `rivet cdc setup` and take a new snapshot (docs/cdc.md)".into(),
                transient: false,
            })?
            .get(0);
        if lsn_of(confirmed, &format!("slot `{slot}`'s confirmed_flush_lsn"))?
            .is_some_and(|c| c >= end)
        {
            return Ok(());
        }
        unnamed(&client,
                "SELECT end_lsn::text FROM pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&slot, &lsn_text(end)],
            )
            .await
            .map_err(q(format!("advancing slot `{slot}` to {}", lsn_text(end))))?;
        Ok(())
    })
}

/// Where an output column's value comes from, for one relation.
struct Mapping {
    relation: u32,
    /// For each column of the relation message, the output column it feeds.
    targets: Vec<Option<usize>>,
}

/// Reads one window of changes into batches (see the module docs).
pub(crate) async fn read_window(
    client: &mut tokio_postgres::Client,
    req: &ChunkRead,
    w: &CdcWindow,
    label: &str,
    decoders: &mut [ColumnDecoder],
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
) -> Result<ReadStats, ReadFailure> {
    let crate::CdcLog::Slot {
        slot,
        publication,
        start,
        end,
    } = &w.log
    else {
        return Err(SourceError::Query {
            context: label.to_owned(),
            detail: "a PostgreSQL source was handed a binary log window; plan again".into(),
            transient: false,
        }
        .into());
    };
    let (start, end) = (*start, *end);
    let ntable = req.columns.len() - 4;
    let mut batcher = Batcher::new(req, label);
    // One transaction holds the settings (SET LOCAL) and the driver's prepared
    // statements, so nothing outlives the window read or leaks through a pooler.
    let tx = client
        .transaction()
        .await
        .map_err(q(format!("{label}: starting the window's transaction")))?;
    // Read out of the row at once: a row holds its statement, which must be closed
    // inside this transaction (a pooler may hand the next one another session).
    let slot_row: Option<(Option<String>, String)> = tx
        .query_opt(
            "SELECT confirmed_flush_lsn::text, COALESCE(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
            &[slot],
        )
        .await
        .map_err(q(format!("{label}: reading slot `{}`", slot)))?
        .map(|r| (r.get(0), r.get(1)));
    let Some(slot_row) = slot_row else {
        return Err(SourceError::Query {
            context: label.to_owned(),
            detail: format!("replication slot `{}` does not exist; run `rivet cdc setup -c <config>`, then take a new snapshot of the table: changes made while there was no slot are not in the log any more (docs/cdc.md)", slot),
            transient: false,
        }
        .into());
    };
    let confirmed = lsn_of(
        slot_row.0,
        &format!("slot `{}`'s confirmed_flush_lsn", slot),
    )?;
    let wal_status = slot_row.1;
    if wal_status == "lost" {
        return Err(SourceError::Query {
            context: label.to_owned(),
            detail: format!("replication slot `{}` is lost (wal_status = lost): the server removed WAL it still needed; drop and recreate it (`rivet cdc teardown`, `rivet cdc setup`) and take a new snapshot of the table (docs/cdc.md)", slot),
            transient: false,
        }
        .into());
    }
    if let Some(c) = confirmed.filter(|c| *c > start) {
        return Err(SourceError::Query {
            context: label.to_owned(),
            detail: format!(
                "replication slot `{}` is confirmed up to {}, past this window's start {}: the window was applied already, or the slot was advanced outside rivet, and its changes can no longer be read; plan again for the next window (a window whose `_SUCCESS` is missing needs a new snapshot, docs/cdc.md)",
                slot,
                lsn_text(c),
                lsn_text(start)
            ),
            transient: false,
        }
        .into());
    }
    // The type of every planned column now: apply checked before reading that these
    // are the planned types (schema drift), so a relation message in the window that
    // names another type means the column was retyped inside the window, and its
    // values must not be decoded as the planned type.
    let qualified = format!("{}.{}", quote_ident(&w.schema), quote_ident(&w.table));
    let planned_types: std::collections::HashMap<String, u32> = tx
        .query(
            "SELECT attname::text, atttypid FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
            &[&qualified],
        )
        .await
        .map_err(q(format!(
            "{label}: reading the column types of {qualified}"
        )))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL DateStyle = 'ISO, YMD'; \
         SET LOCAL IntervalStyle = 'postgres'; SET LOCAL TimeZone = 'UTC'; \
         SET LOCAL extra_float_digits = 1",
        req.statement_timeout_ms
    ))
    .await
    .map_err(q(format!(
        "{label}: setting the read's timeouts and output formats"
    )))?;
    let end_text = lsn_text(end);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [slot, &end_text, publication];
    let rows = tx
        .query_raw(
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1::text::name, $2::text::pg_lsn, NULL, \
             'proto_version', '1', 'publication_names', $3::text, 'binary', 'true')",
            params,
        )
        .await
        .map_err(q(format!("{label}: reading the log window through slot `{}`", slot)))?;
    let mut rows = Box::pin(rows);
    let mut mapping: Option<Mapping> = None;
    // The transaction being read: commit position, time, xid, whether it is in the
    // window, and the sequence number of its next change.
    let mut txn: Option<(u64, i64, u32, bool)> = None;
    let mut seq: u32 = 0;
    let mut changes_outside: u64 = 0;
    while let Some(row) = rows.next().await {
        let row = row.map_err(q(format!("{label}: reading the log window")))?;
        let data: &[u8] = row.get(0);
        let at = || {
            txn.map_or("before any transaction".to_owned(), |t| {
                format!("in the transaction committed at {}", lsn_text(t.0))
            })
        };
        let bad = |detail: String| -> ReadFailure {
            SourceError::Decode {
                relation: label.to_owned(),
                column: String::new(),
                detail,
            }
            .into()
        };
        let msg = pgoutput::parse(data)
            .map_err(|e| bad(format!("pgoutput message {}: {}", at(), e.0)))?;
        match msg {
            Message::Begin {
                final_lsn,
                commit_ts,
                xid,
            } => {
                txn = Some((
                    final_lsn,
                    commit_ts,
                    xid,
                    final_lsn >= start && final_lsn < end,
                ));
                seq = 0;
            }
            Message::Commit { commit_lsn, .. } => {
                if txn.map(|t| t.0) != Some(commit_lsn) {
                    return Err(bad(format!(
                        "a Commit at {} does not match its Begin ({})",
                        lsn_text(commit_lsn),
                        at()
                    )));
                }
                txn = None;
            }
            Message::Relation {
                id,
                namespace,
                name,
                columns,
                ..
            } => {
                if namespace != w.schema || name != w.table {
                    continue;
                }
                let mut targets = Vec::with_capacity(columns.len());
                for c in &columns {
                    let target = req.columns[..ntable].iter().position(|p| p.name == c.name);
                    if target.is_some() && planned_types.get(&c.name) != Some(&c.type_oid) {
                        return Err(bad(format!(
                            "column `{}` of {}.{} changed type inside the window {} (type oid {} in the log, {} when the window was read); its values are never written under the planned type: plan again and take a new snapshot of the table",
                            c.name,
                            w.schema,
                            w.table,
                            at(),
                            c.type_oid,
                            planned_types
                                .get(&c.name)
                                .map_or("the column is gone".to_owned(), |o| format!("oid {o}"))
                        )));
                    }
                    targets.push(target);
                }
                for (i, p) in req.columns[..ntable].iter().enumerate() {
                    if !targets.contains(&Some(i)) {
                        return Err(bad(format!(
                            "column `{}` of {}.{} is not in the log {} (dropped or renamed since planning); plan again and take a new snapshot if the table changed shape",
                            p.name, w.schema, w.table, at()
                        )));
                    }
                }
                mapping = Some(Mapping {
                    relation: id,
                    targets,
                });
            }
            Message::Insert { relation, new } => {
                emit(
                    req,
                    w,
                    &mapping,
                    &txn,
                    &mut seq,
                    relation,
                    "insert",
                    None,
                    Some(new.as_slice()),
                    decoders,
                    label,
                    &mut batcher,
                    &mut changes_outside,
                )?;
            }
            Message::Update { relation, old, new } => {
                if let (Some(o), Some(m)) = (old.as_deref(), mapping.as_ref()) {
                    if m.relation == relation && key_changed(req, w, m, o, &new) {
                        emit(
                            req,
                            w,
                            &mapping,
                            &txn,
                            &mut seq,
                            relation,
                            "delete",
                            Some(o),
                            None,
                            decoders,
                            label,
                            &mut batcher,
                            &mut changes_outside,
                        )?;
                    }
                }
                emit(
                    req,
                    w,
                    &mapping,
                    &txn,
                    &mut seq,
                    relation,
                    "update",
                    old.as_deref(),
                    Some(new.as_slice()),
                    decoders,
                    label,
                    &mut batcher,
                    &mut changes_outside,
                )?;
            }
            Message::Delete { relation, old } => {
                emit(
                    req,
                    w,
                    &mapping,
                    &txn,
                    &mut seq,
                    relation,
                    "delete",
                    Some(old.as_slice()),
                    None,
                    decoders,
                    label,
                    &mut batcher,
                    &mut changes_outside,
                )?;
            }
            Message::Truncate { relations } => {
                if let Some(m) = &mapping {
                    if relations.contains(&m.relation) {
                        emit(
                            req,
                            w,
                            &mapping,
                            &txn,
                            &mut seq,
                            m.relation,
                            "truncate",
                            None,
                            None,
                            decoders,
                            label,
                            &mut batcher,
                            &mut changes_outside,
                        )?;
                    }
                }
            }
            Message::Origin | Message::Type | Message::Message => {}
        }
        batcher.cut(false, decoders, sink)?;
    }
    batcher.cut(true, decoders, sink)?;
    drop(rows);
    tx.commit()
        .await
        .map_err(q(format!("{label}: ending the window's transaction")))?;
    Ok(batcher.stats(decoders.iter().map(|d| d.nulled)))
}

/// Whether an update moved the row to another primary key (old and new key values
/// differ byte for byte).
fn key_changed(
    req: &ChunkRead,
    w: &CdcWindow,
    m: &Mapping,
    old: &[Value<'_>],
    new: &[Value<'_>],
) -> bool {
    m.targets.iter().enumerate().any(|(k, target)| {
        target.is_some_and(|i| w.key.contains(&req.columns[i].name))
            && old.get(k) != new.get(k)
            && new.get(k) != Some(&Value::Unchanged)
    })
}

/// Appends one change row: the table's values (the new tuple, with unchanged TOASTed
/// values taken from the old one; the old tuple for deletes; all NULL for a truncate),
/// then op, position, commit time and xid. Changes of other relations and of
/// transactions outside the window are skipped.
#[allow(clippy::too_many_arguments)]
fn emit(
    req: &ChunkRead,
    w: &CdcWindow,
    mapping: &Option<Mapping>,
    txn: &Option<(u64, i64, u32, bool)>,
    seq: &mut u32,
    relation: u32,
    op: &str,
    old: Option<&[Value<'_>]>,
    new: Option<&[Value<'_>]>,
    decoders: &mut [ColumnDecoder],
    label: &str,
    batcher: &mut Batcher<'_>,
    outside: &mut u64,
) -> Result<(), ReadFailure> {
    let Some((commit_lsn, commit_ts, xid, inside)) = *txn else {
        return Err(SourceError::Decode {
            relation: label.to_owned(),
            column: String::new(),
            detail: format!("a {op} change outside any transaction"),
        }
        .into());
    };
    let Some(m) = mapping.as_ref().filter(|m| m.relation == relation) else {
        // Another table of a shared publication, or (before the first Relation
        // message of ours) a relation this export does not read.
        return Ok(());
    };
    *seq += 1;
    if !inside {
        *outside += 1;
        return Ok(());
    }
    let ntable = req.columns.len() - 4;
    let pos_err = |col: &str, detail: String| -> ReadFailure {
        SourceError::Decode {
            relation: label.to_owned(),
            column: col.to_owned(),
            detail: format!(
                "{detail} ({op} in the transaction committed at {}, change {})",
                lsn_text(commit_lsn),
                *seq
            ),
        }
        .into()
    };
    let mut filled = vec![false; ntable];
    let mut bytes = 0usize;
    let tuple = new.or(old);
    if let Some(values) = tuple {
        if values.len() != m.targets.len() {
            return Err(pos_err(
                "",
                format!(
                    "the change has {} values but the relation {} columns",
                    values.len(),
                    m.targets.len()
                ),
            ));
        }
        for (k, v) in values.iter().enumerate() {
            let Some(i) = m.targets[k] else { continue };
            let mut v = *v;
            if v == Value::Unchanged {
                // An unchanged TOASTed value: the old tuple of replica identity full
                // has it; without one it is an error, never a NULL.
                v = old
                    .and_then(|o| o.get(k).copied())
                    .unwrap_or(Value::Unchanged);
            }
            let name = &req.columns[i].name;
            match v {
                Value::Null => decoders[i].append(None),
                Value::Binary(raw) => {
                    bytes += raw.len();
                    decoders[i].append(Some(raw))
                }
                Value::Unchanged => {
                    return Err(pos_err(name, format!(
                        "an unchanged TOASTed value was not sent and no old value holds it; run `ALTER TABLE {}.{} REPLICA IDENTITY FULL;` (docs/cdc.md)",
                        quote_ident(&w.schema), quote_ident(&w.table)
                    )))
                }
                Value::Text(_) => {
                    return Err(pos_err(name, "the server sent this value as text, not in binary form; its type has no binary send function, which this version cannot read in change capture".into()))
                }
            }
            .map_err(|e| pos_err(name, e.0))?;
            filled[i] = true;
        }
    }
    for (i, done) in filled.iter().enumerate() {
        if !done {
            decoders[i]
                .append(None)
                .map_err(|e| pos_err(&req.columns[i].name, e.0))?;
        }
    }
    let pos = format!("{commit_lsn:016X}-{:08X}", *seq);
    let extra: [Vec<u8>; 4] = [
        op.as_bytes().to_vec(),
        pos.into_bytes(),
        commit_ts.to_be_bytes().to_vec(),
        i64::from(xid).to_be_bytes().to_vec(),
    ];
    for (k, raw) in extra.iter().enumerate() {
        decoders[ntable + k]
            .append(Some(raw))
            .map_err(|e| pos_err(&req.columns[ntable + k].name, e.0))?;
    }
    batcher.count(bytes + 40);
    Ok(())
}
