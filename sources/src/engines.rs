//! Opening an engine's [`Catalog`] or [`ChunkSource`] from connection settings: the one
//! place that knows every engine module, so the engines and the traits they implement
//! never refer back to each other.

use rivet_schema::config::SourceKind;

use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{Catalog, ChunkSource};
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

/// Opens a catalog connection that also answers `init` and `check` questions.
pub fn open_survey(settings: &ConnectionSettings) -> Result<Box<dyn Survey>, SourceError> {
    match settings.kind {
        SourceKind::Postgres => Ok(Box::new(crate::postgres::connect(settings)?)),
        SourceKind::Mysql => Ok(Box::new(crate::mysql::MyCatalog::connect(settings)?)),
        SourceKind::Mssql => Ok(Box::new(crate::mssql::MsCatalog::connect(settings)?)),
    }
}
