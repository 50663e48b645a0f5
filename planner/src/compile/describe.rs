//! Describing every export's relation in batched catalog calls: all tables in one
//! call, each query prepared (never run) to learn its result columns.

use rivet_schema::config::Config;
use rivet_schema::names::split_table_name;
use rivet_schema::plan::Relation;
use rivet_sources::{Catalog, SourceError, TableRequest};

use super::{cfg_err, Described};
use crate::error::PlanError;

pub(super) fn describe_all(
    config: &Config,
    catalog: &mut dyn Catalog,
) -> Result<Vec<Described>, PlanError> {
    let mut table_requests = Vec::new();
    let mut table_export_index = Vec::new();
    for (i, e) in config.exports.iter().enumerate() {
        if let Some(t) = &e.table {
            let n = split_table_name(t).map_err(|m| cfg_err(format!("exports[{i}].table"), m))?;
            table_requests.push(TableRequest {
                schema: n.schema,
                name: n.name,
            });
            table_export_index.push(i);
        }
    }
    let tables = match catalog.describe_tables(&table_requests) {
        Ok(t) => t,
        Err(SourceError::TableNotFound { table }) => {
            let i = table_export_index
                .iter()
                .zip(&table_requests)
                .find(|(_, r)| match &r.schema {
                    Some(s) => format!("{s}.{}", r.name) == table,
                    None => r.name == table,
                })
                .map(|(i, _)| *i)
                .ok_or_else(|| {
                    PlanError::Internal(format!(
                        "the source reports table `{table}` missing, which no export asked for"
                    ))
                })?;
            return Err(cfg_err(
                format!("exports[{i}].table"),
                format!(
                    "table `{table}` does not exist in the source (or the user cannot see it); \
                     names are exact and case-sensitive, write `schema.table` for a table \
                     outside the default schema"
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut tables = tables.into_iter();
    let mut out = Vec::with_capacity(config.exports.len());
    for (i, e) in config.exports.iter().enumerate() {
        if e.table.is_some() {
            let t = tables.next().ok_or_else(|| {
                PlanError::Internal("fewer tables described than requested".into())
            })?;
            out.push(Described {
                relation: Relation::Table {
                    schema: t.schema,
                    name: t.name,
                },
                columns: t.columns,
                primary_key: t.primary_key,
                row_estimate: t.row_estimate,
                avg_row_bytes: t.avg_row_bytes,
            });
        } else if let Some(sql) = &e.query {
            let columns = catalog.describe_query(sql).map_err(|err| match err {
                SourceError::Query { detail, .. } => cfg_err(
                    format!("exports[{i}].query"),
                    format!("the source cannot prepare this query: {detail}"),
                ),
                other => other.into(),
            })?;
            out.push(Described {
                relation: Relation::Query { sql: sql.clone() },
                columns,
                primary_key: Vec::new(),
                row_estimate: 0,
                avg_row_bytes: None,
            });
        }
    }
    Ok(out)
}
