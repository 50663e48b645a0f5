//! JSON Schema validation of a config as problems with key paths: which key is unknown
//! (with a did-you-mean), which value is out of range, which enum value is allowed, and
//! which parts of the document to set aside so the semantic rules can still run on the
//! rest.

use serde_json::Value;

use crate::error::ConfigProblem;

/// A schema problem, with the values to set aside before the semantic rules run.
pub(super) struct Found {
    pub(super) problem: ConfigProblem,
    /// JSON pointers of the values the schema refused (removed from objects, nulled in
    /// arrays so that export indexes stay put).
    pub(super) prune: Vec<String>,
    /// Whether the problem is about the value at its path, so that rules about the same
    /// path (or below it) would only repeat it.
    pub(super) covers: bool,
}

/// `value` without the values at `pointers`.
pub(super) fn without<'a>(value: &Value, pointers: impl Iterator<Item = &'a String>) -> Value {
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
pub(super) fn schema_problems(instance: &Value) -> Vec<Found> {
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
