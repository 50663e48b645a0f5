//! `rivet repair`: turns what `validate` (and optionally `reconcile`) found into a
//! sealed repair plan holding only the chunks to rewrite, plus the list of files that
//! stay. It is reviewed with `plan show` / `plan diff` and run with `rivet apply` like
//! any plan: the chunks are read again and written under their same names, and the
//! manifest is rewritten with the kept files and the new ones.

use std::collections::{BTreeMap, BTreeSet};

use rivet_schema::config::DestinationKind;
use rivet_schema::plan::{KeptFile, Plan, PlannedWave};

use crate::dest::Destination;
use crate::error::ExecError;
use crate::manifest::Manifest;
use crate::validate::validate_export;

/// Why a chunk is in the repair plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReason {
    pub export: String,
    pub chunk: String,
    pub reason: String,
}

/// Builds the repair plan of `plan`; None when nothing needs repair.
pub fn repair_plan(
    plan: &Plan,
    with_reconcile: bool,
) -> Result<(Option<Plan>, Vec<RepairReason>), ExecError> {
    let rt = crate::dest::runtime()?;
    let mut bad: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut manifests: BTreeMap<String, Option<Manifest>> = BTreeMap::new();
    let mut extra_files: BTreeSet<String> = BTreeSet::new();
    for e in &plan.body.exports {
        if e.chunks.is_empty() || e.destination.kind == DestinationKind::Stdout {
            continue;
        }
        let dest = Destination::open(&e.name, &e.destination, rt.handle())?;
        let mut report = validate_export(&e.name, &dest)?;
        let manifest = report
            .manifest
            .take()
            .filter(|m| crate::validate::written_by(m, plan, e));
        let chunks = bad.entry(e.name.clone()).or_default();
        match &manifest {
            None => {
                for c in &e.chunks {
                    chunks.insert(
                        c.id.clone(),
                        "no manifest of this plan: the export was never finalized".into(),
                    );
                }
            }
            Some(m) => {
                for p in &report.problems {
                    let file = p.location.rsplit('/').next().unwrap_or_default();
                    match m.files.iter().find(|f| f.path == file) {
                        Some(f) => {
                            chunks.insert(f.chunk_id.clone(), format!("{file}: {}", p.problem));
                        }
                        None if p.problem.starts_with("not listed") => {
                            extra_files.insert(e.name.clone());
                        }
                        None => {}
                    }
                }
                // A chunk of the plan that the manifest does not mention at all.
                for c in &e.chunks {
                    let listed = m.files.iter().any(|f| f.chunk_id == c.id);
                    if !listed && !e.skip_empty {
                        chunks
                            .entry(c.id.clone())
                            .or_insert_with(|| "not in the manifest".into());
                    }
                }
            }
        }
        manifests.insert(e.name.clone(), manifest);
    }
    if with_reconcile {
        for check in crate::reconcile::reconcile(plan, true)? {
            if check.drifted {
                bad.entry(check.export.clone())
                    .or_default()
                    .entry(check.chunk.clone())
                    .or_insert_with(|| {
                        format!(
                            "source drifted: {} row(s) exported, {} now{}",
                            check.exported_rows.map_or("no".into(), |n| n.to_string()),
                            check.source_rows,
                            if check.checksum_equal == Some(false) {
                                ", checksums differ"
                            } else {
                                ""
                            }
                        )
                    });
            }
        }
    }
    let mut reasons = Vec::new();
    let mut body = plan.body.clone();
    body.exports.retain_mut(|e| {
        let chunks = bad.get(&e.name).cloned().unwrap_or_default();
        if chunks.is_empty() && !extra_files.contains(&e.name) {
            return false;
        }
        for (chunk, reason) in &chunks {
            reasons.push(RepairReason {
                export: e.name.clone(),
                chunk: chunk.clone(),
                reason: reason.clone(),
            });
        }
        if let Some(Some(m)) = manifests.get(&e.name) {
            e.keep_files = m
                .files
                .iter()
                .filter(|f| !chunks.contains_key(&f.chunk_id))
                .map(|f| KeptFile {
                    path: f.path.clone(),
                    chunk_id: f.chunk_id.clone(),
                    rows: f.rows,
                    bytes: f.bytes,
                    sha256: f.sha256.clone(),
                })
                .collect();
        }
        e.chunks.retain(|c| chunks.contains_key(&c.id));
        e.repair_of = Some(
            e.repair_of
                .clone()
                .unwrap_or_else(|| plan.seal.digest.clone()),
        );
        true
    });
    if body.exports.is_empty() {
        return Ok((None, reasons));
    }
    body.waves = body
        .waves
        .iter()
        .map(|w| PlannedWave {
            wave: w.wave,
            exports: w
                .exports
                .iter()
                .filter(|n| body.exports.iter().any(|e| &e.name == *n))
                .cloned()
                .collect(),
        })
        .filter(|w| !w.exports.is_empty())
        .collect();
    Ok((Some(rivet_schema::seal::seal(body)), reasons))
}
