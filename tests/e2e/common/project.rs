//! A test project: a temporary directory holding a `rivet.yaml`, planned and applied by
//! the `rivet` binary against one source URL. It replaces the write-config / plan /
//! apply / read-back steps each test used to repeat.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use assert_cmd::Command;

/// A PostgreSQL config reading `DATABASE_URL`, with `exports` (YAML list items).
pub fn pg_config(exports: &str) -> String {
    pg_config_with("", exports)
}

/// [`pg_config`] with extra `source:` keys (each line indented by two spaces).
pub fn pg_config_with(source_tail: &str, exports: &str) -> String {
    format!("source:\n  type: postgres\n  url_env: DATABASE_URL\n{source_tail}exports:\n{exports}")
}

/// A directory where one test plans and applies, with `DATABASE_URL` set to `url`.
pub struct Project {
    dir: tempfile::TempDir,
    url: String,
}

impl Project {
    /// A new empty project reading from `url`.
    pub fn new(url: &str) -> Project {
        Project {
            dir: tempfile::tempdir().expect("create a temporary project directory"),
            url: url.to_owned(),
        }
    }

    /// A project for commands that never reach a database.
    pub fn offline() -> Project {
        Project::new("")
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The source URL the project's commands get as `DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `rivet` binary, run in the project directory with `DATABASE_URL` set.
    pub fn rivet(&self) -> Command {
        super::rivet(self.dir(), &self.url)
    }

    /// Writes a file into the project.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        super::write(self.dir(), name, text)
    }

    /// Writes `rivet.yaml`.
    pub fn config(&self, text: &str) -> PathBuf {
        self.write("rivet.yaml", text)
    }

    /// `rivet plan -c rivet.yaml -o plan.json`, which must succeed.
    pub fn plan(&self) {
        self.plan_to("plan.json", &[]);
    }

    /// `rivet plan -c rivet.yaml -o <out> <extra…>`, which must succeed.
    pub fn plan_to(&self, out: &str, extra: &[&str]) {
        self.rivet()
            .args(["plan", "-c", "rivet.yaml", "-o", out])
            .args(extra)
            .assert()
            .success();
    }

    /// `rivet apply <plan>`, which must succeed.
    pub fn apply(&self, plan: &str) {
        self.rivet().args(["apply", plan]).assert().success();
    }

    /// Writes `cfg` as `rivet.yaml`, plans it into `plan.json` and applies it.
    pub fn plan_and_apply(&self, cfg: &str) {
        self.config(cfg);
        self.plan();
        self.apply("plan.json");
    }

    /// Every row of the Parquet files an export's manifest lists, as one batch.
    pub fn read_export(&self, rel: &str) -> RecordBatch {
        super::concat(&super::read_export_parquet(&self.path(rel)))
    }
}
