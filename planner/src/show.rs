//! `rivet plan show`: the sealed plan as an indented tree a reviewer can read in a pull
//! request, and the same facts as JSON for machines.

use rivet_schema::variant_name;
use std::fmt::Write;

use rivet_schema::plan::{
    ColumnMapping, KeyRange, Plan, PlannedColumn, PlannedExport, PlannedMode,
};
use serde_json::json;

fn source_line(plan: &Plan) -> String {
    let s = &plan.body.source;
    let kind = variant_name(&s.kind);
    let via = if let Some(v) = &s.url_env {
        format!("url from env {v}")
    } else if let Some(f) = &s.url_file {
        format!("url from file {f}")
    } else if s.url.is_some() {
        "inline url".into()
    } else {
        format!(
            "{}:{} db {} user {}{}",
            s.host.as_deref().unwrap_or("localhost"),
            s.port.unwrap_or(5432),
            s.database.as_deref().unwrap_or("-"),
            s.user.as_deref().unwrap_or("-"),
            s.password_env
                .as_deref()
                .map(|p| format!(" password from env {p}"))
                .unwrap_or_default()
        )
    };
    let tls = match &s.tls {
        Some(t) => format!(", tls {}", variant_name(&t.mode)),
        None => String::new(),
    };
    format!("{kind} ({via}{tls})")
}

fn range_text(column: &str, r: &KeyRange) -> String {
    let mut parts = Vec::new();
    match (r.lower, r.upper) {
        (Some(lo), Some(hi)) => parts.push(format!("{lo} <= {column} < {hi}")),
        (Some(lo), None) => parts.push(format!("{column} >= {lo}")),
        (None, Some(hi)) => parts.push(format!("{column} < {hi}")),
        (None, None) => parts.push("all keys".into()),
    }
    if r.include_null {
        parts.push(format!("{column} IS NULL"));
    }
    parts.join(" or ")
}

/// One line: `3 exports, 41 columns, 12 chunks, ~1,234 rows, 2 waves → local`.
pub fn summary_line(plan: &Plan) -> String {
    let b = &plan.body;
    let cols: usize = b.exports.iter().map(|e| e.columns.len()).sum();
    let chunks: usize = b.exports.iter().map(|e| e.chunks.len()).sum();
    let rows: u64 = b.exports.iter().map(|e| e.row_estimate).sum();
    let mut dests: Vec<String> = b
        .exports
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                variant_name(&e.destination.kind),
                e.destination.display()
            )
        })
        .collect();
    dests.sort();
    dests.dedup();
    format!(
        "{} export(s), {cols} column(s), {chunks} chunk(s), ~{rows} row(s) estimated, {} wave(s); destinations: {}",
        b.exports.len(),
        b.waves.len(),
        dests.join(", ")
    )
}

fn render_export(out: &mut String, e: &PlannedExport) {
    let _ = writeln!(
        out,
        "  export {}: {} -> {} {} ({}, {})",
        e.name,
        e.relation.display_name(),
        variant_name(&e.destination.kind),
        e.destination.display(),
        variant_name(&e.format),
        variant_name(&e.compression)
    );
    match (&e.mode, &e.chunk_key) {
        (PlannedMode::Chunked, Some(k)) => {
            let bounds = match (k.min, k.max) {
                (Some(a), Some(b)) => format!("keys {a}..={b}"),
                _ => "no rows at plan time".into(),
            };
            let _ = writeln!(
                out,
                "    mode chunked on {} ({bounds}), chunk_size {}, {} chunk(s), ~{} row(s)",
                k.column,
                k.chunk_size,
                e.chunks.len(),
                e.row_estimate
            );
        }
        (PlannedMode::Chunked, None) if e.page_chunking.is_some() => {
            let pc = e.page_chunking.as_ref().expect("checked by the guard");
            let _ = writeln!(
                out,
                "    mode chunked by heap pages (no integer key; {} page(s) at plan time), {} page(s) per chunk, {} chunk(s), ~{} row(s)",
                pc.pages,
                pc.pages_per_chunk,
                e.chunks.len(),
                e.row_estimate
            );
        }
        _ => match &e.window {
            Some(w) => {
                let _ = writeln!(out, "    mode {}", window_text(w));
                match &e.cdc {
                    Some(rivet_schema::plan::PlannedCdc::Slot(c)) => {
                        let _ = writeln!(
                            out,
                            "    slot {} (wal_status {}): {} byte(s) of WAL retained{}; publication {}",
                            c.slot,
                            c.wal_status,
                            c.slot_pending_bytes,
                            c.safe_wal_bytes.map_or(String::new(), |b| format!(
                                ", {b} byte(s) before max_slot_wal_keep_size"
                            )),
                            c.publication
                        );
                    }
                    Some(rivet_schema::plan::PlannedCdc::Binlog(b)) => {
                        let _ = writeln!(
                            out,
                            "    binary log as replica {} (row image {}): {} byte(s) in the window; oldest file on the server {}, {}",
                            b.server_id,
                            b.row_image,
                            b.window_bytes,
                            b.oldest_file,
                            b.retention_seconds.map_or("kept until purged by hand".to_owned(), |s| format!(
                                "files expire after {:.1} day(s)",
                                s as f64 / 86_400.0
                            ))
                        );
                    }
                    Some(rivet_schema::plan::PlannedCdc::ChangeTable(c)) => {
                        let _ = writeln!(
                            out,
                            "    change table of capture instance {} from {} (inclusive); SQL Server Agent {}",
                            c.capture_instance, c.from_lsn, c.agent
                        );
                    }
                    None => {}
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "    mode full (one streamed read), ~{} row(s)",
                    e.row_estimate
                );
            }
        },
    }
    if e.consistency == rivet_schema::config::Consistency::Snapshot {
        let _ = writeln!(
            out,
            "    consistency snapshot: every chunk reads one snapshot, held by one more connection until the last chunk is read (VACUUM cannot remove rows deleted meanwhile)"
        );
    }
    if let Some(h) = &e.handoff {
        let _ = writeln!(
            out,
            "    handoff: snapshot by {}, continued by the changes of `{}` from {} (replay by key, last _rivet_pos wins)",
            h.snapshot_exports
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            h.cdc_export,
            h.position
        );
    }
    if let Some(original) = &e.repair_of {
        let _ = writeln!(
            out,
            "    repair of sha256:{}: rewrites {} chunk(s), keeps {} file(s) as they are",
            &original[..12.min(original.len())],
            e.chunks.len(),
            e.keep_files.len()
        );
    }
    let t = &e.tuning;
    let _ = writeln!(
        out,
        "    tuning {}: parallelism {}, batch {} rows / {} MiB ({}), row group {} MiB, statement_timeout {} ms, lock_timeout {} ms, {} retries from {} ms",
        t.profile,
        t.parallelism,
        t.batch_rows,
        t.batch_memory_bytes / (1024 * 1024),
        variant_name(&t.on_batch_memory_exceeded),
        t.row_group_bytes / (1024 * 1024),
        t.statement_timeout_ms,
        t.lock_timeout_ms,
        t.max_retries,
        t.retry_backoff_ms
    );
    let _ = writeln!(
        out,
        "    columns ({}{}):",
        e.columns.len(),
        if e.all_columns { ", all" } else { ", subset" }
    );
    for c in &e.columns {
        let _ = writeln!(
            out,
            "      {:<24} {:<28} -> {}{}{} [{}]",
            c.name,
            c.declared_type,
            c.logical.display_name(),
            if c.nullable { "" } else { " not null" },
            if c.dictionary { ", dictionary" } else { "" },
            mapping_text(c)
        );
    }
    let _ = writeln!(out, "    chunks ({}):", e.chunks.len());
    for c in &e.chunks {
        let range = match (&c.range, &e.chunk_key, &c.pages) {
            (Some(r), Some(k), _) => range_text(&k.column, r),
            (_, _, Some(p)) => match p.upper {
                Some(upper) => format!("pages [{}, {upper})", p.lower),
                None => format!("pages [{}, end)", p.lower),
            },
            _ => "whole relation".into(),
        };
        let _ = writeln!(
            out,
            "      {:<20} {:<36} ~{} rows -> {}",
            c.id, range, c.row_estimate, c.file
        );
    }
}

/// How a column is read: `native`, `structured`, or `text by cast` with the plan's
/// server-side expression (`native via …` for a conversion into a native type).
pub fn mapping_text(c: &PlannedColumn) -> String {
    match (c.mapping, &c.select_expr) {
        (ColumnMapping::Text, Some(expr)) => format!("text by cast: {expr}"),
        (ColumnMapping::Text, None) => "text".into(),
        (m, Some(expr)) => format!("{} via {expr}", m.as_str()),
        (m, None) => m.as_str().into(),
    }
}

/// The plan as an indented tree.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan sha256:{} (format {})",
        plan.seal.digest, plan.format_version
    );
    let _ = writeln!(out, "source: {}", source_line(plan));
    let identity: Vec<String> = plan
        .body
        .source_identity
        .facts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(out, "source identity: {}", identity.join(", "));
    let _ = writeln!(out, "summary: {}", summary_line(plan));
    let _ = writeln!(
        out,
        "concurrency: {}",
        concurrency_text(&plan.body.concurrency)
    );
    let _ = writeln!(
        out,
        "connection: {}",
        connection_text(&plan.body.connection_path)
    );
    for w in &plan.body.waves {
        let _ = writeln!(out, "wave {}", w.wave);
        for name in &w.exports {
            if let Some(e) = plan.body.export(name) {
                render_export(&mut out, e);
            }
        }
    }
    out
}

/// What stands between Rivet and the database, in words: the pooling, the proxy when
/// one was recognized, and the evidence.
pub fn connection_text(p: &rivet_schema::plan::ConnectionPath) -> String {
    let proxy = p
        .proxy
        .as_deref()
        .map_or(String::new(), |name| format!(" through {name}"));
    let pooling = match p.pooling {
        rivet_schema::plan::Pooling::Session => "one server session per client connection",
        rivet_schema::plan::Pooling::Transaction => "transaction pooling",
    };
    format!("{pooling}{proxy} ({})", p.evidence)
}

/// How much of the source the apply may use at once, in words.
pub fn concurrency_text(c: &rivet_schema::plan::PlannedConcurrency) -> String {
    let n = c.max_source_connections;
    let conns = if n == 1 { "connection" } else { "connections" };
    if c.concurrent_exports {
        format!("at most {n} source {conns}; the exports of a wave run together")
    } else {
        format!("at most {n} source {conns}; exports run one after another")
    }
}

/// The facts of `render_plan` as JSON (`plan show --json`).
pub fn show_json(plan: &Plan) -> serde_json::Value {
    json!({
        "format_version": 1,
        "plan_format_version": plan.format_version,
        "digest": plan.seal.digest,
        "source_identity": plan.body.source_identity.facts,
        "concurrency": plan.body.concurrency,
        "waves": plan.body.waves,
        "exports": plan.body.exports.iter().map(|e| json!({
            "name": e.name,
            "relation": e.relation,
            "mode": e.mode,
            "wave": e.wave,
            "format": e.format,
            "compression": e.compression,
            "destination": e.destination,
            "row_estimate": e.row_estimate,
            "chunk_key": e.chunk_key,
            "page_chunking": e.page_chunking,
            "consistency": e.consistency,
            "window": e.window,
            "repair_of": e.repair_of,
            "keep_files": e.keep_files,
            "columns": e.columns.iter().map(|c| json!({
                "name": c.name, "declared_type": c.declared_type,
                "type": c.logical.display_name(), "nullable": c.nullable, "dictionary": c.dictionary,
                "mapping": c.mapping, "select_expr": c.select_expr,
            })).collect::<Vec<_>>(),
            "chunks": e.chunks,
        })).collect::<Vec<_>>(),
    })
}

/// One line for a window: `incremental on updated_at (timestamptz) ["a", "b") → window 3`.
pub fn window_text(w: &rivet_schema::plan::PlannedWindow) -> String {
    let column = match &w.fallback_column {
        Some(fb) => format!("COALESCE({}, {fb})", w.column),
        None => w.column.clone(),
    };
    if w.kind == rivet_schema::plan::WindowKind::Cdc {
        let (lower, upper, seq) = (
            w.lower.as_deref().unwrap_or("?"),
            w.upper.as_deref().unwrap_or("?"),
            w.seq.unwrap_or(0),
        );
        return match w.value_type {
            rivet_schema::plan::CursorType::Binlog => format!(
                "cdc from the binary log: transactions from {lower} to {upper} (positions between transactions), window {seq}"
            ),
            rivet_schema::plan::CursorType::MssqlLsn => format!(
                "cdc from capture instance {}: changes {} up to {upper} (inclusive), window {seq}",
                w.column,
                w.lower
                    .as_deref()
                    .map_or("from the oldest in the change table".to_owned(), |l| format!("after {l}"))
            ),
            _ => format!(
                "cdc through slot {}: transactions committed from {lower} (inclusive) to {upper} (exclusive), window {seq}",
                w.column
            ),
        };
    }
    let kind = variant_name(&w.kind);
    let ty = variant_name(&w.value_type);
    let lo = w
        .lower
        .as_deref()
        .map_or("the beginning".to_owned(), |l| format!("{l:?}"));
    match (&w.upper, w.seq) {
        (None, _) => format!(
            "{kind} on {column} ({ty}): nothing past {lo}; no rows are read and the position stays"
        ),
        (Some(hi), Some(seq)) => format!(
            "{kind} on {column} ({ty}): rows from {lo} (inclusive) to {hi:?} (exclusive), window {seq}"
        ),
        (Some(hi), None) => format!(
            "{kind} on {column} ({ty}): rows from {lo} (inclusive) to {hi:?} (exclusive)"
        ),
    }
}
