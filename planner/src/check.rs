//! `rivet check`: what a DBA would flag before the night, from the plan the config
//! compiles to and the source's catalog and statistics — no rows are read. [`gather`]
//! collects the facts per export (live), [`assess`] turns facts into findings (pure, so
//! every rule is tested offline).
//!
//! Over 500 lines only with its tests: the rules are under 400, the offline test of each
//! rule follows them.

use rivet_schema::config::{Config, DestinationKind};
use rivet_schema::plan::{PlannedMode, Relation, WindowKind};
use rivet_sources::{ConnectionHeadroom, Survey, TableRequest};
use serde::Serialize;

use crate::compile::{compile, PlanInputs};
use crate::error::PlanError;
use crate::scaffold::size_text;

/// Read speed assumed to turn a size estimate into a duration (a conservative figure
/// for one connection of a busy server; docs/operations.md says so).
pub const ASSUMED_READ_BYTES_PER_S: u64 = 50_000_000;
/// A full export estimated to hold its snapshot longer than this is flagged.
pub const LONG_SNAPSHOT_S: u64 = 300;
/// A chunk estimated above this many times the even share of rows is flagged.
const SKEW_FACTOR: f64 = 4.0;

/// One warning, naming what it is about and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable identifier of the rule (`chunk_column_not_indexed`, …).
    pub code: &'static str,
    /// The export, or None for the source as a whole.
    pub export: Option<String>,
    /// `schema.table`, when the finding is about a table.
    pub table: Option<String>,
    pub column: Option<String>,
    pub message: String,
    pub fix: String,
}

/// A chunked export's key, as planned.
#[derive(Debug, Clone, Default)]
pub struct ChunkFacts {
    pub column: String,
    pub indexed: bool,
    /// Planned `[lower, upper)` per chunk (None: open end).
    pub ranges: Vec<(Option<i64>, Option<i64>)>,
    /// Equal-frequency histogram of the key, when the engine keeps one.
    pub histogram: Option<Vec<i64>>,
}

/// An incremental or time-window export's column.
#[derive(Debug, Clone, Default)]
pub struct WindowFacts {
    pub incremental: bool,
    pub column: String,
    pub fallback: Option<String>,
    pub indexed: bool,
    pub nullable: bool,
}

/// What `assess` needs to know about one export.
#[derive(Debug, Clone, Default)]
pub struct ExportFacts {
    pub export: String,
    /// None for a query export.
    pub table: Option<String>,
    pub full: bool,
    pub row_estimate: u64,
    /// `row_estimate ×` average row width from statistics (None without statistics).
    pub estimated_bytes: Option<u64>,
    pub chunk: Option<ChunkFacts>,
    pub window: Option<WindowFacts>,
    pub parallelism: u32,
    /// Local destination directory and the free space of its file system.
    pub local: Option<(String, Option<u64>)>,
}

/// What `assess` needs to know about the source as a whole.
#[derive(Debug, Clone)]
pub struct SourceFacts {
    pub headroom: ConnectionHeadroom,
    pub max_source_connections: u32,
    /// What the planner found between Rivet and the database.
    pub connection_path: rivet_schema::plan::ConnectionPath,
}

/// Compiles the config against the source and gathers the facts of every export.
/// `free_space` answers the free bytes of a local path's file system.
pub fn gather(
    config: &Config,
    survey: &mut dyn Survey,
    inputs: &PlanInputs,
    free_space: &dyn Fn(&str) -> Option<u64>,
) -> Result<(Vec<ExportFacts>, SourceFacts), PlanError> {
    let plan = compile(config, survey, inputs)?;
    let tables: Vec<TableRequest> = plan
        .body
        .exports
        .iter()
        .filter_map(|e| match &e.relation {
            Relation::Table { schema, name } => Some(TableRequest {
                schema: Some(schema.clone()),
                name: name.clone(),
            }),
            Relation::Query { .. } => None,
        })
        .collect();
    let infos = survey.describe_tables(&tables)?;
    let indexes = survey.indexes(&tables)?;
    let mut facts = Vec::new();
    for e in &plan.body.exports {
        let at = tables.iter().position(|t| {
            matches!(&e.relation, Relation::Table { schema, name }
                if t.schema.as_deref() == Some(schema.as_str()) && &t.name == name)
        });
        let info = at.map(|i| &infos[i]);
        let leads = |c: &str| at.is_some_and(|i| indexes[i].iter().any(|ix| ix.leads_with(c)));
        let nullable = |c: &str| {
            info.and_then(|t| t.columns.iter().find(|x| x.name == c))
                .is_some_and(|x| x.nullable)
        };
        let chunk = match (&e.mode, &e.chunk_key) {
            (PlannedMode::Chunked, Some(k)) => Some(ChunkFacts {
                column: k.column.clone(),
                indexed: leads(&k.column),
                ranges: e
                    .chunks
                    .iter()
                    .map(|c| {
                        c.range
                            .as_ref()
                            .map_or((None, None), |r| (r.lower, r.upper))
                    })
                    .collect(),
                histogram: match at {
                    Some(i) => survey.key_histogram(&tables[i], &k.column)?,
                    None => None,
                },
            }),
            _ => None,
        };
        let window = e.window.as_ref().map(|w| WindowFacts {
            incremental: w.kind == WindowKind::Incremental,
            column: w.column.clone(),
            fallback: w.fallback_column.clone(),
            indexed: leads(&w.column),
            nullable: nullable(&w.column),
        });
        let local = (e.destination.kind == DestinationKind::Local).then(|| {
            let p = e.destination.path.clone();
            let free = free_space(&p);
            (p, free)
        });
        facts.push(ExportFacts {
            export: e.name.clone(),
            table: info.map(|t| format!("{}.{}", t.schema, t.name)),
            full: e.mode == PlannedMode::Full && e.window.is_none(),
            row_estimate: e.row_estimate,
            estimated_bytes: info
                .and_then(|t| t.avg_row_bytes)
                .map(|b| b.saturating_mul(e.row_estimate)),
            chunk,
            window,
            parallelism: e.tuning.parallelism,
            local,
        });
    }
    let source = SourceFacts {
        headroom: survey.connections()?,
        max_source_connections: plan.body.concurrency.max_source_connections,
        connection_path: plan.body.connection_path.clone(),
    };
    Ok((facts, source))
}

/// Rows of a histogram (equal-frequency bounds over `rows` rows) estimated in
/// `[lo, hi)`, interpolating linearly inside each bucket.
pub fn histogram_rows(bounds: &[i64], rows: u64, lo: Option<i64>, hi: Option<i64>) -> f64 {
    if bounds.len() < 2 {
        return 0.0;
    }
    let per_bucket = rows as f64 / (bounds.len() - 1) as f64;
    let lo = lo.map_or(f64::NEG_INFINITY, |v| v as f64);
    let hi = hi.map_or(f64::INFINITY, |v| v as f64);
    bounds
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0] as f64, w[1] as f64);
            let width = (b - a).max(1.0);
            let overlap = (hi.min(b) - lo.max(a)).max(0.0);
            per_bucket * (overlap / width).min(1.0)
        })
        .sum()
}

/// The findings of every export and of the source.
pub fn assess(exports: &[ExportFacts], source: &SourceFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in exports {
        let finding = |code, column: Option<&str>, message: String, fix: String| Finding {
            code,
            export: Some(e.export.clone()),
            table: e.table.clone(),
            column: column.map(str::to_owned),
            message,
            fix,
        };
        let table = e.table.as_deref().unwrap_or("the query");
        if let Some(c) = &e.chunk {
            if e.table.is_some() && !c.indexed && c.ranges.len() > 1 {
                out.push(finding(
                    "chunk_column_not_indexed",
                    Some(&c.column),
                    format!(
                        "chunk column `{}` leads no index of {table}: each of the {} chunks scans the whole table",
                        c.column,
                        c.ranges.len()
                    ),
                    format!("create an index on {table} ({}), or chunk on an indexed integer column (chunk_column)", c.column),
                ));
            }
            if let Some(h) = &c.histogram {
                if let Some(f) = skew(e, c, h, table) {
                    out.push(f);
                }
            }
        }
        if let Some(w) = &e.window {
            let what = if w.incremental { "cursor" } else { "time" };
            if e.table.is_some() && !w.indexed {
                out.push(finding(
                    if w.incremental { "cursor_column_not_indexed" } else { "time_column_not_indexed" },
                    Some(&w.column),
                    format!(
                        "{what} column `{}` leads no index of {table}: every run's window predicate{} scans the whole table",
                        w.column,
                        if w.incremental { " and its high-water mark (max)" } else { "" }
                    ),
                    format!("create an index on {table} ({})", w.column),
                ));
            }
            if w.incremental && w.nullable && w.fallback.is_none() {
                out.push(finding(
                    "nullable_cursor_without_fallback",
                    Some(&w.column),
                    format!(
                        "cursor column `{}` of {table} is nullable and has no cursor_fallback_column: rows where it is NULL are in no window and never exported",
                        w.column
                    ),
                    "set cursor_fallback_column to a NOT NULL column of the same type (e.g. created_at), or make the column NOT NULL".into(),
                ));
            }
        }
        if e.full {
            if let Some(bytes) = e.estimated_bytes {
                let secs = bytes / ASSUMED_READ_BYTES_PER_S;
                if secs > LONG_SNAPSHOT_S {
                    out.push(finding(
                        "long_snapshot",
                        None,
                        format!(
                            "full export of {table} (about {} rows, {}) reads in one snapshot for about {} min at {} MB/s, holding back vacuum/purge on the source meanwhile",
                            e.row_estimate,
                            size_text(bytes),
                            secs.div_ceil(60),
                            ASSUMED_READ_BYTES_PER_S / 1_000_000
                        ),
                        "use mode: chunked on an integer key (short transactions), or incremental with a cursor column".into(),
                    ));
                }
            }
        }
        if let (Some((path, Some(free))), Some(bytes)) = (&e.local, e.estimated_bytes) {
            if bytes > *free {
                out.push(finding(
                    "destination_too_small",
                    None,
                    format!(
                        "{table} holds about {} but only {} is free at {path}",
                        size_text(bytes),
                        size_text(*free)
                    ),
                    "free space or choose another destination.path; compressed Parquet is usually several times smaller than the source, CSV can be larger".into(),
                ));
            }
        }
    }
    let free = source.headroom.free();
    if u64::from(source.max_source_connections) > free {
        let widest: Vec<String> = exports
            .iter()
            .filter(|e| u64::from(e.parallelism) > free)
            .map(|e| format!("{} (parallelism {})", e.export, e.parallelism))
            .collect();
        out.push(Finding {
            code: "connection_headroom",
            export: None,
            table: None,
            column: None,
            message: format!(
                "the plan may hold {} source connections but the server has {} left (max_connections {}, {} reserved, {} in use){}",
                source.max_source_connections,
                free,
                source.headroom.max_connections,
                source.headroom.reserved,
                source.headroom.in_use,
                if widest.is_empty() { String::new() } else { format!("; widest: {}", widest.join(", ")) }
            ),
            fix: format!("lower tuning.max_source_connections (and parallelism) to at most {free}, or run when fewer sessions are open"),
        });
    }
    let path = &source.connection_path;
    if path.pooling == rivet_schema::plan::Pooling::Transaction {
        out.push(Finding {
            code: "transaction_pooler",
            export: None,
            table: None,
            column: None,
            message: format!(
                "the source is reached through a transaction-pooling proxy{} ({}); each chunk holds one of its server sessions for the chunk's transaction, an export with `consistency: snapshot` one more for the whole export, and the connection headroom above counts the server's sessions, not the pooler's",
                path.proxy.as_deref().map_or(String::new(), |p| format!(" ({p})")),
                path.evidence
            ),
            fix: format!(
                "keep tuning.max_source_connections ({}) at or below the pooler's pool size for this database and user (pgBouncer: default_pool_size), or chunks queue for a server session; or point the source at the database directly",
                source.max_source_connections
            ),
        });
    }
    out
}

/// A chunk far above the even share of rows, or many far below, from the histogram.
fn skew(e: &ExportFacts, c: &ChunkFacts, h: &[i64], table: &str) -> Option<Finding> {
    let n = c.ranges.len();
    if n < 2 || e.row_estimate == 0 {
        return None;
    }
    let even = e.row_estimate as f64 / n as f64;
    let est: Vec<f64> = c
        .ranges
        .iter()
        .map(|(lo, hi)| histogram_rows(h, e.row_estimate, *lo, *hi))
        .collect();
    let (big_at, big) = est
        .iter()
        .enumerate()
        .fold((0, 0.0), |m, (i, v)| if *v > m.1 { (i, *v) } else { m });
    let small = est.iter().filter(|v| **v < even / SKEW_FACTOR).count();
    let message = if big > even * SKEW_FACTOR {
        format!(
            "chunk {} of {n} on `{}` holds about {:.0} rows, {:.0}× the even share of {:.0}: the key's values are skewed, so some chunks are long statements",
            big_at + 1,
            c.column,
            big,
            big / even,
            even
        )
    } else if small * 4 >= n {
        format!(
            "{small} of {n} chunks on `{}` hold under a quarter of the even share of {:.0} rows: gaps in the key make many small statements",
            c.column, even
        )
    } else {
        return None;
    };
    Some(Finding {
        code: "chunk_size_skew",
        export: Some(e.export.clone()),
        table: Some(table.to_owned()),
        column: Some(c.column.clone()),
        message,
        fix: "chunk on a denser key, or set chunk_size so the widest chunk fits the statement timeout; the statistics come from ANALYZE (run it if the table changed a lot)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(max: u32, in_use: u64) -> SourceFacts {
        SourceFacts {
            headroom: ConnectionHeadroom {
                max_connections: 100,
                reserved: 3,
                in_use,
            },
            max_source_connections: max,
            connection_path: rivet_schema::plan::ConnectionPath {
                pooling: rivet_schema::plan::Pooling::Session,
                proxy: None,
                evidence: "direct".into(),
            },
        }
    }

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn histogram_rows_interpolate_inside_buckets() {
        let h = [0, 10, 20, 1000];
        assert!((histogram_rows(&h, 300, Some(0), Some(10)) - 100.0).abs() < 1e-9);
        assert!((histogram_rows(&h, 300, Some(0), Some(5)) - 50.0).abs() < 1e-9);
        assert!((histogram_rows(&h, 300, None, None) - 300.0).abs() < 1e-9);
        assert_eq!(histogram_rows(&h, 300, Some(2000), None), 0.0);
    }

    #[test]
    fn a_long_full_snapshot_and_a_full_disk_are_flagged() {
        let e = ExportFacts {
            export: "big".into(),
            table: Some("public.big".into()),
            full: true,
            row_estimate: 100_000_000,
            estimated_bytes: Some(40_000_000_000),
            parallelism: 1,
            local: Some(("out/big".into(), Some(1_000_000_000))),
            ..Default::default()
        };
        let f = assess(&[e], &source(2, 10));
        assert_eq!(codes(&f), ["long_snapshot", "destination_too_small"]);
        assert!(f[0].message.contains("14 min"), "{}", f[0].message);
        let small = ExportFacts {
            export: "small".into(),
            table: Some("public.small".into()),
            full: true,
            row_estimate: 10,
            estimated_bytes: Some(1000),
            parallelism: 1,
            local: Some(("out".into(), Some(1_000_000))),
            ..Default::default()
        };
        assert!(assess(&[small], &source(2, 10)).is_empty());
    }

    #[test]
    fn parallelism_above_the_free_connections_is_flagged() {
        let e = ExportFacts {
            export: "wide".into(),
            parallelism: 16,
            ..Default::default()
        };
        let f = assess(&[e], &source(16, 90));
        assert_eq!(codes(&f), ["connection_headroom"]);
        assert!(
            f[0].message.contains("7 left") && f[0].message.contains("wide (parallelism 16)"),
            "{}",
            f[0].message
        );
        assert!(f[0].fix.contains("at most 7"));
    }

    #[test]
    fn a_transaction_pooler_is_flagged_with_its_evidence() {
        let mut src = source(4, 10);
        src.connection_path = rivet_schema::plan::ConnectionPath {
            pooling: rivet_schema::plan::Pooling::Transaction,
            proxy: Some("pgbouncer".into()),
            evidence: "pids 1, 2, 1".into(),
        };
        let f = assess(&[], &src);
        assert_eq!(codes(&f), ["transaction_pooler"]);
        assert!(
            f[0].message.contains("(pgbouncer) (pids 1, 2, 1)"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].fix.contains("max_source_connections (4)"),
            "{}",
            f[0].fix
        );
    }

    #[test]
    fn skewed_and_gappy_keys_are_flagged_from_the_histogram() {
        let ranges: Vec<_> = (0..10)
            .map(|k| (Some(k * 100), Some(k * 100 + 100)))
            .collect();
        // Nine in ten rows sit in the first chunk's range.
        let mut h: Vec<i64> = (0..=90).collect();
        h.extend((1..=10).map(|k| 100 + k * 90));
        let e = ExportFacts {
            export: "orders".into(),
            table: Some("public.orders".into()),
            row_estimate: 1000,
            parallelism: 1,
            chunk: Some(ChunkFacts {
                column: "id".into(),
                indexed: true,
                ranges,
                histogram: Some(h),
            }),
            ..Default::default()
        };
        let f = assess(std::slice::from_ref(&e), &source(1, 0));
        assert_eq!(codes(&f), ["chunk_size_skew"]);
        assert_eq!(f[0].column.as_deref(), Some("id"));
        // An even key is not flagged; an unindexed one is.
        let even = ExportFacts {
            chunk: Some(ChunkFacts {
                histogram: Some((0..=10).map(|k| k * 100).collect()),
                indexed: false,
                ..e.chunk.clone().unwrap()
            }),
            ..e
        };
        assert_eq!(
            codes(&assess(&[even], &source(1, 0))),
            ["chunk_column_not_indexed"]
        );
    }

    #[test]
    fn cursor_rules_name_the_column() {
        let e = ExportFacts {
            export: "delta".into(),
            table: Some("public.events".into()),
            parallelism: 1,
            window: Some(WindowFacts {
                incremental: true,
                column: "updated_at".into(),
                fallback: None,
                indexed: false,
                nullable: true,
            }),
            ..Default::default()
        };
        let f = assess(&[e], &source(1, 0));
        assert_eq!(
            codes(&f),
            [
                "cursor_column_not_indexed",
                "nullable_cursor_without_fallback"
            ]
        );
        assert!(f.iter().all(|f| f.column.as_deref() == Some("updated_at")));
    }
}
