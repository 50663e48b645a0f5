//! One module per command. Each reads its inputs, calls the library crates, and prints
//! what they return; the decisions live in the libraries.

mod apply;
mod cdc;
mod check;
mod doctor;
mod init;
mod journal;
mod metrics;
mod plan;
mod reconcile;
mod repair;
mod schema;
mod shell;
mod state;
mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rivet_schema::seal::open_sealed;
use rivet_schema::Plan;

use crate::cli::{Cli, Command, PlanAction, StateAction, StateArgs};
use crate::exit::{Status, UsageError};

/// The state database's default name, beside the plan or config.
const STATE_FILE: &str = ".rivet_state.db";

/// Runs the command the arguments name.
pub fn dispatch(cli: Cli, progress: crate::progress::Mode) -> Result<Status> {
    match cli.command {
        Command::Plan(args) => match args.action {
            Some(PlanAction::Show { plan, json }) => plan::show(&plan, json),
            Some(PlanAction::Diff { old, new, json }) => plan::diff(&old, &new, json),
            None => {
                let config = args.config.ok_or_else(|| {
                    UsageError(
                        "`rivet plan` needs a config: rivet plan -c rivet.yaml -o plan.json".into(),
                    )
                })?;
                let state = args.state.unwrap_or_else(|| beside(&args.out, STATE_FILE));
                plan::plan(&config, &args.out, &state, args.as_of.as_of.as_deref())
            }
        },
        Command::Apply(args) if apply::is_config_path(&args.plan) => apply::run(
            &args.plan,
            args.state,
            args.resume,
            args.as_of.as_of.as_deref(),
            progress,
            &args.metrics,
        ),
        Command::Apply(args) if args.as_of.as_of.is_some() => Err(UsageError(
            "`--as-of` belongs to planning: a sealed plan already carries its bounds; give it to `rivet plan` (or apply a config)".into(),
        )
        .into()),
        Command::Apply(args) => {
            let state = args.state.unwrap_or_else(|| beside(&args.plan, STATE_FILE));
            let plan = read_plan(&args.plan)?;
            apply::apply(
                &plan,
                &args.plan.display().to_string(),
                &state,
                args.resume,
                progress,
                &args.metrics,
            )
        }
        Command::Run(args) => apply::run(
            &args.config,
            args.state,
            args.resume,
            args.as_of.as_of.as_deref(),
            progress,
            &args.metrics,
        ),
        Command::State(StateArgs {
            action: Some(StateAction::ResetCursor { export, state }),
            ..
        }) => state::reset_cursor(
            &state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            &export,
        ),
        Command::State(StateArgs {
            action: Some(StateAction::ResetShape { export, state }),
            ..
        }) => state::reset_shape(
            &state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            &export,
        ),
        Command::State(args) => state::show(
            &args.state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            args.limit,
            args.json,
            args.config.as_deref(),
        ),
        Command::Journal(args) => journal::show(
            &args.state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            args.run_id,
            args.json,
        ),
        Command::Doctor { config } => doctor::doctor(&config),
        Command::Init(args) => init::init(&args),
        Command::Check {
            config,
            strict,
            json,
        } => check::check(&config, strict, json),
        Command::Cdc { action } => match action {
            crate::cli::CdcAction::Setup { config } => cdc::setup(&config),
            crate::cli::CdcAction::Teardown { config } => cdc::teardown(&config),
        },
        Command::Repair {
            plan,
            out,
            reconcile,
        } => repair::repair(&plan, &out, reconcile),
        Command::Reconcile {
            plan,
            checksum,
            json,
        } => reconcile::reconcile(&plan, checksum, json),
        Command::Validate {
            plan,
            manifest,
            config,
            json,
        } => validate::validate(plan.as_deref(), manifest.as_deref(), config.as_deref(), json),
        Command::Schema { what } => schema::print(what),
        Command::Metrics {
            run_id,
            state,
            json,
        } => metrics::show(
            &state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            run_id,
            json,
        ),
        Command::Completions { shell } => shell::completions(shell),
        Command::Man { out_dir } => shell::man(out_dir.as_deref()),
    }
}

/// `name` in the directory holding `file`.
fn beside(file: &Path, name: &str) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// Reads and verifies a sealed plan file (seal, format version, types).
fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|e| rivet_executor::ExecError::ReadPlan {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(open_sealed(&path.display().to_string(), &text)?)
}

/// Writes a plan file durably: a temporary file, fsync, rename, fsync of the directory.
fn write_plan_file(path: &Path, plan: &Plan) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| UsageError(format!("{} is not a file name", path.display())))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = rivet_schema::seal::to_pretty_json(plan);
    rivet_executor::durable::write_atomic(dir, name, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The schema a config's table name lives in: the one it names, else the one the source
/// resolves it to for this connection (PostgreSQL's search path, SQL Server's default
/// schema), as planning does — never an assumed `public` or `dbo`.
fn table_schema(
    catalog: &mut dyn rivet_sources::Catalog,
    table: &rivet_schema::names::TableName,
) -> Result<String> {
    if let Some(s) = &table.schema {
        return Ok(s.clone());
    }
    let found = catalog.describe_tables(&[rivet_sources::TableRequest {
        schema: None,
        name: table.name.clone(),
    }])?;
    found.into_iter().next().map(|t| t.schema).ok_or_else(|| {
        UsageError(format!(
            "table `{}` is not in the connection's default schema; write it as `schema.table`",
            table.name
        ))
        .into()
    })
}

/// A usage error unless a state database exists at `path`.
fn require_state(path: &Path) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "no state database at {}; run `rivet apply` first, or point --state at the right file",
            path.display()
        ))
        .into())
    }
}

/// The state database for read commands, which never create or change it.
fn open_state_read_only(path: &Path) -> Result<rivet_executor::StateStore> {
    require_state(path)?;
    Ok(rivet_executor::StateStore::open_read_only(path)?)
}

/// The run a read command is about: the one named, else the latest recorded.
fn run_or_latest(
    store: &rivet_executor::StateStore,
    path: &Path,
    run_id: Option<String>,
) -> Result<String> {
    match run_id {
        Some(r) => Ok(r),
        None => Ok(store
            .recent_runs(1)?
            .into_iter()
            .next()
            .map(|r| r.run_id)
            .ok_or_else(|| {
                crate::exit::UsageError(format!("no runs recorded in {}", path.display()))
            })?),
    }
}
