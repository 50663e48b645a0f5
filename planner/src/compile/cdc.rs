//! The log window of a `cdc` export, sealed in the plan: from the position committed
//! in the state database (first run: the slot's confirmed position) to
//! `pg_current_wal_lsn()` now, with the slot and publication it is read through and
//! the slot's health. Every prerequisite that would make apply fail or lose changes is
//! refused here, with the SQL or command that fixes it.

use rivet_schema::config::{CdcConfig, ExportConfig};
use rivet_schema::plan::{
    lsn_text, parse_lsn, CursorType, PlannedCdc, PlannedColumn, PlannedWindow, Relation, WindowKind,
};
use rivet_sources::Catalog;

use super::{cfg_err, PlanInputs};
use crate::error::PlanError;

/// The window and slot facts of a `cdc` export.
pub(super) fn plan_cdc(
    i: usize,
    e: &ExportConfig,
    relation: &Relation,
    columns: &[PlannedColumn],
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
) -> Result<(PlannedWindow, PlannedCdc), PlanError> {
    let at = |k: &str| format!("exports[{i}].{k}");
    let Relation::Table { schema, name } = relation else {
        return Err(cfg_err(at("table"), "a `cdc` export reads one table"));
    };
    let converted: Vec<String> = columns
        .iter()
        .filter_map(|c| {
            c.select_expr
                .as_ref()
                .map(|x| format!("`{}` ({}, read as `{x}`)", c.name, c.declared_type))
        })
        .collect();
    if !converted.is_empty() {
        return Err(cfg_err(
            at("columns"),
            format!(
                "change capture decodes each value as the log carries it, and these columns are exported through a server-side conversion the log cannot apply: {}; leave them out with `columns:` (docs/cdc.md)",
                converted.join(", ")
            ),
        ));
    }
    let slot = CdcConfig::slot_name(e.cdc.as_ref(), &e.name);
    let publication = CdcConfig::publication_name(e.cdc.as_ref(), &e.name);
    let facts = catalog
        .cdc_facts(schema, name, &slot, &publication)
        .map_err(|source| PlanError::SourceFor {
            what: format!("reading the log position of export `{}`", e.name),
            source,
        })?;
    let table = format!(
        "{}.{}",
        rivet_sources::postgres::quote_ident(schema),
        rivet_sources::postgres::quote_ident(name)
    );
    if facts.wal_level != "logical" {
        return Err(cfg_err(
            at("mode"),
            format!(
                "change capture needs wal_level = logical (it is `{}`); run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart PostgreSQL, then `rivet cdc setup`",
                facts.wal_level
            ),
        ));
    }
    let Some(s) = facts.slot else {
        return Err(cfg_err(
            at("cdc.slot"),
            format!("replication slot `{slot}` does not exist; run `rivet cdc setup -c <config>` to create it and publication `{publication}` (docs/cdc.md)"),
        ));
    };
    if s.slot_type != "logical" || s.plugin != "pgoutput" {
        return Err(cfg_err(
            at("cdc.slot"),
            format!("slot `{slot}` is a {} slot with plugin `{}`; rivet reads `pgoutput` logical slots: choose another `cdc.slot` and run `rivet cdc setup`", s.slot_type, s.plugin),
        ));
    }
    if s.wal_status == "lost" {
        return Err(cfg_err(
            at("cdc.slot"),
            format!("slot `{slot}` is lost (wal_status = lost): the server removed WAL it still needed, so changes are missing; run `rivet cdc teardown` and `rivet cdc setup`, then take a new snapshot of {schema}.{name} (docs/cdc.md)"),
        ));
    }
    match facts.publication {
        None => {
            return Err(cfg_err(
                at("cdc.publication"),
                format!("publication `{publication}` does not exist; run `rivet cdc setup -c <config>`"),
            ))
        }
        Some(false) => {
            return Err(cfg_err(
                at("cdc.publication"),
                format!(
                    "publication `{publication}` does not hold {schema}.{name}; run `ALTER PUBLICATION {} ADD TABLE {table};`",
                    rivet_sources::postgres::quote_ident(&publication)
                ),
            ))
        }
        Some(true) => {}
    }
    if facts.replica_identity != b'f' {
        return Err(cfg_err(
            at("table"),
            format!(
                "{schema}.{name} must have REPLICA IDENTITY FULL for change capture: otherwise updates omit unchanged TOASTed values and deletes carry only the key, and rivet never writes a value it was not sent as NULL; run `ALTER TABLE {table} REPLICA IDENTITY FULL;`"
            ),
        ));
    }
    let confirmed = s.confirmed_flush.ok_or_else(|| {
        cfg_err(
            at("cdc.slot"),
            format!("slot `{slot}` has no confirmed position yet; wait until it is created and plan again"),
        )
    })?;
    let (start, seq) = match inputs.cursors.get(&e.name) {
        None => (confirmed, 1),
        Some(c) if c.value_type == CursorType::Lsn => (
            parse_lsn(&c.position).map_err(|d| {
                PlanError::Internal(format!(
                    "export {}: the state database's log position cannot be read: {d}",
                    e.name
                ))
            })?,
            c.seq + 1,
        ),
        Some(c) => {
            return Err(cfg_err(
                at("mode"),
                format!(
                    "the state database holds an `{}` position for export `{}` from another mode; reset it with `rivet state reset-cursor {}` and take a new snapshot",
                    c.column, e.name, e.name
                ),
            ))
        }
    };
    if confirmed > start {
        return Err(cfg_err(
            at("cdc.slot"),
            format!(
                "slot `{slot}` is confirmed up to {}, past the committed position {}: the changes between can no longer be read (the slot was advanced outside rivet or recreated); reset the position with `rivet state reset-cursor {}` and take a new snapshot of {schema}.{name} (docs/cdc.md)",
                lsn_text(confirmed),
                lsn_text(start),
                e.name
            ),
        ));
    }
    let end = facts.current_lsn.max(start);
    Ok((
        PlannedWindow {
            kind: WindowKind::Cdc,
            column: slot.clone(),
            fallback_column: None,
            value_type: CursorType::Lsn,
            lower: Some(lsn_text(start)),
            upper: Some(lsn_text(end)),
            seq: Some(seq),
        },
        PlannedCdc {
            slot,
            publication,
            slot_pending_bytes: s.restart_lsn.map_or(0, |r| end.saturating_sub(r)),
            wal_status: s.wal_status,
            safe_wal_bytes: s.safe_wal_size,
        },
    ))
}
