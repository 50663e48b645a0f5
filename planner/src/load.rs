//! Reading a config from disk: the YAML file, then each export's `query_file` relative
//! to the config, whose text the plan then seals. Parsing and validation themselves are
//! `rivet_schema::load`; this is the part that touches the file system.

use std::path::{Path, PathBuf};

use rivet_schema::{Config, ConfigError, ConfigProblem};

/// Reads and validates the config at `path`, with every `query_file` loaded and the
/// exports' destinations checked for clashes (resolved from the current directory,
/// where `rivet apply` resolves them too).
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        detail: e.to_string(),
    })?;
    let mut config = rivet_schema::load::parse_config(&file, &text)?;
    let mut problems = Vec::new();
    for (i, e) in config.exports.iter_mut().enumerate() {
        let Some(query_file) = &e.query_file else {
            continue;
        };
        let full = if Path::new(query_file).is_absolute() {
            PathBuf::from(query_file)
        } else {
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from(query_file), |d| d.join(query_file))
        };
        let at = format!("exports[{i}].query_file");
        match std::fs::read_to_string(&full) {
            Err(err) => problems.push(ConfigProblem {
                path: at,
                message: format!("cannot read {}: {err}", full.display()),
            }),
            Ok(sql) if sql.trim().is_empty() => problems.push(ConfigProblem {
                path: at,
                message: format!(
                    "{} is empty; it should hold one SELECT statement",
                    full.display()
                ),
            }),
            Ok(sql) => e.query = Some(sql.trim().to_owned()),
        }
    }
    let cwd = std::env::current_dir().map_err(|e| ConfigError::Unreadable {
        file: file.clone(),
        detail: format!(
            "cannot tell the current directory, which local destinations are relative to: {e}"
        ),
    })?;
    problems.extend(crate::clash::destination_clashes(&config, &cwd));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { file, problems })
    }
}
