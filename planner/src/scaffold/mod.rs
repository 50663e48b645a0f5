//! `rivet init`: discover the tables of a live source and propose a config that plans
//! without edits. [`discover`] asks the source (through [`Survey`]) for each table's
//! columns, keys, indexes and size estimate and decides a mode per table, with the
//! reason in words; [`render_config`] writes the YAML with those reasons as comments.
//! The evidence itself is serializable, for `rivet init --discover discovery.json`.

mod choose;
mod render;

use rivet_schema::config::{ExportMode, SourceKind};
use rivet_schema::names::split_table_name;
use rivet_schema::LogicalType;
use rivet_sources::{IndexFacts, Survey, TableRequest};
use serde::Serialize;

use crate::error::PlanError;

pub(crate) use self::choose::size_text;
pub use self::render::render_config;

/// Where the proposed exports write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum InitDestination {
    Local { path: String },
    S3 { bucket: String },
    Gcs { bucket: String },
    Azure { account: String, container: String },
}

/// What the operator asked `rivet init` for.
#[derive(Debug, Clone)]
pub struct InitRequest {
    pub kind: SourceKind,
    /// The environment variable holding the URL; written into the config, never read
    /// into it.
    pub source_env: String,
    /// Schemas to scan when no table is named (default: the connection's own).
    pub schemas: Vec<String>,
    /// Tables to propose (`name`, `schema.name`, quoted parts as in a config).
    pub tables: Vec<String>,
    /// One mode for every table instead of choosing per table.
    pub mode: Option<ExportMode>,
    pub destination: InitDestination,
    /// Tables estimated below this many bytes are exported whole (`full`).
    pub full_below_bytes: u64,
}

/// A column as `init` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveredColumn {
    pub name: String,
    pub declared_type: String,
    pub nullable: bool,
    /// Why the column cannot be exported (it is then left out of `columns:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    #[serde(skip)]
    pub logical: Option<LogicalType>,
}

/// A column that could carry an incremental cursor.
#[derive(Debug, Clone, Serialize)]
pub struct CursorCandidate {
    pub column: String,
    /// `timestamp` (a date or time column) or `monotonic_key` (an integer key that
    /// only grows, which sees inserts but not updates).
    pub kind: &'static str,
    /// Leads an index, so the window's range predicate and `max()` use it.
    pub indexed: bool,
    pub nullable: bool,
}

/// The mode chosen for a table and why.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub export: String,
    pub mode: ExportMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_fallback_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// One or more sentences, written above the export as a comment.
    pub reason: String,
}

/// Everything `init` learned about one table, and what it chose.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveredTable {
    pub schema: String,
    pub name: String,
    pub row_estimate: u64,
    /// Bytes per row from statistics, None when the table was never analyzed.
    pub avg_row_bytes: Option<u64>,
    /// `row_estimate × row width` (200 bytes a row assumed without statistics).
    pub estimated_bytes: u64,
    pub primary_key: Vec<String>,
    pub indexes: Vec<IndexFacts>,
    pub columns: Vec<DiscoveredColumn>,
    /// An integer column leading an index (the primary key first), to chunk on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_key: Option<String>,
    pub cursor_candidates: Vec<CursorCandidate>,
    pub choice: Choice,
}

/// The evidence `init` gathered, as written by `--discover`.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub source: SourceKind,
    pub source_env: String,
    pub destination: InitDestination,
    pub tables: Vec<DiscoveredTable>,
}

/// Row width assumed for a table without statistics (as the planner does).
const DEFAULT_ROW_BYTES: u64 = 200;

/// Asks the source about the requested tables and chooses a mode for each.
pub fn discover(req: &InitRequest, survey: &mut dyn Survey) -> Result<Discovery, PlanError> {
    let requests = if req.tables.is_empty() {
        let found = survey.list_tables(&req.schemas)?;
        if found.is_empty() {
            return Err(PlanError::Config {
                path: "--schema".into(),
                message: match req.schemas.as_slice() {
                    [] => "the connection's default schema has no tables; name one with --schema or tables with --table".into(),
                    s => format!("no tables in schema(s) {}; check the names (they are exact, case kept)", s.join(", ")),
                },
            });
        }
        found
    } else {
        req.tables
            .iter()
            .map(|t| {
                let parsed = split_table_name(t).map_err(|e| PlanError::Config {
                    path: "--table".into(),
                    message: e,
                })?;
                Ok(TableRequest {
                    schema: parsed.schema.or_else(|| req.schemas.first().cloned()),
                    name: parsed.name,
                })
            })
            .collect::<Result<Vec<_>, PlanError>>()?
    };
    let infos = survey.describe_tables(&requests)?;
    let resolved: Vec<TableRequest> = infos
        .iter()
        .map(|t| TableRequest {
            schema: Some(t.schema.clone()),
            name: t.name.clone(),
        })
        .collect();
    let indexes = survey.indexes(&resolved)?;
    let several_schemas = infos.iter().any(|t| t.schema != infos[0].schema);
    let mut names = std::collections::BTreeSet::new();
    let mut tables = Vec::with_capacity(infos.len());
    for (info, indexes) in infos.into_iter().zip(indexes) {
        let export = export_name(&info.schema, &info.name, several_schemas, &mut names);
        let table = choose::table(info, indexes, export, req)?;
        tables.push(table);
    }
    Ok(Discovery {
        source: req.kind,
        source_env: req.source_env.clone(),
        destination: req.destination.clone(),
        tables,
    })
}

/// An export name for a table: letters, digits and `_` only (others become `_`),
/// prefixed with the schema when several schemas are involved, unique.
fn export_name(
    schema: &str,
    table: &str,
    with_schema: bool,
    taken: &mut std::collections::BTreeSet<String>,
) -> String {
    let clean = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars() {
            let c = if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            };
            if !(c == '_' && out.ends_with('_')) {
                out.push(c);
            }
        }
        out.trim_matches('_').to_owned()
    };
    let mut base = if with_schema {
        format!("{}_{}", clean(schema), clean(table))
    } else {
        clean(table)
    };
    base = base.trim_matches('_').to_owned();
    if base.is_empty() {
        base = "table".to_owned();
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// `"schema"."table"` as a config writes it, each part quoted so that any name (dots,
/// quotes, spaces, unicode) reads back exactly.
pub fn table_reference(schema: &str, table: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(schema), q(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_are_valid_and_unique() {
        let mut taken = Default::default();
        assert_eq!(
            export_name("s", "Order Items", false, &mut taken),
            "order_items"
        );
        assert_eq!(
            export_name("s", "order-items", false, &mut taken),
            "order_items_2"
        );
        assert_eq!(
            export_name("Sales Data", "Ünïcödé", true, &mut taken),
            "sales_data_n_c_d"
        );
        assert_eq!(export_name("s", "Ωμέγα", false, &mut taken), "table");
    }

    fn col(
        name: &str,
        ty: &str,
        logical: Result<LogicalType, String>,
        nullable: bool,
    ) -> rivet_sources::SourceColumn {
        rivet_sources::SourceColumn {
            name: name.into(),
            declared_type: ty.into(),
            wire_type: ty.into(),
            logical,
            mapping: rivet_sources::ColumnMapping::Native,
            select_expr: None,
            nullable,
            n_distinct: None,
        }
    }

    fn info(
        schema: &str,
        name: &str,
        pk: &[&str],
        rows: u64,
        columns: Vec<rivet_sources::SourceColumn>,
    ) -> rivet_sources::TableInfo {
        rivet_sources::TableInfo {
            schema: schema.into(),
            name: name.into(),
            columns,
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            row_estimate: rows,
            avg_row_bytes: Some(100),
        }
    }

    fn index(name: &str, cols: &[&str], unique: bool) -> IndexFacts {
        IndexFacts {
            name: name.into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
            unique,
        }
    }

    /// The written YAML for one table of each kind, offline.
    #[test]
    fn written_config_snapshot() {
        use LogicalType::*;
        let req = InitRequest {
            kind: SourceKind::Postgres,
            source_env: "DATABASE_URL".into(),
            schemas: vec![],
            tables: vec![],
            mode: None,
            destination: InitDestination::Local {
                path: "./output".into(),
            },
            full_below_bytes: 64_000_000,
        };
        let tables = vec![
            (
                info(
                    "public",
                    "small",
                    &["id"],
                    1_000,
                    vec![col("id", "bigint", Ok(Int64), false)],
                ),
                vec![index("small_pkey", &["id"], true)],
            ),
            (
                info(
                    "Sales Data",
                    "Order \"Items\" ü",
                    &["Order ID"],
                    5_000_000,
                    vec![
                        col("Order ID", "bigint", Ok(Int64), false),
                        col("created_at", "timestamp", Ok(Timestamp), false),
                        col("updated_at", "timestamp", Ok(Timestamp), true),
                        col(
                            "geom",
                            "geometry",
                            Err("no Arrow type for geometry".into()),
                            true,
                        ),
                    ],
                ),
                vec![
                    index("pk", &["Order ID"], true),
                    index("by_upd", &["updated_at"], false),
                ],
            ),
            (
                info(
                    "public",
                    "ledger",
                    &["id"],
                    9_000_000,
                    vec![
                        col("id", "integer", Ok(Int32), false),
                        col("amount", "numeric", Ok(DecimalText), true),
                    ],
                ),
                vec![index("ledger_pkey", &["id"], true)],
            ),
            (
                info(
                    "public",
                    "raw_log",
                    &[],
                    20_000_000,
                    vec![col("line", "text", Ok(Utf8), true)],
                ),
                vec![],
            ),
        ];
        let mut taken = Default::default();
        let tables: Vec<DiscoveredTable> = tables
            .into_iter()
            .map(|(i, ix)| {
                let name = export_name(&i.schema, &i.name, true, &mut taken);
                choose::table(i, ix, name, &req).unwrap()
            })
            .collect();
        let d = Discovery {
            source: SourceKind::Postgres,
            source_env: "DATABASE_URL".into(),
            destination: req.destination.clone(),
            tables,
        };
        let modes: Vec<_> = d.tables.iter().map(|t| t.choice.mode).collect();
        assert_eq!(
            modes,
            [
                ExportMode::Full,
                ExportMode::Incremental,
                ExportMode::Chunked,
                ExportMode::Full
            ]
        );
        assert_eq!(
            d.tables[1].choice.cursor_fallback_column.as_deref(),
            Some("created_at")
        );
        insta::assert_snapshot!(render_config(&d));
    }

    #[test]
    fn forced_modes_refuse_tables_that_cannot_take_them() {
        let req = InitRequest {
            kind: SourceKind::Postgres,
            source_env: "DATABASE_URL".into(),
            schemas: vec![],
            tables: vec![],
            mode: Some(ExportMode::Chunked),
            destination: InitDestination::Local { path: "out".into() },
            full_below_bytes: 0,
        };
        let t = info(
            "public",
            "raw_log",
            &[],
            10,
            vec![col("line", "text", Ok(LogicalType::Utf8), true)],
        );
        let err = choose::table(t, vec![], "raw_log".into(), &req)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("public.raw_log") && err.contains("integer column"),
            "{err}"
        );
    }

    #[test]
    fn table_references_round_trip_through_the_config_parser() {
        for (s, t) in [
            ("Sales Data", "Order Items"),
            ("a.b", "c\"d"),
            ("\"x", "ünï.code"),
            ("public", "MixedCase"),
        ] {
            let parsed = split_table_name(&table_reference(s, t)).unwrap();
            assert_eq!(parsed.schema.as_deref(), Some(s));
            assert_eq!(parsed.name, t);
        }
    }
}
