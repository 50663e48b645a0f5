//! What apply checks before it writes anything: the source still has the shape the
//! plan was made against (re-read on one connection, with the same retries as chunks),
//! incremental cursors are where the plan's windows start, and the exported columns
//! match what earlier runs wrote to the same destinations. Tolerated drift is journaled
//! and warned about; anything else refuses the plan (exit 3).

use std::sync::Mutex;

use rivet_schema::config::SchemaDriftPolicy;
use rivet_schema::plan::{PlanBody, WindowKind};
use rivet_sources::{open_catalog, ConnectionSettings};

use crate::error::ExecError;
use crate::retry::RetryPolicy;
use crate::state::StateStore;
use crate::{drift, lock_state, stale};

/// Runs every pre-write check of a plan, journaling as it goes.
pub fn check(
    body: &PlanBody,
    settings: &ConnectionSettings,
    state: &Mutex<StateStore>,
    run_id: &str,
) -> Result<(), ExecError> {
    // The catalog check gets the most generous retries of the plan's exports.
    let policy = RetryPolicy {
        max_retries: body
            .exports
            .iter()
            .map(|e| e.tuning.max_retries)
            .max()
            .unwrap_or(0),
        base_backoff_ms: body
            .exports
            .iter()
            .map(|e| e.tuning.retry_backoff_ms)
            .min()
            .unwrap_or(500),
    };
    let refused = |e: ExecError| {
        if e.kind() == rivet_schema::FailureKind::Refused {
            journal_refusal(state, run_id, &e);
        }
        e
    };
    let mut drift = policy
        .run(
            |_| {
                let mut catalog = open_catalog(settings)?;
                stale::check_plan_is_current(catalog.as_mut(), body)
            },
            |retry| {
                tracing::warn!(attempt = retry.attempt, error = %retry.error, "transient source error during the staleness check; retrying");
                lock_state(state).journal(run_id, "catalog_retry", None, None, Some(&retry.detail()))
            },
        )
        .map_err(refused)?;
    // Each check releases the state lock before a refusal is journaled (which locks it).
    let cursors = cursors_are_current(body, &lock_state(state));
    cursors.map_err(refused)?;
    let since_last_run = drift::since_last_run(&body.exports, &lock_state(state));
    drift.extend(since_last_run.map_err(refused)?);
    for (export, change) in &drift {
        let warn = body
            .export(export)
            .and_then(stale::tolerant)
            .is_some_and(|p| p == SchemaDriftPolicy::Warn);
        if warn {
            tracing::warn!(export = %export, change = %change, "schema drift (on_schema_drift: warn)");
        }
        lock_state(state).journal(run_id, "schema_drift", Some(export), None, Some(change))?;
    }
    lock_state(state).journal(run_id, "plan_current", None, None, None)
}

/// Journals why the plan was refused. The refusal itself is the error the user sees;
/// a journal that cannot record it is logged rather than hiding that error.
fn journal_refusal(state: &Mutex<StateStore>, run_id: &str, e: &ExecError) {
    if let Err(journal_error) =
        lock_state(state).journal(run_id, "plan_stale", None, None, Some(&e.to_string()))
    {
        tracing::error!(error = %journal_error, "the journal could not record the refusal of the plan");
    }
}

/// Refuses the plan when an incremental export's committed position moved since
/// planning (another apply advanced it). Re-applying the plan whose window is the
/// committed one is allowed: it rewrites the same files and leaves the position.
fn cursors_are_current(body: &PlanBody, state: &StateStore) -> Result<(), ExecError> {
    for e in &body.exports {
        let Some(w) = e
            .window
            .as_ref()
            .filter(|w| matches!(w.kind, WindowKind::Incremental | WindowKind::Cdc))
        else {
            continue;
        };
        let committed = state.cursor(&e.name)?;
        // A first `cdc` window starts at the slot's position, not at "the beginning".
        let first_log_window = w.kind == WindowKind::Cdc && committed.is_none();
        let starts_here = (first_log_window
            || committed.as_ref().map(|c| &c.position) == w.lower.as_ref())
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
                    "the plan's window starts at {} but the state database now holds {now}: another apply moved the cursor since this plan was made",
                    w.lower.as_deref().map_or("the beginning".to_owned(), |l| format!("`{l}`"))
                ),
            });
        }
    }
    Ok(())
}
