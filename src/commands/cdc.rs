//! `rivet cdc setup|teardown -c rivet.yaml`: create or drop the replication slot and
//! publication of every `cdc` export, explicitly — plan and apply never create them.
//! An unmet prerequisite exits 2 with the requirement and the SQL that fixes it.

use std::path::Path;

use anyhow::Result;
use rivet_schema::config::{CdcConfig, ExportMode, SourceKind};
use rivet_sources::{CdcObjects, ConnectionSettings};

use crate::exit::{Status, UsageError};

fn objects(config_path: &Path) -> Result<(ConnectionSettings, Vec<CdcObjects>)> {
    let config = rivet_planner::load_config(config_path)?;
    if config.source.kind != SourceKind::Postgres {
        return Err(UsageError(
            "`rivet cdc` manages PostgreSQL slots and publications; change capture for MySQL/MariaDB and SQL Server is not done yet (docs/cdc.md)".into(),
        )
        .into());
    }
    let mut out = Vec::new();
    for e in config.exports.iter().filter(|e| e.mode == ExportMode::Cdc) {
        let table = e.table.as_deref().unwrap_or_default();
        let t = rivet_schema::names::split_table_name(table)
            .map_err(|m| UsageError(format!("export {}: table: {m}", e.name)))?;
        out.push(CdcObjects {
            export: e.name.clone(),
            schema: t.schema,
            table: t.name,
            slot: CdcConfig::slot_name(e.cdc.as_ref(), &e.name),
            publication: CdcConfig::publication_name(e.cdc.as_ref(), &e.name),
        });
    }
    if out.is_empty() {
        return Err(UsageError(format!(
            "{} has no export with `mode: cdc`; nothing to set up",
            config_path.display()
        ))
        .into());
    }
    Ok((ConnectionSettings::resolve(&config.source)?, out))
}

fn report(result: Result<Vec<String>, rivet_sources::SourceError>) -> Result<Status> {
    match result {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(Status::Success)
        }
        Err(e) if e.is_settings_error() => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

pub fn setup(config_path: &Path) -> Result<Status> {
    let (settings, objects) = objects(config_path)?;
    report(rivet_sources::cdc_setup(&settings, &objects))
}

pub fn teardown(config_path: &Path) -> Result<Status> {
    let (settings, objects) = objects(config_path)?;
    report(rivet_sources::cdc_teardown(&settings, &objects))
}
