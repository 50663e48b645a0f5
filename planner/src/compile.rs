//! Compiling a config against the live catalog: resolve relations and columns, pick
//! chunk keys, read key bounds, split into chunks, assign waves, check the DAG, seal.

use std::collections::{BTreeMap, HashMap};

use rivet_schema::config::{
    Compression, Config, DestinationKind, ExportConfig, ExportMode, Format, SourceKind,
};
use rivet_schema::dag::PlanGraph;
use rivet_schema::names::split_table_name;
use rivet_schema::plan::{
    ChunkKey, CommittedCursor, CursorType, KeyRange, Plan, PlanBody, PlannedChunk, PlannedColumn,
    PlannedDestination, PlannedExport, PlannedMode, PlannedStore, PlannedWave, PlannedWindow,
    Relation, WindowKind,
};
use rivet_schema::LogicalType;
use rivet_sources::{
    open_catalog, Catalog, ConnectionSettings, RelationRef, SourceColumn, SourceError, SqlValue,
    TableRequest,
};

use crate::error::PlanError;
use crate::tuning::resolve_tuning;

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
struct Described {
    relation: Relation,
    columns: Vec<SourceColumn>,
    primary_key: Vec<String>,
    row_estimate: u64,
    avg_row_bytes: Option<u64>,
}

fn cfg_err(path: String, message: impl Into<String>) -> PlanError {
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
    let described = describe_all(config, catalog)?;
    let mut exports = Vec::with_capacity(config.exports.len());
    let mut bound_requests = Vec::new();
    let mut pending = Vec::new();
    for (i, (e, d)) in config.exports.iter().zip(described).enumerate() {
        let columns = select_columns(i, e, &d)?;
        let key = match e.mode {
            ExportMode::Chunked => {
                let key = chunk_key_column(i, e, &d)?;
                bound_requests.push((relation_ref(&d.relation), key.0.clone()));
                Some(key)
            }
            _ => None,
        };
        pending.push((i, e, d, columns, key));
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
    let bounds = catalog.key_bounds(&bound_requests, bounds_timeout)?;
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
        if matches!(config.source.kind, SourceKind::Mysql | SourceKind::Mssql) && !explicit_target {
            // A MySQL or SQL Server chunk is one streamed SELECT held open while rows are
            // decoded; a quarter of the PostgreSQL target keeps each statement well under
            // a second.
            chunk_target_bytes /= 4;
        }
        let format = e.format;
        let compression = e.compression.unwrap_or(match format {
            Format::Parquet => Compression::Zstd,
            Format::Csv => Compression::None,
        });
        let ext = file_extension(format, compression);
        let window = plan_window(i, e, &d, catalog, inputs, tuning.statement_timeout_ms)?;
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
                        row_estimate: if window.is_some() { 0 } else { d.row_estimate },
                        file: format!("part-00001.{ext}"),
                    }]
                },
            ),
            Some((column, nullable)) => {
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
                    &ext,
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
            row_estimate: d.row_estimate,
            format,
            compression,
            destination: planned_destination(e, window.as_ref().and_then(|w| w.seq)),
            tuning,
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
            chunks,
        });
    }
    let mut waves: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for e in &exports {
        waves.entry(e.wave).or_default().push(e.name.clone());
    }
    let body = PlanBody {
        source: config.source.clone(),
        exports,
        waves: waves
            .into_iter()
            .map(|(wave, exports)| PlannedWave { wave, exports })
            .collect(),
    };
    PlanGraph::build(&body).map_err(PlanError::Internal)?;
    Ok(rivet_schema::seal::seal(body))
}

/// The row window of an `incremental` or `time_window` export (None for other modes).
fn plan_window(
    i: usize,
    e: &ExportConfig,
    d: &Described,
    catalog: &mut dyn Catalog,
    inputs: &PlanInputs,
    statement_timeout_ms: u64,
) -> Result<Option<PlannedWindow>, PlanError> {
    let (kind, key) = match e.mode {
        ExportMode::Incremental => (WindowKind::Incremental, "cursor_column"),
        ExportMode::TimeWindow => (WindowKind::TimeWindow, "time_column"),
        _ => return Ok(None),
    };
    let at = |k: &str| format!("exports[{i}].{k}");
    let what = d.relation.display_name();
    let find = |k: &str, name: &str| {
        d.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            cfg_err(
                at(k),
                format!(
                    "column `{name}` does not exist in {what}; its columns are: {}",
                    d.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    };
    let type_of = |k: &str, c: &SourceColumn| -> Result<CursorType, PlanError> {
        let unusable = |t: String| {
            cfg_err(
                at(k),
                format!(
                    "column `{}` is {t}; a window column must be an integer, date, timestamp, timestamptz or text column",
                    c.name
                ),
            )
        };
        match &c.logical {
            Ok(l) if l.is_integer() && *l != LogicalType::UInt64 => Ok(CursorType::Integer),
            Ok(LogicalType::Timestamp) => Ok(CursorType::Timestamp),
            Ok(LogicalType::TimestampUtc) => Ok(CursorType::Timestamptz),
            Ok(LogicalType::Date) => Ok(CursorType::Date),
            Ok(LogicalType::Utf8) => Ok(CursorType::Text),
            Ok(other) => Err(unusable(other.display_name())),
            Err(_) => Err(unusable(c.declared_type.clone())),
        }
    };
    let column_name = match kind {
        WindowKind::Incremental => e.cursor_column.clone(),
        WindowKind::TimeWindow => e.time_column.clone(),
    }
    .ok_or_else(|| cfg_err(at(key), format!("`{key}` is required in this mode")))?;
    let column = find(key, &column_name)?;
    let value_type = type_of(key, column)?;
    let as_of_micros = inputs.as_of.saturating_mul(1_000_000);
    let at_time = |us: i64, t: CursorType| -> SqlValue {
        match t {
            CursorType::Timestamptz => SqlValue::TimestampUtc(us),
            CursorType::Date => SqlValue::Date(us.div_euclid(86_400_000_000) as i32),
            CursorType::Integer => SqlValue::Int(us.div_euclid(1_000_000)),
            _ => SqlValue::Timestamp(us),
        }
    };
    if kind == WindowKind::TimeWindow {
        let unix = e.time_column_type == Some(rivet_schema::config::TimeColumnType::Unix);
        match (unix, value_type) {
            (true, CursorType::Integer) => {}
            (true, other) => {
                return Err(cfg_err(
                    at("time_column_type"),
                    format!("`unix` needs an integer column of seconds; `{column_name}` is {other:?}"),
                ))
            }
            (false, CursorType::Timestamp | CursorType::Timestamptz | CursorType::Date) => {}
            (false, _) => {
                return Err(cfg_err(
                    at("time_column"),
                    format!("`{column_name}` is not a date or time column; for integer seconds since 1970 set `time_column_type: unix`"),
                ))
            }
        }
        let day = 86_400_000_000i64;
        let upper = as_of_micros.div_euclid(day) * day;
        let days = i64::from(e.days_window.unwrap_or(1));
        let lower = upper - days * day;
        return Ok(Some(PlannedWindow {
            kind,
            column: column_name,
            fallback_column: None,
            value_type,
            lower: Some(at_time(lower, value_type).canonical()),
            upper: Some(at_time(upper, value_type).canonical()),
            seq: None,
        }));
    }
    let fallback = match &e.cursor_fallback_column {
        Some(name) => {
            let c = find("cursor_fallback_column", name)?;
            let t = type_of("cursor_fallback_column", c)?;
            if t != value_type {
                return Err(cfg_err(
                    at("cursor_fallback_column"),
                    format!("`{name}` is {t:?} but `{column_name}` is {value_type:?}; the fallback must have the cursor's type"),
                ));
            }
            Some(name.clone())
        }
        None => None,
    };
    let lag = e.settle_lag.unwrap_or(0);
    if lag > 0 && value_type == CursorType::Text {
        return Err(cfg_err(
            at("settle_lag"),
            "`settle_lag` needs an integer, date or time cursor; text values have no distance to lag by",
        ));
    }
    let committed = inputs.cursors.get(&e.name);
    if let Some(c) = committed {
        if c.column != column_name || c.value_type != value_type {
            return Err(cfg_err(
                at("cursor_column"),
                format!(
                    "the state database holds a position for export `{}` on column `{}` ({:?}), but the config now says `{column_name}` ({value_type:?}); to start this export over from the beginning run `rivet state reset-cursor {}`",
                    e.name, c.column, c.value_type, e.name
                ),
            ));
        }
    }
    let lower = committed.map(|c| c.position.clone());
    let seq = committed.map_or(1, |c| c.seq + 1);
    let lag = i64::try_from(lag).unwrap_or(i64::MAX);
    let upper = match value_type {
        CursorType::Timestamp | CursorType::Timestamptz | CursorType::Date => Some(
            at_time(
                as_of_micros.saturating_sub(lag.saturating_mul(1_000_000)),
                value_type,
            )
            .canonical(),
        ),
        CursorType::Integer | CursorType::Text => {
            let max = catalog.max_value(
                &relation_ref(&d.relation),
                &column_name,
                fallback.as_deref(),
                statement_timeout_ms,
            )?;
            match (max, value_type) {
                (None, _) => None,
                (Some(m), CursorType::Integer) => {
                    let m: i64 = m.trim().parse().map_err(|_| {
                        PlanError::Internal(format!("MAX of an integer cursor returned `{m}`"))
                    })?;
                    // A unique cursor (the whole primary key) cannot gain another row at
                    // its maximum, so the maximum itself is included; otherwise rows that
                    // share the maximum wait for the next window (exactly-once at ties).
                    let unique = fallback.is_none() && d.primary_key == [column_name.clone()];
                    Some(
                        m.saturating_add(i64::from(unique))
                            .saturating_sub(lag)
                            .to_string(),
                    )
                }
                (Some(m), _) => Some(m),
            }
        }
    };
    // A window that would not move forward is empty: nothing is read and the committed
    // position stays where it is.
    let upper = match (&lower, upper) {
        (Some(lo), Some(hi)) => {
            let forward = match value_type {
                CursorType::Text => hi != *lo,
                t => {
                    let parse = |v: &str| SqlValue::parse(t, v).map_err(PlanError::Internal);
                    ordered(&parse(&hi)?) > ordered(&parse(lo)?)
                }
            };
            forward.then_some(hi)
        }
        (_, hi) => hi,
    };
    Ok(Some(PlannedWindow {
        kind,
        column: column_name,
        fallback_column: fallback,
        value_type,
        lower,
        upper,
        seq: Some(seq),
    }))
}

/// The planned destination; an incremental export's window `seq` gets a directory
/// (or key prefix) of its own, `window-NNNNN`, so earlier windows are never touched.
pub fn planned_destination(e: &ExportConfig, window_seq: Option<u32>) -> PlannedDestination {
    let d = &e.destination;
    let suffix = |base: &str| match window_seq {
        Some(seq) if base.is_empty() => format!("window-{seq:05}"),
        Some(seq) => format!("{}/window-{seq:05}", base.trim_end_matches('/')),
        None => base.to_owned(),
    };
    let store = match d.kind {
        DestinationKind::S3 | DestinationKind::Gcs | DestinationKind::Azure => {
            let prefix = d.prefix.as_deref().unwrap_or("").trim_matches('/');
            Some(PlannedStore {
                bucket: d
                    .bucket
                    .clone()
                    .or_else(|| d.container.clone())
                    .unwrap_or_default(),
                prefix: suffix(prefix),
                region: d.region.clone(),
                endpoint: d.endpoint.clone(),
                path_style: d.path_style.unwrap_or(false),
                access_key_env: d.access_key_env.clone(),
                secret_key_env: d.secret_key_env.clone(),
                session_token_env: d.session_token_env.clone(),
                credentials_file: d.credentials_file.clone(),
                account: d.account.clone(),
                account_key_env: d.account_key_env.clone(),
                sas_token_env: d.sas_token_env.clone(),
                bearer_token_env: d.bearer_token_env.clone(),
            })
        }
        DestinationKind::Local | DestinationKind::Stdout => None,
    };
    PlannedDestination {
        kind: d.kind,
        path: match d.kind {
            DestinationKind::Local => suffix(d.path.as_deref().unwrap_or("")),
            _ => String::new(),
        },
        store,
    }
}

/// Quality gates may only name exported columns.
fn check_quality_columns(
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
fn meta_columns(
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

/// A date/time/integer bound as one comparable number.
fn ordered(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Int(i) | SqlValue::Timestamp(i) | SqlValue::TimestampUtc(i) => *i,
        SqlValue::Date(d) => i64::from(*d),
        SqlValue::Text(_) => 0,
    }
}

fn relation_ref(r: &Relation) -> RelationRef {
    match r {
        Relation::Table { schema, name } => RelationRef::Table {
            schema: schema.clone(),
            name: name.clone(),
        },
        Relation::Query { sql } => RelationRef::Query(sql.clone()),
    }
}

fn describe_all(config: &Config, catalog: &mut dyn Catalog) -> Result<Vec<Described>, PlanError> {
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
                .unwrap_or(0);
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

fn select_columns(
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
                    .ok_or_else(|| {
                        cfg_err(
                            format!("exports[{i}].columns[{j}]"),
                            format!(
                                "column `{n}` does not exist in {what}; its columns are: {}",
                                d.columns
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })
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
fn wants_dictionary(n_distinct: Option<f64>, rows: u64) -> bool {
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

/// The integer column to chunk on and whether it is nullable.
fn chunk_key_column(
    i: usize,
    e: &ExportConfig,
    d: &Described,
) -> Result<(String, bool), PlanError> {
    let what = d.relation.display_name();
    let is_int = |c: &SourceColumn| c.logical.as_ref().is_ok_and(LogicalType::is_integer);
    match &e.chunk_column {
        Some(name) => {
            let c = d.columns.iter().find(|c| &c.name == name).ok_or_else(|| {
                cfg_err(
                    format!("exports[{i}].chunk_column"),
                    format!("column `{name}` does not exist in {what}"),
                )
            })?;
            if !is_int(c) {
                return Err(cfg_err(
                    format!("exports[{i}].chunk_column"),
                    format!(
                        "column `{name}` of {what} is `{}`; chunked mode needs an integer column \
                         (smallint, integer or bigint): pick one, or use `mode: full`",
                        c.declared_type
                    ),
                ));
            }
            Ok((c.name.clone(), c.nullable))
        }
        None => {
            let pk = &d.primary_key;
            let single = (pk.len() == 1)
                .then(|| d.columns.iter().find(|c| c.name == pk[0]))
                .flatten()
                .filter(|c| is_int(c));
            match single {
                Some(c) => Ok((c.name.clone(), c.nullable)),
                None => {
                    let why = match pk.len() {
                        0 => format!("{what} has no primary key"),
                        1 => format!(
                            "the primary key `{}` of {what} is not an integer column",
                            pk[0]
                        ),
                        _ => format!(
                            "the primary key of {what} has {} columns ({})",
                            pk.len(),
                            pk.join(", ")
                        ),
                    };
                    Err(cfg_err(
                        format!("exports[{i}].chunk_column"),
                        format!(
                            "chunked mode needs a single integer key and {why}; set `chunk_column` \
                             to an integer column, or use `mode: full`"
                        ),
                    ))
                }
            }
        }
    }
}

/// Key-range width so a chunk holds about `target_bytes` of source data.
fn default_chunk_size(
    min: Option<i64>,
    max: Option<i64>,
    rows: u64,
    row_bytes: u64,
    target_bytes: u64,
) -> u64 {
    let (Some(min), Some(max)) = (min, max) else {
        return 1;
    };
    let span = (i128::from(max) - i128::from(min) + 1).max(1) as u128;
    let target_rows = (u128::from(target_bytes) / u128::from(row_bytes)).max(1);
    // Without statistics (never analyzed, or a query) assume every key value is a row:
    // more, smaller chunks are the safe side for the source.
    let rows = if rows == 0 { span } else { u128::from(rows) };
    let size = (target_rows * span).div_ceil(rows).max(1);
    size.min(u128::from(u64::MAX)) as u64
}

#[allow(clippy::too_many_arguments)]
fn split_chunks(
    i: usize,
    export: &str,
    min: Option<i64>,
    max: Option<i64>,
    nullable: bool,
    chunk_size: u64,
    rows: u64,
    ext: &str,
) -> Result<Vec<PlannedChunk>, PlanError> {
    let whole = |row_estimate| {
        vec![PlannedChunk {
            id: chunk_id(export, 1),
            seq: 1,
            range: Some(KeyRange {
                lower: None,
                upper: None,
                include_null: nullable,
            }),
            row_estimate,
            file: format!("part-00001.{ext}"),
        }]
    };
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(whole(rows));
    };
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    let n = span.div_ceil(u128::from(chunk_size.max(1)));
    if n > MAX_CHUNKS {
        return Err(cfg_err(
            format!("exports[{i}].chunk_size"),
            format!(
                "chunk_size {chunk_size} over the key range {min}..={max} would make {n} chunks \
                 (at most {MAX_CHUNKS}); raise chunk_size or omit it to size chunks from statistics"
            ),
        ));
    }
    if n <= 1 {
        return Ok(whole(rows));
    }
    let n = n as u32;
    let per_chunk = rows.div_ceil(u64::from(n));
    Ok((0..n)
        .map(|k| {
            let seq = k + 1;
            let lo = i128::from(min) + i128::from(k) * i128::from(chunk_size);
            let hi = lo + i128::from(chunk_size);
            PlannedChunk {
                id: chunk_id(export, seq),
                seq,
                range: Some(KeyRange {
                    lower: (k > 0).then_some(lo as i64),
                    upper: (seq < n).then_some(hi as i64),
                    include_null: nullable && k == 0,
                }),
                row_estimate: per_chunk,
                file: format!("part-{seq:05}.{ext}"),
            }
        })
        .collect())
}

fn chunk_id(export: &str, seq: u32) -> String {
    format!("{export}/{seq:05}")
}

/// File extension for a format and codec (`parquet`, `csv`, `csv.gz`, `csv.zst`).
fn file_extension(format: Format, compression: Compression) -> String {
    match (format, compression) {
        (Format::Parquet, _) => "parquet".into(),
        (Format::Csv, Compression::Gzip) => "csv.gz".into(),
        (Format::Csv, Compression::Zstd) => "csv.zst".into(),
        (Format::Csv, _) => "csv".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_whole_key_space_with_open_ends() {
        let c = split_chunks(0, "t", Some(1), Some(250), true, 100, 250, "parquet").unwrap();
        let ranges: Vec<_> = c.iter().map(|c| c.range.clone().unwrap()).collect();
        assert_eq!(ranges.len(), 3);
        assert_eq!(
            (ranges[0].lower, ranges[0].upper, ranges[0].include_null),
            (None, Some(101), true)
        );
        assert_eq!(
            (ranges[1].lower, ranges[1].upper, ranges[1].include_null),
            (Some(101), Some(201), false)
        );
        assert_eq!((ranges[2].lower, ranges[2].upper), (Some(201), None));
        assert_eq!(c[2].id, "t/00003");
        assert_eq!(c[2].file, "part-00003.parquet");
    }

    #[test]
    fn extreme_key_ranges_do_not_overflow() {
        let c = split_chunks(
            0,
            "t",
            Some(i64::MIN),
            Some(i64::MAX),
            false,
            u64::MAX / 4 + 1,
            10,
            "csv",
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert!(split_chunks(0, "t", Some(0), Some(10_000_000), false, 1, 10, "csv").is_err());
    }

    #[test]
    fn dictionary_is_chosen_for_repeating_values_only() {
        assert!(wants_dictionary(None, 1_000_000));
        assert!(wants_dictionary(Some(12.0), 1_000_000));
        assert!(wants_dictionary(Some(-0.05), 1_000_000));
        assert!(!wants_dictionary(Some(-1.0), 1_000_000));
        assert!(!wants_dictionary(Some(500_000.0), 1_000_000));
        assert!(wants_dictionary(Some(-1.0), 500));
    }

    #[test]
    fn default_chunk_size_follows_row_width_and_density() {
        // 1M rows over keys 1..=2M (half dense), 100 bytes a row, 10 MB target → 100k rows → 200k keys
        assert_eq!(
            default_chunk_size(Some(1), Some(2_000_000), 1_000_000, 100, 10_000_000),
            200_000
        );
        // no statistics: assume dense keys
        assert_eq!(
            default_chunk_size(Some(1), Some(2_000_000), 0, 100, 10_000_000),
            100_000
        );
    }
}
