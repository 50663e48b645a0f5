//! The row window of an `incremental` or `time_window` export, sealed in the plan:
//! bounds as canonical text of the window column's type, an incremental window starting
//! at the committed position from state and ending where it is safe to stop (ties and
//! late rows at the boundary wait for the next window).

use rivet_schema::config::{ExportConfig, ExportMode};
use rivet_schema::plan::{CursorType, PlannedWindow, WindowKind};
use rivet_schema::LogicalType;
use rivet_sources::{Catalog, SourceColumn, SqlValue};

use super::{cfg_err, relation_ref, Described, PlanInputs};
use crate::error::PlanError;

/// The row window of an `incremental` or `time_window` export (None for other modes).
pub(super) fn plan_window(
    i: usize,
    e: &ExportConfig,
    d: &Described,
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
    statement_timeout_ms: u64,
) -> Result<Option<PlannedWindow>, PlanError> {
    let (kind, key) = match e.mode {
        ExportMode::Incremental => (WindowKind::Incremental, "cursor_column"),
        ExportMode::TimeWindow => (WindowKind::TimeWindow, "time_column"),
        _ => return Ok(None),
    };
    let at = |k: &str| format!("exports[{i}].{k}");
    let find = |k: &str, name: &str| {
        d.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| d.no_such_column(at(k), name))
    };
    let type_of = |k: &str, c: &SourceColumn| -> Result<CursorType, PlanError> {
        let unusable = |t: String| {
            cfg_err(
                at(k),
                format!(
                    "column `{}` is {t}; a window column must be an integer, date, timestamp, timestamptz or text column",
                    c.name
                ),
            )
        };
        match &c.logical {
            Ok(l) if l.is_integer() && *l != LogicalType::UInt64 => Ok(CursorType::Integer),
            Ok(LogicalType::Timestamp) => Ok(CursorType::Timestamp),
            Ok(LogicalType::TimestampUtc) => Ok(CursorType::Timestamptz),
            Ok(LogicalType::Date) => Ok(CursorType::Date),
            Ok(LogicalType::Utf8) => Ok(CursorType::Text),
            Ok(other) => Err(unusable(other.display_name())),
            Err(_) => Err(unusable(c.declared_type.clone())),
        }
    };
    let column_name = match kind {
        WindowKind::Incremental => e.cursor_column.clone(),
        WindowKind::TimeWindow => e.time_column.clone(),
        WindowKind::Cdc => return Ok(None),
    }
    .ok_or_else(|| cfg_err(at(key), format!("`{key}` is required in this mode")))?;
    let column = find(key, &column_name)?;
    let value_type = type_of(key, column)?;
    let as_of_micros = inputs.as_of.saturating_mul(1_000_000);
    let at_time = |us: i64, t: CursorType| -> SqlValue {
        match t {
            CursorType::Timestamptz => SqlValue::TimestampUtc(us),
            CursorType::Date => SqlValue::Date(us.div_euclid(86_400_000_000) as i32),
            CursorType::Integer => SqlValue::Int(us.div_euclid(1_000_000)),
            _ => SqlValue::Timestamp(us),
        }
    };
    if kind == WindowKind::TimeWindow {
        let unix = e.time_column_type == Some(rivet_schema::config::TimeColumnType::Unix);
        match (unix, value_type) {
            (true, CursorType::Integer) => {}
            (true, other) => {
                return Err(cfg_err(
                    at("time_column_type"),
                    format!("`unix` needs an integer column of seconds; `{column_name}` is {other:?}"),
                ))
            }
            (false, CursorType::Timestamp | CursorType::Timestamptz | CursorType::Date) => {}
            (false, _) => {
                return Err(cfg_err(
                    at("time_column"),
                    format!("`{column_name}` is not a date or time column; for integer seconds since 1970 set `time_column_type: unix`"),
                ))
            }
        }
        let day = 86_400_000_000i64;
        let upper = as_of_micros.div_euclid(day) * day;
        let days = i64::from(e.days_window.unwrap_or(1));
        let lower = upper - days * day;
        return Ok(Some(PlannedWindow {
            kind,
            column: column_name,
            fallback_column: None,
            value_type,
            lower: Some(at_time(lower, value_type).canonical()),
            upper: Some(at_time(upper, value_type).canonical()),
            seq: None,
        }));
    }
    let fallback = match &e.cursor_fallback_column {
        Some(name) => {
            let c = find("cursor_fallback_column", name)?;
            let t = type_of("cursor_fallback_column", c)?;
            if t != value_type {
                return Err(cfg_err(
                    at("cursor_fallback_column"),
                    format!("`{name}` is {t:?} but `{column_name}` is {value_type:?}; the fallback must have the cursor's type"),
                ));
            }
            Some(name.clone())
        }
        None => None,
    };
    let lag = e.settle_lag.unwrap_or(0);
    if lag > 0 && value_type == CursorType::Text {
        return Err(cfg_err(
            at("settle_lag"),
            "`settle_lag` needs an integer, date or time cursor; text values have no distance to lag by",
        ));
    }
    let committed = inputs.cursors.get(&e.name);
    if let Some(c) = committed {
        if c.column != column_name || c.value_type != value_type {
            return Err(cfg_err(
                at("cursor_column"),
                format!(
                    "the state database holds a position for export `{}` on column `{}` ({:?}), but the config now says `{column_name}` ({value_type:?}); to start this export over from the beginning run `rivet state reset-cursor {}`",
                    e.name, c.column, c.value_type, e.name
                ),
            ));
        }
    }
    let lower = committed.map(|c| c.position.clone());
    let seq = committed.map_or(1, |c| c.seq + 1);
    let lag = i64::try_from(lag).unwrap_or(i64::MAX);
    let upper = match value_type {
        CursorType::Lsn | CursorType::Binlog | CursorType::MssqlLsn => {
            return Err(PlanError::Internal(
                "a row window cannot be on a log position".into(),
            ))
        }
        CursorType::Timestamp | CursorType::Timestamptz | CursorType::Date => Some(
            at_time(
                as_of_micros.saturating_sub(lag.saturating_mul(1_000_000)),
                value_type,
            )
            .canonical(),
        ),
        CursorType::Integer | CursorType::Text => {
            let max = catalog.max_value(
                &relation_ref(&d.relation),
                &column_name,
                fallback.as_deref(),
                statement_timeout_ms,
            )?;
            match (max, value_type) {
                (None, _) => None,
                (Some(m), CursorType::Integer) => {
                    let m: i64 = m.trim().parse().map_err(|_| {
                        PlanError::Internal(format!("MAX of an integer cursor returned `{m}`"))
                    })?;
                    // A unique cursor (the whole primary key) cannot gain another row at
                    // its maximum, so the maximum itself is included; otherwise rows that
                    // share the maximum wait for the next window (exactly-once at ties).
                    let unique = fallback.is_none() && d.primary_key == [column_name.clone()];
                    Some(
                        m.saturating_add(i64::from(unique))
                            .saturating_sub(lag)
                            .to_string(),
                    )
                }
                (Some(m), _) => Some(m),
            }
        }
    };
    // A window that would not move forward is empty: nothing is read and the committed
    // position stays where it is.
    let upper = match (&lower, upper) {
        (Some(lo), Some(hi)) => {
            let forward = match value_type {
                CursorType::Text => hi != *lo,
                t => {
                    let parse = |v: &str| SqlValue::parse(t, v).map_err(PlanError::Internal);
                    ordered(&parse(&hi)?) > ordered(&parse(lo)?)
                }
            };
            forward.then_some(hi)
        }
        (_, hi) => hi,
    };
    Ok(Some(PlannedWindow {
        kind,
        column: column_name,
        fallback_column: fallback,
        value_type,
        lower,
        upper,
        seq: Some(seq),
    }))
}

/// A date/time/integer bound as one comparable number.
fn ordered(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Int(i) | SqlValue::Timestamp(i) | SqlValue::TimestampUtc(i) => *i,
        SqlValue::Date(d) => i64::from(*d),
        SqlValue::Text(_) => 0,
    }
}
