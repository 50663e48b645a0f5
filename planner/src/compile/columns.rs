//! Which columns an export writes and how: the config's `columns:` subset, each
//! column's sealed output type, Parquet dictionary choice from statistics, meta columns,
//! and quality gates that may only name exported columns.

use rivet_schema::config::{Config, ExportConfig, SourceKind, TypesPolicy};
use rivet_schema::plan::{ColumnMapping, PlannedColumn};
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
    config: &Config,
    d: &Described,
) -> Result<Vec<PlannedColumn>, Vec<(String, String)>> {
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
                    .ok_or_else(|| {
                        vec![(
                            format!("exports[{i}].columns[{j}]"),
                            format!(
                                "column `{n}` does not exist in {what}; its columns are: {}",
                                d.columns
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )]
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if chosen.is_empty() {
        return Err(vec![(
            format!("exports[{i}]"),
            format!("{what} has no columns to export"),
        )]);
    }
    let strict = e.types.or(config.source.types).unwrap_or_default() == TypesPolicy::Strict;
    let tinyint_bool =
        config.source.kind == SourceKind::Mysql && config.source.tinyint1_as_boolean == Some(true);
    let mut problems = Vec::new();
    let mut planned = Vec::with_capacity(chosen.len());
    for (j, c) in chosen {
        let path = match &e.columns {
            Some(_) => format!("exports[{i}].columns[{j}]"),
            None => format!(
                "exports[{i}].{}",
                if e.table.is_some() { "table" } else { "query" }
            ),
        };
        let boolean = tinyint_bool
            .then(|| rivet_sources::mysql::types::tinyint1_as_boolean(c))
            .flatten();
        let (logical, wire_type) = match boolean {
            Some(b) => (b.logical, b.wire_type),
            None => (c.logical.clone(), c.wire_type.clone()),
        };
        let logical = match logical {
            Ok(l) => l,
            Err(reason) => {
                problems.push((
                    path,
                    format!(
                        "column `{}` of {what} ({}): {reason}",
                        c.name, c.declared_type
                    ),
                ));
                continue;
            }
        };
        if strict && c.mapping == ColumnMapping::Text {
            problems.push((
                path,
                format!(
                    "column `{}` of {what} ({}) has no native Arrow type and would export as \
                     the database's text (`{}`), which `types: strict` refuses; drop \
                     `types: strict` to export it as text, or leave the column out with `columns:`",
                    c.name,
                    c.declared_type,
                    c.select_expr.as_deref().unwrap_or("a text cast")
                ),
            ));
            continue;
        }
        planned.push(PlannedColumn {
            name: c.name.clone(),
            declared_type: c.declared_type.clone(),
            wire_type,
            dictionary: wants_dictionary(c.n_distinct, d.row_estimate),
            logical,
            mapping: c.mapping,
            select_expr: c.select_expr.clone(),
            nullable: c.nullable,
        });
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(problems)
    }
}

/// One config error for every column problem found across the exports: the first
/// problem's key path, and every problem listed with its own.
pub(super) fn column_errors(mut problems: Vec<(String, String)>) -> Option<PlanError> {
    match problems.len() {
        0 => None,
        1 => {
            let (path, message) = problems.remove(0);
            Some(cfg_err(path, message))
        }
        n => {
            let path = problems[0].0.clone();
            let list = problems
                .iter()
                .map(|(p, m)| format!("  {p}: {m}"))
                .collect::<Vec<_>>()
                .join("\n");
            Some(cfg_err(
                path,
                format!("{n} column problems, all listed here:\n{list}"),
            ))
        }
    }
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
