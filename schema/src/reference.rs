//! The config reference (`docs/config-reference.md`), generated from the config's JSON
//! Schema so the documentation cannot drift from the types.

use serde_json::Value;

fn type_text(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return format!(
            "[{0}](#{1})",
            r.rsplit('/').next().unwrap_or(r),
            r.rsplit('/').next().unwrap_or(r).to_lowercase()
        );
    }
    if let Some(alts) = s
        .get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(Value::as_array)
    {
        let parts: Vec<String> = alts
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .map(type_text)
            .collect();
        return parts.join(" or ");
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    match s.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!(
                "list of {}",
                s.get("items").map(type_text).unwrap_or_default()
            )
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

fn constraints(s: &Value) -> String {
    let mut out = Vec::new();
    for (k, label) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("pattern", "pattern"),
    ] {
        if let Some(v) = s.get(k) {
            out.push(format!("{label} {v}"));
        }
    }
    out.join(", ")
}

fn section(out: &mut String, title: &str, s: &Value) {
    out.push_str(&format!("## {title}\n\n"));
    if let Some(d) = s.get("description").and_then(Value::as_str) {
        out.push_str(&format!("{}\n\n", d.replace('\n', " ")));
    }
    if let Some(values) = s
        .get("oneOf")
        .or_else(|| s.get("enum"))
        .and_then(Value::as_array)
    {
        out.push_str("| value | meaning |\n|---|---|\n");
        for v in values {
            let (name, doc) = match v {
                Value::String(n) => (n.clone(), String::new()),
                other => (
                    other
                        .get("const")
                        .or_else(|| other.get("enum").and_then(|e| e.get(0)))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    other
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .replace('\n', " "),
                ),
            };
            out.push_str(&format!("| `{name}` | {doc} |\n"));
        }
        out.push('\n');
        return;
    }
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| key | type | required | description |\n|---|---|---|---|\n");
    for (k, p) in props {
        let mut desc = p
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        let c = constraints(p);
        if !c.is_empty() {
            desc.push_str(&format!(" ({c})"));
        }
        if let Some(d) = p.get("default") {
            desc.push_str(&format!(" Default: `{d}`."));
        }
        out.push_str(&format!(
            "| `{k}` | {} | {} | {} |\n",
            type_text(p),
            if required.contains(&k.as_str()) {
                "yes"
            } else {
                "no"
            },
            desc.trim()
        ));
    }
    out.push('\n');
}

/// Markdown reference of every config key.
pub fn config_reference_markdown() -> String {
    let root = crate::config_json_schema();
    let mut out = String::from(
        "# Config reference\n\n<!-- Generated from the config types by `RIVET_UPDATE_SCHEMAS=1 cargo nextest run -E 'test(committed_json_schemas)'`; do not edit by hand. -->\n\n\
         A config is one YAML file: a `source` and a list of `exports`. Unknown keys are errors. \
         Keys marked *not supported yet* are recognized and refused with exit code 2.\n\n",
    );
    section(&mut out, "Config", &root);
    if let Some(defs) = root.get("$defs").and_then(Value::as_object) {
        for (name, s) in defs {
            section(&mut out, name, s);
        }
    }
    out
}
