//! Compiling a config against the live catalog: resolve relations and columns
//! ([`columns`]), pick chunk keys and split key ranges ([`chunking`]), seal row windows
//! ([`windows`]), resolve destinations ([`destinations`]), assign waves, check the DAG,
//! seal. Everything the planner learns from the source comes through the `Catalog`
//! trait, so plans can be compiled offline against an in-memory catalog.

pub(crate) mod cdc;
mod chunking;
mod columns;
mod describe;
mod destinations;
mod windows;

use std::collections::{BTreeMap, HashMap};

use rivet_schema::config::{Compression, Config, ExportMode, Format, SourceKind};
use rivet_schema::dag::PlanGraph;
use rivet_schema::layout::{chunk_file_name, chunk_id};
use rivet_schema::plan::{
    ChunkKey, CommittedCursor, PageChunking, Plan, PlanBody, PlannedChunk, PlannedExport,
    PlannedMode, PlannedWave, Relation,
};
use rivet_sources::{open_catalog, Catalog, ConnectionSettings, RelationRef, SourceColumn};

use crate::error::PlanError;
use crate::tuning::resolve_tuning;

use self::chunking::{
    chunk_key_column, default_chunk_size, no_key_and_no_pages, split_chunks, split_pages, ChunkBy,
};
use self::columns::{check_quality_columns, column_errors, meta_columns, select_columns};
use self::describe::describe_all;
pub use self::destinations::planned_destination;
use self::windows::plan_window;

/// Most chunks one export may have; more means the chunk size is far too small.
const MAX_CHUNKS: u128 = 100_000;
/// Row width assumed when the table has no statistics yet.
const DEFAULT_ROW_BYTES: u64 = 200;

/// What planning needs besides the config and the catalog.
#[derive(Debug, Clone, Default)]
pub struct PlanInputs {
    /// The plan's reference time, seconds since 1970-01-01 UTC (`--as-of`, default now):
    /// the end of `time_window` windows and of date/time incremental windows.
    pub as_of: i64,
    /// Committed incremental positions by export name, from the state database.
    pub cursors: HashMap<String, CommittedCursor>,
}

/// Connects to the config's source and compiles a sealed plan.
pub fn plan_from_config(config: &Config, inputs: &PlanInputs) -> Result<Plan, PlanError> {
    let settings = ConnectionSettings::resolve(&config.source)?;
    let mut catalog = open_catalog(&settings)?;
    compile(config, catalog.as_mut(), inputs)
}

/// What the catalog says about one export's relation.
pub(crate) struct Described {
    pub(crate) relation: Relation,
    pub(crate) columns: Vec<SourceColumn>,
    pub(crate) primary_key: Vec<String>,
    pub(crate) row_estimate: u64,
    pub(crate) avg_row_bytes: Option<u64>,
}

impl Described {
    /// The config error for a column name the relation does not have, listing the
    /// columns it does have.
    pub(crate) fn no_such_column(&self, path: String, name: &str) -> PlanError {
        cfg_err(
            path,
            format!(
                "column `{name}` does not exist in {}; its columns are: {}",
                self.relation.display_name(),
                self.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

pub(crate) fn cfg_err(path: String, message: impl Into<String>) -> PlanError {
    PlanError::Config {
        path,
        message: message.into(),
    }
}

/// Compiles a validated config into a sealed plan using an open connection.
pub fn compile(
    config: &Config,
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
) -> Result<Plan, PlanError> {
    let normalized = crate::reference::normalize(config)?;
    let config = &normalized;
    if config.source.tinyint1_as_boolean.is_some() && config.source.kind != SourceKind::Mysql {
        return Err(cfg_err(
            "source.tinyint1_as_boolean".into(),
            "applies to MySQL/MariaDB sources only; remove it",
        ));
    }
    let described = describe_all(config, catalog)?;
    let mut exports = Vec::with_capacity(config.exports.len());
    let mut bound_requests = Vec::new();
    let mut pending = Vec::new();
    // Column problems of every export, reported together (`types: strict` users see
    // every refused column at once).
    let mut refused: Vec<(String, String)> = Vec::new();
    for (i, (e, d)) in config.exports.iter().zip(described).enumerate() {
        let columns = match select_columns(i, e, config, &d) {
            Ok(columns) => columns,
            Err(problems) => {
                refused.extend(problems);
                continue;
            }
        };
        let key = match e.mode {
            ExportMode::Chunked => match chunk_key_column(i, e, &d) {
                Ok(key) => {
                    bound_requests.push((relation_ref(&d.relation), key.0.clone()));
                    Some(ChunkBy::Key(key.0, key.1))
                }
                // No integer key and none named: a table's heap pages, where the engine
                // can read page ranges.
                Err(no_key) if e.chunk_column.is_none() => {
                    let rel = relation_ref(&d.relation);
                    let pages = catalog
                        .heap_pages(&rel)
                        .map_err(|cause| PlanError::SourceFor {
                            what: format!(
                                "reading the size in pages of {} (export `{}`)",
                                d.relation.display_name(),
                                e.name
                            ),
                            cause,
                        })?;
                    match pages {
                        Ok((pages, page_bytes)) => Some(ChunkBy::Pages { pages, page_bytes }),
                        Err(why) => return Err(no_key_and_no_pages(no_key, &why)),
                    }
                }
                Err(no_key) => return Err(no_key),
            },
            _ => None,
        };
        pending.push((i, e, d, columns, key));
    }
    if let Some(err) = column_errors(refused) {
        return Err(err);
    }
    let bounds_timeout = config
        .exports
        .iter()
        .map(|e| {
            resolve_tuning(config.tuning.as_ref(), e.tuning.as_ref())
                .0
                .statement_timeout_ms
        })
        .max()
        .unwrap_or(60_000);
    let bounds = catalog
        .key_bounds(&bound_requests, bounds_timeout)
        .map_err(|cause| PlanError::SourceFor {
            what: format!(
                "reading the chunk key bounds (MIN/MAX) of {}",
                pending
                    .iter()
                    .filter(|p| matches!(p.4, Some(ChunkBy::Key(..))))
                    .map(|p| format!("export `{}` ({})", p.1.name, p.2.relation.display_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cause,
        })?;
    let mut bounds = bounds.into_iter();
    for (i, e, d, columns, key) in pending {
        let (tuning, mut chunk_target_bytes) =
            resolve_tuning(config.tuning.as_ref(), e.tuning.as_ref());
        let explicit_target = e
            .tuning
            .as_ref()
            .and_then(|t| t.chunk_target_mb)
            .or_else(|| config.tuning.as_ref().and_then(|t| t.chunk_target_mb))
            .is_some();
        if !explicit_target {
            // How much a chunk may hold depends on how the engine reads it.
            chunk_target_bytes = catalog.default_chunk_target_bytes(chunk_target_bytes);
        }
        let format = e.format;
        let compression = e.compression.unwrap_or(match format {
            Format::Parquet => Compression::Zstd,
            Format::Csv => Compression::None,
        });
        let (window, cdc) = if e.mode == ExportMode::Cdc {
            let (w, c) = self::cdc::plan_cdc(
                config.source.kind,
                i,
                e,
                &d.relation,
                &columns,
                catalog,
                inputs,
            )?;
            (Some(w), Some(c))
        } else {
            (
                plan_window(i, e, &d, catalog, inputs, tuning.statement_timeout_ms)?,
                None,
            )
        };
        let mut page_chunking = None;
        let (mode, chunk_key, chunks) = match key {
            None => (
                PlannedMode::Full,
                None,
                if window.as_ref().is_some_and(|w| w.upper.is_none()) {
                    // An empty incremental window: nothing to read, position unchanged.
                    Vec::new()
                } else {
                    vec![PlannedChunk {
                        id: chunk_id(&e.name, 1),
                        seq: 1,
                        range: None,
                        pages: None,
                        row_estimate: if window.is_some() { 0 } else { d.row_estimate },
                        file: chunk_file_name(1, format, compression),
                    }]
                },
            ),
            Some(ChunkBy::Pages { pages, page_bytes }) => {
                let per_chunk = match e.chunk_size {
                    Some(n) => n,
                    None => (chunk_target_bytes / page_bytes).max(1),
                };
                let planned = PageChunking {
                    pages,
                    pages_per_chunk: per_chunk,
                };
                let chunks =
                    split_pages(i, &e.name, &planned, d.row_estimate, format, compression)?;
                page_chunking = Some(planned);
                (PlannedMode::Chunked, None, chunks)
            }
            Some(ChunkBy::Key(column, nullable)) => {
                let (min, max) = bounds.next().ok_or_else(|| {
                    PlanError::Internal("fewer key bounds than chunked exports".into())
                })?;
                let row_bytes = d.avg_row_bytes.unwrap_or(DEFAULT_ROW_BYTES).max(1);
                let chunk_size = match e.chunk_size {
                    Some(n) => n,
                    None => {
                        default_chunk_size(min, max, d.row_estimate, row_bytes, chunk_target_bytes)
                    }
                };
                let chunks = split_chunks(
                    i,
                    &e.name,
                    min,
                    max,
                    nullable,
                    chunk_size,
                    d.row_estimate,
                    format,
                    compression,
                )?;
                (
                    PlannedMode::Chunked,
                    Some(ChunkKey {
                        column,
                        min,
                        max,
                        nullable,
                        chunk_size,
                    }),
                    chunks,
                )
            }
        };
        let meta = meta_columns(i, e, &columns)?;
        check_quality_columns(i, e, &columns)?;
        exports.push(PlannedExport {
            name: e.name.clone(),
            relation: d.relation,
            mode,
            wave: e.wave.unwrap_or(1),
            all_columns: e.columns.is_none(),
            columns,
            primary_key: d.primary_key,
            chunk_key,
            page_chunking,
            consistency: e.consistency.unwrap_or_default(),
            row_estimate: d.row_estimate,
            format,
            compression,
            destination: planned_destination(e, window.as_ref().and_then(|w| w.seq)),
            tuning,
            infinity: e.infinity.or(config.source.infinity).unwrap_or_default(),
            meta_columns: meta,
            quality: e.quality.clone(),
            keep_files: Vec::new(),
            repair_of: None,
            on_schema_drift: e.on_schema_drift,
            shape_drift_warn_factor: e.shape_drift_warn_factor,
            skip_empty: e.skip_empty.unwrap_or(false),
            max_file_bytes: e
                .max_file_size
                .as_ref()
                .map(|m| m.bytes())
                .transpose()
                .map_err(|m| cfg_err(format!("exports[{i}].max_file_size"), m))?,
            window,
            cdc,
            handoff: None,
            chunks,
        });
    }
    self::cdc::plan_handoffs(config, &mut exports)?;
    let mut waves: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for e in &exports {
        waves.entry(e.wave).or_default().push(e.name.clone());
    }
    let concurrency = crate::tuning::resolve_concurrency(config, &exports);
    let body = PlanBody {
        source: config.source.clone(),
        source_identity: catalog.identity()?,
        exports,
        waves: waves
            .into_iter()
            .map(|(wave, exports)| PlannedWave { wave, exports })
            .collect(),
        concurrency,
        connection_path: catalog.connection_path()?,
    };
    PlanGraph::build(&body).map_err(PlanError::Internal)?;
    Ok(rivet_schema::seal::seal(body))
}

/// The `FROM` target of a described relation, for catalog calls.
pub(crate) fn relation_ref(r: &Relation) -> RelationRef {
    match r {
        Relation::Table { schema, name } => RelationRef::Table {
            schema: schema.clone(),
            name: name.clone(),
        },
        Relation::Query { sql } => RelationRef::Query(sql.clone()),
    }
}
