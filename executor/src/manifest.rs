//! The per-export manifest: the record downstream readers and `rivet validate` trust.
//! It is written after every chunk of the export is committed, and `_SUCCESS` after it.

use serde::{Deserialize, Serialize};

pub use rivet_schema::layout::{MANIFEST_FILE, SUCCESS_FILE};

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub export: String,
    pub plan_digest: String,
    pub run_id: String,
    pub relation: serde_json::Value,
    pub format: String,
    pub compression: String,
    pub rows: u64,
    pub bytes: u64,
    pub schema: Vec<ManifestColumn>,
    pub files: Vec<ManifestFile>,
    /// A snapshot and a `cdc` export planned together: the position from which the
    /// changes complete the snapshot (docs/cdc.md, "Starting from a snapshot").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<rivet_schema::plan::Handoff>,
}

/// One column of the files' schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestColumn {
    pub name: String,
    pub source_type: String,
    pub arrow_type: String,
    pub logical_type: String,
    pub nullable: bool,
}

/// One data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub chunk_id: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}
