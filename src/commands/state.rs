//! `rivet state` (recent runs, per-export progress, incremental positions) and
//! `rivet state reset-cursor`. Showing state never writes to the state database.

use std::path::Path;

use super::require_state;
use crate::exit::{Status, UsageError};
use anyhow::Result;

/// `rivet state reset-cursor EXPORT`: the export's next plan starts from window 1.
pub fn reset_cursor(path: &Path, export: &str) -> Result<Status> {
    require_state(path)?;
    let _lock = rivet_executor::lock::lock_state(
        path,
        &rivet_executor::lock::Holder::me("state reset-cursor"),
    )?;
    let store = rivet_executor::StateStore::open(path)?;
    if store.reset_cursor(export)? {
        crate::say!(
            "export {export}: committed position forgotten; its next plan starts from the beginning (window 1)"
        );
        Ok(Status::Success)
    } else {
        Err(UsageError(format!(
            "export {export} has no committed position in {}",
            path.display()
        ))
        .into())
    }
}

/// For each `cdc` export of the config, one line on how far the source's log has moved
/// past the position committed in the state database, read on the source now.
fn live_log_lines(
    config_path: &Path,
    summary: &rivet_executor::summary::StateSummary,
) -> Result<Vec<String>> {
    use rivet_schema::config::{CdcConfig, ExportMode, SourceKind};
    let config = rivet_planner::load_config(config_path)?;
    let settings = rivet_sources::ConnectionSettings::resolve(&config.source)?;
    let committed = |export: &str| summary.cursors.iter().find(|c| c.export == export);
    let mut catalog = rivet_sources::open_catalog(&settings)?;
    let mut out = Vec::new();
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
    for e in config.exports.iter().filter(|e| e.mode == ExportMode::Cdc) {
        let named = e.table.as_deref().ok_or_else(|| {
            UsageError(format!("export {}: a `cdc` export names a `table`", e.name))
        })?;
        let table = rivet_schema::names::split_table_name(named)
            .map_err(|m| UsageError(format!("export {}: table: {m}", e.name)))?;
        let position = committed(&e.name).map(|c| c.position.clone());
        let line = match config.source.kind {
            SourceKind::Postgres => {
                let slot = CdcConfig::slot_name(e.cdc.as_ref(), &e.name);
                let publication = CdcConfig::publication_name(e.cdc.as_ref(), &e.name);
                let schema = super::table_schema(catalog.as_mut(), &table)?;
                let f = catalog.cdc_facts(&schema, &table.name, &slot, &publication)?;
                match f.slot {
                    None => format!("slot `{slot}` does not exist"),
                    Some(s) => format!(
                        "slot `{slot}` (wal_status {}): {} not yet confirmed (lag), {} of WAL retained",
                        s.wal_status,
                        s.confirmed_flush.map_or("all".to_owned(), |c| mib(f.current_lsn.saturating_sub(c))),
                        s.restart_lsn.map_or("unknown".to_owned(), |r| mib(f.current_lsn.saturating_sub(r)))
                    ),
                }
            }
            SourceKind::Mysql => match &position {
                None => "no committed binary log position yet".to_owned(),
                Some(p) => {
                    let pos =
                        rivet_schema::plan::BinlogPos::parse(p).map_err(anyhow::Error::msg)?;
                    let health = rivet_sources::mysql::binlog::live_positions(
                        &settings,
                        &[(e.name.clone(), pos)],
                    )?;
                    match health.first() {
                        Some(h) if h.readable => format!(
                            "binary log position {p}: {} of log after it in {} file(s)",
                            mib(h.bytes_after),
                            h.files_after
                        ),
                        Some(_) => format!("binary log position {p}: its file is PURGED from the server; `rivet state reset-cursor {}` and take a new snapshot", e.name),
                        None => anyhow::bail!("export {}: no answer for its binary log position", e.name),
                    }
                }
            },
            SourceKind::Mssql => {
                let schema = super::table_schema(catalog.as_mut(), &table)?;
                let f = catalog.change_table_facts(&schema, &table.name, None)?;
                format!(
                    "max LSN now {}; committed {}; capture instance(s) {}",
                    rivet_schema::plan::mssql_lsn_text(&f.max_lsn),
                    position.as_deref().unwrap_or("nothing yet"),
                    f.instances
                        .iter()
                        .map(|i| format!(
                            "{} (oldest change {})",
                            i.name,
                            rivet_schema::plan::mssql_lsn_text(&i.min_lsn)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        out.push(format!("{}: {line}", e.name));
    }
    Ok(out)
}

/// `rivet state reset-shape EXPORT`: the export's next apply has no drift history.
pub fn reset_shape(path: &Path, export: &str) -> Result<Status> {
    require_state(path)?;
    let _lock = rivet_executor::lock::lock_state(
        path,
        &rivet_executor::lock::Holder::me("state reset-shape"),
    )?;
    let store = rivet_executor::StateStore::open(path)?;
    match store.reset_shape(export)? {
        0 => Err(UsageError(format!(
            "export {export} has no recorded shape in {}",
            path.display()
        ))
        .into()),
        n => {
            crate::say!("export {export}: {n} recorded shape(s) forgotten; its next apply compares with nothing");
            Ok(Status::Success)
        }
    }
}

/// `rivet state [--json]`.
pub fn show(path: &Path, limit: u32, as_json: bool, config: Option<&Path>) -> Result<Status> {
    require_state(path)?;
    let summary = rivet_executor::summary::state_summary(path, limit)?;
    let live = config.map(|c| live_log_lines(c, &summary)).transpose()?;
    if as_json {
        let mut value = serde_json::to_value(&summary)?;
        if let (Some(lines), Some(obj)) = (&live, value.as_object_mut()) {
            obj.insert("cdc_live".into(), serde_json::Value::from(lines.clone()));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(Status::Success);
    }
    if let Some(lines) = &live {
        println!("change capture, read live from the source:");
        for l in lines {
            println!("  {l}");
        }
    }
    let runs = &summary.runs;
    if runs.is_empty() {
        println!("no runs recorded in {}", path.display());
        return Ok(Status::Success);
    }
    if !summary.cursors.is_empty() {
        println!("incremental positions (the next window starts here):");
        for c in &summary.cursors {
            println!(
                "  {:<24} {} = {} after window {}",
                c.export,
                c.column,
                serde_json::Value::from(c.position.as_str()),
                c.window
            );
        }
    }
    println!("recent runs ({}):", path.display());
    for r in runs {
        println!(
            "  {}  {:<9} plan sha256:{}  started {}  finished {}  ({}){}",
            r.run_id,
            r.status,
            &r.plan_digest[..12.min(r.plan_digest.len())],
            r.started_at,
            r.finished_at.as_deref().unwrap_or("-"),
            r.plan_path,
            r.error
                .as_deref()
                .map(|e| format!("\n      error: {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(d) = &summary.latest_plan_digest {
        println!(
            "exports of the latest plan (sha256:{}):",
            &d[..12.min(d.len())]
        );
        for p in &summary.exports {
            println!(
                "  {:<24} {}/{} chunks committed{}, {} rows, {} bytes",
                p.export,
                p.chunks_committed,
                p.chunks_total,
                if p.chunks_failed > 0 {
                    format!(" ({} failed)", p.chunks_failed)
                } else {
                    String::new()
                },
                p.rows,
                p.bytes
            );
        }
    }
    Ok(Status::Success)
}
