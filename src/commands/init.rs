//! `rivet init`: resolve the URL from the named variable, ask the library to discover
//! the tables and choose modes, and write the config (and `--discover` JSON).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rivet_planner::scaffold::{discover, render_config, InitDestination, InitRequest};
use rivet_schema::config::{ExportMode, SourceConfig};
use rivet_sources::{kind_of_url, open_survey, ConnectionSettings};

use crate::cli::{InitArgs, InitMode};
use crate::exit::{Status, UsageError};

pub fn init(args: &InitArgs) -> Result<Status> {
    let url = match std::env::var(&args.source_env) {
        Ok(v) if !v.trim().is_empty() => v,
        Ok(_) => {
            return Err(UsageError(format!(
                "environment variable `{}` (named by --source-env) is empty; it should hold the source URL",
                args.source_env
            ))
            .into())
        }
        Err(_) => {
            return Err(UsageError(format!(
                "environment variable `{}` (named by --source-env) is not set; export the source URL in it first",
                args.source_env
            ))
            .into())
        }
    };
    let kind = kind_of_url(&url).ok_or_else(|| {
        UsageError(format!(
            "the URL in `{}` is not for an engine rivet reads; it should start with postgres://, mysql:// or sqlserver://",
            args.source_env
        ))
    })?;
    drop(url);
    let destination = destination(args)?;
    if args.out.exists() {
        return Err(UsageError(format!(
            "{} already exists; rivet init does not overwrite a config (move it away or choose another -o)",
            args.out.display()
        ))
        .into());
    }
    let source = SourceConfig {
        kind,
        url: None,
        url_env: Some(args.source_env.clone()),
        url_file: None,
        host: None,
        port: None,
        user: None,
        password_env: None,
        database: None,
        tls: None,
        types: None,
        infinity: None,
        tinyint1_as_boolean: None,
        connect_timeout: None,
    };
    let settings = ConnectionSettings::resolve(&source)?;
    let mut survey = open_survey(&settings)?;
    let req = InitRequest {
        kind,
        source_env: args.source_env.clone(),
        schemas: args.schema.clone(),
        tables: args.table.clone(),
        mode: args.mode.map(|m| match m {
            InitMode::Full => ExportMode::Full,
            InitMode::Chunked => ExportMode::Chunked,
            InitMode::Incremental => ExportMode::Incremental,
            InitMode::TimeWindow => ExportMode::TimeWindow,
            InitMode::Cdc => ExportMode::Cdc,
        }),
        destination,
        full_below_bytes: args.full_below_mb.saturating_mul(1_000_000),
    };
    let discovery = discover(&req, survey.as_mut())?;
    let yaml = render_config(&discovery);
    write_new(&args.out, yaml.as_bytes())?;
    if let Some(path) = &args.discover {
        let json = serde_json::to_string_pretty(&discovery)? + "\n";
        std::fs::write(path, json)
            .with_context(|| format!("writing the discovery file {}", path.display()))?;
    }
    for t in &discovery.tables {
        eprintln!(
            "{:<24} {:<12} {}.{}",
            t.choice.export,
            rivet_schema::variant_name(&t.choice.mode),
            t.schema,
            t.name
        );
    }
    eprintln!(
        "wrote {} ({} export(s)); next: rivet check -c {0}",
        args.out.display(),
        discovery.tables.len()
    );
    Ok(Status::Success)
}

fn destination(args: &InitArgs) -> Result<InitDestination> {
    if let Some(b) = &args.s3_bucket {
        return Ok(InitDestination::S3 { bucket: b.clone() });
    }
    if let Some(b) = &args.gcs_bucket {
        return Ok(InitDestination::Gcs { bucket: b.clone() });
    }
    if let Some(c) = &args.azure_container {
        let account = match &args.azure_account {
            Some(a) => a.clone(),
            None => std::env::var("AZURE_STORAGE_ACCOUNT_NAME").map_err(|_| {
                UsageError(
                    "--azure-container needs the storage account: give --azure-account or set AZURE_STORAGE_ACCOUNT_NAME".into(),
                )
            })?,
        };
        return Ok(InitDestination::Azure {
            account,
            container: c.clone(),
        });
    }
    Ok(InitDestination::Local {
        path: args.path.clone().unwrap_or_else(|| "./output".to_owned()),
    })
}

/// Creates `path` with `bytes`, failing if it exists.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
