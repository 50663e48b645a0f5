//! Reading a config from disk: the YAML file, then each export's `query_file` relative
//! to the config, whose text the plan then seals. Parsing and validation themselves are
//! `rivet_schema::load`; this is the part that touches the file system and the drivers:
//! the checks `rivet_schema` cannot make ([`ExternalChecks`]) are reported together with
//! every other problem of the config.

use std::path::{Path, PathBuf};

use rivet_schema::config::{ExportConfig, SourceConfig};
use rivet_schema::load::ExternalChecks;
use rivet_schema::{Config, ConfigError, ConfigProblem};

/// The checks that need a driver or the file system: an inline `url` read by the
/// engine's own parser (no password, readable at all), and each `query_file` readable
/// and not empty.
struct LoadChecks<'a> {
    config_path: &'a Path,
    /// Where `rivet apply` resolves local destinations.
    cwd: PathBuf,
}

impl LoadChecks<'_> {
    /// `query_file` resolved against the config's directory.
    fn query_path(&self, file: &str) -> PathBuf {
        if Path::new(file).is_absolute() {
            PathBuf::from(file)
        } else {
            self.config_path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from(file), |d| d.join(file))
        }
    }

    /// The statement in `query_file`, or what is wrong with the file.
    fn query(&self, file: &str) -> Result<String, String> {
        let full = self.query_path(file);
        match std::fs::read_to_string(&full) {
            Err(err) => Err(format!("cannot read {}: {err}", full.display())),
            Ok(sql) if sql.trim().is_empty() => Err(format!(
                "{} is empty; it should hold one SELECT statement",
                full.display()
            )),
            Ok(sql) => Ok(sql.trim().to_owned()),
        }
    }
}

impl ExternalChecks for LoadChecks<'_> {
    fn across_exports(&self, exports: &[(usize, ExportConfig)]) -> Vec<ConfigProblem> {
        crate::clash::destination_clashes(exports, &self.cwd)
    }

    fn source(&self, source: &SourceConfig) -> Vec<ConfigProblem> {
        rivet_sources::inline_url_problems(source)
    }

    fn export(&self, index: usize, export: &ExportConfig) -> Vec<ConfigProblem> {
        let Some(file) = &export.query_file else {
            return Vec::new();
        };
        match self.query(file) {
            Ok(_) => Vec::new(),
            Err(message) => vec![ConfigProblem {
                path: format!("exports[{index}].query_file"),
                message,
            }],
        }
    }
}

/// Reads and validates the config at `path`, with every `query_file` loaded and the
/// exports' destinations checked for clashes (resolved from the current directory,
/// where `rivet apply` resolves them too).
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        detail: e.to_string(),
    })?;
    let cwd = std::env::current_dir().map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        detail: format!(
            "cannot tell the current directory, which local destinations are relative to: {e}"
        ),
    })?;
    let checks = LoadChecks {
        config_path: path,
        cwd,
    };
    let mut config = rivet_schema::load::parse_config_with(&file, &text, &checks)?;
    let mut problems = Vec::new();
    for (i, e) in config.exports.iter_mut().enumerate() {
        let Some(query_file) = &e.query_file else {
            continue;
        };
        // Checked above; read again for its text (a file changed in between is reported).
        match checks.query(query_file) {
            Ok(sql) => e.query = Some(sql),
            Err(message) => problems.push(ConfigProblem {
                path: format!("exports[{i}].query_file"),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { file, problems })
    }
}
