//! Running a sealed plan: verify, check staleness, then walk the DAG wave by wave. Each
//! chunk is read on one thread and encoded on another (a bounded channel between them
//! keeps memory flat), written under a temporary name, fsynced, renamed into place, and
//! only then recorded as committed. A crash at any point leaves either a committed file
//! under its final name or nothing there; `--resume` re-runs what was not committed.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rivet_schema::config::MetaColumn;
use rivet_schema::dag::PlanGraph;
use rivet_schema::plan::{CommittedCursor, Plan, PlanBody, PlannedExport, WindowKind};
use rivet_sources::{open_catalog, ConnectionSettings};

use crate::chunks::{run_chunks, ChunkContext};
use crate::dest::Destination;
use crate::error::ExecError;
use crate::manifest::{Manifest, ManifestColumn, ManifestFile, MANIFEST_FILE, SUCCESS_FILE};
use crate::state::StateStore;
use crate::writer::export_schema;

/// Prefix of in-progress files; never a final name, removed on the next apply.
pub(crate) const TEMP_PREFIX: &str = ".rivet-tmp-";

/// Progress reported while applying, for the CLI's progress display.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    Started {
        chunks_to_run: usize,
        chunks_skipped: usize,
        estimated_rows: u64,
    },
    ChunkCommitted {
        export: String,
        chunk: String,
        rows: u64,
        bytes: u64,
    },
    ExportFinalized {
        export: String,
        rows: u64,
        files: usize,
    },
}

/// How to apply.
pub struct ApplyOptions<'a> {
    /// Name of the plan in the journal and in messages.
    pub plan_label: String,
    pub state_path: PathBuf,
    /// Run only the chunks this plan has not committed yet.
    pub resume: bool,
    pub progress: &'a (dyn Fn(ProgressEvent) + Sync),
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub run_id: String,
    pub digest: String,
    pub chunks_run: usize,
    pub chunks_skipped: usize,
    /// (export, rows, bytes, files)
    pub exports: Vec<(String, u64, u64, usize)>,
}

fn new_run_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("run-{ms}-{}", std::process::id())
}

/// Applies a sealed plan (already verified by [`rivet_schema::seal::open_sealed`]).
pub fn apply_plan(plan: &Plan, opts: &ApplyOptions<'_>) -> Result<ApplyOutcome, ExecError> {
    let state = StateStore::open(&opts.state_path)?;
    state.mark_interrupted_runs()?;
    let digest = plan.seal.digest.clone();
    let run_id = new_run_id();
    let body_json = serde_json::to_string(&plan.body).expect("plan types always serialize");
    state.remember_plan(&digest, &body_json)?;
    state.start_run(&run_id, &digest, &opts.plan_label)?;
    state.journal(
        &run_id,
        "seal_verified",
        None,
        None,
        Some(&format!("sha256:{digest}")),
    )?;
    let state = Mutex::new(state);
    let result = run(plan, opts, &state, &run_id);
    let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match &result {
        Ok(_) => {
            state.journal(&run_id, "run_finished", None, None, None)?;
            state.finish_run(&run_id, "succeeded", None)?;
        }
        Err(e) => {
            let msg = e.to_string();
            state.journal(&run_id, "run_failed", None, None, Some(&msg))?;
            state.finish_run(&run_id, "failed", Some(&msg))?;
        }
    }
    result
}

pub(crate) fn lock(state: &Mutex<StateStore>) -> std::sync::MutexGuard<'_, StateStore> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(
    plan: &Plan,
    opts: &ApplyOptions<'_>,
    state: &Mutex<StateStore>,
    run_id: &str,
) -> Result<ApplyOutcome, ExecError> {
    let body = &plan.body;
    let digest = &plan.seal.digest;
    let settings = ConnectionSettings::resolve(&body.source)?;
    // The staleness check gets the same transient-error retries as chunks (the most
    // generous of the plan's exports).
    let retries = body
        .exports
        .iter()
        .map(|e| e.tuning.max_retries)
        .max()
        .unwrap_or(0);
    let base_ms = body
        .exports
        .iter()
        .map(|e| e.tuning.retry_backoff_ms)
        .min()
        .unwrap_or(500);
    let mut attempt = 0;
    let drift = loop {
        let checked = open_catalog(&settings)
            .map_err(ExecError::from)
            .and_then(|mut catalog| crate::stale::check_plan_is_current(catalog.as_mut(), body));
        match checked {
            Ok(drift) => break drift,
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let wait = crate::chunks::backoff(base_ms, attempt);
                tracing::warn!(attempt, error = %e, "transient source error during the staleness check; retrying");
                let detail = format!(
                    "{{\"attempt\":{attempt},\"backoff_ms\":{},\"error\":{}}}",
                    wait.as_millis(),
                    serde_json::Value::from(e.to_string())
                );
                lock(state).journal(run_id, "catalog_retry", None, None, Some(&detail))?;
                std::thread::sleep(wait);
            }
            Err(e) => {
                if matches!(e, ExecError::Stale { .. }) {
                    let _ =
                        lock(state).journal(run_id, "plan_stale", None, None, Some(&e.to_string()));
                }
                return Err(e);
            }
        }
    };
    let cursors_current = check_cursors_are_current(body, &lock(state));
    if let Err(e) = cursors_current {
        let _ = lock(state).journal(run_id, "plan_stale", None, None, Some(&e.to_string()));
        return Err(e);
    }
    let mut drift = drift;
    let since_last = shape_drift_since_last_run(body, &lock(state));
    match since_last {
        Ok(more) => drift.extend(more),
        Err(e) => {
            let _ = lock(state).journal(run_id, "plan_stale", None, None, Some(&e.to_string()));
            return Err(e);
        }
    }
    for (export, change) in &drift {
        let warn = body
            .export(export)
            .and_then(crate::stale::tolerant)
            .is_some_and(|p| p == rivet_schema::config::SchemaDriftPolicy::Warn);
        if warn {
            tracing::warn!(export = %export, change = %change, "schema drift (on_schema_drift: warn)");
        }
        lock(state).journal(run_id, "schema_drift", Some(export), None, Some(change))?;
    }
    lock(state).journal(run_id, "plan_current", None, None, None)?;
    PlanGraph::build(body).map_err(|e| ExecError::Internal(format!("plan graph: {e}")))?;
    let committed: HashSet<String> = if opts.resume {
        lock(state)
            .committed_chunks(digest)?
            .into_iter()
            .map(|c| c.chunk_id)
            .collect()
    } else {
        HashSet::new()
    };
    let total: usize = body.exports.iter().map(|e| e.chunks.len()).sum();
    let skipped = body
        .exports
        .iter()
        .filter(|e| e.quality.is_none())
        .flat_map(|e| &e.chunks)
        .filter(|c| committed.contains(&c.id))
        .count();
    (opts.progress)(ProgressEvent::Started {
        chunks_to_run: total - skipped,
        chunks_skipped: skipped,
        estimated_rows: body.exports.iter().map(|e| e.row_estimate).sum(),
    });
    let mut outcome = ApplyOutcome {
        run_id: run_id.to_owned(),
        digest: digest.clone(),
        chunks_run: 0,
        chunks_skipped: skipped,
        exports: Vec::new(),
    };
    // Waves are barriers; within a wave, exports run in plan order, each export's
    // chunks (up to its parallelism at once) before its finalize step. This is one
    // topological order of the plan's DAG, which was checked above.
    // Object-store clients run on one small runtime shared by every export.
    let needs_runtime = body.exports.iter().any(|e| e.destination.store.is_some());
    let rt = if needs_runtime {
        Some(crate::dest::runtime()?)
    } else {
        None
    };
    let fallback = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ExecError::Internal(format!("runtime: {e}")))?;
    let handle = rt.as_ref().unwrap_or(&fallback).handle().clone();
    let mut dests = std::collections::HashMap::new();
    for e in &body.exports {
        dests.insert(
            e.name.clone(),
            Destination::open(&e.name, &e.destination, &handle)?,
        );
    }
    let measures = Mutex::new(std::collections::HashMap::new());
    let ctx = ChunkContext {
        settings: &settings,
        dests: &dests,
        measures: &measures,
        started_at_us: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0),
        digest,
        run_id,
        state,
        opts,
    };
    for wave in &body.waves {
        for name in &wave.exports {
            let e = body
                .export(name)
                .ok_or_else(|| ExecError::Internal(format!("wave names unknown export {name}")))?;
            if e.chunks.is_empty() && e.keep_files.is_empty() {
                // An empty incremental window: no rows past the committed position.
                lock(state).journal(run_id, "window_empty", Some(&e.name), None, None)?;
                (opts.progress)(ProgressEvent::ExportFinalized {
                    export: e.name.clone(),
                    rows: 0,
                    files: 0,
                });
                outcome.exports.push((e.name.clone(), 0, 0, 0));
                continue;
            }
            prepare_destination(e, &dests[&e.name])?;
            // Gates need every chunk's measurements, which earlier runs did not keep:
            // an export with gates is read whole again on --resume.
            let todo: Vec<_> = e
                .chunks
                .iter()
                .filter(|c| e.quality.is_some() || !committed.contains(&c.id))
                .map(|c| (e, c))
                .collect();
            outcome.chunks_run += todo.len();
            run_chunks(&ctx, e.tuning.parallelism, todo)?;
            outcome.exports.push(finalize(
                e,
                &dests[&e.name],
                &measures,
                digest,
                run_id,
                state,
                opts,
            )?);
        }
    }
    Ok(outcome)
}

/// The planned columns of an export as comparable lines.
fn shape_lines(e: &PlannedExport) -> Vec<String> {
    e.columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.declared_type,
                if c.nullable { "" } else { " not null" }
            )
        })
        .collect()
}

/// Structural drift since the last finalized run of each export (remembered in state):
/// refused under `on_schema_drift: fail`, returned for journaling otherwise.
fn shape_drift_since_last_run(
    body: &PlanBody,
    state: &StateStore,
) -> Result<Vec<(String, String)>, ExecError> {
    let mut drift = Vec::new();
    for e in &body.exports {
        let Some((before, _)) = state.shape(&e.name)? else {
            continue;
        };
        let now = shape_lines(e);
        let name = |l: &String| l.split(' ').next().unwrap_or_default().to_owned();
        let mut changes = Vec::new();
        for l in &now {
            match before.iter().find(|b| name(b) == name(l)) {
                None => changes.push(format!("column `{}` is new", name(l))),
                Some(b) if b != l => changes.push(format!("column `{b}` is now `{l}`")),
                _ => {}
            }
        }
        for b in &before {
            if !now.iter().any(|l| name(l) == name(b)) {
                changes.push(format!("column `{}` is gone", name(b)));
            }
        }
        if changes.is_empty() {
            continue;
        }
        let text = format!("since the last run: {}", changes.join("; "));
        if crate::stale::tolerant(e).is_none() {
            return Err(ExecError::Stale {
                export: e.name.clone(),
                relation: e.relation.display_name(),
                change: format!(
                    "the exported columns changed {text} (on_schema_drift: fail); if intended, set `on_schema_drift: warn` or `continue` for this export and plan again"
                ),
            });
        }
        drift.push((e.name.clone(), text));
    }
    Ok(drift)
}

/// Refuses the plan when an incremental export's committed position moved since
/// planning (another apply advanced it). Re-applying the plan whose window is the
/// committed one is allowed: it rewrites the same files and leaves the position.
fn check_cursors_are_current(body: &PlanBody, state: &StateStore) -> Result<(), ExecError> {
    for e in &body.exports {
        let Some(w) = e
            .window
            .as_ref()
            .filter(|w| w.kind == WindowKind::Incremental)
        else {
            continue;
        };
        let committed = state.cursor(&e.name)?;
        let starts_here = committed.as_ref().map(|c| &c.position) == w.lower.as_ref()
            && committed.as_ref().map_or(1, |c| c.seq + 1) == w.seq.unwrap_or(1);
        let is_this_window = committed
            .as_ref()
            .is_some_and(|c| Some(&c.position) == w.upper.as_ref() && Some(c.seq) == w.seq);
        if !(starts_here || is_this_window) {
            let now = committed.map_or("no position (it was reset)".to_owned(), |c| {
                format!("position `{}` after window {}", c.position, c.seq)
            });
            return Err(ExecError::Stale {
                export: e.name.clone(),
                relation: e.relation.display_name(),
                change: format!(
                    "the plan's window starts at {} but the state database now holds {now}: another apply moved the cursor since this plan was made; run `rivet plan` again",
                    w.lower.as_deref().map_or("the beginning".to_owned(), |l| format!("`{l}`"))
                ),
            });
        }
    }
    Ok(())
}

/// Creates the directory, removes leftovers of killed runs and the old `_SUCCESS`.
fn prepare_destination(e: &PlannedExport, dest: &Destination) -> Result<(), ExecError> {
    let Destination::Local(dir) = dest else {
        // Object stores: uploads in progress are invisible; only `_SUCCESS` goes.
        return dest.remove(&e.name, SUCCESS_FILE);
    };
    let werr = |path: &Path, err: std::io::Error| ExecError::Write {
        export: e.name.clone(),
        path: path.display().to_string(),
        detail: err.to_string(),
    };
    fs::create_dir_all(dir).map_err(|err| werr(dir, err))?;
    for entry in fs::read_dir(dir).map_err(|err| werr(dir, err))? {
        let entry = entry.map_err(|err| werr(dir, err))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path()).map_err(|err| werr(&entry.path(), err))?;
        }
    }
    dest.remove(&e.name, SUCCESS_FILE)
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Removes `part-NNNNN.*` and `part-NNNNN-NNN.*` files the manifest does not list (left
/// by an earlier plan with more chunks or parts, or by a chunk that now has no rows
/// under `skip_empty`), so a reader listing the directory sees exactly the manifest's
/// files. Only names of rivet's own pattern are touched; each removal is journaled.
fn remove_files_of_other_plans(
    e: &PlannedExport,
    ours: &HashSet<&str>,
    dest: &Destination,
    run_id: &str,
    state: &Mutex<StateStore>,
) -> Result<(), ExecError> {
    for name in dest.list(&e.name)? {
        if is_part_file(&name) && !ours.contains(name.as_str()) {
            dest.remove(&e.name, &name)?;
            lock(state).journal(
                run_id,
                "stale_file_removed",
                Some(&e.name),
                None,
                Some(&name),
            )?;
        }
    }
    Ok(())
}

/// `part-00003.parquet`, `part-00003-002.csv.gz`: names Rivet gives chunk files.
pub(crate) fn is_part_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("part-") else {
        return false;
    };
    let (stem, ext) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let stem_ok = match stem.split_once('-') {
        None => digits(stem, 5),
        Some((chunk, part)) => digits(chunk, 5) && digits(part, 3),
    };
    stem_ok && [".parquet", ".csv", ".csv.gz", ".csv.zst"].contains(&ext)
}

/// Writes the manifest and then `_SUCCESS`, once every chunk of the export is committed.
#[allow(clippy::too_many_arguments)]
fn finalize(
    e: &PlannedExport,
    dest: &Destination,
    measures: &Mutex<std::collections::HashMap<String, crate::quality::ExportMeasure>>,
    digest: &str,
    run_id: &str,
    state: &Mutex<StateStore>,
    opts: &ApplyOptions<'_>,
) -> Result<(String, u64, u64, usize), ExecError> {
    let committed: Vec<_> = lock(state)
        .committed_chunks(digest)?
        .into_iter()
        .filter(|c| c.export == e.name)
        .collect();
    let mut files: Vec<ManifestFile> = e
        .keep_files
        .iter()
        .map(|k| ManifestFile {
            path: k.path.clone(),
            chunk_id: k.chunk_id.clone(),
            rows: k.rows,
            bytes: k.bytes,
            sha256: k.sha256.clone(),
        })
        .collect();
    for c in &e.chunks {
        let done = committed
            .iter()
            .find(|k| k.chunk_id == c.id)
            .ok_or_else(|| ExecError::Chunk {
                export: e.name.clone(),
                chunk: c.id.clone(),
                detail:
                    "not committed, so the export cannot be finalized; run `rivet apply --resume`"
                        .into(),
                transient: false,
            })?;
        for f in &done.files {
            files.push(ManifestFile {
                path: f.file.clone(),
                chunk_id: c.id.clone(),
                rows: f.rows,
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            });
        }
    }
    // Repair plans: kept and rewritten files together, in chunk order.
    files.sort_by(|a, b| a.chunk_id.cmp(&b.chunk_id));
    let schema = export_schema(e);
    let manifest = Manifest {
        format_version: 1,
        export: e.name.clone(),
        plan_digest: e.repair_of.clone().unwrap_or_else(|| digest.to_owned()),
        run_id: run_id.to_owned(),
        relation: serde_json::to_value(&e.relation).unwrap_or_default(),
        format: lower(&e.format),
        compression: lower(&e.compression),
        rows: files.iter().map(|f| f.rows).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        schema: e
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.declared_type.clone(),
                    c.logical.display_name(),
                )
            })
            .chain(e.meta_columns.iter().map(|m| {
                let logical = match m {
                    MetaColumn::ExportedAt => "timestamptz",
                    MetaColumn::PlanDigest | MetaColumn::ChunkId => "utf8",
                };
                (
                    m.column_name().to_owned(),
                    "rivet meta column".to_owned(),
                    logical.to_owned(),
                )
            }))
            .zip(schema.fields())
            .map(|((name, source_type, logical_type), f)| ManifestColumn {
                name,
                source_type,
                arrow_type: f.data_type().to_string(),
                logical_type,
                nullable: f.is_nullable(),
            })
            .collect(),
        files,
    };
    if e.quality.is_some() {
        let failures = measures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(e.name.clone())
            .or_default()
            .failures(e, manifest.rows);
        if !failures.is_empty() {
            lock(state).journal(
                run_id,
                "quality_failed",
                Some(&e.name),
                None,
                Some(&serde_json::Value::from(failures.clone()).to_string()),
            )?;
            return Err(ExecError::Quality {
                export: e.name.clone(),
                failures,
            });
        }
        lock(state).journal(run_id, "quality_passed", Some(&e.name), None, None)?;
    }
    if !matches!(dest, Destination::Stdout) {
        let ours: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        remove_files_of_other_plans(e, &ours, dest, run_id, state)?;
        if let Destination::Object(o) = dest {
            // The store's own record of each file must match what was written (object
            // stores expose sizes; their ETags are not sha256, which stays ours).
            for f in &manifest.files {
                let size = o.size(&e.name, &f.path)?;
                if size != f.bytes {
                    return Err(ExecError::Write {
                        export: e.name.clone(),
                        path: format!("{}/{}", o.display, f.path),
                        detail: format!(
                            "the store reports {size} bytes but {} were uploaded; run `rivet apply` again",
                            f.bytes
                        ),
                    });
                }
            }
        }
        let mut text =
            serde_json::to_vec_pretty(&manifest).expect("manifest types always serialize");
        text.push(b'\n');
        dest.put_small(&e.name, MANIFEST_FILE, &text)?;
        dest.put_small(&e.name, SUCCESS_FILE, b"")?;
    }
    {
        let widths: std::collections::BTreeMap<String, u64> = measures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.name)
            .map(|m| m.widths.clone().into_iter().collect())
            .unwrap_or_default();
        let store = lock(state);
        if let Some((_, before)) = store.shape(&e.name)? {
            let factor = e.shape_drift_warn_factor.unwrap_or(2.0);
            for (column, now) in &widths {
                let was = before.get(column).copied().unwrap_or(0);
                if was > 0 && (*now as f64) > factor * was as f64 {
                    let detail = format!(
                        "column `{column}`: widest value {now} bytes, {was} in the last run (more than {factor}×)"
                    );
                    tracing::warn!(export = %e.name, "{detail}");
                    store.journal(run_id, "shape_drift", Some(&e.name), None, Some(&detail))?;
                }
            }
        }
        // A resumed run measures only the chunks it read itself.
        store.record_shape(&e.name, &shape_lines(e), &widths, digest, run_id)?;
    }
    if let Some(w) = e
        .window
        .as_ref()
        .filter(|w| w.kind == WindowKind::Incremental)
    {
        if let (Some(position), Some(seq)) = (&w.upper, w.seq) {
            lock(state).commit_cursor(
                &e.name,
                &CommittedCursor {
                    column: w.column.clone(),
                    value_type: w.value_type,
                    position: position.clone(),
                    seq,
                },
                digest,
                run_id,
            )?;
        }
    }
    lock(state).journal(
        run_id,
        "export_finalized",
        Some(&e.name),
        None,
        Some(&format!(
            "{{\"rows\":{},\"bytes\":{},\"files\":{}}}",
            manifest.rows,
            manifest.bytes,
            manifest.files.len()
        )),
    )?;
    (opts.progress)(ProgressEvent::ExportFinalized {
        export: e.name.clone(),
        rows: manifest.rows,
        files: manifest.files.len(),
    });
    Ok((
        e.name.clone(),
        manifest.rows,
        manifest.bytes,
        manifest.files.len(),
    ))
}
