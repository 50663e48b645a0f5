//! The source read of one chunk, built from the sealed plan alone: relation, columns
//! with their sealed wire and output types, key range, window bounds, batch limits and
//! timeouts. Apply, reconcile and repair all read chunks through this one function, so
//! a chunk is always read the same way.

use rivet_schema::config::BatchMemoryPolicy;
use rivet_schema::plan::{
    cdc_columns, parse_lsn, parse_mssql_lsn, BinlogPos, PlannedCdc, PlannedChunk, PlannedExport,
    Relation, WindowKind, CDC_COLUMNS,
};
use rivet_sources::{
    CdcLog, CdcWindow, ChunkRead, RangeFilter, ReadColumn, RelationRef, SqlValue, WindowFilter,
};

use crate::error::ExecError;

/// The `FROM` target of an export.
pub fn relation_ref(relation: &Relation) -> RelationRef {
    match relation {
        Relation::Table { schema, name } => RelationRef::Table {
            schema: schema.clone(),
            name: name.clone(),
        },
        Relation::Query { sql } => RelationRef::Query(sql.clone()),
    }
}

/// The row window of an `incremental` or `time_window` export as typed bounds. The
/// planner wrote these bounds and the seal kept them, so one that does not parse, or a
/// window with chunks but no upper bound, means the plan cannot be trusted: an error,
/// never a guess (a lost lower bound would re-read the table from the beginning).
fn window_filter(e: &PlannedExport) -> Result<Option<WindowFilter>, ExecError> {
    let Some(w) = e.window.as_ref().filter(|w| w.kind != WindowKind::Cdc) else {
        return Ok(None);
    };
    let parse = |which: &str, text: &str| {
        SqlValue::parse(w.value_type, text).map_err(|detail| {
            ExecError::Internal(format!(
                "export {}: the plan's window {which} bound on `{}` cannot be read: {detail}; plan again with this version of rivet",
                e.name, w.column
            ))
        })
    };
    let upper = match w.upper.as_deref() {
        Some(text) => parse("upper", text)?,
        None => {
            return Err(ExecError::Internal(format!(
                "export {}: the plan has chunks for an empty window (no upper bound on `{}`); plan again with this version of rivet",
                e.name, w.column
            )))
        }
    };
    let lower = w
        .lower
        .as_deref()
        .map(|text| parse("lower", text))
        .transpose()?;
    Ok(Some(WindowFilter {
        column: w.column.clone(),
        fallback: w.fallback_column.clone(),
        lower,
        upper,
    }))
}

/// The log window of a `cdc` export, from the sealed window and slot. As for row
/// windows, a bound that does not parse means the plan cannot be trusted.
fn cdc_window(e: &PlannedExport) -> Result<Option<CdcWindow>, ExecError> {
    let (Some(w), Some(cdc)) = (
        e.window.as_ref().filter(|w| w.kind == WindowKind::Cdc),
        e.cdc.as_ref(),
    ) else {
        return Ok(None);
    };
    let unreadable = |which: &str, detail: String| {
        ExecError::Internal(format!(
            "export {}: the plan's log window {which} cannot be read: {detail}; plan again with this version of rivet",
            e.name
        ))
    };
    let text = |which: &str, t: Option<&String>| {
        t.cloned()
            .ok_or_else(|| unreadable(which, format!("no {which} position")))
    };
    let Relation::Table { schema, name } = &e.relation else {
        return Err(ExecError::Internal(format!(
            "export {}: a cdc export reads a table, and the plan names a query",
            e.name
        )));
    };
    let upper = text("end", w.upper.as_ref())?;
    // SQL Server's first window has no lower position (it starts at the capture
    // instance's oldest change, sealed as `from_lsn`).
    let lower = || text("start", w.lower.as_ref());
    let log = match cdc {
        PlannedCdc::Slot(s) => CdcLog::Slot {
            slot: s.slot.clone(),
            publication: s.publication.clone(),
            start: parse_lsn(&lower()?).map_err(|d| unreadable("start", d))?,
            end: parse_lsn(&upper).map_err(|d| unreadable("end", d))?,
        },
        PlannedCdc::ChangeTable(c) => CdcLog::ChangeTable {
            capture_instance: c.capture_instance.clone(),
            from: parse_mssql_lsn(&c.from_lsn).map_err(|d| unreadable("start", d))?,
            to: parse_mssql_lsn(&upper).map_err(|d| unreadable("end", d))?,
        },
        PlannedCdc::Binlog(b) => CdcLog::Binlog {
            server_id: b.server_id,
            start: BinlogPos::parse(&lower()?).map_err(|d| unreadable("start", d))?,
            end: BinlogPos::parse(&upper).map_err(|d| unreadable("end", d))?,
        },
    };
    Ok(Some(CdcWindow {
        schema: schema.clone(),
        table: name.clone(),
        key: e.primary_key.clone(),
        log,
    }))
}

/// The source read for one chunk of an export.
pub fn chunk_read(e: &PlannedExport, c: &PlannedChunk) -> Result<ChunkRead, ExecError> {
    let cdc = cdc_window(e)?;
    let mut columns: Vec<ReadColumn> = e
        .columns
        .iter()
        .map(|col| ReadColumn {
            name: col.name.clone(),
            wire_type: col.wire_type.clone(),
            logical: col.logical.clone(),
            // A delete carries the old row, a truncate no row at all.
            nullable: col.nullable || cdc.is_some(),
            select_expr: col.select_expr.clone(),
        })
        .collect();
    if cdc.is_some() {
        let txid_nullable = e.cdc.as_ref().is_some_and(PlannedCdc::txid_nullable);
        columns.extend(
            cdc_columns()
                .into_iter()
                .map(|(name, wire, logical)| ReadColumn {
                    name: name.to_owned(),
                    wire_type: wire.to_owned(),
                    logical,
                    nullable: txid_nullable && name == CDC_COLUMNS[3],
                    select_expr: None,
                }),
        );
    }
    Ok(ChunkRead {
        cdc,
        relation: relation_ref(&e.relation),
        columns,
        infinity: e.infinity,
        range: match (&c.range, &e.chunk_key) {
            (Some(r), Some(k)) => Some(RangeFilter {
                column: k.column.clone(),
                lower: r.lower,
                upper: r.upper,
                include_null: r.include_null,
            }),
            (None, _) => None,
            (Some(_), None) => {
                return Err(ExecError::Internal(format!(
                    "export {}: chunk {} has a key range but the export has no chunk key",
                    e.name, c.id
                )))
            }
        },
        pages: match (&c.pages, &e.page_chunking) {
            (Some(p), Some(_)) => Some((p.lower, p.upper)),
            (None, _) => None,
            (Some(_), None) => {
                return Err(ExecError::Internal(format!(
                    "export {}: chunk {} has a page range but the export is not chunked by pages",
                    e.name, c.id
                )))
            }
        },
        // Set by the chunk worker while the export's snapshot is held.
        snapshot: None,
        window: window_filter(e)?,
        batch_rows: e.tuning.batch_rows.max(1) as usize,
        batch_bytes: e.tuning.batch_memory_bytes.max(1) as usize,
        statement_timeout_ms: e.tuning.statement_timeout_ms,
        lock_timeout_ms: e.tuning.lock_timeout_ms,
        use_cursor: c.range.is_none() && c.pages.is_none(),
        on_batch_memory_exceeded: match e.tuning.on_batch_memory_exceeded {
            BatchMemoryPolicy::AutoShrink => rivet_sources::BatchMemoryPolicy::AutoShrink,
            BatchMemoryPolicy::Warn => rivet_sources::BatchMemoryPolicy::Warn,
            BatchMemoryPolicy::Fail => rivet_sources::BatchMemoryPolicy::Fail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(window: serde_json::Value) -> PlannedExport {
        serde_json::from_value(serde_json::json!({
            "name": "events",
            "relation": {"kind": "table", "schema": "public", "name": "events"},
            "mode": "full",
            "wave": 1,
            "columns": [],
            "primary_key": [],
            "all_columns": true,
            "row_estimate": 0,
            "format": "parquet",
            "compression": "zstd",
            "infinity": "clamp",
            "destination": {"type": "local", "path": "out"},
            "tuning": {
                "profile": "balanced", "parallelism": 1, "batch_rows": 10,
                "batch_memory_bytes": 10, "on_batch_memory_exceeded": "auto_shrink",
                "row_group_bytes": 10, "statement_timeout_ms": 1, "lock_timeout_ms": 1,
                "max_retries": 0, "retry_backoff_ms": 1
            },
            "window": window,
            "chunks": [{"id": "events/00001", "seq": 1, "row_estimate": 0, "file": "part-00001.parquet"}]
        }))
        .expect("a valid planned export")
    }

    #[test]
    fn a_window_bound_that_does_not_parse_is_an_error_never_an_open_bound() {
        let good = serde_json::json!({
            "kind": "incremental", "column": "updated_at", "value_type": "timestamptz",
            "lower": "2026-11-27T00:00:00Z", "upper": "2026-11-28T00:00:00Z", "seq": 2
        });
        let e = export(good.clone());
        let read = chunk_read(&e, &e.chunks[0]).unwrap();
        assert!(read.window.unwrap().lower.is_some());
        for (key, value) in [("lower", "yesterday"), ("upper", "soon")] {
            let mut bad = good.clone();
            bad[key] = value.into();
            let e = export(bad);
            let err = chunk_read(&e, &e.chunks[0]).unwrap_err().to_string();
            assert!(err.contains(&format!("window {key} bound")), "{err}");
        }
        let mut empty = good;
        empty.as_object_mut().unwrap().remove("upper");
        let e = export(empty);
        assert!(chunk_read(&e, &e.chunks[0]).is_err());
    }
}
