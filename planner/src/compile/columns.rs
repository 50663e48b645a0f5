//! Which columns an export writes and how: the config's `columns:` subset, each
//! column's sealed output type, Parquet dictionary choice from statistics, meta columns,
//! and quality gates that may only name exported columns.

use rivet_schema::config::ExportConfig;
use rivet_schema::plan::PlannedColumn;
use rivet_sources::SourceColumn;

use super::{cfg_err, Described};
use crate::error::PlanError;

/// Quality gates may only name exported columns.
pub(super) fn check_quality_columns(
    i: usize,
    e: &ExportConfig,
    columns: &[PlannedColumn],
) -> Result<(), PlanError> {
    let Some(q) = &e.quality else { return Ok(()) };
    let known = |name: &str| columns.iter().any(|c| c.name == name);
    let list = || {
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in q.null_ratio_max.iter().flat_map(|m| m.keys()) {
        if !known(name) {
            return Err(cfg_err(
                format!("exports[{i}].quality.null_ratio_max.{name}"),
                format!(
                    "`{name}` is not an exported column; the columns are: {}",
                    list()
                ),
            ));
        }
    }
    for (j, name) in q.unique_columns.iter().flatten().enumerate() {
        if !known(name) {
            return Err(cfg_err(
                format!("exports[{i}].quality.unique_columns[{j}]"),
                format!(
                    "`{name}` is not an exported column; the columns are: {}",
                    list()
                ),
            ));
        }
    }
    Ok(())
}

/// The export's meta columns, refusing duplicates and clashes with source columns.
pub(super) fn meta_columns(
    i: usize,
    e: &ExportConfig,
    columns: &[PlannedColumn],
) -> Result<Vec<rivet_schema::config::MetaColumn>, PlanError> {
    let mut out: Vec<rivet_schema::config::MetaColumn> = Vec::new();
    for (j, m) in e.meta_columns.iter().flatten().enumerate() {
        let at = format!("exports[{i}].meta_columns[{j}]");
        if out.contains(m) {
            return Err(cfg_err(at, "listed twice"));
        }
        if columns.iter().any(|c| c.name == m.column_name()) {
            return Err(cfg_err(
                at,
                format!(
                    "the source already has a column named `{}`; export it under another name with a `query:` or drop this meta column",
                    m.column_name()
                ),
            ));
        }
        out.push(*m);
    }
    Ok(out)
}

pub(super) fn select_columns(
    i: usize,
    e: &ExportConfig,
    d: &Described,
) -> Result<Vec<PlannedColumn>, PlanError> {
    let what = d.relation.display_name();
    let chosen: Vec<(usize, &SourceColumn)> = match &e.columns {
        None => d.columns.iter().enumerate().collect(),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(j, n)| {
                d.columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| (j, c))
                    .ok_or_else(|| d.no_such_column(format!("exports[{i}].columns[{j}]"), n))
            })
            .collect::<Result<_, _>>()?,
    };
    if chosen.is_empty() {
        return Err(cfg_err(
            format!("exports[{i}]"),
            format!("{what} has no columns to export"),
        ));
    }
    chosen
        .into_iter()
        .map(|(j, c)| {
            let logical = c.logical.clone().map_err(|reason| {
                let path = match &e.columns {
                    Some(_) => format!("exports[{i}].columns[{j}]"),
                    None => format!(
                        "exports[{i}].{}",
                        if e.table.is_some() { "table" } else { "query" }
                    ),
                };
                cfg_err(
                    path,
                    format!(
                        "column `{}` of {what} ({}): {reason}",
                        c.name, c.declared_type
                    ),
                )
            })?;
            Ok(PlannedColumn {
                name: c.name.clone(),
                declared_type: c.declared_type.clone(),
                wire_type: c.wire_type.clone(),
                dictionary: wants_dictionary(c.n_distinct, d.row_estimate),
                logical,
                nullable: c.nullable,
            })
        })
        .collect()
}

/// Dictionary-encode a column when its values repeat: at most 10% distinct (or at
/// most 1,000 distinct values). Without statistics, keep Parquet's default (on).
pub(super) fn wants_dictionary(n_distinct: Option<f64>, rows: u64) -> bool {
    let Some(n) = n_distinct else {
        return true;
    };
    let rows = rows.max(1) as f64;
    let (count, ratio) = if n < 0.0 {
        (-n * rows, -n)
    } else {
        (n, n / rows)
    };
    count <= 1_000.0 || ratio <= 0.10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_chosen_for_repeating_values_only() {
        assert!(wants_dictionary(None, 1_000_000));
        assert!(wants_dictionary(Some(12.0), 1_000_000));
        assert!(wants_dictionary(Some(-0.05), 1_000_000));
        assert!(!wants_dictionary(Some(-1.0), 1_000_000));
        assert!(!wants_dictionary(Some(500_000.0), 1_000_000));
        assert!(wants_dictionary(Some(-1.0), 500));
    }
}
