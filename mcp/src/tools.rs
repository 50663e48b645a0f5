//! The tools' work, synchronous and free of the protocol: each takes its arguments,
//! calls the same library functions the `rivet` binary calls (planner `show`/`diff`,
//! executor `state_summary`/`validate_plan`/`request::chunk_read`, sources
//! `source_health`/`explain_chunk`) and returns what the client is shown. Nothing here
//! writes: plans and state are opened read-only, sources through read-only sessions.

use std::path::{Path, PathBuf};

use rivet_schema::Plan;
use rivet_sources::ConnectionSettings;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ToolError;

/// What a tool returns: one or more text blocks (JSON, or a rendering for people),
/// already cleared of the source's secrets.
pub struct Answer {
    pub blocks: Vec<String>,
}

impl Answer {
    fn json(value: &impl serde::Serialize, settings: Option<&ConnectionSettings>) -> Answer {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the answer: {e}\"}}"));
        Answer {
            blocks: vec![redact(settings, text)],
        }
    }
}

/// Removes the source's secrets from a text (a backstop: the libraries redact where
/// they build messages, and the views this server reads hold no credentials of ours).
pub fn redact(settings: Option<&ConnectionSettings>, text: String) -> String {
    match settings {
        Some(s) => s.redact(&text),
        None => text,
    }
}

/// Which source to look at: the one a config or a sealed plan names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SourceArgs {
    /// Path to a rivet.yaml (absolute, or relative to the server's working directory).
    pub config: Option<String>,
    /// Path to a sealed plan.json; its `source` section is used.
    pub plan: Option<String>,
    /// MySQL/MariaDB: the state database whose committed binary log positions are
    /// compared with the log on the server (default: `.rivet_state.db` beside the
    /// plan or config, when there is one).
    pub state: Option<String>,
}

/// One sealed plan.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PlanArgs {
    /// Path to a sealed plan.json.
    pub plan: String,
}

/// Two sealed plans to compare.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DiffArgs {
    /// The older plan.json.
    pub old: String,
    /// The newer plan.json.
    pub new: String,
}

/// Which state database to summarize.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StateArgs {
    /// Path to the state database (`.rivet_state.db`).
    pub state: Option<String>,
    /// A plan.json; its state database is the `.rivet_state.db` beside it.
    pub plan: Option<String>,
    /// How many recent runs to list (default 10).
    pub limit: Option<u32>,
}

/// One chunk of a plan.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ChunkArgs {
    /// Path to a sealed plan.json.
    pub plan: String,
    /// The export's name.
    pub export: String,
    /// The chunk id (`orders/00003`); default the export's first chunk.
    pub chunk: Option<String>,
}

/// Reads and verifies a sealed plan (seal, format version, structure).
pub fn read_plan(path: &str) -> Result<Plan, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|e| ToolError::ReadPlan {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(rivet_schema::seal::open_sealed(path, &text)?)
}

fn settings_of(args: &SourceArgs) -> Result<ConnectionSettings, ToolError> {
    let source = match (&args.config, &args.plan) {
        (Some(config), None) => rivet_planner::load_config(Path::new(config))?.source,
        (None, Some(plan)) => read_plan(plan)?.body.source,
        _ => {
            return Err(ToolError::Usage(
                "give exactly one of `config` (a rivet.yaml) or `plan` (a plan.json) to name the source".into(),
            ))
        }
    };
    Ok(ConnectionSettings::resolve(&source)?)
}

/// `source_health`; on MySQL/MariaDB with a state database, also Rivet's committed
/// binary log positions against the log on the server.
pub fn source_health(args: SourceArgs) -> Result<Answer, ToolError> {
    let settings = settings_of(&args)?;
    let mut report = rivet_sources::source_health(&settings)?;
    if settings.kind == rivet_schema::config::SourceKind::Mysql {
        if let Some(section) = binlog_positions(&args, &settings)? {
            report.sections.push(section);
        }
    }
    Ok(Answer::json(&report, Some(&settings)))
}

/// The `rivet_binlog_positions` section: None when no state database is named or
/// found beside the plan or config (nothing applied yet); an explicitly named state
/// database that does not exist is an error.
fn binlog_positions(
    args: &SourceArgs,
    settings: &ConnectionSettings,
) -> Result<Option<rivet_sources::health::HealthSection>, ToolError> {
    let path = match (&args.state, args.plan.as_ref().or(args.config.as_ref())) {
        (Some(state), _) => {
            let p = PathBuf::from(state);
            if !p.exists() {
                return Err(ToolError::Usage(format!("no state database at {state}")));
            }
            p
        }
        (None, Some(file)) => {
            let p = Path::new(file).parent().map_or_else(
                || PathBuf::from(".rivet_state.db"),
                |d| d.join(".rivet_state.db"),
            );
            if !p.exists() {
                return Ok(None);
            }
            p
        }
        (None, None) => return Ok(None),
    };
    let store = rivet_executor::StateStore::open_read_only(&path)?;
    let mut positions = Vec::new();
    for (export, c) in store.cursors()? {
        if c.value_type == rivet_schema::plan::CursorType::Binlog {
            let pos = rivet_schema::plan::BinlogPos::parse(&c.position).map_err(|d| {
                ToolError::Worker(format!(
                    "export {export}: the state database's binary log position cannot be read: {d}"
                ))
            })?;
            positions.push((export, pos));
        }
    }
    Ok(Some(rivet_sources::mysql::binlog::checkpoint_section(
        settings, &positions,
    )))
}

/// `plan_show`: the reviewable tree and its JSON form.
pub fn plan_show(args: PlanArgs) -> Result<Answer, ToolError> {
    let plan = read_plan(&args.plan)?;
    let json = serde_json::to_string_pretty(&rivet_planner::show_json(&plan))
        .map_err(|e| ToolError::Worker(e.to_string()))?;
    Ok(Answer {
        blocks: vec![rivet_planner::render_plan(&plan), json],
    })
}

/// `plan_diff`: structural and volume changes between two plans.
pub fn plan_diff(args: DiffArgs) -> Result<Answer, ToolError> {
    let old = read_plan(&args.old)?;
    let new = read_plan(&args.new)?;
    let d = rivet_planner::diff_plans(&old, &new);
    let json = serde_json::to_string_pretty(&json!({"same": d.is_empty(), "diff": d}))
        .map_err(|e| ToolError::Worker(e.to_string()))?;
    Ok(Answer {
        blocks: vec![d.render(), json],
    })
}

/// `state_summary`.
pub fn state_summary(args: StateArgs) -> Result<Answer, ToolError> {
    let path = match (&args.state, &args.plan) {
        (Some(s), None) => PathBuf::from(s),
        (None, Some(p)) => match Path::new(p).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(".rivet_state.db"),
            _ => PathBuf::from(".rivet_state.db"),
        },
        _ => {
            return Err(ToolError::Usage(
                "give exactly one of `state` (a .rivet_state.db) or `plan` (its state database is the one beside it)".into(),
            ))
        }
    };
    if !path.exists() {
        return Err(ToolError::Usage(format!(
            "no state database at {}; nothing has been applied there yet",
            path.display()
        )));
    }
    let summary = rivet_executor::summary::state_summary(&path, args.limit.unwrap_or(10))?;
    Ok(Answer::json(&summary, None))
}

/// `validate`: re-reads what a plan's exports wrote and compares it with their
/// manifests (never the source).
pub fn validate(args: PlanArgs) -> Result<Answer, ToolError> {
    let plan = read_plan(&args.plan)?;
    let reports = rivet_executor::validate::validate_plan(&plan)?;
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    Ok(Answer::json(
        &json!({"valid": problems == 0, "problems": problems, "exports": reports}),
        None,
    ))
}

/// `explain_chunk`: the chunk's read as the executor builds it, and the database's
/// EXPLAIN of it.
pub fn explain_chunk(args: ChunkArgs) -> Result<Answer, ToolError> {
    let plan = read_plan(&args.plan)?;
    let export = plan.body.export(&args.export).ok_or_else(|| {
        ToolError::Usage(format!(
            "plan {} has no export `{}`; its exports: {}",
            args.plan,
            args.export,
            plan.body
                .exports
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let chunk = match &args.chunk {
        Some(id) => export.chunks.iter().find(|c| &c.id == id).ok_or_else(|| {
            ToolError::Usage(format!(
                "export `{}` has no chunk `{id}`; its chunks run from {} to {}",
                export.name,
                export.chunks.first().map(|c| c.id.as_str()).unwrap_or("-"),
                export.chunks.last().map(|c| c.id.as_str()).unwrap_or("-")
            ))
        })?,
        None => export.chunks.first().ok_or_else(|| {
            ToolError::Usage(format!(
                "export `{}` has no chunks in this plan (nothing to read)",
                export.name
            ))
        })?,
    };
    let read = rivet_executor::request::chunk_read(export, chunk)?;
    let settings = ConnectionSettings::resolve(&plan.body.source)?;
    let explain = rivet_sources::explain_chunk(&settings, &read)?;
    let mut value = serde_json::to_value(&explain).map_err(|e| ToolError::Worker(e.to_string()))?;
    if let Value::Object(m) = &mut value {
        m.insert("export".into(), Value::from(export.name.as_str()));
        m.insert("chunk".into(), Value::from(chunk.id.as_str()));
        m.insert("row_estimate".into(), Value::from(chunk.row_estimate));
    }
    Ok(Answer::json(&value, Some(&settings)))
}

/// `safe_to_apply`: the plan's load against the source's activity now.
pub fn safe_to_apply(args: PlanArgs) -> Result<Answer, ToolError> {
    let plan = read_plan(&args.plan)?;
    let settings = ConnectionSettings::resolve(&plan.body.source)?;
    let health = rivet_sources::source_health(&settings)?;
    Ok(Answer::json(
        &crate::assess::assess(&plan, &health),
        Some(&settings),
    ))
}
