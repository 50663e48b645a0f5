//! OpenLineage run events for an apply, so a lineage backend (Marquez, DataHub, …) sees
//! each export as a job whose input is the source table and whose output is the
//! destination, with the exported schema and, on completion, rows and bytes. One event
//! per export at the start and one at the end (COMPLETE or FAIL), as JSON objects.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use rivet_schema::config::{DestinationKind, SourceKind};
use rivet_schema::plan::{Plan, PlannedExport, Relation};

use crate::finalize::FinalizedExport;

const PRODUCER: &str = concat!("urn:rivet:", env!("CARGO_PKG_VERSION"));
const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA_FACET: &str = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json";
const STATS_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json";

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
}

/// OpenLineage run ids are UUIDs: Rivet's run id, hashed into one (stable, so the
/// START and the COMPLETE of a run match).
fn run_uuid(run_id: &str, export: &str) -> String {
    let h = Sha256::digest(format!("{run_id}/{export}").as_bytes());
    let mut b: [u8; 16] = h[..16].try_into().expect("sha256 has 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The source dataset: namespace `postgres://host:port`, name `db.schema.table`.
fn input(plan: &Plan, source_target: &str, e: &PlannedExport) -> Value {
    let scheme = match plan.body.source.kind {
        SourceKind::Postgres => "postgres",
        SourceKind::Mysql => "mysql",
        SourceKind::Mssql => "mssql",
    };
    let (host, db) = source_target.split_once('/').unwrap_or((source_target, ""));
    let name = match &e.relation {
        Relation::Table { schema, name } if plan.body.source.kind == SourceKind::Mysql => {
            format!("{schema}.{name}")
        }
        Relation::Table { schema, name } => format!("{db}.{schema}.{name}"),
        Relation::Query { .. } => format!("{db}.query.{}", e.name),
    };
    json!({
        "namespace": format!("{scheme}://{host}"),
        "name": name,
        "facets": { "schema": schema_facet(e) },
    })
}

fn schema_facet(e: &PlannedExport) -> Value {
    json!({
        "_producer": PRODUCER,
        "_schemaURL": SCHEMA_FACET,
        "fields": e.columns.iter().map(|c| json!({
            "name": c.name,
            "type": c.logical.display_name(),
            "description": c.declared_type,
        })).collect::<Vec<_>>(),
    })
}

/// The destination dataset: `file` + path, `s3://bucket` + prefix, and so on.
fn output(e: &PlannedExport, done: Option<&FinalizedExport>) -> Value {
    let d = &e.destination;
    let (namespace, name) = match (&d.kind, &d.store) {
        (DestinationKind::S3, Some(s)) => (format!("s3://{}", s.bucket), s.prefix.clone()),
        (DestinationKind::Gcs, Some(s)) => (format!("gs://{}", s.bucket), s.prefix.clone()),
        (DestinationKind::Azure, Some(s)) => (
            format!(
                "wasbs://{}@{}.blob.core.windows.net",
                s.bucket,
                s.account.as_deref().unwrap_or("")
            ),
            s.prefix.clone(),
        ),
        (DestinationKind::Stdout, _) => ("stdout".into(), e.name.clone()),
        _ => (
            "file".into(),
            std::path::absolute(&d.path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| d.path.clone()),
        ),
    };
    let mut out = json!({
        "namespace": namespace,
        "name": name,
        "facets": { "schema": schema_facet(e) },
    });
    if let Some(done) = done {
        out["outputFacets"] = json!({
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": STATS_FACET,
                "rowCount": done.rows,
                "size": done.bytes,
            }
        });
    }
    out
}

/// One run event per export of the plan. `finished` gives the exports' figures on
/// COMPLETE; `source_target` is the redacted `host:port/database` of the source.
pub fn run_events(
    plan: &Plan,
    run_id: &str,
    event: EventType,
    source_target: &str,
    finished: &[FinalizedExport],
) -> Vec<Value> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    plan.body
        .exports
        .iter()
        .map(|e| {
            let done = finished.iter().find(|f| f.export == e.name);
            json!({
                "eventType": match event {
                    EventType::Start => "START",
                    EventType::Complete => "COMPLETE",
                    EventType::Fail => "FAIL",
                },
                "eventTime": now,
                "producer": PRODUCER,
                "schemaURL": RUN_EVENT_SCHEMA,
                "run": {
                    "runId": run_uuid(run_id, &e.name),
                    "facets": {
                        "rivet": {
                            "_producer": PRODUCER,
                            "_schemaURL": "urn:rivet:run-facet",
                            "runId": run_id,
                            "planDigest": plan.seal.digest,
                        }
                    }
                },
                "job": { "namespace": "rivet", "name": e.name },
                "inputs": [input(plan, source_target, e)],
                "outputs": [output(e, done)],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_stable_version_8_uuids() {
        let a = run_uuid("run-1-2", "orders");
        assert_eq!(a, run_uuid("run-1-2", "orders"));
        assert_ne!(a, run_uuid("run-1-2", "items"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }
}
