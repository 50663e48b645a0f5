//! The YAML `rivet init` writes: every proposed export with its reason as a comment
//! above it. Text is written by hand (serde would drop the comments); every string
//! value is a double-quoted YAML scalar made by the JSON encoder, which YAML reads
//! back exactly, so hostile names round-trip.

use rivet_schema::config::ExportMode;

use super::{table_reference, Discovery, InitDestination};

/// A double-quoted scalar that YAML reads back as exactly `s`.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// `text` as `# ` comment lines of at most about 88 columns, indented by `indent`;
/// control characters shown escaped so that a name cannot end the comment.
fn comment(out: &mut String, indent: &str, text: &str) {
    let clean: String = text
        .chars()
        .flat_map(char::escape_debug)
        .collect::<String>();
    let clean = clean.replace("\\\"", "\"").replace("\\'", "'");
    let mut line = String::new();
    for word in clean.split(' ') {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > 88 {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}# {line}\n"));
    }
}

/// The config file for a discovery.
pub fn render_config(d: &Discovery) -> String {
    let engine = rivet_schema::variant_name(&d.source);
    let mut out = String::new();
    comment(
        &mut out,
        "",
        &format!(
            "Written by `rivet init` from the {engine} catalog and statistics. The connection \
             URL stays in the environment variable {}; nothing secret is in this file. Each \
             export's comment says why its mode was chosen. Review, then: rivet check -c \
             <this file>; rivet plan -c <this file> -o plan.json",
            d.source_env
        ),
    );
    out.push_str(&format!(
        "source:\n  type: {engine}\n  url_env: {}\nexports:\n",
        q(&d.source_env)
    ));
    for t in &d.tables {
        let c = &t.choice;
        out.push('\n');
        comment(
            &mut out,
            "  ",
            &format!("{}.{}: {}", t.schema, t.name, c.reason),
        );
        let refused: Vec<_> = t
            .columns
            .iter()
            .filter_map(|c| c.refused.as_deref().map(|why| (c, why)))
            .collect();
        for (r, why) in &refused {
            comment(
                &mut out,
                "  ",
                &format!(
                    "Column `{}` ({}) is left out: {why}.",
                    r.name, r.declared_type
                ),
            );
        }
        out.push_str(&format!("  - name: {}\n", q(&c.export)));
        out.push_str(&format!(
            "    table: {}\n",
            q(&table_reference(&t.schema, &t.name))
        ));
        out.push_str(&format!(
            "    mode: {}\n",
            rivet_schema::variant_name(&c.mode)
        ));
        for (key, value) in [
            ("chunk_column", &c.chunk_column),
            ("cursor_column", &c.cursor_column),
            ("cursor_fallback_column", &c.cursor_fallback_column),
            ("time_column", &c.time_column),
        ] {
            if let Some(v) = value {
                out.push_str(&format!("    {key}: {}\n", q(v)));
            }
        }
        if c.mode == ExportMode::TimeWindow {
            out.push_str("    days_window: 1\n");
        }
        if !refused.is_empty() {
            out.push_str("    columns:\n");
            for col in t.columns.iter().filter(|c| c.refused.is_none()) {
                out.push_str(&format!("      - {}\n", q(&col.name)));
            }
        }
        out.push_str("    destination:\n");
        match &d.destination {
            InitDestination::Local { path } => {
                let dir = path.trim_end_matches('/');
                let dir = if dir.is_empty() { "." } else { dir };
                out.push_str(&format!(
                    "      type: local\n      path: {}\n",
                    q(&format!("{dir}/{}", c.export))
                ));
            }
            InitDestination::S3 { bucket } => out.push_str(&format!(
                "      type: s3\n      bucket: {}\n      prefix: {}\n",
                q(bucket),
                q(&c.export)
            )),
            InitDestination::Gcs { bucket } => out.push_str(&format!(
                "      type: gcs\n      bucket: {}\n      prefix: {}\n",
                q(bucket),
                q(&c.export)
            )),
            InitDestination::Azure { account, container } => out.push_str(&format!(
                "      type: azure\n      account: {}\n      container: {}\n      prefix: {}\n",
                q(account),
                q(container),
                q(&c.export)
            )),
        }
    }
    out
}
