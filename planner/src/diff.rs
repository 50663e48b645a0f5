//! `rivet plan diff`: what changed between two plans, with structural changes (what is
//! exported and how) kept apart from volume changes (how much and in how many chunks),
//! because a reviewer must look at the first and can usually wave through the second.

use rivet_schema::plan::{Plan, PlannedExport};
use serde::Serialize;

/// The differences between two plans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanDiff {
    pub format_version: u32,
    pub old_digest: String,
    pub new_digest: String,
    /// Exports, columns, types, destinations, modes, formats, tuning, source.
    pub structural: Vec<String>,
    /// Row estimates, key ranges, chunk sizes and counts.
    pub volume: Vec<String>,
}

impl PlanDiff {
    /// True when the plans have the same content.
    pub fn is_empty(&self) -> bool {
        self.structural.is_empty() && self.volume.is_empty()
    }

    /// Human rendering.
    pub fn render(&self) -> String {
        if self.is_empty() {
            return format!("plans are equivalent (sha256:{})\n", self.new_digest);
        }
        let mut out = format!("sha256:{} -> sha256:{}\n", self.old_digest, self.new_digest);
        for (title, items) in [
            ("structural changes", &self.structural),
            ("volume changes", &self.volume),
        ] {
            if !items.is_empty() {
                out.push_str(&format!("{title} ({}):\n", items.len()));
                for i in items {
                    out.push_str(&format!("  {i}\n"));
                }
            }
        }
        out
    }
}

fn j<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v).expect("plan values always serialize to JSON") {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Compares two plans semantically.
pub fn diff_plans(old: &Plan, new: &Plan) -> PlanDiff {
    let mut d = PlanDiff {
        format_version: 1,
        old_digest: old.seal.digest.clone(),
        new_digest: new.seal.digest.clone(),
        ..Default::default()
    };
    if old.body.source != new.body.source {
        d.structural.push(format!(
            "source: {} -> {}",
            j(&old.body.source),
            j(&new.body.source)
        ));
    }
    if old.body.concurrency != new.body.concurrency {
        d.structural.push(format!(
            "concurrency: {} -> {}",
            crate::show::concurrency_text(&old.body.concurrency),
            crate::show::concurrency_text(&new.body.concurrency)
        ));
    }
    let path = |p: &rivet_schema::plan::ConnectionPath| (p.pooling, p.proxy.clone());
    if path(&old.body.connection_path) != path(&new.body.connection_path) {
        d.structural.push(format!(
            "connection: {} -> {}",
            crate::show::connection_text(&old.body.connection_path),
            crate::show::connection_text(&new.body.connection_path)
        ));
    }
    for e in &old.body.exports {
        if new.body.export(&e.name).is_none() {
            d.structural.push(format!("export {}: removed", e.name));
        }
    }
    for e in &new.body.exports {
        match old.body.export(&e.name) {
            None => d.structural.push(format!(
                "export {}: added ({} columns, {} chunks)",
                e.name,
                e.columns.len(),
                e.chunks.len()
            )),
            Some(o) => diff_export(&mut d, o, e),
        }
    }
    if old.body.waves != new.body.waves && d.structural.is_empty() {
        d.structural.push(format!(
            "waves: {} -> {}",
            j(&old.body.waves),
            j(&new.body.waves)
        ));
    }
    d
}

fn diff_export(d: &mut PlanDiff, o: &PlannedExport, n: &PlannedExport) {
    let name = &n.name;
    let mut s = |what: &str, a: String, b: String| {
        if a != b {
            d.structural
                .push(format!("export {name}: {what} {a} -> {b}"));
        }
    };
    s("relation", j(&o.relation), j(&n.relation));
    s("mode", j(&o.mode), j(&n.mode));
    s("wave", o.wave.to_string(), n.wave.to_string());
    s("format", j(&o.format), j(&n.format));
    s("compression", j(&o.compression), j(&n.compression));
    // An incremental export's window directory moves with every run: that is volume.
    let base = |e: &PlannedExport| match e.window.as_ref().and_then(|w| w.seq) {
        Some(seq) => {
            let mut dest = e.destination.clone();
            let strip = |p: &str| {
                p.strip_suffix(&format!("window-{seq:05}"))
                    .map(|p| p.trim_end_matches('/'))
                    .unwrap_or(p)
                    .to_owned()
            };
            dest.path = strip(&dest.path);
            if let Some(store) = dest.store.as_mut() {
                store.prefix = strip(&store.prefix);
            }
            dest
        }
        None => e.destination.clone(),
    };
    s("destination", j(&base(o)), j(&base(n)));
    let shape = |e: &PlannedExport| {
        e.window.as_ref().map(|w| {
            (
                w.kind,
                w.column.clone(),
                w.fallback_column.clone(),
                w.value_type,
            )
        })
    };
    s("window column", j(&shape(o)), j(&shape(n)));
    s("tuning", j(&o.tuning), j(&n.tuning));
    s(
        "chunk key",
        j(&o.chunk_key.as_ref().map(|k| &k.column)),
        j(&n.chunk_key.as_ref().map(|k| &k.column)),
    );
    s(
        "chunking by pages",
        o.page_chunking.is_some().to_string(),
        n.page_chunking.is_some().to_string(),
    );
    s("consistency", j(&o.consistency), j(&n.consistency));
    s(
        "primary key",
        o.primary_key.join(","),
        n.primary_key.join(","),
    );
    s(
        "all columns",
        o.all_columns.to_string(),
        n.all_columns.to_string(),
    );
    for c in &o.columns {
        if !n.columns.iter().any(|x| x.name == c.name) {
            d.structural
                .push(format!("export {name}: column {} removed", c.name));
        }
    }
    for c in &n.columns {
        match o.columns.iter().find(|x| x.name == c.name) {
            None => d.structural.push(format!(
                "export {name}: column {} added ({})",
                c.name, c.declared_type
            )),
            Some(oc) => {
                let same_shape = oc.declared_type == c.declared_type
                    && oc.wire_type == c.wire_type
                    && oc.logical == c.logical
                    && oc.nullable == c.nullable;
                if same_shape && (oc.mapping, &oc.select_expr) != (c.mapping, &c.select_expr) {
                    d.structural.push(format!(
                        "export {name}: column {} read as {} -> {}",
                        c.name,
                        crate::show::mapping_text(oc),
                        crate::show::mapping_text(c),
                    ));
                }
                if !same_shape {
                    d.structural.push(format!(
                        "export {name}: column {} changed {} {}{} -> {} {}{}",
                        c.name,
                        oc.declared_type,
                        oc.logical.display_name(),
                        if oc.nullable { "" } else { " not null" },
                        c.declared_type,
                        c.logical.display_name(),
                        if c.nullable { "" } else { " not null" },
                    ));
                }
                if oc.dictionary != c.dictionary {
                    d.volume.push(format!(
                        "export {name}: column {} dictionary encoding {} -> {} (column statistics changed)",
                        c.name, oc.dictionary, c.dictionary
                    ));
                }
            }
        }
    }
    let on: Vec<&str> = o.columns.iter().map(|c| c.name.as_str()).collect();
    let nn: Vec<&str> = n.columns.iter().map(|c| c.name.as_str()).collect();
    if on != nn && on.len() == nn.len() && on.iter().all(|c| nn.contains(c)) {
        d.structural.push(format!(
            "export {name}: column order {} -> {}",
            on.join(","),
            nn.join(",")
        ));
    }
    let mut v = |what: &str, a: String, b: String| {
        if a != b {
            d.volume.push(format!("export {name}: {what} {a} -> {b}"));
        }
    };
    v(
        "row estimate",
        o.row_estimate.to_string(),
        n.row_estimate.to_string(),
    );
    v(
        "chunks",
        o.chunks.len().to_string(),
        n.chunks.len().to_string(),
    );
    let bounds = |e: &PlannedExport| {
        e.chunk_key.as_ref().map(|k| match (k.min, k.max) {
            (Some(min), Some(max)) => format!("{min}..={max} size {}", k.chunk_size),
            _ => format!("empty size {}", k.chunk_size),
        })
    };
    v("key range", j(&bounds(o)), j(&bounds(n)));
    let pages = |e: &PlannedExport| {
        e.page_chunking
            .as_ref()
            .map(|p| format!("{} pages, {} per chunk", p.pages, p.pages_per_chunk))
    };
    v("heap pages", j(&pages(o)), j(&pages(n)));
    let window = |e: &PlannedExport| e.window.as_ref().map(crate::show::window_text);
    v("window", j(&window(o)), j(&window(n)));
    if o.chunks.len() == n.chunks.len() && o.chunks != n.chunks && bounds(o) == bounds(n) {
        d.volume
            .push(format!("export {name}: chunk estimates changed"));
    }
}
