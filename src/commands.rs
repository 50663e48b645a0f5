//! One function per command: read inputs, call the library, print results.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rivet_executor::{apply_plan, ApplyOptions, ProgressEvent, StateStore};
use rivet_schema::seal::{open_sealed, to_pretty_json};
use rivet_schema::Plan;
use serde_json::json;

use crate::cli::{Cli, Command, PlanAction, SchemaKind, StateAction, StateArgs};
use crate::exit::UsageError;

const STATE_FILE: &str = ".rivet_state.db";

pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(args) => match args.action {
            Some(PlanAction::Show { plan, json }) => show(&plan, json),
            Some(PlanAction::Diff { old, new, json }) => diff(&old, &new, json),
            None => {
                let config = args.config.ok_or_else(|| {
                    UsageError(
                        "`rivet plan` needs a config: rivet plan -c rivet.yaml -o plan.json".into(),
                    )
                })?;
                let state = args.state.unwrap_or_else(|| beside(&args.out, STATE_FILE));
                plan(&config, &args.out, &state, args.as_of.as_of.as_deref())
            }
        },
        Command::Apply(args) if is_config_path(&args.plan) => run(
            &args.plan,
            args.state,
            args.resume,
            args.as_of.as_of.as_deref(),
        ),
        Command::Apply(args) if args.as_of.as_of.is_some() => Err(UsageError(
            "`--as-of` belongs to planning: a sealed plan already carries its bounds; give it to `rivet plan` (or apply a config)".into(),
        )
        .into()),
        Command::Apply(args) => {
            let state = args.state.unwrap_or_else(|| beside(&args.plan, STATE_FILE));
            let plan = read_plan(&args.plan)?;
            apply(&plan, &args.plan.display().to_string(), &state, args.resume)
        }
        Command::Run(args) => run(&args.config, args.state, false, args.as_of.as_of.as_deref()),
        Command::State(StateArgs {
            action: Some(StateAction::ResetCursor { export, state }),
            ..
        }) => reset_cursor(
            &state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            &export,
        ),
        Command::State(args) => state(
            &args.state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            args.limit,
            args.json,
        ),
        Command::Journal(args) => journal(
            &args.state.unwrap_or_else(|| PathBuf::from(STATE_FILE)),
            args.run_id,
            args.json,
        ),
        Command::Doctor { config } => doctor(&config),
        Command::Repair {
            plan,
            out,
            reconcile,
        } => repair(&plan, &out, reconcile),
        Command::Reconcile {
            plan,
            checksum,
            json,
        } => reconcile(&plan, checksum, json),
        Command::Validate {
            plan,
            manifest,
            config,
            json,
        } => validate(plan.as_deref(), manifest.as_deref(), config.as_deref(), json),
        Command::Schema { what } => {
            let schema = match what {
                SchemaKind::Config => rivet_schema::config_json_schema(),
                SchemaKind::Plan => rivet_schema::plan_json_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(0)
        }
    }
}

/// `name` in the directory holding `file`.
fn beside(file: &Path, name: &str) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

fn read_config(path: &Path) -> Result<rivet_schema::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))
        .map_err(|e| UsageError(format!("{e:#}")))?;
    let mut config = rivet_schema::load::parse_config(&path.display().to_string(), &text)?;
    // `query_file` is read here, relative to the config; the plan seals the statement.
    for (i, e) in config.exports.iter_mut().enumerate() {
        if let Some(file) = &e.query_file {
            let full = beside(path, file);
            let full = if Path::new(file).is_absolute() {
                PathBuf::from(file)
            } else {
                full
            };
            let sql = std::fs::read_to_string(&full).map_err(|err| {
                UsageError(format!(
                    "{}: exports[{i}].query_file: cannot read {}: {err}",
                    path.display(),
                    full.display()
                ))
            })?;
            if sql.trim().is_empty() {
                return Err(UsageError(format!(
                    "{}: exports[{i}].query_file: {} is empty; it should hold one SELECT statement",
                    path.display(),
                    full.display()
                ))
                .into());
            }
            e.query = Some(sql.trim().to_owned());
        }
    }
    Ok(config)
}

/// Parses `--as-of` (a date, or an RFC 3339 time; default now) into seconds since
/// 1970-01-01 UTC.
fn as_of_seconds(as_of: Option<&str>) -> Result<i64> {
    let Some(text) = as_of else {
        return Ok(chrono::Utc::now().timestamp());
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    Err(UsageError(format!(
        "--as-of `{text}` is not a date (2026-11-27) or an RFC 3339 time (2026-11-27T08:00:00Z)"
    ))
    .into())
}

/// Planning inputs: the reference time and the committed incremental positions of the
/// config's incremental exports (from the state database, when there is one).
fn plan_inputs(
    config: &rivet_schema::Config,
    state: &Path,
    as_of: Option<&str>,
) -> Result<rivet_planner::PlanInputs> {
    let mut inputs = rivet_planner::PlanInputs {
        as_of: as_of_seconds(as_of)?,
        cursors: Default::default(),
    };
    let incremental: Vec<&str> = config
        .exports
        .iter()
        .filter(|e| e.mode == rivet_schema::config::ExportMode::Incremental)
        .map(|e| e.name.as_str())
        .collect();
    if !incremental.is_empty() && state.exists() {
        let store = StateStore::open(state)?;
        for name in incremental {
            if let Some(c) = store.cursor(name)? {
                inputs.cursors.insert(name.to_owned(), c);
            }
        }
    }
    Ok(inputs)
}

fn reset_cursor(path: &Path, export: &str) -> Result<u8> {
    let store = open_state(path)?;
    if store.reset_cursor(export)? {
        eprintln!(
            "export {export}: committed position forgotten; its next plan starts from the beginning (window 1)"
        );
        Ok(0)
    } else {
        Err(UsageError(format!(
            "export {export} has no committed position in {}",
            path.display()
        ))
        .into())
    }
}

fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|e| rivet_executor::ExecError::ReadPlan {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(open_sealed(&path.display().to_string(), &text)?)
}

fn write_file_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("plan"),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn plan(config_path: &Path, out: &Path, state: &Path, as_of: Option<&str>) -> Result<u8> {
    let config = read_config(config_path)?;
    let inputs = plan_inputs(&config, state, as_of)?;
    let plan = rivet_planner::plan_from_config(&config, &inputs)?;
    write_file_atomic(out, &to_pretty_json(&plan))?;
    eprintln!("planned {}", rivet_planner::summary_line(&plan));
    eprintln!("wrote {} (sha256:{})", out.display(), plan.seal.digest);
    eprintln!(
        "review it with `rivet plan show {}`, then run `rivet apply {}`",
        out.display(),
        out.display()
    );
    Ok(0)
}

fn show(path: &Path, as_json: bool) -> Result<u8> {
    let plan = read_plan(path)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rivet_planner::show_json(&plan))?
        );
    } else {
        print!("{}", rivet_planner::render_plan(&plan));
    }
    Ok(0)
}

fn diff(old: &Path, new: &Path, as_json: bool) -> Result<u8> {
    // `plan diff` reports every error with exit 1 (like `terraform plan -detailed-exitcode`),
    // so a refused plan file is flattened into a plain error here.
    let read = |p: &Path| read_plan(p).map_err(|e| anyhow::anyhow!("{e:#}"));
    let a = read(old)?;
    let b = read(new)?;
    let d = rivet_planner::diff_plans(&a, &b);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", d.render());
    }
    Ok(if d.is_empty() { 0 } else { 2 })
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} chunks {msg}",
        )
        .expect("the progress template is valid"),
    );
    bar
}

fn apply(plan: &Plan, label: &str, state: &Path, resume: bool) -> Result<u8> {
    let bar = progress_bar();
    let rows = std::sync::atomic::AtomicU64::new(0);
    let on_event = |ev: ProgressEvent| match ev {
        ProgressEvent::Started {
            chunks_to_run,
            chunks_skipped,
            estimated_rows,
        } => {
            bar.set_length(chunks_to_run as u64);
            if chunks_skipped > 0 {
                bar.println(format!(
                    "resuming: {chunks_skipped} chunk(s) already committed are skipped"
                ));
            }
            bar.set_message(format!("~{estimated_rows} rows estimated"));
        }
        ProgressEvent::ChunkCommitted {
            export,
            chunk,
            rows: r,
            bytes,
        } => {
            let total = rows.fetch_add(r, std::sync::atomic::Ordering::Relaxed) + r;
            bar.inc(1);
            bar.set_message(format!(
                "{total} rows; last {chunk} ({export}: {r} rows, {bytes} bytes)"
            ));
        }
        ProgressEvent::ExportFinalized {
            export,
            rows,
            files,
        } => {
            bar.println(format!("export {export}: {rows} rows in {files} file(s), manifest.json and _SUCCESS written"));
        }
    };
    let opts = ApplyOptions {
        plan_label: label.to_owned(),
        state_path: state.to_owned(),
        resume,
        progress: &on_event,
    };
    let result = apply_plan(plan, &opts);
    bar.finish_and_clear();
    let outcome = result?;
    for (name, rows, bytes, files) in &outcome.exports {
        let dest = plan
            .body
            .export(name)
            .map(|e| e.destination.display())
            .unwrap_or_default();
        eprintln!("  {name}: {rows} rows, {bytes} bytes, {files} file(s) -> {dest}");
    }
    eprintln!(
        "applied sha256:{} as {}: {} chunk(s) run, {} skipped; state in {}",
        outcome.digest,
        outcome.run_id,
        outcome.chunks_run,
        outcome.chunks_skipped,
        state.display()
    );
    Ok(0)
}

/// `rivet apply rivet.yaml` plans and applies in one step, like `rivet run`.
fn is_config_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn run(
    config_path: &Path,
    state: Option<PathBuf>,
    resume: bool,
    as_of: Option<&str>,
) -> Result<u8> {
    let config = read_config(config_path)?;
    let state = state.unwrap_or_else(|| beside(config_path, STATE_FILE));
    let inputs = plan_inputs(&config, &state, as_of)?;
    let plan = rivet_planner::plan_from_config(&config, &inputs)?;
    let plans_dir = beside(&state, ".rivet_plans");
    let kept = plans_dir.join(format!("{}.json", plan.seal.digest));
    write_file_atomic(&kept, &to_pretty_json(&plan))?;
    eprintln!("planned {}", rivet_planner::summary_line(&plan));
    eprintln!("plan kept at {}", kept.display());
    apply(&plan, &kept.display().to_string(), &state, resume)
}

fn open_state(path: &Path) -> Result<StateStore> {
    if !path.exists() {
        return Err(UsageError(format!(
            "no state database at {}; run `rivet apply` first, or point --state at the right file",
            path.display()
        ))
        .into());
    }
    Ok(StateStore::open(path)?)
}

fn state(path: &Path, limit: u32, as_json: bool) -> Result<u8> {
    let store = open_state(path)?;
    store.mark_interrupted_runs()?;
    let runs = store.recent_runs(limit)?;
    let latest_digest = runs.first().map(|r| r.plan_digest.clone());
    let progress = match &latest_digest {
        Some(d) => store.export_progress(d)?,
        None => Vec::new(),
    };
    let cursors: Vec<serde_json::Value> = store
        .cursors()?
        .into_iter()
        .map(|(export, c)| {
            json!({
                "export": export,
                "column": c.column,
                "value_type": c.value_type,
                "position": c.position,
                "window": c.seq,
            })
        })
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "runs": runs,
                "latest_plan_digest": latest_digest,
                "exports": progress,
                "cursors": cursors,
            }))?
        );
        return Ok(0);
    }
    if runs.is_empty() {
        println!("no runs recorded in {}", path.display());
        return Ok(0);
    }
    if !cursors.is_empty() {
        println!("incremental positions (the next window starts here):");
        for c in &cursors {
            println!(
                "  {:<24} {} = {} after window {}",
                c["export"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default(),
                c["position"],
                c["window"]
            );
        }
    }
    println!("recent runs ({}):", path.display());
    for r in &runs {
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
    if let Some(d) = latest_digest {
        println!(
            "exports of the latest plan (sha256:{}):",
            &d[..12.min(d.len())]
        );
        for p in progress {
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
    Ok(0)
}

fn journal(path: &Path, run_id: Option<String>, as_json: bool) -> Result<u8> {
    let store = open_state(path)?;
    let run_id = match run_id {
        Some(r) => r,
        None => store
            .recent_runs(1)?
            .into_iter()
            .next()
            .map(|r| r.run_id)
            .ok_or_else(|| UsageError(format!("no runs recorded in {}", path.display())))?,
    };
    let entries = store.journal_of(&run_id)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"format_version": 1, "run_id": run_id, "entries": entries})
            )?
        );
        return Ok(0);
    }
    for e in entries {
        println!(
            "{}  {:<18} {}{}{}",
            e.at,
            e.event,
            e.export.as_deref().unwrap_or(""),
            e.chunk_id
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

/// `rivet doctor`: every check prints one line; failures say what to do.
fn doctor(config_path: &Path) -> Result<u8> {
    let config = read_config(config_path)?;
    let mut failed = 0usize;
    let mut report = |ok: bool, what: &str, detail: &str, fix: &str| {
        if ok {
            println!("PASS  {what}: {detail}");
        } else {
            failed += 1;
            println!("FAIL  {what}: {detail}");
            if !fix.is_empty() {
                println!("      fix: {fix}");
            }
        }
    };
    let kind = serde_json::to_value(config.source.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match rivet_sources::ConnectionSettings::resolve(&config.source) {
        Err(e) => report(
            false,
            "source",
            &e.to_string(),
            "set the environment variable or file the config names",
        ),
        Ok(settings) => match rivet_sources::open_catalog(&settings) {
            Err(e) => report(
                false,
                "source",
                &settings.redact(&e.to_string()),
                "check host, port, credentials, TLS mode and that the server accepts connections from here",
            ),
            Ok(mut catalog) => {
                report(true, "source", &format!("connected to {} ({kind})", settings.target), "");
                for e in &config.exports {
                    let what = format!("export {}", e.name);
                    let relation = match (&e.table, &e.query) {
                        (Some(t), _) => match rivet_schema::names::split_table_name(t) {
                            Ok(n) => {
                                let req = rivet_sources::TableRequest {
                                    schema: n.schema,
                                    name: n.name,
                                };
                                match catalog.describe_tables(std::slice::from_ref(&req)) {
                                    Ok(mut t) => {
                                        let t = t.remove(0);
                                        Ok(rivet_sources::RelationRef::Table {
                                            schema: t.schema,
                                            name: t.name,
                                        })
                                    }
                                    Err(err) => Err(err.to_string()),
                                }
                            }
                            Err(m) => Err(m),
                        },
                        (None, Some(q)) => catalog
                            .describe_query(q)
                            .map(|_| rivet_sources::RelationRef::Query(q.clone()))
                            .map_err(|err| err.to_string()),
                        (None, None) => Err("no table or query".into()),
                    };
                    match relation {
                        Err(m) => report(
                            false,
                            &what,
                            &settings.redact(&m),
                            "check the table name (exact, case-sensitive; schema.table) or the query",
                        ),
                        Ok(rel) => match catalog.can_read(&rel) {
                            Ok(()) => report(
                                true,
                                &what,
                                &format!("{} is readable", describe_relation(&rel)),
                                "",
                            ),
                            Err(err) => report(
                                false,
                                &what,
                                &settings.redact(&err.to_string()),
                                "grant SELECT on it to the user Rivet connects as",
                            ),
                        },
                    }
                }
            }
        },
    }
    let rt = rivet_executor::dest::runtime()?;
    for e in &config.exports {
        let what = format!("export {} destination", e.name);
        let planned = rivet_planner::planned_destination(e, None);
        let checked = rivet_executor::dest::Destination::open(&e.name, &planned, rt.handle())
            .and_then(|d| d.probe(&e.name));
        match checked {
            Ok(detail) => report(true, &what, &detail, ""),
            Err(err) => {
                let fix = match planned.kind {
                    rivet_schema::config::DestinationKind::Local => {
                        "create the directory or make it writable by this user"
                    }
                    _ => "see the permission named above and docs/destinations/ for the least-privilege policy",
                };
                report(false, &what, &err.to_string(), fix)
            }
        }
    }
    if failed > 0 {
        println!("{failed} check(s) failed");
        Ok(1)
    } else {
        println!("all checks passed");
        Ok(0)
    }
}

fn describe_relation(r: &rivet_sources::RelationRef) -> String {
    match r {
        rivet_sources::RelationRef::Table { schema, name } => format!("table {schema}.{name}"),
        rivet_sources::RelationRef::Query(_) => "the query".into(),
    }
}

/// `rivet validate`: re-reads what the exports wrote and compares it with their
/// manifests; exit 4 on any problem.
fn validate(
    plan: Option<&Path>,
    manifest: Option<&Path>,
    config: Option<&Path>,
    as_json: bool,
) -> Result<u8> {
    use rivet_executor::dest::Destination;
    use rivet_executor::validate::validate_export;
    let mut reports = Vec::new();
    match (plan, manifest, config) {
        (None, None, Some(config_path)) => {
            let cfg = read_config(config_path)?;
            let state = beside(config_path, STATE_FILE);
            let store = if state.exists() {
                Some(StateStore::open(&state)?)
            } else {
                None
            };
            let rt = rivet_executor::dest::runtime()?;
            for e in &cfg.exports {
                if e.destination.kind == rivet_schema::config::DestinationKind::Stdout {
                    continue;
                }
                let window = if e.mode == rivet_schema::config::ExportMode::Incremental {
                    match store
                        .as_ref()
                        .map(|s| s.cursor(&e.name))
                        .transpose()?
                        .flatten()
                    {
                        Some(c) => Some(c.seq),
                        None => {
                            eprintln!(
                                "export {}: no committed incremental window in {}; skipped",
                                e.name,
                                state.display()
                            );
                            continue;
                        }
                    }
                } else {
                    None
                };
                let planned = rivet_planner::planned_destination(e, window);
                let dest = Destination::open(&e.name, &planned, rt.handle())?;
                reports.push(validate_export(&e.name, &dest)?);
            }
        }
        (_, Some(path), _) if path.to_string_lossy().contains("://") => {
            let url = path.to_string_lossy();
            let url = url.strip_suffix("/manifest.json").unwrap_or(&url);
            let name = url.rsplit('/').next().unwrap_or("export").to_owned();
            let rt = rivet_executor::dest::runtime()?;
            let dest = Destination::from_url(&name, url, rt.handle())?;
            reports.push(validate_export(&name, &dest)?);
        }
        (_, Some(path), _) => {
            let dir = if path.file_name().is_some_and(|n| n == "manifest.json") {
                path.parent().unwrap_or(Path::new(".")).to_path_buf()
            } else {
                path.to_path_buf()
            };
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".into());
            reports.push(validate_export(&name, &Destination::Local(dir))?);
        }
        (Some(plan_path), None, _) => {
            let plan = read_plan(plan_path)?;
            let rt = rivet_executor::dest::runtime()?;
            for e in &plan.body.exports {
                if e.chunks.is_empty()
                    || e.destination.kind == rivet_schema::config::DestinationKind::Stdout
                {
                    continue;
                }
                let dest = Destination::open(&e.name, &e.destination, rt.handle())?;
                reports.push(validate_export(&e.name, &dest)?);
            }
        }
        (None, None, None) => {
            return Err(
                UsageError("give a plan file, -c rivet.yaml or --manifest PATH".into()).into(),
            );
        }
    }
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "valid": problems == 0,
                "problems": problems,
                "exports": reports,
            }))?
        );
    } else {
        for r in &reports {
            if r.problems.is_empty() {
                println!(
                    "OK    export {}: {} file(s), {} rows at {}",
                    r.export, r.files_checked, r.rows, r.location
                );
            }
            for p in &r.problems {
                println!("FAIL  export {}: {}: {}", p.export, p.location, p.problem);
            }
        }
        if problems > 0 {
            println!("{problems} problem(s); `rivet apply plan.json` rewrites the export's files");
        }
    }
    Ok(if problems > 0 { 4 } else { 0 })
}

/// `rivet reconcile`: one line per drifted chunk; exit 4 when any.
fn reconcile(plan_path: &Path, checksum: bool, as_json: bool) -> Result<u8> {
    let plan = read_plan(plan_path)?;
    let checks = rivet_executor::reconcile::reconcile(&plan, checksum)?;
    let drifted: Vec<_> = checks.iter().filter(|c| c.drifted).collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "chunks_checked": checks.len(),
                "drifted": drifted.len(),
                "chunks": checks,
            }))?
        );
    } else {
        for c in &drifted {
            let exported = c
                .exported_rows
                .map_or("not exported by this plan".to_owned(), |n| {
                    format!("{n} rows exported")
                });
            let sums = match c.checksum_equal {
                Some(false) => ", row checksums differ",
                _ => "",
            };
            println!(
                "DRIFT export {}, chunk {}: {exported}, {} rows in the source now{sums}",
                c.export, c.chunk, c.source_rows
            );
        }
        println!(
            "{} chunk(s) checked, {} drifted{}",
            checks.len(),
            drifted.len(),
            if checksum {
                " (rows and checksums)"
            } else {
                " (row counts)"
            }
        );
    }
    Ok(if drifted.is_empty() { 0 } else { 4 })
}

/// `rivet repair`: writes the repair plan and says why each chunk is in it.
fn repair(plan_path: &Path, out: &Path, with_reconcile: bool) -> Result<u8> {
    let plan = read_plan(plan_path)?;
    let (repair, reasons) = rivet_executor::repair::repair_plan(&plan, with_reconcile)?;
    let Some(repair) = repair else {
        eprintln!(
            "nothing to repair: every export of {} is intact",
            plan_path.display()
        );
        return Ok(0);
    };
    for r in &reasons {
        eprintln!("  export {}, chunk {}: {}", r.export, r.chunk, r.reason);
    }
    write_file_atomic(out, &to_pretty_json(&repair))?;
    eprintln!(
        "wrote {} (sha256:{}): {} chunk(s) to rewrite",
        out.display(),
        repair.seal.digest,
        reasons.len()
    );
    eprintln!(
        "review it with `rivet plan show {}` (or `rivet plan diff {} {}`), then run `rivet apply {}`",
        out.display(),
        plan_path.display(),
        out.display(),
        out.display()
    );
    Ok(0)
}
