//! `rivet validate`: proves that what an export's manifest promises is what the
//! destination holds — every listed file exists with the recorded size, sha256 and row
//! count (Parquet footer, or CSV records), `_SUCCESS` is present, and no unlisted chunk
//! file sits beside them. It reads the files back; it does not look at the source
//! (that is `reconcile`, not built yet).

use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dest::Destination;
use crate::error::ExecError;
use crate::manifest::{Manifest, MANIFEST_FILE, SUCCESS_FILE};

/// One problem found, with the file it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub export: String,
    /// Where: `s3://bucket/prefix/part-00003.parquet`, a local path, or the directory.
    pub location: String,
    pub problem: String,
}

/// What validating one export directory found.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub export: String,
    pub location: String,
    pub files_checked: usize,
    pub rows: u64,
    pub problems: Vec<Problem>,
    /// The manifest that was checked (None when missing or unreadable).
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

/// Counts the records of a CSV text with a header line: newlines outside quotes.
fn csv_records(bytes: &[u8]) -> u64 {
    let mut quoted = false;
    let mut lines = 0u64;
    for b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => lines += 1,
            _ => {}
        }
    }
    lines.saturating_sub(1)
}

/// Rows in a data file, from its Parquet footer or by counting CSV records
/// (decompressing `.csv.gz` / `.csv.zst`).
fn rows_in(name: &str, bytes: Vec<u8>) -> Result<u64, String> {
    if name.ends_with(".parquet") {
        let reader =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
                .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        use parquet::file::reader::FileReader;
        return Ok(reader.metadata().file_metadata().num_rows().max(0) as u64);
    }
    let text = if name.ends_with(".csv.gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("not readable gzip: {e}"))?;
        out
    } else if name.ends_with(".csv.zst") {
        zstd::decode_all(bytes.as_slice()).map_err(|e| format!("not readable zstd: {e}"))?
    } else {
        bytes
    };
    Ok(csv_records(&text))
}

/// The manifest at `dest` when it was written by `plan` (or, for a repaired export, by
/// the plan it repairs); None when missing, unreadable or from another plan.
pub fn manifest_of(
    plan: &rivet_schema::plan::Plan,
    e: &rivet_schema::plan::PlannedExport,
    dest: &Destination,
) -> Result<Option<Manifest>, ExecError> {
    Ok(dest
        .read(&e.name, MANIFEST_FILE)?
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .filter(|m| written_by(m, plan, e)))
}

/// Whether a manifest was written by `plan` (or, for a repaired export, by the plan
/// it repairs), so its chunk ids mean the plan's chunks.
pub fn written_by(
    m: &Manifest,
    plan: &rivet_schema::plan::Plan,
    e: &rivet_schema::plan::PlannedExport,
) -> bool {
    m.plan_digest == plan.seal.digest || Some(&m.plan_digest) == e.repair_of.as_ref()
}

/// Validates every export of a plan that wrote files (exports without chunks and
/// `stdout` exports have nothing to check), in plan order. `rivet validate plan.json`
/// and `rivet-mcp`'s `validate` tool both call this; it only reads.
pub fn validate_plan(plan: &rivet_schema::plan::Plan) -> Result<Vec<ExportReport>, ExecError> {
    let rt = crate::dest::runtime()?;
    let mut reports = Vec::new();
    for e in &plan.body.exports {
        if e.chunks.is_empty()
            || e.destination.kind == rivet_schema::config::DestinationKind::Stdout
        {
            continue;
        }
        let dest = Destination::open(&e.name, &e.destination, rt.handle())?;
        reports.push(validate_planned_export(plan, e, &dest)?);
    }
    Ok(reports)
}

/// Validates the export written to `dest` (its manifest, files and `_SUCCESS`).
pub fn validate_export(export: &str, dest: &Destination) -> Result<ExportReport, ExecError> {
    let location = dest.display();
    let mut report = ExportReport {
        export: export.to_owned(),
        location: location.clone(),
        files_checked: 0,
        rows: 0,
        problems: Vec::new(),
        manifest: None,
    };
    let mut problem = |at: String, what: String| {
        report.problems.push(Problem {
            export: export.to_owned(),
            location: at,
            problem: what,
        })
    };
    let at = |name: &str| format!("{}/{name}", location.trim_end_matches('/'));
    let Some(manifest_bytes) = dest.read(export, MANIFEST_FILE)? else {
        problem(
            at(MANIFEST_FILE),
            "missing: the export was never finalized here (run `rivet apply`)".into(),
        );
        return Ok(report);
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            problem(at(MANIFEST_FILE), format!("not a Rivet manifest: {e}"));
            return Ok(report);
        }
    };
    if dest.read(export, SUCCESS_FILE)?.is_none() {
        problem(
            at(SUCCESS_FILE),
            "missing: the last apply did not finish this export".into(),
        );
    }
    let listed: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for name in dest.list(export)? {
        if rivet_schema::layout::is_part_file(&name) && !listed.contains(name.as_str()) {
            problem(at(&name), "not listed in manifest.json".into());
        }
    }
    let mut problems = Vec::new();
    let mut rows_total = 0;
    for f in &manifest.files {
        let Some(bytes) = dest.read(export, &f.path)? else {
            problems.push((
                at(&f.path),
                "listed in manifest.json but missing".to_owned(),
            ));
            continue;
        };
        if bytes.len() as u64 != f.bytes {
            problems.push((
                at(&f.path),
                format!("{} bytes, manifest says {}", bytes.len(), f.bytes),
            ));
        }
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != f.sha256 {
            problems.push((
                at(&f.path),
                format!("sha256 {sha}, manifest says {}", f.sha256),
            ));
            continue;
        }
        match rows_in(&f.path, bytes) {
            Ok(n) if n != f.rows => {
                problems.push((at(&f.path), format!("{n} rows, manifest says {}", f.rows)))
            }
            Ok(n) => rows_total += n,
            Err(e) => problems.push((at(&f.path), e)),
        }
    }
    for (location, what) in problems {
        problem(location, what);
    }
    report.files_checked = manifest.files.len();
    report.manifest = Some(manifest);
    report.rows = rows_total;
    Ok(report)
}

/// Validates an export of `plan` written to `dest`: everything [`validate_export`]
/// checks, and that the manifest there is this plan's — written by the plan (or by a
/// repair of it), for this export, listing only this export's chunks and every chunk
/// that has rows. Another plan's output, or another export's, is a problem, never OK.
pub fn validate_planned_export(
    plan: &rivet_schema::plan::Plan,
    e: &rivet_schema::plan::PlannedExport,
    dest: &Destination,
) -> Result<ExportReport, ExecError> {
    let mut report = validate_export(&e.name, dest)?;
    let Some(m) = &report.manifest else {
        return Ok(report);
    };
    let at = format!("{}/{MANIFEST_FILE}", report.location.trim_end_matches('/'));
    let mut problems = Vec::new();
    if !written_by(m, plan, e) {
        problems.push(format!(
            "written by plan sha256:{}, not by this plan (sha256:{}); apply this plan to export here, or validate the plan that wrote it",
            m.plan_digest, plan.seal.digest
        ));
    }
    if m.export != e.name {
        problems.push(format!(
            "belongs to export `{}`, not `{}`: two exports share this destination",
            m.export, e.name
        ));
    }
    let planned: std::collections::BTreeSet<&str> = e
        .chunks
        .iter()
        .map(|c| c.id.as_str())
        .chain(e.keep_files.iter().map(|k| k.chunk_id.as_str()))
        .collect();
    let listed: std::collections::BTreeSet<&str> =
        m.files.iter().map(|f| f.chunk_id.as_str()).collect();
    let foreign: Vec<&str> = listed.difference(&planned).copied().collect();
    if !foreign.is_empty() {
        problems.push(format!(
            "lists chunk(s) this plan does not have: {}",
            foreign.join(", ")
        ));
    }
    if !e.skip_empty {
        let missing: Vec<&str> = planned.difference(&listed).copied().collect();
        if !missing.is_empty() {
            problems.push(format!(
                "does not list chunk(s) of this plan: {}",
                missing.join(", ")
            ));
        }
    }
    for what in problems {
        report.problems.push(Problem {
            export: e.name.clone(),
            location: at.clone(),
            problem: what,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_ignore_newlines_inside_quotes() {
        assert_eq!(csv_records(b"a,b\n1,2\n"), 1);
        assert_eq!(csv_records(b"a,b\n\"two\nlines\",2\n3,\"x\"\"y\"\n"), 2);
        assert_eq!(csv_records(b"a,b\n"), 0);
    }
}
