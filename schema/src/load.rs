//! Turning YAML text into a [`Config`] a planner can trust: JSON Schema validation (so
//! every problem carries its key path), typed deserialization, then semantic rules the
//! schema cannot express. All problems found are reported together.

use std::collections::HashSet;

use serde_json::Value;

use crate::config::{
    Compression, Config, DestinationKind, ExportConfig, ExportMode, Format, SourceConfig,
};
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

/// A schema problem, with the values to set aside before the semantic rules run.
struct Found {
    problem: ConfigProblem,
    /// JSON pointers of the values the schema refused (removed from objects, nulled in
    /// arrays so that export indexes stay put).
    prune: Vec<String>,
    /// Whether the problem is about the value at its path, so that rules about the same
    /// path (or below it) would only repeat it.
    covers: bool,
}

/// `value` without the values at `pointers`.
fn without<'a>(value: &Value, pointers: impl Iterator<Item = &'a String>) -> Value {
    let mut out = value.clone();
    for pointer in pointers {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        match out.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(&last);
            }
            Some(Value::Array(items)) => {
                if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    *item = Value::Null;
                }
            }
            _ => {}
        }
    }
    out
}

/// Converts a JSON pointer into the dotted key path users see: `exports[1].chunk_size`.
fn key_path(instance: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut node = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{seg}]"));
                node = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&seg);
                node = other.and_then(|v| v.get(&seg));
            }
        }
    }
    out
}

/// The schema nodes that describe the value at `pointer` (following `$ref`, `items`,
/// `anyOf`, `oneOf`, `allOf`).
fn schemas_at<'a>(root: &'a Value, instance: &Value, pointer: &str) -> Vec<&'a Value> {
    fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let path = r.trim_start_matches('#');
            match root.pointer(path) {
                Some(t) => s = t,
                None => break,
            }
        }
        s
    }
    fn objects<'a>(root: &'a Value, s: &'a Value) -> Vec<&'a Value> {
        let s = resolve(root, s);
        let mut out = vec![s];
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                for alt in alts {
                    out.extend(objects(root, alt));
                }
            }
        }
        out
    }
    let mut schemas = vec![root];
    let mut node = Some(instance);
    for seg in pointer.split('/').skip(1) {
        let mut next = Vec::new();
        for s in schemas {
            for o in objects(root, s) {
                let child = if matches!(node, Some(Value::Array(_))) {
                    o.get("items")
                } else {
                    o.get("properties").and_then(|p| p.get(seg))
                };
                next.extend(child);
            }
        }
        node = node.and_then(|v| match v {
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            other => other.get(seg),
        });
        schemas = next;
    }
    schemas.into_iter().flat_map(|s| objects(root, s)).collect()
}

/// Property names the schema allows at `pointer`.
fn known_keys(root: &Value, instance: &Value, pointer: &str) -> Vec<String> {
    let mut keys: Vec<String> = schemas_at(root, instance, pointer)
        .into_iter()
        .filter_map(|o| o.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The whole-number range an integer key allows, from its schema (`minimum`,
/// `maximum`, else the limits of its `format`), when the schema says it is an integer.
fn integer_range(root: &Value, instance: &Value, pointer: &str) -> Option<(String, String)> {
    schemas_at(root, instance, pointer)
        .into_iter()
        .find_map(|s| {
            let is_integer = match s.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                _ => false,
            };
            if !is_integer {
                return None;
            }
            let (fmin, fmax) = match s.get("format").and_then(Value::as_str) {
                Some("uint8") => (0.to_string(), u8::MAX.to_string()),
                Some("uint16") => (0.to_string(), u16::MAX.to_string()),
                Some("uint32") => (0.to_string(), u32::MAX.to_string()),
                Some("int32") => (i32::MIN.to_string(), i32::MAX.to_string()),
                Some("int64") => (i64::MIN.to_string(), i64::MAX.to_string()),
                _ => (0.to_string(), u64::MAX.to_string()),
            };
            let bound = |key: &str, default: String| {
                s.get(key)
                    .and_then(Value::as_f64)
                    .map_or(default, |b| format!("{}", b as i128))
            };
            Some((bound("minimum", fmin), bound("maximum", fmax)))
        })
}

/// Numbers at integer keys that no 64-bit integer holds (`1e20`, `1.5`,
/// `100000000000000000000`): named with the key path and the range the key allows,
/// instead of a deserializer's "invalid type: floating point" or a YAML number error.
fn integer_problems(root: &Value, instance: &Value) -> Vec<Found> {
    fn walk(v: &Value, pointer: String, out: &mut Vec<(String, f64)>) {
        match v {
            Value::Number(n) if !n.is_u64() && !n.is_i64() => {
                out.push((pointer, n.as_f64().unwrap_or(f64::NAN)));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{pointer}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    walk(item, format!("{pointer}/{k}"), out);
                }
            }
            _ => {}
        }
    }
    let mut numbers = Vec::new();
    walk(instance, String::new(), &mut numbers);
    numbers
        .into_iter()
        .filter_map(|(pointer, n)| {
            let (min, max) = integer_range(root, instance, &pointer)?;
            let in_range = n.fract() == 0.0
                && min.parse::<f64>().is_ok_and(|lo| n >= lo)
                && max.parse::<f64>().is_ok_and(|hi| n <= hi);
            let message = if in_range {
                format!("write this number in plain digits (`{n}`), without a decimal point or exponent: the key takes a whole number from {min} to {max}")
            } else {
                format!("`{n}` is not a whole number from {min} to {max}")
            };
            Some(Found {
                problem: ConfigProblem {
                    path: key_path(instance, &pointer),
                    message,
                },
                prune: vec![pointer],
                covers: true,
            })
        })
        .collect()
}

/// Every schema problem of the config, integer range problems first (they replace the
/// schema's own message about the same value).
fn schema_problems(instance: &Value) -> Vec<Found> {
    let schema = crate::config_json_schema();
    let mut found = integer_problems(&schema, instance);
    let mut problems = Vec::new();
    collect_problems(&schema, &schema, instance, instance, "", &mut problems);
    for f in problems {
        if !found.iter().any(|g| g.problem.path == f.problem.path) {
            found.push(f);
        }
    }
    found
}

/// The `$ref` of an optional struct (`anyOf: [{$ref}, {type: null}]`) at a schema path.
fn optional_struct_ref(schema_path: &str, root: &Value) -> Option<String> {
    let mut node = root;
    for seg in schema_path.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            other => other.get(&seg)?,
        };
    }
    let alternatives = node.as_array().or_else(|| node.get("anyOf")?.as_array())?;
    let mut refs = alternatives
        .iter()
        .filter_map(|a| a.get("$ref").and_then(Value::as_str));
    let only = refs.next()?.to_owned();
    refs.next().is_none().then_some(only)
}

/// Validates `value` (found at `base` inside the whole `instance`) against `schema`,
/// turning each error into a problem with a key path. An object that fails an optional
/// struct's `anyOf` is validated again against the struct itself, so its own errors
/// (unknown keys with "did you mean", wrong types) are reported instead.
fn collect_problems(
    root: &Value,
    schema: &Value,
    instance: &Value,
    value: &Value,
    base: &str,
    problems: &mut Vec<Found>,
) {
    let validator = jsonschema::validator_for(schema)
        .expect("the generated config schema is a valid JSON Schema");
    for error in validator.iter_errors(value) {
        let pointer = format!("{base}{}", error.instance_path().as_str());
        if let (jsonschema::error::ValidationErrorKind::AnyOf { .. }, Value::Object(_)) =
            (error.kind(), error.instance().as_ref())
        {
            if let Some(reference) = optional_struct_ref(error.schema_path().as_str(), schema) {
                let sub = serde_json::json!({
                    "$ref": reference,
                    "$defs": root.get("$defs").cloned().unwrap_or(Value::Null),
                });
                let inner: Value = error.instance().as_ref().clone();
                collect_problems(root, &sub, instance, &inner, &pointer, problems);
                continue;
            }
        }
        let path = key_path(instance, &pointer);
        let (prune, covers) = match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => (
                unexpected
                    .iter()
                    .map(|k| format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")))
                    .collect(),
                false,
            ),
            jsonschema::error::ValidationErrorKind::Required { .. } => (Vec::new(), false),
            _ => (vec![pointer.clone()], true),
        };
        let message = match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_keys(root, instance, &pointer);
                unexpected
                    .iter()
                    .map(|key| unknown_key_message(key, &known))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            jsonschema::error::ValidationErrorKind::OneOfNotValid { .. }
                if one_of_consts(error.schema_path().as_str(), schema).is_some() =>
            {
                let allowed =
                    one_of_consts(error.schema_path().as_str(), schema).unwrap_or_default();
                let given = error.instance().as_str().unwrap_or_default().to_owned();
                let best = allowed
                    .iter()
                    .map(|k| (strsim::jaro_winkler(&given, k), k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((_, k)) => format!(
                        "`{given}` is not one of {}; did you mean `{k}`?",
                        allowed.join(", ")
                    ),
                    None => format!("`{given}` is not one of {}", allowed.join(", ")),
                }
            }
            _ if path.contains("url") || path.contains("password") => {
                // Never echo a value that may carry a credential.
                error.masked().to_string()
            }
            _ => error.to_string(),
        };
        problems.push(Found {
            problem: ConfigProblem { path, message },
            prune,
            covers,
        });
    }
}

/// The allowed values of an enum that the schema spells as `oneOf` of `const`s (enums
/// whose values carry descriptions), found by the failing keyword's schema path.
fn one_of_consts(schema_path: &str, schema: &Value) -> Option<Vec<String>> {
    let mut node = schema;
    for seg in schema_path.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            other => other.get(&seg)?,
        };
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let target = reference.strip_prefix("#/")?;
            let mut n = schema;
            for part in target.split('/') {
                n = n.get(part)?;
            }
            node = n;
        }
    }
    let alternatives = node.as_array().or_else(|| node.get("oneOf")?.as_array())?;
    alternatives
        .iter()
        .map(|a| a.get("const").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn unknown_key_message(key: &str, known: &[String]) -> String {
    if key == "password" {
        return "unknown key `password`: literal passwords are not accepted; put the password \
                in an environment variable and name it with `password_env`"
            .into();
    }
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("unknown key `{key}`; did you mean `{k}`?"),
        None => format!(
            "unknown key `{key}`; allowed keys here: {}",
            known.join(", ")
        ),
    }
}

/// The rules the schema cannot express, over the parts of the config that read: the
/// source block when it does, and the exports that do, by their index in `exports`
/// (`export_count` of them in the file).
fn semantic_problems(
    source: Option<&SourceConfig>,
    exports: &[(usize, ExportConfig)],
    export_count: usize,
) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut push = |path: String, message: &str| {
        problems.push(ConfigProblem {
            path,
            message: message.to_owned(),
        })
    };
    if let Some(s) = source {
        source_problems(s, &mut push);
    }
    let mut names = HashSet::new();
    // Destinations that clash (the same directory spelled two ways, through a symlink,
    // or nested) are found by the planner, which can resolve paths on disk.
    for (i, e) in exports {
        let i = *i;
        let at = |key: &str| format!("exports[{i}].{key}");
        if !names.insert(e.name.as_str()) {
            push(
                at("name"),
                &format!(
                    "duplicate export name `{}`; every export needs its own name",
                    e.name
                ),
            );
        }
        cdc_problems(source, e, &at, &mut push);
        export_problems(e, &at, &mut push);
        if e.destination.kind == DestinationKind::Stdout {
            if export_count > 1 {
                push(
                    at("destination.type"),
                    "a `stdout` destination needs a config with exactly one export: the output of several would be interleaved on one stream",
                );
            }
            if e.mode == ExportMode::Chunked {
                push(
                    at("mode"),
                    "a `stdout` destination writes one file, so it cannot take several chunks; use `mode: full` (or `incremental` / `time_window`)",
                );
            }
            if e.max_file_size.is_some() {
                push(
                    at("max_file_size"),
                    "`max_file_size` does not apply to `stdout`: the output is one stream",
                );
            }
        }
    }
    problems
}

/// The rules of `mode: cdc` and its `cdc` block (docs/cdc.md).
fn cdc_problems(
    source: Option<&SourceConfig>,
    e: &ExportConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    if e.mode != ExportMode::Cdc {
        if e.cdc.is_some() {
            push(
                at("cdc"),
                "the `cdc` block applies to `mode: cdc` exports only; remove it or set `mode: cdc`",
            );
        }
        return;
    }
    match source.map(|s| s.kind) {
        Some(crate::config::SourceKind::Mysql) => push(
            at("mode"),
            "mode `cdc` reads PostgreSQL logical replication slots only in this version; MySQL/MariaDB binlog capture is not done yet (docs/cdc.md); use `incremental` meanwhile",
        ),
        Some(crate::config::SourceKind::Mssql) => push(
            at("mode"),
            "mode `cdc` reads PostgreSQL logical replication slots only in this version; SQL Server change tables are not read yet (docs/cdc.md); use `incremental` meanwhile",
        ),
        _ => {}
    }
    if e.table.is_none() {
        push(
            at("table"),
            "a `cdc` export captures the changes of one table: give `table`, not `query`/`query_file`",
        );
    }
    if e.destination.kind == DestinationKind::Stdout {
        push(
            at("destination.type"),
            "a `cdc` export writes one `window-NNNNN/` directory per run; use a `local` or object-store destination",
        );
    }
    let Some(c) = &e.cdc else { return };
    if c.checkpoint.is_some() {
        push(
            at("cdc.checkpoint"),
            "not used by this rivet: the committed log position lives in the state database (see `rivet state`) and moves only after a window's `_SUCCESS`; remove the key",
        );
    }
    if c.until_current == Some(false) {
        push(
            at("cdc.until_current"),
            "continuous capture is not offered: every run exports the sealed window up to the log position read at plan time (what `until_current: true` meant); remove the key and schedule `rivet run`",
        );
    }
    if c.server_id.is_some() {
        push(
            at("cdc.server_id"),
            "`server_id` is a MySQL binlog replica id, and binlog capture is not done yet; PostgreSQL capture uses `cdc.slot` (docs/cdc.md); remove the key",
        );
    }
    for (key, name) in [("cdc.slot", &c.slot), ("cdc.publication", &c.publication)] {
        if let Some(n) = name {
            let ok = !n.is_empty()
                && n.len() <= 63
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                push(
                    at(key),
                    "use 1 to 63 characters from lowercase letters, digits and `_` (PostgreSQL's rule for slot names)",
                );
            }
        }
    }
}

/// The source block's rules: one connection form, a usable timeout, TLS keys that
/// apply.
fn source_problems(s: &SourceConfig, push: &mut dyn FnMut(String, &str)) {
    let structured = s.host.is_some()
        || s.port.is_some()
        || s.user.is_some()
        || s.password_env.is_some()
        || s.database.is_some();
    let forms = [
        s.url.is_some(),
        s.url_env.is_some(),
        s.url_file.is_some(),
        structured,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if forms != 1 {
        push(
            "source".into(),
            "give exactly one of `url`, `url_env`, `url_file`, or the structured keys \
             (`host`, `port`, `user`, `password_env`, `database`)",
        );
    }
    if let Some(Err(m)) = s.connect_timeout.as_ref().map(|t| t.duration()) {
        push("source.connect_timeout".into(), &m);
    }
    if let Some(tls) = &s.tls {
        use crate::config::TlsMode;
        if tls.ca_file.is_some() && !matches!(tls.mode, TlsMode::VerifyCa | TlsMode::VerifyFull) {
            push(
                "source.tls.ca_file".into(),
                "`ca_file` is only used to verify the server (`mode: verify-ca` or `verify-full`); set one of those modes or remove the key",
            );
        }
    }
}

fn export_problems(
    e: &ExportConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    if e.tuning
        .as_ref()
        .is_some_and(|t| t.max_source_connections.is_some())
    {
        push(
            at("tuning.max_source_connections"),
            "`max_source_connections` bounds a whole apply; set it in the top-level `tuning`",
        );
    }
    let query = e.query.as_ref().or(e.query_file.as_ref());
    if e.query.is_some() && e.query_file.is_some() {
        push(
            at("query_file"),
            "give either `query` or `query_file`, not both",
        );
    }
    match (&e.table, query) {
        (Some(_), Some(_)) => push(
            at("table"),
            "give either `table` or `query`/`query_file`, not both",
        ),
        (None, None) => push(
            at("table"),
            "missing `table` (or `query`/`query_file`): what should be exported?",
        ),
        (Some(t), None) if crate::names::split_table_name(t).is_err() => push(
            at("table"),
            "cannot read this table name; write `table` or `schema.table`, quoting a part that \
             contains a dot as \"my.part\"",
        ),
        _ => {}
    }
    if e.mode != ExportMode::Chunked {
        let why = match e.mode {
            ExportMode::Incremental | ExportMode::TimeWindow => {
                "; a window is read as one chunk per run (on PostgreSQL through a server-side cursor fetched in short statements)"
            }
            _ => "",
        };
        for (key, set) in [
            ("chunk_column", e.chunk_column.is_some()),
            ("chunk_size", e.chunk_size.is_some()),
        ] {
            if set {
                push(
                    at(key),
                    &format!("`{key}` only applies to `mode: chunked`{why}; set the mode or remove the key"),
                );
            }
        }
    }
    let incremental = e.mode == ExportMode::Incremental;
    let time_window = e.mode == ExportMode::TimeWindow;
    if incremental && e.cursor_column.is_none() {
        push(
            at("cursor_column"),
            "`mode: incremental` needs `cursor_column`: the column whose growth marks new or changed rows (e.g. `updated_at` or an increasing `id`)",
        );
    }
    if time_window {
        if e.time_column.is_none() {
            push(
                at("time_column"),
                "`mode: time_window` needs `time_column`: the column holding each row's time",
            );
        }
        if e.days_window.is_none() {
            push(
                at("days_window"),
                "`mode: time_window` needs `days_window`: how many days before `--as-of` to export",
            );
        }
    }
    for (key, set, mode_ok, mode) in [
        (
            "cursor_column",
            e.cursor_column.is_some(),
            incremental,
            "incremental",
        ),
        (
            "cursor_fallback_column",
            e.cursor_fallback_column.is_some(),
            incremental,
            "incremental",
        ),
        (
            "settle_lag",
            e.settle_lag.is_some(),
            incremental,
            "incremental",
        ),
        (
            "time_column",
            e.time_column.is_some(),
            time_window,
            "time_window",
        ),
        (
            "time_column_type",
            e.time_column_type.is_some(),
            time_window,
            "time_window",
        ),
        (
            "days_window",
            e.days_window.is_some(),
            time_window,
            "time_window",
        ),
    ] {
        if set && !mode_ok {
            push(
                at(key),
                &format!("`{key}` only applies to `mode: {mode}`; set the mode or remove the key"),
            );
        }
    }
    if let Some(q) = &e.quality {
        for (column, ratio) in q.null_ratio_max.iter().flatten() {
            if !(0.0..=1.0).contains(ratio) {
                push(
                    format!("{}.{column}", at("quality.null_ratio_max")),
                    "a NULL ratio is a share from 0 to 1 (0.05 = 5%)",
                );
            }
        }
        if let (Some(lo), Some(hi)) = (q.row_count_min, q.row_count_max) {
            if lo > hi {
                push(
                    at("quality.row_count_min"),
                    "`row_count_min` is larger than `row_count_max`; no export can pass",
                );
            }
        }
    }
    if let Some(size) = &e.max_file_size {
        match size.bytes() {
            Err(m) => push(at("max_file_size"), &m),
            Ok(n) if n < 1024 * 1024 => push(
                at("max_file_size"),
                "`max_file_size` must be at least 1 MiB; smaller files cost more in per-file overhead than they save",
            ),
            Ok(_) => {}
        }
    }
    if e.mode == ExportMode::Chunked && query.is_some() && e.chunk_column.is_none() {
        push(at("chunk_column"), "a chunked `query` export needs `chunk_column`: the integer column of the query's result to split on");
    }
    if let Some(cols) = &e.columns {
        if cols.is_empty() {
            push(
                at("columns"),
                "an empty column list exports nothing; remove the key to export every column",
            );
        }
        let mut seen = HashSet::new();
        for (j, c) in cols.iter().enumerate() {
            if !seen.insert(c) {
                push(
                    format!("{}[{j}]", at("columns")),
                    &format!("column `{c}` is listed twice"),
                );
            }
        }
    }
    if e.format == Format::Csv
        && matches!(e.compression, Some(Compression::Snappy | Compression::Lz4))
    {
        push(at("compression"), "CSV files can be compressed with `gzip`, `zstd` or `none`; `snappy` and `lz4` apply to Parquet only");
    }
    destination_problems(&e.destination, at, push);
}

/// Which destination keys each kind takes, and the ones it requires.
fn destination_problems(
    d: &crate::config::DestinationConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    let set: [(&str, bool); 16] = [
        ("path", d.path.is_some()),
        ("bucket", d.bucket.is_some()),
        ("prefix", d.prefix.is_some()),
        ("region", d.region.is_some()),
        ("endpoint", d.endpoint.is_some()),
        ("path_style", d.path_style.is_some()),
        ("access_key_env", d.access_key_env.is_some()),
        ("secret_key_env", d.secret_key_env.is_some()),
        ("session_token_env", d.session_token_env.is_some()),
        ("credentials_file", d.credentials_file.is_some()),
        ("account", d.account.is_some()),
        ("container", d.container.is_some()),
        ("account_key_env", d.account_key_env.is_some()),
        ("sas_token_env", d.sas_token_env.is_some()),
        ("bearer_token_env", d.bearer_token_env.is_some()),
        ("type", true),
    ];
    let (allowed, required): (&[&str], &[&str]) = match d.kind {
        DestinationKind::Local => (&["path"], &["path"]),
        DestinationKind::S3 => (
            &[
                "bucket",
                "prefix",
                "region",
                "endpoint",
                "path_style",
                "access_key_env",
                "secret_key_env",
                "session_token_env",
            ],
            &["bucket"],
        ),
        DestinationKind::Gcs => (&["bucket", "prefix", "credentials_file"], &["bucket"]),
        DestinationKind::Azure => (
            &[
                "account",
                "container",
                "prefix",
                "endpoint",
                "account_key_env",
                "sas_token_env",
                "bearer_token_env",
            ],
            &["account", "container"],
        ),
        DestinationKind::Stdout => (&[], &[]),
    };
    let kind = crate::variant_name(&d.kind);
    for (key, present) in set {
        if key == "type" {
            continue;
        }
        if present && !allowed.contains(&key) {
            push(
                at(&format!("destination.{key}")),
                &format!(
                    "`{key}` does not apply to a `{kind}` destination (it takes: {})",
                    if allowed.is_empty() {
                        "no other keys".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            );
        }
    }
    for key in required {
        let present = set.iter().any(|(k, p)| k == key && *p);
        let empty = match *key {
            "path" => d.path.as_deref() == Some(""),
            "bucket" => d.bucket.as_deref() == Some(""),
            _ => false,
        };
        if !present || empty {
            push(
                at(&format!("destination.{key}")),
                &format!("a `{kind}` destination needs `{key}`"),
            );
        }
    }
    if d.access_key_env.is_some() != d.secret_key_env.is_some() {
        push(
            at("destination.secret_key_env"),
            "give both `access_key_env` and `secret_key_env`, or neither (to use the standard AWS credential chain)",
        );
    }
    let azure_auth = [&d.account_key_env, &d.sas_token_env, &d.bearer_token_env]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if azure_auth > 1 {
        push(
            at("destination.account_key_env"),
            "give at most one of `account_key_env`, `sas_token_env`, `bearer_token_env`",
        );
    }
    if let Some(p) = &d.prefix {
        if p.split('/').any(|seg| seg == "." || seg == "..") {
            push(
                at("destination.prefix"),
                "a prefix cannot contain `.` or `..` segments",
            );
        }
    }
}
