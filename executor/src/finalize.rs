//! Finishing an export once every chunk is committed: the manifest (every file with its
//! rows, bytes and sha256, the plan digest and the Arrow schema), quality gates, removal
//! of files an earlier plan left under Rivet's part-file names, size checks against the
//! object store, then `manifest.json` and `_SUCCESS` — last. Only after `_SUCCESS` does an
//! incremental export's cursor move.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use rivet_schema::config::MetaColumn;
use rivet_schema::layout::{is_part_file, MANIFEST_FILE, SUCCESS_FILE};
use rivet_schema::plan::{CommittedCursor, PlannedExport, WindowKind};
use rivet_schema::variant_name;

use crate::dest::Destination;
use crate::error::ExecError;
use crate::lock_state;
use crate::manifest::{Manifest, ManifestColumn, ManifestFile};
use crate::progress::{Progress, ProgressEvent};
use crate::quality::ExportMeasure;
use crate::state::StateStore;
use crate::writer::export_schema;

/// What finalize needs from the run.
pub struct FinalizeContext<'a> {
    /// The destinations' locks: nothing is finalized once one is lost.
    pub locks: &'a crate::lock::DestinationLocks,
    pub digest: &'a str,
    pub run_id: &'a str,
    pub state: &'a Mutex<StateStore>,
    pub measures: &'a Mutex<HashMap<String, ExportMeasure>>,
    pub progress: Progress<'a>,
}

/// One finalized export: rows, bytes and files in its manifest.
#[derive(Debug, Clone)]
pub struct FinalizedExport {
    pub export: String,
    pub rows: u64,
    pub bytes: u64,
    pub files: usize,
}

/// The manifest of an export from its committed chunks (and a repair plan's kept files).
fn build_manifest(e: &PlannedExport, ctx: &FinalizeContext<'_>) -> Result<Manifest, ExecError> {
    let committed: Vec<_> = lock_state(ctx.state)
        .committed_chunks(ctx.digest)?
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
    let columns = e
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
        .collect();
    Ok(Manifest {
        format_version: 1,
        export: e.name.clone(),
        plan_digest: e.repair_of.clone().unwrap_or_else(|| ctx.digest.to_owned()),
        run_id: ctx.run_id.to_owned(),
        relation: serde_json::to_value(&e.relation).expect("plan types always serialize"),
        format: variant_name(&e.format),
        compression: variant_name(&e.compression),
        rows: files.iter().map(|f| f.rows).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        schema: columns,
        files,
        handoff: e.handoff.clone(),
    })
}

/// Checks the export's quality gates against its measurements (exit 4 on failure).
fn check_quality(e: &PlannedExport, rows: u64, ctx: &FinalizeContext<'_>) -> Result<(), ExecError> {
    if e.quality.is_none() {
        return Ok(());
    }
    let failures = ctx
        .measures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(e.name.clone())
        .or_default()
        .failures(e, rows);
    let state = lock_state(ctx.state);
    if failures.is_empty() {
        return state.journal(ctx.run_id, "quality_passed", Some(&e.name), None, None);
    }
    state.journal(
        ctx.run_id,
        "quality_failed",
        Some(&e.name),
        None,
        Some(&serde_json::Value::from(failures.clone()).to_string()),
    )?;
    Err(ExecError::Quality {
        export: e.name.clone(),
        failures,
    })
}

/// Removes `part-NNNNN.*` and `part-NNNNN-NNN.*` files the manifest does not list (left
/// by an earlier plan with more chunks or parts, or by a chunk that now has no rows
/// under `skip_empty`), so a reader listing the directory sees exactly the manifest's
/// files. Only names of Rivet's own pattern are touched; each removal is journaled.
fn remove_files_of_other_plans(
    e: &PlannedExport,
    manifest: &Manifest,
    dest: &Destination,
    ctx: &FinalizeContext<'_>,
) -> Result<(), ExecError> {
    let ours: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for name in dest.list(&e.name)? {
        if is_part_file(&name) && !ours.contains(name.as_str()) {
            dest.remove(&e.name, &name)?;
            lock_state(ctx.state).journal(
                ctx.run_id,
                "stale_file_removed",
                Some(&e.name),
                None,
                Some(&name),
            )?;
        }
    }
    Ok(())
}

/// The store's own record of each file must match what was written (object stores
/// expose sizes; their ETags are not sha256, which stays ours).
fn check_object_sizes(
    e: &PlannedExport,
    manifest: &Manifest,
    dest: &Destination,
) -> Result<(), ExecError> {
    let Destination::Object(o) = dest else {
        return Ok(());
    };
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
    Ok(())
}

/// Writes the manifest and then `_SUCCESS`, once every chunk of the export is committed;
/// records the run's shape and moves an incremental cursor.
pub fn finalize(
    e: &PlannedExport,
    dest: &Destination,
    ctx: &FinalizeContext<'_>,
) -> Result<FinalizedExport, ExecError> {
    ctx.locks.check()?;
    let manifest = build_manifest(e, ctx)?;
    check_quality(e, manifest.rows, ctx)?;
    if !matches!(dest, Destination::Stdout) {
        remove_files_of_other_plans(e, &manifest, dest, ctx)?;
        check_object_sizes(e, &manifest, dest)?;
        let mut text =
            serde_json::to_vec_pretty(&manifest).expect("manifest types always serialize");
        text.push(b'\n');
        dest.put_small(&e.name, MANIFEST_FILE, &text)?;
        dest.put_small(&e.name, SUCCESS_FILE, b"")?;
    }
    let widths: BTreeMap<String, u64> = ctx
        .measures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&e.name)
        .map(|m| m.widths.clone().into_iter().collect())
        .unwrap_or_default();
    {
        let state = lock_state(ctx.state);
        for grown in crate::drift::record_run_shape(e, widths, &state, ctx.digest, ctx.run_id)? {
            tracing::warn!(export = %e.name, "{grown}");
            state.journal(ctx.run_id, "shape_drift", Some(&e.name), None, Some(&grown))?;
        }
    }
    if let Some(w) = e
        .window
        .as_ref()
        .filter(|w| matches!(w.kind, WindowKind::Incremental | WindowKind::Cdc))
    {
        if let (Some(position), Some(seq)) = (&w.upper, w.seq) {
            lock_state(ctx.state).commit_cursor(
                &e.name,
                &CommittedCursor {
                    column: w.column.clone(),
                    value_type: w.value_type,
                    position: position.clone(),
                    seq,
                },
                ctx.digest,
                ctx.run_id,
            )?;
        }
    }
    lock_state(ctx.state).journal(
        ctx.run_id,
        "export_finalized",
        Some(&e.name),
        None,
        Some(
            &serde_json::json!({
                "rows": manifest.rows,
                "bytes": manifest.bytes,
                "files": manifest.files.len(),
            })
            .to_string(),
        ),
    )?;
    (ctx.progress)(ProgressEvent::ExportFinalized {
        export: e.name.clone(),
        rows: manifest.rows,
        files: manifest.files.len(),
    });
    Ok(FinalizedExport {
        export: e.name.clone(),
        rows: manifest.rows,
        bytes: manifest.bytes,
        files: manifest.files.len(),
    })
}
