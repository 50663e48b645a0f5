//! `rivet doctor`: checks that a config can run before anyone waits for a night run —
//! the source connects, every table or query can be read (no rows are read), and every
//! destination accepts a write, a read-back, a listing and a delete. Each check is one
//! [`Check`] with what to do when it fails; the CLI prints them.

use rivet_schema::config::{DestinationKind, SourceConfig};
use rivet_schema::names::split_table_name;
use rivet_schema::plan::PlannedDestination;
use rivet_sources::{open_catalog, ConnectionSettings, RelationRef, TableRequest};

use crate::dest::Destination;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    /// Worth knowing before the night, but not a reason to fail (`doctor` exits 0).
    Warn,
    Fail,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub level: Level,
    /// What was checked: `source`, `export orders`, `export orders destination`.
    pub what: String,
    pub detail: String,
    /// What to do about a failure (empty when it passed).
    pub fix: String,
}

impl Check {
    fn pass(what: &str, detail: String) -> Check {
        Check {
            level: Level::Pass,
            what: what.to_owned(),
            detail,
            fix: String::new(),
        }
    }

    fn warn(what: &str, detail: String, fix: &str) -> Check {
        Check {
            level: Level::Warn,
            what: what.to_owned(),
            detail,
            fix: fix.to_owned(),
        }
    }

    fn fail(what: &str, detail: String, fix: &str) -> Check {
        Check {
            level: Level::Fail,
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
    /// The slot and publication of a `cdc` export, checked live (existence, `wal_status`,
    /// WAL retained and not yet confirmed).
    pub cdc: Option<(String, String)>,
}

/// What the source's statistics say an export will read, for the free-space check.
pub type SourceBytes = std::collections::HashMap<String, u64>;

/// Connects to the source and checks that each export's relation is readable; returns
/// the checks and, for tables with statistics, about how many bytes each export reads.
pub fn check_source(source: &SourceConfig, exports: &[ExportTarget]) -> (Vec<Check>, SourceBytes) {
    let mut sizes = SourceBytes::new();
    let checks = check_source_into(source, exports, &mut sizes);
    (checks, sizes)
}

fn check_source_into(
    source: &SourceConfig,
    exports: &[ExportTarget],
    sizes: &mut SourceBytes,
) -> Vec<Check> {
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
                        if let Some(width) = t.avg_row_bytes {
                            sizes.insert(e.name.clone(), t.row_estimate.saturating_mul(width));
                        }
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
        let check = match relation {
            Err(m) => Check::fail(
                &what,
                settings.redact(&m),
                "check the table name (exact, case-sensitive; schema.table) or the query",
            ),
            Ok(rel) => {
                let readable = match catalog.can_read(&rel) {
                    Ok(()) => Check::pass(&what, format!("{} is readable", describe(&rel))),
                    Err(err) => Check::fail(
                        &what,
                        settings.redact(&err.to_string()),
                        "grant SELECT on it to the user Rivet connects as",
                    ),
                };
                if let (Some((slot, publication)), RelationRef::Table { schema, name }) =
                    (&e.cdc, &rel)
                {
                    checks.push(readable);
                    if settings.kind == rivet_schema::config::SourceKind::Mssql {
                        let what = format!("export {} change data capture", e.name);
                        match catalog.change_table_facts(schema, name, None) {
                            Ok(f) => change_table_check(&what, &f, schema, name),
                            Err(err) => Check::fail(
                                &what,
                                settings.redact(&err.to_string()),
                                "see docs/cdc.md#sql-server for what change capture needs",
                            ),
                        }
                    } else if settings.kind == rivet_schema::config::SourceKind::Mysql {
                        let what = format!("export {} binary log", e.name);
                        match catalog.binlog_facts(schema, name, None) {
                            Ok(f) => binlog_check(&what, &f),
                            Err(err) => Check::fail(
                                &what,
                                settings.redact(&err.to_string()),
                                "see docs/cdc.md#mysql-and-mariadb for what binary log capture needs",
                            ),
                        }
                    } else {
                        let what = format!("export {} slot", e.name);
                        match catalog.cdc_facts(schema, name, slot, publication) {
                            Ok(f) => slot_check(&what, &e.name, slot, publication, &f),
                            Err(err) => Check::fail(
                                &what,
                                settings.redact(&err.to_string()),
                                "see docs/cdc.md for what change capture needs",
                            ),
                        }
                    }
                } else {
                    readable
                }
            }
        };
        checks.push(check);
    }
    checks
}

/// Change data capture as a SQL Server `cdc` export needs it: enabled on the database
/// and the table, the Agent running; the capture instances and their oldest change are
/// shown.
fn change_table_check(
    what: &str,
    f: &rivet_sources::ChangeTableFacts,
    schema: &str,
    table: &str,
) -> Check {
    if let Some(u) = rivet_sources::mssql::cdc::unmet_prerequisite(f, schema, table) {
        return Check::fail(what, u.problem, &u.fix);
    }
    let instances = f
        .instances
        .iter()
        .map(|i| {
            format!(
                "{} (oldest change {})",
                i.name,
                rivet_schema::plan::mssql_lsn_text(&i.min_lsn)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    match &f.agent {
        // A stopped Agent is an unmet prerequisite, refused above.
        Ok(_) => Check::pass(
            what,
            format!("capture instance(s) {instances}; SQL Server Agent running"),
        ),
        Err(why) => Check::warn(
            what,
            format!("capture instance(s) {instances}; the SQL Server Agent: {why}"),
            "grant VIEW SERVER STATE so rivet can check that the capture job runs",
        ),
    }
}

/// The binary log as a MySQL/MariaDB `cdc` export needs it: on, ROW, FULL images,
/// columns the row images are decoded for; the log's end, size and expiry are shown.
fn binlog_check(what: &str, f: &rivet_sources::BinlogFacts) -> Check {
    if let Some(u) = rivet_sources::mysql::binlog::unmet_prerequisite(f) {
        return Check::fail(what, u.problem, &u.fix);
    }
    let problems: Vec<String> = f
        .columns
        .iter()
        .filter_map(rivet_sources::mysql::binlog::column_problem)
        .collect();
    if !problems.is_empty() {
        return Check::fail(
            what,
            problems.join("; "),
            "leave these columns out with `columns:` (docs/cdc.md#types)",
        );
    }
    let bytes: u64 = f.files.iter().map(|(_, b)| b).sum();
    let kept = f
        .retention_seconds
        .map_or("kept until purged by hand".to_owned(), |s| {
            format!("expiring after {:.1} day(s)", s as f64 / 86_400.0)
        });
    let detail = format!(
        "ROW, FULL images; log end {}; {} file(s), {} on the server (oldest {}), {kept}",
        f.current,
        f.files.len(),
        human_bytes(bytes),
        f.files.first().map_or("none", |(n, _)| n.file.as_str())
    );
    if f.retention_seconds.is_none() {
        return Check::warn(
            what,
            detail,
            "without an expiry the binary log grows until purged by hand; set binlog_expire_logs_seconds above your longest gap between applies",
        );
    }
    Check::pass(what, detail)
}

/// The live state of a `cdc` export's slot: missing objects and a lost slot fail; a
/// slot whose WAL is at risk warns; otherwise the lag (WAL not yet confirmed) and the
/// WAL retained are shown.
fn slot_check(
    what: &str,
    export: &str,
    slot: &str,
    publication: &str,
    f: &rivet_sources::CdcFacts,
) -> Check {
    let setup = "run `rivet cdc setup -c <config>` (docs/cdc.md)";
    if f.wal_level != "logical" {
        return Check::fail(
            what,
            format!("wal_level is `{}`, not `logical`", f.wal_level),
            "run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart PostgreSQL",
        );
    }
    let Some(s) = &f.slot else {
        return Check::fail(what, format!("slot `{slot}` does not exist"), setup);
    };
    if f.publication != Some(true) {
        return Check::fail(
            what,
            format!("publication `{publication}` is missing or does not hold the table"),
            setup,
        );
    }
    let lost = format!(
        "`rivet cdc teardown`, `rivet cdc setup`, `rivet state reset-cursor {export}`, then take a new snapshot (docs/cdc.md)"
    );
    if s.wal_status == "lost" {
        return Check::fail(
            what,
            format!("slot `{slot}` is lost (wal_status): the server removed WAL it needed"),
            &lost,
        );
    }
    let behind = |lsn: Option<u64>| {
        lsn.map_or("unknown".to_owned(), |l| {
            human_bytes(f.current_lsn.saturating_sub(l))
        })
    };
    let mut detail = format!(
        "slot `{slot}` (wal_status {}): {} not yet confirmed (lag), {} of WAL retained",
        s.wal_status,
        behind(s.confirmed_flush),
        behind(s.restart_lsn)
    );
    if let Some(safe) = s.safe_wal_size {
        detail.push_str(&format!(
            "; {} more may be written before the slot is lost (safe_wal_size)",
            human_bytes(safe.max(0) as u64)
        ));
    }
    match s.wal_status.as_str() {
        "unreserved" | "extended" => Check::warn(
            what,
            detail,
            "plan and apply a window now, or raise max_slot_wal_keep_size; a forgotten slot fills the server's disk",
        ),
        _ => Check::pass(what, detail),
    }
}

fn describe(r: &RelationRef) -> String {
    match r {
        RelationRef::Table { schema, name } => format!("table {schema}.{name}"),
        RelationRef::Query(_) => "the query".into(),
    }
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e12 => format!("{:.1} TB", n / 1e12),
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n => format!("{:.0} kB", n / 1e3),
    }
}

/// Free space of the file system a local destination is (or will be) on: the nearest
/// existing directory of its path.
pub fn free_space(path: &std::path::Path) -> Option<u64> {
    let dir = path.ancestors().find(|a| a.is_dir())?;
    fs4::available_space(dir).ok()
}

/// The free-space check of a local destination against what the source's statistics
/// say the export reads: a warning when it may not fit (compressed Parquet is often
/// much smaller than the source, CSV can be larger).
fn space_check(e: &ExportTarget, sizes: &SourceBytes) -> Option<Check> {
    if e.destination.kind != DestinationKind::Local {
        return None;
    }
    let path = &e.destination.path;
    let free = free_space(std::path::Path::new(path))?;
    let what = format!("export {} free space", e.name);
    Some(match sizes.get(&e.name) {
        Some(need) if *need > free => Check {
            level: Level::Warn,
            what,
            detail: format!(
                "the source holds about {} for this export but only {} is free at {path}",
                human_bytes(*need),
                human_bytes(free)
            ),
            fix: "free space or choose another destination.path; compressed Parquet is usually several times smaller than the source, CSV can be larger".into(),
        },
        Some(need) => Check::pass(
            &what,
            format!(
                "{} free at {path}; the source holds about {} for this export",
                human_bytes(free),
                human_bytes(*need)
            ),
        ),
        None => Check::pass(
            &what,
            format!(
                "{} free at {path} (no table statistics to compare with)",
                human_bytes(free)
            ),
        ),
    })
}

/// Writes, reads back, lists and deletes a probe file in each export's destination, and
/// compares a local destination's free space with the export's size at the source.
pub fn check_destinations(
    exports: &[ExportTarget],
    sizes: &SourceBytes,
    rt: &tokio::runtime::Handle,
) -> Vec<Check> {
    exports
        .iter()
        .flat_map(|e| {
            let what = format!("export {} destination", e.name);
            let checked =
                Destination::open(&e.name, &e.destination, rt).and_then(|d| d.probe(&e.name));
            let probe = match checked {
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
            };
            std::iter::once(probe).chain(space_check(e, sizes))
        })
        .collect()
}
