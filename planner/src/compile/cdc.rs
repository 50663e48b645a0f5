//! The log window of a `cdc` export, sealed in the plan: from the position committed
//! in the state database (first run: the slot's confirmed position) to
//! `pg_current_wal_lsn()` now, with the slot and publication it is read through and
//! the slot's health. Every prerequisite that would make apply fail or lose changes is
//! refused here, with the SQL or command that fixes it.

use rivet_schema::config::{CdcConfig, ExportConfig, SourceKind};
use rivet_schema::plan::{
    lsn_text, mssql_lsn_text, parse_lsn, parse_mssql_lsn, BinlogPos, CursorType, PlannedBinlog,
    PlannedCdc, PlannedChangeTable, PlannedColumn, PlannedSlot, PlannedWindow, Relation,
    WindowKind,
};
use rivet_sources::Catalog;

use super::{cfg_err, PlanInputs};
use crate::error::PlanError;

/// The window and log facts of a `cdc` export, by engine.
pub(super) fn plan_cdc(
    kind: SourceKind,
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
    refuse_converted(i, columns)?;
    match kind {
        SourceKind::Mysql => plan_binlog(i, e, schema, name, columns, catalog, inputs),
        SourceKind::Mssql => plan_change_table(i, e, schema, name, columns, catalog, inputs),
        SourceKind::Postgres => plan_slot(i, e, schema, name, catalog, inputs),
    }
}

/// Columns read through a server-side conversion cannot be captured: the log carries
/// the stored value.
fn refuse_converted(i: usize, columns: &[PlannedColumn]) -> Result<(), PlanError> {
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
            format!("exports[{i}].columns"),
            format!(
                "change capture decodes each value as the log carries it, and these columns are exported through a server-side conversion the log cannot apply: {}; leave them out with `columns:` (docs/cdc.md)",
                converted.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The window of a PostgreSQL export, from its slot.
fn plan_slot(
    i: usize,
    e: &ExportConfig,
    schema: &str,
    name: &str,
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
) -> Result<(PlannedWindow, PlannedCdc), PlanError> {
    let at = |k: &str| format!("exports[{i}].{k}");
    let slot = CdcConfig::slot_name(e.cdc.as_ref(), &e.name);
    let publication = CdcConfig::publication_name(e.cdc.as_ref(), &e.name);
    let facts = catalog
        .cdc_facts(schema, name, &slot, &publication)
        .map_err(|cause| PlanError::SourceFor {
            what: format!("reading the log position of export `{}`", e.name),
            cause,
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
    let restart = s.restart_lsn.ok_or_else(|| {
        cfg_err(
            at("cdc.slot"),
            format!("slot `{slot}` has no restart_lsn, so the WAL it holds cannot be measured; it may have been invalidated: check `SELECT * FROM pg_replication_slots WHERE slot_name = '{slot}'`, and if it is lost run `rivet cdc teardown`, `rivet cdc setup` and take a new snapshot (docs/cdc.md)"),
        )
    })?;
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
        PlannedCdc::Slot(PlannedSlot {
            slot,
            publication,
            slot_pending_bytes: end.saturating_sub(restart),
            wal_status: s.wal_status,
            safe_wal_bytes: s.safe_wal_size,
        }),
    ))
}

/// The replica id an export registers with when `cdc.server_id` is not given: from a
/// hash of the table and export, in the upper half of the id range (replicas set up by
/// hand use small ids), so two exports never present the same id to the server (the
/// server disconnects a replica when another registers with its id).
pub fn derived_server_id(schema: &str, table: &str, export: &str) -> u32 {
    let hex = rivet_schema::seal::sha256_hex(
        format!("rivet-cdc\0{schema}\0{table}\0{export}").as_bytes(),
    );
    let n = u32::from_str_radix(&hex[..8], 16).expect("hex digits");
    (n | 0x8000_0000).min(u32::MAX - 1)
}

/// The window of a MySQL/MariaDB export: from the committed binary log position (the
/// first window starts and ends at the log's end now: it records where capture
/// begins) to the log's end now. Every setting that would make a window unreadable or
/// wrong is refused here with the statement that fixes it.
fn plan_binlog(
    i: usize,
    e: &ExportConfig,
    schema: &str,
    name: &str,
    columns: &[PlannedColumn],
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
) -> Result<(PlannedWindow, PlannedCdc), PlanError> {
    let at = |k: &str| format!("exports[{i}].{k}");
    let server_id = e
        .cdc
        .as_ref()
        .and_then(|c| c.server_id)
        .unwrap_or_else(|| derived_server_id(schema, name, &e.name));
    let facts = catalog
        // The grant check registers as a neighbouring id, never the export's own: a
        // replica registering with an id the server already streams to disconnects the
        // other one, which would be this export's apply if it is running now.
        .binlog_facts(schema, name, Some(server_id ^ 0x4000_0000))
        .map_err(|cause| PlanError::SourceFor {
            what: format!("reading the binary log position of export `{}`", e.name),
            cause,
        })?;
    if let Some(u) = rivet_sources::mysql::binlog::unmet_prerequisite(&facts) {
        return Err(unmet_err(i, &u));
    }
    let problems: Vec<String> = columns
        .iter()
        .filter_map(|c| {
            facts
                .columns
                .iter()
                .find(|f| f.name == c.name)
                .and_then(rivet_sources::mysql::binlog::column_problem)
        })
        .collect();
    if !problems.is_empty() {
        return Err(cfg_err(
            at("columns"),
            format!(
                "{}; leave these columns out with `columns:` or export the table with `incremental` (docs/cdc.md)",
                problems.join("; ")
            ),
        ));
    }
    if server_id == facts.server_id {
        return Err(cfg_err(
            at("cdc.server_id"),
            format!("server_id {server_id} is the source server's own id; choose another (any unused id from 1 to 4294967295)"),
        ));
    }
    let (start, seq) = match inputs.cursors.get(&e.name) {
        None => (facts.current.clone(), 1),
        Some(c) if c.value_type == CursorType::Binlog => (
            BinlogPos::parse(&c.position).map_err(|d| {
                PlanError::Internal(format!(
                    "export {}: the state database's binary log position cannot be read: {d}",
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
    let Some(oldest) = facts.files.first().map(|(f, _)| f.file.clone()) else {
        return Err(cfg_err(at("mode"), "the server lists no binary log file (SHOW BINARY LOGS is empty); check that log_bin is on"));
    };
    if !facts.files.iter().any(|(f, _)| f.file == start.file) {
        return Err(cfg_err(
            at("mode"),
            format!(
                "binary log {} holding the committed position {start} is no longer on the server (the oldest is {oldest}): the changes since cannot be read; reset the position with `rivet state reset-cursor {}` and take a new snapshot of {schema}.{name} (docs/cdc.md)",
                start.file, e.name
            ),
        ));
    }
    if facts.current < start {
        return Err(cfg_err(
            at("mode"),
            format!(
                "the binary log ends at {} now, before the committed position {start}: the log was reset (RESET MASTER) or the source is another server; reset the position with `rivet state reset-cursor {}` and take a new snapshot",
                facts.current, e.name
            ),
        ));
    }
    let end = facts.current.clone();
    let (_, window_bytes) =
        rivet_sources::mysql::binlog::log_span(&facts.files, &start, Some(&end));
    Ok((
        PlannedWindow {
            kind: WindowKind::Cdc,
            column: "binlog".into(),
            fallback_column: None,
            value_type: CursorType::Binlog,
            lower: Some(start.to_string()),
            upper: Some(end.to_string()),
            seq: Some(seq),
        },
        PlannedCdc::Binlog(PlannedBinlog {
            server_id,
            row_image: facts.row_image.to_ascii_uppercase(),
            window_bytes,
            oldest_file: oldest,
            retention_seconds: facts.retention_seconds,
            gtid_position: facts.gtid_position,
        }),
    ))
}

/// An unmet prerequisite as a plan error under the export's key.
fn unmet_err(i: usize, u: &rivet_sources::Unmet) -> PlanError {
    cfg_err(
        format!("exports[{i}].{}", u.key),
        format!("{}; {}", u.problem, u.fix),
    )
}

/// The window of a SQL Server export: `[from, max LSN now]` of its capture instance,
/// where `from` is the instance's oldest change on the first window and the LSN after
/// the committed position later. Everything that would make the window unreadable or
/// incomplete is refused with the statement that fixes it.
fn plan_change_table(
    i: usize,
    e: &ExportConfig,
    schema: &str,
    name: &str,
    columns: &[PlannedColumn],
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
) -> Result<(PlannedWindow, PlannedCdc), PlanError> {
    let at = |k: &str| format!("exports[{i}].{k}");
    let committed = match inputs.cursors.get(&e.name) {
        None => None,
        Some(c) if c.value_type == CursorType::MssqlLsn => Some((
            parse_mssql_lsn(&c.position).map_err(|d| {
                PlanError::Internal(format!(
                    "export {}: the state database's LSN cannot be read: {d}",
                    e.name
                ))
            })?,
            c.seq,
        )),
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
    let facts = catalog
        .change_table_facts(schema, name, committed.as_ref().map(|c| &c.0))
        .map_err(|cause| PlanError::SourceFor {
            what: format!("reading change data capture for export `{}`", e.name),
            cause,
        })?;
    let (window, cdc) = change_table_window(i, e, schema, name, columns, &facts, committed)?;
    Ok((window, cdc))
}

/// The decisions of [`plan_change_table`] on facts already read (tested offline).
pub(super) fn change_table_window(
    i: usize,
    e: &ExportConfig,
    schema: &str,
    name: &str,
    columns: &[PlannedColumn],
    facts: &rivet_sources::ChangeTableFacts,
    committed: Option<([u8; 10], u32)>,
) -> Result<(PlannedWindow, PlannedCdc), PlanError> {
    let at = |k: &str| format!("exports[{i}].{k}");
    if let Some(u) = rivet_sources::mssql::cdc::unmet_prerequisite(facts, schema, name) {
        return Err(unmet_err(i, &u));
    }
    let wanted = e.cdc.as_ref().and_then(|c| c.capture_instance.clone());
    let instance = match (&wanted, facts.instances.as_slice()) {
        (_, []) => {
            return Err(PlanError::Internal(
                "a table without capture instances passed the prerequisite check".into(),
            ))
        }
        (None, [only]) => only,
        (None, several) => {
            return Err(cfg_err(
                at("cdc.capture_instance"),
                format!(
                    "{schema}.{name} has {} capture instances ({}), as during a schema change; name the one to read with `cdc.capture_instance`",
                    several.len(),
                    several.iter().map(|c| format!("`{}`", c.name)).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
        (Some(w), all) => all.iter().find(|c| &c.name == w).ok_or_else(|| {
            cfg_err(
                at("cdc.capture_instance"),
                format!(
                    "{schema}.{name} has no capture instance `{w}` (it has {})",
                    all.iter().map(|c| format!("`{}`", c.name)).collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
    };
    let missing: Vec<&str> = columns
        .iter()
        .filter(|c| !instance.captured_columns.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(cfg_err(
            at("columns"),
            format!(
                "capture instance `{}` does not capture {}; leave them out with `columns:` or recreate the instance with them (`@captured_column_list`)",
                instance.name,
                missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let (from, lower, seq) = match committed {
        None => (instance.min_lsn, None, 1),
        Some((position, seq)) => {
            let after = facts.after_committed.ok_or_else(|| {
                PlanError::Internal(format!(
                    "export {}: the LSN after the committed position was not read",
                    e.name
                ))
            })?;
            if instance.min_lsn > after {
                return Err(cfg_err(
                    at("mode"),
                    format!(
                        "the change table of `{}` starts at {}, after the committed position {}: the cleanup job removed changes that were never exported; reset the position with `rivet state reset-cursor {}` and take a new snapshot (and keep the cleanup retention longer than the gap between applies)",
                        instance.name,
                        mssql_lsn_text(&instance.min_lsn),
                        mssql_lsn_text(&position),
                        e.name
                    ),
                ));
            }
            (after, Some(position), seq + 1)
        }
    };
    // Nothing new: the window is empty and its end stays at the committed position.
    let upper = match lower {
        Some(l) if facts.max_lsn < from => l,
        _ => facts.max_lsn,
    };
    Ok((
        PlannedWindow {
            kind: WindowKind::Cdc,
            column: instance.name.clone(),
            fallback_column: None,
            value_type: CursorType::MssqlLsn,
            lower: lower.map(|l| mssql_lsn_text(&l)),
            upper: Some(mssql_lsn_text(&upper)),
            seq: Some(seq),
        },
        PlannedCdc::ChangeTable(PlannedChangeTable {
            capture_instance: instance.name.clone(),
            from_lsn: mssql_lsn_text(&from),
            agent: facts
                .agent
                .clone()
                .unwrap_or_else(|why| format!("unknown: {why}")),
        }),
    ))
}

/// Pairs every `cdc` export with the batch exports (full or chunked, no window) of the
/// same table in the same plan: records the handoff on all of them and runs the `cdc`
/// export in a later wave than its snapshots — after them when its wave is not set, and
/// an error naming the key when it is set to run with or before one.
pub(super) fn plan_handoffs(
    config: &rivet_schema::config::Config,
    exports: &mut [rivet_schema::plan::PlannedExport],
) -> Result<(), PlanError> {
    use rivet_schema::config::ExportMode;
    use rivet_schema::plan::{Handoff, PlannedMode};
    let cdc_indexes: Vec<usize> = (0..exports.len())
        .filter(|&i| exports[i].cdc.is_some())
        .collect();
    for c in cdc_indexes {
        let snapshots: Vec<usize> = (0..exports.len())
            .filter(|&s| {
                exports[s].cdc.is_none()
                    && exports[s].window.is_none()
                    && exports[s].repair_of.is_none()
                    && matches!(exports[s].mode, PlannedMode::Full | PlannedMode::Chunked)
                    && exports[s].relation == exports[c].relation
            })
            .collect();
        if snapshots.is_empty() {
            continue;
        }
        let latest = snapshots
            .iter()
            .map(|&s| exports[s].wave)
            .max()
            .unwrap_or(1);
        let index = config
            .exports
            .iter()
            .position(|e| e.name == exports[c].name && e.mode == ExportMode::Cdc)
            .ok_or_else(|| {
                PlanError::Internal(format!(
                    "cdc export {} is not in the config",
                    exports[c].name
                ))
            })?;
        match config.exports[index].wave {
            Some(w) if w <= latest => {
                return Err(cfg_err(
                    format!("exports[{index}].wave"),
                    format!(
                        "cdc export `{}` continues the snapshot of {} taken by {}, so it must run in a later wave than {latest}; remove `wave` (it is then placed after them) or raise it",
                        exports[c].name,
                        exports[c].relation.display_name(),
                        snapshots.iter().map(|&s| format!("`{}`", exports[s].name)).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Some(_) => {}
            None => exports[c].wave = exports[c].wave.max(latest + 1),
        }
        let position = exports[c]
            .window
            .as_ref()
            .and_then(|w| w.lower.clone())
            .ok_or_else(|| {
                PlanError::Internal(format!(
                    "cdc export {} has no window start",
                    exports[c].name
                ))
            })?;
        let handoff = Handoff {
            snapshot_exports: snapshots.iter().map(|&s| exports[s].name.clone()).collect(),
            cdc_export: exports[c].name.clone(),
            position,
        };
        for &s in &snapshots {
            exports[s].handoff = Some(handoff.clone());
        }
        exports[c].handoff = Some(handoff);
    }
    Ok(())
}

/// Warnings about the WAL each `cdc` export's slot holds back, from the facts sealed in
/// the plan (see [`slot_warnings_of`]).
pub fn slot_warnings(plan: &rivet_schema::Plan) -> Vec<String> {
    plan.body
        .exports
        .iter()
        .filter_map(|e| match e.cdc.as_ref() {
            Some(PlannedCdc::Slot(c)) => Some(slot_warnings_of(&e.name, c)),
            Some(PlannedCdc::ChangeTable(c)) if c.agent.starts_with("unknown") => Some(vec![format!(
                "export {}: the SQL Server Agent's state is {}; if it is not running, the capture job harvests no changes and windows stay empty (grant VIEW SERVER STATE to let rivet check)",
                e.name, c.agent
            )]),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A slot whose `wal_status` is `unreserved` loses WAL at the next checkpoint,
/// `extended` retains more than `max_wal_size`, and a `safe_wal_size` below the window's
/// own pending bytes means less headroom is left than this window already needed. One
/// line per finding, naming the export, slot and what to do.
fn slot_warnings_of(export: &str, c: &PlannedSlot) -> Vec<String> {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
    let mut out = Vec::new();
    match c.wal_status.as_str() {
        "unreserved" => out.push(format!(
            "export {export}: slot `{}` is unreserved (wal_status): WAL it still needs will be removed at the next checkpoint, and the slot will be lost; apply this plan now, or raise max_slot_wal_keep_size",
            c.slot
        )),
        "extended" => out.push(format!(
            "export {export}: slot `{}` retains {} of WAL, more than max_wal_size (wal_status extended); apply windows more often, or the server's disk fills",
            c.slot,
            mib(c.slot_pending_bytes)
        )),
        _ => {}
    }
    if let Some(safe) = c.safe_wal_bytes {
        if safe < 0 || (safe as u64) < c.slot_pending_bytes {
            out.push(format!(
                "export {export}: only {} more WAL may be written before slot `{}` is lost (safe_wal_size), less than the {} this window already holds; apply this plan soon, or raise max_slot_wal_keep_size",
                mib(safe.max(0) as u64),
                c.slot,
                mib(c.slot_pending_bytes)
            ));
        }
    }
    out
}

#[cfg(test)]
mod slot_tests {
    use super::slot_warnings_of;
    use rivet_schema::plan::PlannedSlot;

    fn slot(status: &str, pending: u64, safe: Option<i64>) -> PlannedSlot {
        PlannedSlot {
            slot: "s".into(),
            publication: "p".into(),
            slot_pending_bytes: pending,
            wal_status: status.into(),
            safe_wal_bytes: safe,
        }
    }

    #[test]
    fn retention_near_the_limit_warns_and_a_healthy_slot_does_not() {
        assert!(slot_warnings_of("e", &slot("reserved", 1 << 20, Some(1 << 30))).is_empty());
        assert!(slot_warnings_of("e", &slot("reserved", 1 << 20, None)).is_empty());
        let w = slot_warnings_of("e", &slot("unreserved", 1 << 20, Some(-5)));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("slot `s` is unreserved"), "{w:?}");
        assert!(w[1].contains("only 0.0 MiB more WAL"), "{w:?}");
        let w = slot_warnings_of("e", &slot("extended", 3 << 20, Some(2 << 20)));
        assert!(w[0].contains("retains 3.0 MiB of WAL"), "{w:?}");
        assert!(w[1].contains("only 2.0 MiB more WAL"), "{w:?}");
    }
}

#[cfg(test)]
mod change_table_tests {
    use super::change_table_window;
    use rivet_schema::config::ExportConfig;
    use rivet_schema::plan::{PlannedCdc, PlannedColumn};
    use rivet_sources::{CaptureInstance, ChangeTableFacts};

    fn export(cdc: serde_json::Value) -> ExportConfig {
        serde_json::from_value(serde_json::json!({
            "name": "orders_changes", "table": "dbo.orders", "mode": "cdc", "cdc": cdc,
            "destination": {"type": "local", "path": "out"}
        }))
        .unwrap()
    }

    fn column(name: &str) -> PlannedColumn {
        serde_json::from_value(serde_json::json!({
            "name": name, "declared_type": "int", "wire_type": "int", "logical": {"kind": "int32"},
            "mapping": "native", "nullable": true, "dictionary": false
        }))
        .unwrap()
    }

    fn lsn(n: u8) -> [u8; 10] {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, n]
    }

    fn facts(instances: &[(&str, u8, &[&str])]) -> ChangeTableFacts {
        ChangeTableFacts {
            database_enabled: true,
            instances: instances
                .iter()
                .map(|(name, min, cols)| CaptureInstance {
                    name: (*name).into(),
                    min_lsn: lsn(*min),
                    captured_columns: cols.iter().map(|c| (*c).to_owned()).collect(),
                })
                .collect(),
            max_lsn: lsn(90),
            after_committed: Some(lsn(41)),
            agent: Ok("Running".into()),
        }
    }

    fn err(r: Result<impl std::fmt::Debug, crate::error::PlanError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn first_and_next_windows_cover_the_change_table_without_gap_or_overlap() {
        let cols = [column("id"), column("n")];
        let f = facts(&[("dbo_orders", 10, &["id", "n"])]);
        let (w, c) = change_table_window(
            0,
            &export(serde_json::json!({})),
            "dbo",
            "orders",
            &cols,
            &f,
            None,
        )
        .unwrap();
        let PlannedCdc::ChangeTable(c) = c else {
            panic!()
        };
        assert_eq!(
            (w.lower, w.upper.as_deref(), w.seq),
            (None, Some("0x0000000000000000005A"), Some(1))
        );
        assert_eq!(
            c.from_lsn, "0x0000000000000000000A",
            "the first window starts at the oldest change"
        );
        // The next window starts right after the committed end (fn_cdc_increment_lsn).
        let (w, c) = change_table_window(
            0,
            &export(serde_json::json!({})),
            "dbo",
            "orders",
            &cols,
            &f,
            Some((lsn(40), 3)),
        )
        .unwrap();
        let PlannedCdc::ChangeTable(c) = c else {
            panic!()
        };
        assert_eq!(
            (w.lower.as_deref(), w.seq),
            (Some("0x00000000000000000028"), Some(4))
        );
        assert_eq!(c.from_lsn, "0x00000000000000000029");
        // Nothing new: an empty window whose end stays at the committed position.
        let mut idle = f.clone();
        idle.max_lsn = lsn(40);
        let (w, c) = change_table_window(
            0,
            &export(serde_json::json!({})),
            "dbo",
            "orders",
            &cols,
            &idle,
            Some((lsn(40), 3)),
        )
        .unwrap();
        let PlannedCdc::ChangeTable(c) = c else {
            panic!()
        };
        assert_eq!(w.upper.as_deref(), Some("0x00000000000000000028"));
        assert!(
            c.from_lsn.as_str() > w.upper.as_deref().unwrap(),
            "from past to reads nothing"
        );
    }

    #[test]
    fn what_would_lose_or_miss_changes_is_refused_with_the_fix() {
        let cols = [column("id"), column("n")];
        let e = export(serde_json::json!({}));
        let mut off = facts(&[]);
        off.database_enabled = false;
        assert!(err(change_table_window(
            0, &e, "dbo", "orders", &cols, &off, None
        ))
        .contains("sys.sp_cdc_enable_db"));
        assert!(err(change_table_window(
            0,
            &e,
            "dbo",
            "o'rders",
            &cols,
            &facts(&[]),
            None
        ))
        .contains("@source_name = N'o''rders'"));
        let two = facts(&[("a", 10, &["id", "n"]), ("b", 50, &["id", "n"])]);
        assert!(err(change_table_window(
            0, &e, "dbo", "orders", &cols, &two, None
        ))
        .contains("exports[0].cdc.capture_instance"));
        let (_, c) = change_table_window(
            0,
            &export(serde_json::json!({"capture_instance": "b"})),
            "dbo",
            "orders",
            &cols,
            &two,
            None,
        )
        .unwrap();
        assert!(matches!(c, PlannedCdc::ChangeTable(ref t) if t.capture_instance == "b"));
        let partial = facts(&[("dbo_orders", 10, &["id"])]);
        assert!(err(change_table_window(
            0, &e, "dbo", "orders", &cols, &partial, None
        ))
        .contains("does not capture `n`"));
        let mut stopped = facts(&[("dbo_orders", 10, &["id", "n"])]);
        stopped.agent = Ok("Stopped".into());
        assert!(err(change_table_window(
            0, &e, "dbo", "orders", &cols, &stopped, None
        ))
        .contains("start the SQL Server Agent"));
        // The cleanup job removed changes past the committed position.
        let cleaned = facts(&[("dbo_orders", 60, &["id", "n"])]);
        let msg = err(change_table_window(
            0,
            &e,
            "dbo",
            "orders",
            &cols,
            &cleaned,
            Some((lsn(40), 1)),
        ));
        assert!(
            msg.contains("cleanup job removed")
                && msg.contains("rivet state reset-cursor orders_changes"),
            "{msg}"
        );
        // An Agent whose state cannot be read is not a refusal: plan warns instead.
        let mut unknown = facts(&[("dbo_orders", 10, &["id", "n"])]);
        unknown.agent = Err("its state cannot be read: permission denied".into());
        let (_, c) = change_table_window(0, &e, "dbo", "orders", &cols, &unknown, None).unwrap();
        assert!(matches!(c, PlannedCdc::ChangeTable(ref t) if t.agent.starts_with("unknown")));
    }
}
