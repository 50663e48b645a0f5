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
        (SourceKind::Mssql, settings, objects) => report(mssql_setup(&settings, &objects)),
        (_, settings, objects) => report(rivet_sources::cdc_setup(&settings, &objects)),
    }
}

/// SQL Server: rivet does not enable change data capture (that takes sysadmin and
/// db_owner and starts jobs on the server); setup checks each table and says what to
/// run when something is missing.
fn mssql_setup(
    settings: &ConnectionSettings,
    objects: &[CdcObjects],
) -> Result<Vec<String>, rivet_sources::SourceError> {
    let mut catalog = rivet_sources::open_catalog(settings)?;
    let mut out = Vec::new();
    for o in objects {
        let schema = super::table_schema(
            catalog.as_mut(),
            &rivet_schema::names::TableName {
                schema: o.schema.clone(),
                name: o.table.clone(),
            },
        )
        .map_err(|e| match e.downcast::<rivet_sources::SourceError>() {
            Ok(source) => source,
            Err(usage) => rivet_sources::SourceError::Settings {
                key: "source".into(),
                detail: format!("export {}: {usage:#}", o.export),
            },
        })?;
        let f = catalog.change_table_facts(&schema, &o.table, None)?;
        let unmet = |detail: String| rivet_sources::SourceError::Settings {
            key: "source".into(),
            detail: format!("export {}: {detail}", o.export),
        };
        if let Some(u) = rivet_sources::mssql::cdc::unmet_prerequisite(&f, &schema, &o.table) {
            return Err(unmet(format!("{}; {}", u.problem, u.fix)));
        }
        out.push(format!(
            "export {}: {schema}.{} is tracked by capture instance(s) {}; nothing is created by rivet: the first window starts at the oldest change in the change table",
            o.export,
            o.table,
            f.instances.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(out)
}

pub fn teardown(config_path: &Path) -> Result<Status> {
    match objects(config_path)? {
        (SourceKind::Mssql, _, objects) => report(Ok(objects
            .iter()
            .map(|o| {
                format!(
                    "export {}: nothing to drop (rivet creates nothing on SQL Server; `EXEC sys.sp_cdc_disable_table` is the owner's); `rivet state reset-cursor {}` forgets its position",
                    o.export, o.export
                )
            })
            .collect())),
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
