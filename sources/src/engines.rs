//! Opening an engine's [`Catalog`] or [`ChunkSource`] from connection settings: the one
//! place that knows every engine module, so the engines and the traits they implement
//! never refer back to each other.

use rivet_schema::config::SourceKind;

use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{Catalog, ChunkSource, SnapshotHolder};
use crate::survey::Survey;

/// Opens a catalog connection for the configured engine.
pub fn open_catalog(settings: &ConnectionSettings) -> Result<Box<dyn Catalog>, SourceError> {
    match settings.kind {
        SourceKind::Postgres => Ok(Box::new(crate::postgres::connect(settings)?)),
        SourceKind::Mysql => Ok(Box::new(crate::mysql::MyCatalog::connect(settings)?)),
        SourceKind::Mssql => Ok(Box::new(crate::mssql::MsCatalog::connect(settings)?)),
    }
}

/// Opens a connection dedicated to reading chunks for the configured engine.
pub fn open_chunk_source(
    settings: &ConnectionSettings,
) -> Result<Box<dyn ChunkSource>, SourceError> {
    match settings.kind {
        SourceKind::Postgres => Ok(Box::new(crate::postgres::ChunkReader::connect(settings)?)),
        SourceKind::Mysql => Ok(Box::new(crate::mysql::MyReader::connect(settings)?)),
        SourceKind::Mssql => Ok(Box::new(crate::mssql::MsReader::connect(settings)?)),
    }
}

/// Opens a connection that exports and holds one snapshot for `consistency: snapshot`.
pub fn open_snapshot_holder(
    settings: &ConnectionSettings,
) -> Result<Box<dyn SnapshotHolder>, SourceError> {
    match settings.kind {
        SourceKind::Postgres => Ok(Box::new(crate::postgres::PgSnapshot::open(settings)?)),
        SourceKind::Mysql | SourceKind::Mssql => Err(SourceError::Settings {
            key: "exports[].consistency".into(),
            detail: "`consistency: snapshot` is supported on PostgreSQL only; remove it (docs/execution.md says what each engine guarantees)".into(),
        }),
    }
}

/// Reads the source's health (activity, lock waits, log retention) on a read-only
/// connection where the engine has one; see [`crate::health`].
pub fn source_health(
    settings: &ConnectionSettings,
) -> Result<crate::health::HealthReport, SourceError> {
    match settings.kind {
        SourceKind::Postgres => crate::postgres::health::health(settings),
        SourceKind::Mysql => crate::mysql::health::health(settings),
        SourceKind::Mssql => crate::mssql::health::health(settings),
    }
}

/// The SQL one chunk read sends and the database's EXPLAIN of it (never executed).
pub fn explain_chunk(
    settings: &ConnectionSettings,
    req: &crate::ChunkRead,
) -> Result<crate::health::ChunkExplain, SourceError> {
    match settings.kind {
        SourceKind::Postgres => crate::postgres::health::explain(settings, req),
        SourceKind::Mysql => crate::mysql::health::explain(settings, req),
        SourceKind::Mssql => crate::mssql::health::explain(settings, req),
    }
}

/// Opens a catalog connection that also answers `init` and `check` questions.
pub fn open_survey(settings: &ConnectionSettings) -> Result<Box<dyn Survey>, SourceError> {
    match settings.kind {
        SourceKind::Postgres => Ok(Box::new(crate::postgres::connect(settings)?)),
        SourceKind::Mysql => Ok(Box::new(crate::mysql::MyCatalog::connect(settings)?)),
        SourceKind::Mssql => Ok(Box::new(crate::mssql::MsCatalog::connect(settings)?)),
    }
}
