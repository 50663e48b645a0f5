//! Schema drift between runs of an export: the columns a run writes are compared with
//! what the last finalized run of the same export wrote to the same destination
//! (remembered in state), and the widest text/JSON/binary values are watched for sudden
//! growth. What `on_schema_drift` lets through is journaled; what it refuses stops the
//! apply before anything is written.

use std::collections::BTreeMap;

use rivet_schema::plan::PlannedExport;

use crate::error::ExecError;
use crate::state::{RecordedShape, ShapeColumn, ShapeKey, StateStore};

/// The shape history an export is compared with (see [`ShapeKey`]).
pub fn shape_key(e: &PlannedExport) -> ShapeKey {
    ShapeKey {
        export: e.name.clone(),
        relation: match &e.relation {
            rivet_schema::plan::Relation::Query { sql } => sql.clone(),
            other => other.display_name(),
        },
        destination: e.destination.display(),
    }
}

/// The planned columns of an export as a run records them.
pub fn planned_shape(e: &PlannedExport) -> Vec<ShapeColumn> {
    e.columns
        .iter()
        .map(|c| ShapeColumn {
            name: c.name.clone(),
            declared_type: c.declared_type.clone(),
            nullable: c.nullable,
        })
        .collect()
}

fn describe(c: &ShapeColumn) -> String {
    format!(
        "`{}` {}{}",
        c.name,
        c.declared_type,
        if c.nullable { "" } else { " not null" }
    )
}

/// What changed between the recorded columns and the planned ones, one sentence each.
pub fn column_changes(before: &[ShapeColumn], now: &[ShapeColumn]) -> Vec<String> {
    let mut changes = Vec::new();
    for c in now {
        match before.iter().find(|b| b.name == c.name) {
            None => changes.push(format!("column {} is new", describe(c))),
            Some(b) if b != c => {
                changes.push(format!("column {} is now {}", describe(b), describe(c)))
            }
            Some(_) => {}
        }
    }
    for b in before {
        if !now.iter().any(|c| c.name == b.name) {
            changes.push(format!("column {} is gone", describe(b)));
        }
    }
    changes
}

/// Structural drift since the last finalized run of each export: refused under
/// `on_schema_drift: fail` (the default), returned for journaling otherwise.
pub fn since_last_run(
    exports: &[PlannedExport],
    state: &StateStore,
) -> Result<Vec<(String, String)>, ExecError> {
    let mut drift = Vec::new();
    for e in exports {
        let key = shape_key(e);
        let Some(before) = state.shape(&key)? else {
            continue;
        };
        let changes = column_changes(&before.columns, &planned_shape(e));
        if changes.is_empty() {
            continue;
        }
        if crate::stale::tolerant(e).is_none() {
            return Err(ExecError::DriftSinceLastRun {
                export: e.name.clone(),
                destination: key.destination,
                changes: changes.join("; "),
            });
        }
        drift.push((
            e.name.clone(),
            format!("since the last run: {}", changes.join("; ")),
        ));
    }
    Ok(drift)
}

/// After a finalized run: warns (and returns journal details) for columns whose widest
/// value grew past `shape_drift_warn_factor` times the last run's, then records this
/// run's shape. A resumed run measures only the chunks it read itself.
pub fn record_run_shape(
    e: &PlannedExport,
    widths: BTreeMap<String, u64>,
    state: &StateStore,
    digest: &str,
    run_id: &str,
) -> Result<Vec<String>, ExecError> {
    let key = shape_key(e);
    let mut grown = Vec::new();
    if let Some(before) = state.shape(&key)? {
        let factor = e.shape_drift_warn_factor.unwrap_or(2.0);
        for (column, now) in &widths {
            let was = before.widths.get(column).copied().unwrap_or(0);
            if was > 0 && (*now as f64) > factor * was as f64 {
                grown.push(format!(
                    "column `{column}`: widest value {now} bytes, {was} in the last run (more than {factor}×)"
                ));
            }
        }
    }
    state.record_shape(
        &key,
        &RecordedShape {
            columns: planned_shape(e),
            widths,
        },
        digest,
        run_id,
    )?;
    Ok(grown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> ShapeColumn {
        ShapeColumn {
            name: name.into(),
            declared_type: ty.into(),
            nullable,
        }
    }

    #[test]
    fn column_names_with_spaces_are_compared_whole() {
        let before = vec![col("order id", "integer", false), col("note", "text", true)];
        let now = vec![col("order id", "bigint", false), col("note", "text", true)];
        assert_eq!(
            column_changes(&before, &now),
            vec!["column `order id` integer not null is now `order id` bigint not null"]
        );
        let now = vec![col("order id", "integer", false)];
        assert_eq!(
            column_changes(&before, &now),
            vec!["column `note` text is gone"]
        );
    }
}
