//! Turning YAML text into a [`Config`] a planner can trust: JSON Schema validation (so
//! every problem carries its key path), typed deserialization, then semantic rules the
//! schema cannot express. All problems found are reported together.

//!
//! `schema_check` turns JSON Schema errors into key-path problems; `rules` holds the
//! semantic rules. This module runs both and orders what they found.

mod rules;
mod schema_check;

use serde_json::Value;

use self::rules::semantic_problems;
use self::schema_check::{schema_problems, without};
use crate::config::{Config, ExportConfig, SourceConfig};
use crate::error::{ConfigError, ConfigProblem};

/// Checks of a config that need more than its text: a database driver's own parser for
/// an inline URL, the file system for a `query_file`. This crate knows no driver and
/// does no I/O, so the caller supplies them; their problems are reported together with
/// every other problem of the config.
pub trait ExternalChecks {
    /// Problems with the `source` block.
    fn source(&self, _source: &SourceConfig) -> Vec<ConfigProblem> {
        Vec::new()
    }
    /// Problems with the export at `index` of `exports`.
    fn export(&self, _index: usize, _export: &ExportConfig) -> Vec<ConfigProblem> {
        Vec::new()
    }
    /// Problems between exports (each with its index in `exports`), such as two
    /// destinations that are one place on disk.
    fn across_exports(&self, _exports: &[(usize, ExportConfig)]) -> Vec<ConfigProblem> {
        Vec::new()
    }
}

/// No external checks: the config's text alone.
pub struct TextOnly;

impl ExternalChecks for TextOnly {}

/// Parses and validates a config from its text alone. `file` only names the file in
/// errors.
pub fn parse_config(file: &str, text: &str) -> Result<Config, ConfigError> {
    parse_config_with(file, text, &TextOnly)
}

/// Parses and validates a config, adding the caller's [`ExternalChecks`]. Like a
/// compiler, it reports every problem in one run: schema problems, then the semantic
/// rules and external checks of every part (`source`, each export) that still reads
/// once the values the schema refused are set aside.
pub fn parse_config_with(
    file: &str,
    text: &str,
    checks: &dyn ExternalChecks,
) -> Result<Config, ConfigError> {
    let value = crate::yaml::to_json(text).map_err(|e| ConfigError::Syntax {
        file: file.into(),
        detail: e.to_string(),
    })?;
    if value.is_null() {
        return Err(ConfigError::Empty { file: file.into() });
    }
    let invalid = |problems: Vec<ConfigProblem>| ConfigError::Invalid {
        file: file.into(),
        problems,
    };
    let found = schema_problems(&value);
    let pruned = without(&value, found.iter().flat_map(|f| &f.prune));
    let source: Option<SourceConfig> = pruned
        .get("source")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let exports: Vec<(usize, ExportConfig)> = pruned
        .get("exports")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| serde_json::from_value(v.clone()).ok().map(|e| (i, e)))
                .collect()
        })
        .unwrap_or_default();
    let export_count = value
        .get("exports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut later = semantic_problems(source.as_ref(), &exports, export_count);
    if let Some(s) = &source {
        later.extend(checks.source(s));
    }
    for (i, e) in &exports {
        later.extend(checks.export(*i, e));
    }
    later.extend(checks.across_exports(&exports));
    let covered: Vec<&str> = found
        .iter()
        .filter(|f| f.covers)
        .map(|f| f.problem.path.as_str())
        .collect();
    // A rule about a refused value, or about the block holding it, would only repeat it
    // (`source: give exactly one of url, …` after `source.url_env` was refused).
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    let is_covered = |path: &str| {
        covered
            .iter()
            .any(|c| !c.is_empty() && !path.is_empty() && (within(path, c) || within(c, path)))
    };
    let later: Vec<ConfigProblem> = later.into_iter().filter(|p| !is_covered(&p.path)).collect();
    let mut problems: Vec<ConfigProblem> = found.into_iter().map(|f| f.problem).collect();
    problems.extend(later);
    // In the order of the file: source, tuning, then export by export.
    problems.sort_by_key(|p| document_rank(&p.path));
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        invalid(vec![ConfigProblem {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        }])
    })
}

/// Where a key path falls in a config file: the document root, `source`, `tuning`, then
/// each export by index.
fn document_rank(path: &str) -> (usize, usize) {
    let section = path.split(['.', '[']).next().unwrap_or("");
    match section {
        "" => (0, 0),
        "source" => (1, 0),
        "tuning" => (2, 0),
        "exports" => {
            let index = path
                .strip_prefix("exports[")
                .and_then(|r| r.split(']').next())
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or(0);
            (3, index)
        }
        _ => (4, 0),
    }
}
