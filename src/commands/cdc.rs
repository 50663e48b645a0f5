//! `rivet cdc setup|teardown -c rivet.yaml`: create or drop the replication slot and
//! publication of every PostgreSQL `cdc` export, explicitly — plan and apply never
//! create them. MySQL/MariaDB capture needs nothing on the server: setup checks its
//! prerequisites and says where capture starts; teardown says how to forget the
//! position. An unmet prerequisite exits 2 with the requirement and the SQL that
//! fixes it.

use std::path::Path;

use anyhow::Result;
use rivet_schema::config::{CdcConfig, ExportMode, SourceKind};
use rivet_sources::{CdcObjects, ConnectionSettings};

use crate::exit::{Status, UsageError};

fn objects(config_path: &Path) -> Result<(SourceKind, ConnectionSettings, Vec<CdcObjects>)> {
    let config = rivet_planner::load_config(config_path)?;
    if config.source.kind == SourceKind::Mssql {
        return Err(UsageError(
            "`rivet cdc` serves PostgreSQL slots and the MySQL/MariaDB binary log; SQL Server change tables are not read yet (docs/cdc.md)".into(),
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
    Ok((
        config.source.kind,
        ConnectionSettings::resolve(&config.source)?,
        out,
    ))
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
    match objects(config_path)? {
        (SourceKind::Mysql, settings, objects) => {
            report(rivet_sources::mysql::binlog::setup(&settings, &objects))
        }
        (_, settings, objects) => report(rivet_sources::cdc_setup(&settings, &objects)),
    }
}

pub fn teardown(config_path: &Path) -> Result<Status> {
    match objects(config_path)? {
        (SourceKind::Mysql, _, objects) => report(Ok(objects
            .iter()
            .map(|o| {
                format!(
                    "export {}: nothing to drop on the server (binary log capture holds no slot); `rivet state reset-cursor {}` forgets its position",
                    o.export, o.export
                )
            })
            .collect())),
        (_, settings, objects) => report(rivet_sources::cdc_teardown(&settings, &objects)),
    }
}
