//! Opening an engine's [`Catalog`] or [`ChunkSource`] from connection settings: the one
//! place that knows every engine module, so the engines and the traits they implement
//! never refer back to each other.

use rivet_schema::config::SourceKind;

use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{Catalog, ChunkSource, SnapshotHolder};

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
