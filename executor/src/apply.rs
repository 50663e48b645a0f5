//! Running a sealed plan: open the state database, verify that the plan still fits the
//! source ([`crate::preflight`]), then walk the plan's DAG wave by wave — each export's
//! chunks ([`crate::chunks`]) before its finalize step ([`crate::finalize`]). A crash
//! at any point leaves either a committed file under its final name or nothing there;
//! `--resume` re-runs what was not committed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rivet_schema::dag::PlanGraph;
use rivet_schema::layout::{SUCCESS_FILE, TEMP_PREFIX};
use rivet_schema::plan::{Plan, PlannedExport};
use rivet_sources::ConnectionSettings;

use crate::chunks::{run_chunks, ChunkContext};
use crate::dest::Destination;
use crate::error::ExecError;
use crate::finalize::{finalize, FinalizeContext, FinalizedExport};
use crate::lock::{DestinationLocks, Holder};
use crate::lock_state;
use crate::pool::SourcePool;
use crate::progress::{Progress, ProgressEvent};
use crate::state::StateStore;
use rivet_schema::config::Consistency;

/// How to apply.
pub struct ApplyOptions<'a> {
    /// The run's id in state and journal ([`new_run_id`]).
    pub run_id: String,
    /// Name of the plan in the journal and in messages.
    pub plan_label: String,
    pub state_path: PathBuf,
    /// Run only the chunks this plan has not committed yet.
    pub resume: bool,
    pub progress: Progress<'a>,
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub run_id: String,
    pub digest: String,
    pub chunks_run: usize,
    pub chunks_skipped: usize,
    pub exports: Vec<FinalizedExport>,
}

/// A new run id: `run-<unix ms>-<pid>`.
pub fn new_run_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("run-{ms}-{}", std::process::id())
}

/// Applies a sealed plan (already verified by [`rivet_schema::seal::open_sealed`]).
pub fn apply_plan(plan: &Plan, opts: &ApplyOptions<'_>) -> Result<ApplyOutcome, ExecError> {
    let run_id = opts.run_id.clone();
    let holder = Holder::me(&run_id);
    // While this lock is held no other apply uses the state database, so a run still
    // marked `running` belongs to a process that died.
    let _state_lock = crate::lock::lock_state(&opts.state_path, &holder)?;
    let state = StateStore::open(&opts.state_path)?;
    state.mark_abandoned_runs()?;
    let digest = plan.seal.digest.clone();
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
    let result = run(plan, opts, &state, &run_id, &holder);
    let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    // The run's end must be recorded; if it cannot be, the apply fails (a run left
    // `running` would be marked interrupted by the next apply, never silently lost).
    match &result {
        Ok(_) => {
            state.journal(&run_id, "run_finished", None, None, None)?;
            state.finish_run(&run_id, "succeeded", None)?;
        }
        Err(e) => {
            let msg = e.to_string();
            let recorded = state
                .journal(&run_id, "run_failed", None, None, Some(&msg))
                .and_then(|()| state.finish_run(&run_id, "failed", Some(&msg)));
            if let Err(state_error) = recorded {
                tracing::error!(error = %state_error, "the state database could not record the failed run");
            }
        }
    }
    result
}

fn run(
    plan: &Plan,
    opts: &ApplyOptions<'_>,
    state: &Mutex<StateStore>,
    run_id: &str,
    holder: &Holder,
) -> Result<ApplyOutcome, ExecError> {
    let body = &plan.body;
    let digest = &plan.seal.digest;
    let settings = ConnectionSettings::resolve(&body.source)?;
    crate::preflight::check(body, &settings, state, run_id)?;
    PlanGraph::build(body).map_err(|e| ExecError::Internal(format!("plan graph: {e}")))?;
    let committed: HashSet<String> = if opts.resume {
        lock_state(state)
            .committed_chunks(digest)?
            .into_iter()
            .map(|c| c.chunk_id)
            .collect()
    } else {
        HashSet::new()
    };
    // Gates need every chunk's measurements, which earlier runs did not keep: an export
    // with gates is read whole again on --resume.
    let to_run = |e: &PlannedExport| {
        e.chunks
            .iter()
            .filter(|c| e.quality.is_some() || !committed.contains(&c.id))
            .count()
    };
    let total: usize = body.exports.iter().map(|e| e.chunks.len()).sum();
    let chunks_to_run: usize = body.exports.iter().map(to_run).sum();
    (opts.progress)(ProgressEvent::Started {
        chunks_to_run,
        chunks_skipped: total - chunks_to_run,
        estimated_rows: body.exports.iter().map(|e| e.row_estimate).sum(),
    });
    let mut outcome = ApplyOutcome {
        run_id: run_id.to_owned(),
        digest: digest.clone(),
        chunks_run: 0,
        chunks_skipped: total - chunks_to_run,
        exports: Vec::new(),
    };
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
    let mut dests = HashMap::new();
    for e in &body.exports {
        dests.insert(
            e.name.clone(),
            Destination::open(&e.name, &e.destination, &handle)?,
        );
    }
    // A lease left by a run of this state database belongs to a process that ended:
    // this apply holds the state lock, which that run would still hold if it were alive.
    let recorded_run =
        |h: &Holder| h.run_id != run_id && lock_state(state).has_run(&h.run_id).unwrap_or(false);
    // Exports that write nothing (an empty incremental window) need no lock, and no
    // directory is created for them.
    let locks = DestinationLocks::acquire(
        body.exports
            .iter()
            .filter(|e| !(e.chunks.is_empty() && e.keep_files.is_empty()))
            .map(|e| (e.name.as_str(), &dests[&e.name])),
        holder,
        &recorded_run,
    )?;
    let measures = Mutex::new(HashMap::new());
    let snapshots = Mutex::new(HashMap::new());
    let pool = SourcePool::new(
        &settings,
        body.concurrency.max_source_connections.max(1) as usize,
    );
    let chunk_ctx = ChunkContext {
        pool: &pool,
        locks: &locks,
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
        progress: opts.progress,
        snapshots: &snapshots,
    };
    let finalize_ctx = FinalizeContext {
        locks: &locks,
        digest,
        run_id,
        state,
        measures: &measures,
        progress: opts.progress,
    };
    let run_one = |e: &PlannedExport| -> Result<(usize, FinalizedExport), ExecError> {
        if e.chunks.is_empty() && e.keep_files.is_empty() {
            // An empty incremental window: no rows past the committed position.
            lock_state(state).journal(run_id, "window_empty", Some(&e.name), None, None)?;
            (opts.progress)(ProgressEvent::ExportFinalized {
                export: e.name.clone(),
                rows: 0,
                files: 0,
            });
            return Ok((
                0,
                FinalizedExport {
                    export: e.name.clone(),
                    rows: 0,
                    bytes: 0,
                    files: 0,
                },
            ));
        }
        prepare_destination(e, &dests[&e.name])?;
        // Gated exports measure every chunk again, and a one-snapshot export reads every
        // chunk at the same point in time, so both re-read chunks an earlier run wrote.
        let whole = e.quality.is_some() || e.consistency == Consistency::Snapshot;
        let todo: Vec<_> = e
            .chunks
            .iter()
            .filter(|c| whole || !committed.contains(&c.id))
            .map(|c| (e, c))
            .collect();
        let ran = todo.len();
        (opts.progress)(ProgressEvent::ExportStarted {
            export: e.name.clone(),
            chunks_to_run: ran,
            estimated_rows: e.row_estimate,
        });
        // `consistency: snapshot`: one more connection holds the export's snapshot until
        // its last chunk is read (it holds back VACUUM meanwhile).
        let held = match e.consistency {
            Consistency::Snapshot => {
                let holder = rivet_sources::open_snapshot_holder(&settings)?;
                lock_state(state).journal(
                    run_id,
                    "snapshot_exported",
                    Some(&e.name),
                    None,
                    Some(&serde_json::json!({ "snapshot": holder.snapshot_id() }).to_string()),
                )?;
                snapshots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(e.name.clone(), holder.snapshot_id().to_owned());
                Some(holder)
            }
            Consistency::PerChunk => None,
        };
        let read = run_chunks(&chunk_ctx, e.tuning.parallelism, todo);
        if held.is_some() {
            snapshots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&e.name);
        }
        drop(held);
        read?;
        let done = finalize(e, &dests[&e.name], &finalize_ctx)?;
        crate::cdc::confirm_slot(e, &settings, state, run_id)?;
        Ok((ran, done))
    };
    // Waves are barriers. Within a wave, exports start in plan order, up to
    // `max_source_connections` at a time when they run concurrently (each export's
    // chunks before its own finalize step); all of them share the connection pool.
    // This is a topological order of the plan's DAG, which was checked above.
    for wave in &body.waves {
        let exports = wave
            .exports
            .iter()
            .map(|name| {
                body.export(name)
                    .ok_or_else(|| ExecError::Internal(format!("wave names unknown export {name}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let at_once = if body.concurrency.concurrent_exports {
            body.concurrency.max_source_connections.max(1) as usize
        } else {
            1
        };
        for (ran, done) in run_wave(&exports, at_once, &run_one)? {
            outcome.chunks_run += ran;
            outcome.exports.push(done);
        }
    }
    Ok(outcome)
}

/// Runs the exports of one wave, at most `at_once` at a time, and returns their results
/// in plan order. After the first failure no further export starts; those running
/// finish (or fail) and the first error is returned.
fn run_wave<'e, T: Send>(
    exports: &[&'e PlannedExport],
    at_once: usize,
    run_one: &(dyn Fn(&'e PlannedExport) -> Result<T, ExecError> + Sync),
) -> Result<Vec<T>, ExecError> {
    if at_once <= 1 || exports.len() <= 1 {
        return exports.iter().map(|e| run_one(e)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T, ExecError>>>> =
        Mutex::new((0..exports.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..at_once.min(exports.len()) {
            s.spawn(|| loop {
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(e) = exports.get(i) else { return };
                let r = run_one(e);
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let mut out = Vec::with_capacity(exports.len());
    let mut first_error = None;
    for r in results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
    {
        match r {
            Ok(v) => out.push(v),
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => tracing::error!(error = %e, "another export of the wave failed too"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Creates the directory, removes leftovers of killed runs and the old `_SUCCESS`.
fn prepare_destination(e: &PlannedExport, dest: &Destination) -> Result<(), ExecError> {
    let Destination::Local(dir) = dest else {
        // Object stores: uploads in progress are invisible; only `_SUCCESS` goes.
        return dest.remove(&e.name, SUCCESS_FILE);
    };
    let werr = |path: &std::path::Path, err: std::io::Error| ExecError::Write {
        export: e.name.clone(),
        path: path.display().to_string(),
        detail: err.to_string(),
    };
    crate::durable::create_dir(dir).map_err(|err| werr(dir, err))?;
    for entry in std::fs::read_dir(dir).map_err(|err| werr(dir, err))? {
        let entry = entry.map_err(|err| werr(dir, err))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(entry.path()).map_err(|err| werr(&entry.path(), err))?;
        }
    }
    dest.remove(&e.name, SUCCESS_FILE)
}
