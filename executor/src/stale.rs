//! Staleness: before anything is written, the executor checks that the source is the
//! database the plan was made against (its sealed identity), re-reads the catalog and
//! refuses the plan if an exported column was dropped, retyped or changed nullability,
//! or — when the export takes every column — a column was added.

use rivet_schema::config::SchemaDriftPolicy;
use rivet_schema::plan::{PlanBody, PlannedExport, Relation};
use rivet_sources::{Catalog, SourceColumn, SourceError, TableRequest};

use crate::error::ExecError;

/// A tolerated change, by export: what `on_schema_drift: warn|continue` let through.
pub type Drift = Vec<(String, String)>;

/// Checks every export of the plan against the live catalog (one batched call for the
/// tables, one describe per query export). Returns the drift that the exports'
/// `on_schema_drift` policies tolerate.
pub fn check_plan_is_current(
    catalog: &mut dyn Catalog,
    body: &PlanBody,
) -> Result<Drift, ExecError> {
    // First: is this the database the plan was made against at all?
    let differences = body.source_identity.differences(&catalog.identity()?);
    if !differences.is_empty() {
        return Err(ExecError::OtherSource { differences });
    }
    let mut drift = Vec::new();
    let tables: Vec<(&PlannedExport, TableRequest)> = body
        .exports
        .iter()
        .filter_map(|e| match &e.relation {
            Relation::Table { schema, name } => Some((
                e,
                TableRequest {
                    schema: Some(schema.clone()),
                    name: name.clone(),
                },
            )),
            Relation::Query { .. } => None,
        })
        .collect();
    let requests: Vec<TableRequest> = tables.iter().map(|(_, r)| r.clone()).collect();
    let described = match catalog.describe_tables(&requests) {
        Ok(d) => d,
        Err(SourceError::TableNotFound { table }) => {
            let export = tables
                .iter()
                .find(|(_, r)| format!("{}.{}", r.schema.as_deref().unwrap_or(""), r.name) == table)
                .map(|(e, _)| e.name.clone())
                .unwrap_or_default();
            return Err(ExecError::Stale {
                export,
                relation: table,
                change: "the table no longer exists".into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    for ((export, _), info) in tables.iter().zip(described) {
        drift.extend(compare(export, &info.columns)?);
    }
    for e in &body.exports {
        if let Relation::Query { sql } = &e.relation {
            let columns = catalog
                .describe_query(sql)
                .map_err(|err| ExecError::Stale {
                    export: e.name.clone(),
                    relation: "query".into(),
                    change: format!("the query no longer prepares ({err})"),
                })?;
            drift.extend(compare(e, &columns)?);
        }
    }
    Ok(drift)
}

fn compare(export: &PlannedExport, live: &[SourceColumn]) -> Result<Drift, ExecError> {
    let stale = |change: String| ExecError::Stale {
        export: export.name.clone(),
        relation: export.relation.display_name(),
        change,
    };
    let mut drift = Vec::new();
    for planned in &export.columns {
        let Some(now) = live.iter().find(|c| c.name == planned.name) else {
            return Err(stale(format!("column `{}` was dropped", planned.name)));
        };
        if now.declared_type != planned.declared_type {
            return Err(stale(format!(
                "column `{}` changed type from {} to {}",
                planned.name, planned.declared_type, now.declared_type
            )));
        }
        // NOT NULL where NULL was planned is harmless; the reverse breaks the file schema.
        if now.nullable != planned.nullable && (now.nullable || tolerant(export).is_none()) {
            return Err(stale(format!(
                "column `{}` changed from {} to {}",
                planned.name,
                if planned.nullable { "NULL" } else { "NOT NULL" },
                if now.nullable { "NULL" } else { "NOT NULL" }
            )));
        }
        if now.nullable != planned.nullable {
            drift.push((
                export.name.clone(),
                format!("column `{}` changed from NULL to NOT NULL", planned.name),
            ));
        }
    }
    if let Some(key) = &export.chunk_key {
        let is_int = live.iter().find(|c| c.name == key.column).map(|c| {
            c.logical
                .as_ref()
                .is_ok_and(rivet_schema::LogicalType::is_integer)
        });
        match is_int {
            None => {
                return Err(stale(format!(
                    "chunk key column `{}` was dropped",
                    key.column
                )))
            }
            Some(false) => {
                return Err(stale(format!(
                    "chunk key column `{}` is no longer an integer column",
                    key.column
                )))
            }
            Some(true) => {}
        }
    }
    if export.all_columns {
        for added in live
            .iter()
            .filter(|c| !export.columns.iter().any(|p| p.name == c.name))
        {
            let change = format!(
                "column `{}` ({}) was added (not exported until the next plan)",
                added.name, added.declared_type
            );
            if tolerant(export).is_none() {
                return Err(stale(format!(
                    "column `{}` ({}) was added",
                    added.name, added.declared_type
                )));
            }
            drift.push((export.name.clone(), change));
        }
    }
    Ok(drift)
}

/// The policy when it lets additive drift through (`warn` or `continue`).
pub fn tolerant(export: &PlannedExport) -> Option<SchemaDriftPolicy> {
    export
        .on_schema_drift
        .filter(|p| *p != SchemaDriftPolicy::Fail)
}
