//! `rivet doctor`: checks that a config can run before anyone waits for a night run —
//! the source connects, every table or query can be read (no rows are read), and every
//! destination accepts a write, a read-back, a listing and a delete. Each check is one
//! [`Check`] with what to do when it fails; the CLI prints them.

use rivet_schema::config::{DestinationKind, SourceConfig};
use rivet_schema::names::split_table_name;
use rivet_schema::plan::PlannedDestination;
use rivet_sources::{open_catalog, ConnectionSettings, RelationRef, TableRequest};

use crate::dest::Destination;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub ok: bool,
    /// What was checked: `source`, `export orders`, `export orders destination`.
    pub what: String,
    pub detail: String,
    /// What to do about a failure (empty when it passed).
    pub fix: String,
}

impl Check {
    fn pass(what: &str, detail: String) -> Check {
        Check {
            ok: true,
            what: what.to_owned(),
            detail,
            fix: String::new(),
        }
    }

    fn fail(what: &str, detail: String, fix: &str) -> Check {
        Check {
            ok: false,
            what: what.to_owned(),
            detail,
            fix: fix.to_owned(),
        }
    }
}

/// What doctor checks of one export.
#[derive(Debug, Clone)]
pub struct ExportTarget {
    pub name: String,
    /// `schema.table` as the config writes it, or None for a query export.
    pub table: Option<String>,
    pub query: Option<String>,
    pub destination: PlannedDestination,
}

/// Connects to the source and checks that each export's relation is readable.
pub fn check_source(source: &SourceConfig, exports: &[ExportTarget]) -> Vec<Check> {
    let kind = rivet_schema::variant_name(&source.kind);
    let settings = match ConnectionSettings::resolve(source) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::fail(
                "source",
                e.to_string(),
                "set the environment variable or file the config names",
            )]
        }
    };
    let mut catalog = match open_catalog(&settings) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "source",
                settings.redact(&e.to_string()),
                "check host, port, credentials, TLS mode and that the server accepts connections from here",
            )]
        }
    };
    let mut checks = vec![Check::pass(
        "source",
        format!("connected to {} ({kind})", settings.target),
    )];
    for e in exports {
        let what = format!("export {}", e.name);
        let relation = match (&e.table, &e.query) {
            (Some(t), _) => split_table_name(t).and_then(|n| {
                let req = TableRequest {
                    schema: n.schema,
                    name: n.name,
                };
                catalog
                    .describe_tables(std::slice::from_ref(&req))
                    .map_err(|err| err.to_string())
                    .and_then(|mut found| {
                        let t = found
                            .pop()
                            .ok_or_else(|| format!("{t} was not described"))?;
                        Ok(RelationRef::Table {
                            schema: t.schema,
                            name: t.name,
                        })
                    })
            }),
            (None, Some(q)) => catalog
                .describe_query(q)
                .map(|_| RelationRef::Query(q.clone()))
                .map_err(|err| err.to_string()),
            (None, None) => Err("no table or query".into()),
        };
        checks.push(match relation {
            Err(m) => Check::fail(
                &what,
                settings.redact(&m),
                "check the table name (exact, case-sensitive; schema.table) or the query",
            ),
            Ok(rel) => match catalog.can_read(&rel) {
                Ok(()) => Check::pass(&what, format!("{} is readable", describe(&rel))),
                Err(err) => Check::fail(
                    &what,
                    settings.redact(&err.to_string()),
                    "grant SELECT on it to the user Rivet connects as",
                ),
            },
        });
    }
    checks
}

fn describe(r: &RelationRef) -> String {
    match r {
        RelationRef::Table { schema, name } => format!("table {schema}.{name}"),
        RelationRef::Query(_) => "the query".into(),
    }
}

/// Writes, reads back, lists and deletes a probe file in each export's destination.
pub fn check_destinations(exports: &[ExportTarget], rt: &tokio::runtime::Handle) -> Vec<Check> {
    exports
        .iter()
        .map(|e| {
            let what = format!("export {} destination", e.name);
            let checked =
                Destination::open(&e.name, &e.destination, rt).and_then(|d| d.probe(&e.name));
            match checked {
                Ok(detail) => Check::pass(&what, detail),
                Err(err) => Check::fail(
                    &what,
                    err.to_string(),
                    match e.destination.kind {
                        DestinationKind::Local => {
                            "create the directory or make it writable by this user"
                        }
                        _ => "see the permission named above and docs/destinations/ for the least-privilege policy",
                    },
                ),
            }
        })
        .collect()
}
