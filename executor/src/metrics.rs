//! Metrics of a run, computed from the state database — the same record `rivet state`
//! reads — so `rivet apply --metrics-file` and `rivet metrics` (for past runs) can never
//! disagree. Rendered as the Prometheus text format (for the node exporter's textfile
//! collector or a pushgateway) or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::ExecError;
use crate::state::StateStore;

/// Upper bounds of the chunk-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// One export's figures in a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportMetrics {
    pub export: String,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    pub retries: u64,
    /// Sum of the chunks' durations (read to commit), seconds.
    pub chunk_seconds_sum: f64,
    /// Chunks at or under each bound of [`BUCKETS`] (cumulative, Prometheus style).
    pub chunk_seconds_buckets: Vec<(f64, u64)>,
    /// The longest source read of one chunk, seconds.
    pub longest_statement_seconds: f64,
    /// When the export was last finalized, in any run (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
}

/// A run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    pub format_version: u32,
    pub run_id: String,
    pub plan_digest: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub exports: Vec<ExportMetrics>,
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The figures of `run_id`, from the state database.
pub fn run_metrics(state: &StateStore, run_id: &str) -> Result<RunMetrics, ExecError> {
    let run = state.run(run_id)?.ok_or_else(|| ExecError::State {
        path: state.path().display().to_string(),
        detail: format!("no run {run_id} is recorded here; `rivet state` lists the runs"),
    })?;
    let mut exports: BTreeMap<String, ExportMetrics> = BTreeMap::new();
    for c in state.chunk_timings(run_id)? {
        let m = exports
            .entry(c.export.clone())
            .or_insert_with(|| ExportMetrics {
                export: c.export.clone(),
                chunk_seconds_buckets: BUCKETS.iter().map(|b| (*b, 0)).collect(),
                ..Default::default()
            });
        let secs = c.duration_ms as f64 / 1000.0;
        m.rows += c.rows;
        m.bytes += c.bytes;
        m.chunks += 1;
        m.chunk_seconds_sum += secs;
        for (bound, count) in &mut m.chunk_seconds_buckets {
            if secs <= *bound {
                *count += 1;
            }
        }
        let read = c.read_ms.unwrap_or(c.duration_ms) as f64 / 1000.0;
        m.longest_statement_seconds = m.longest_statement_seconds.max(read);
    }
    for e in state.journal_of(run_id)? {
        if let (Some(export), "chunk_retry") = (&e.export, e.event.as_str()) {
            exports
                .entry(export.clone())
                .or_insert_with(|| ExportMetrics {
                    export: export.clone(),
                    chunk_seconds_buckets: BUCKETS.iter().map(|b| (*b, 0)).collect(),
                    ..Default::default()
                })
                .retries += 1;
        }
    }
    for (export, at) in state.last_success()? {
        if let Some(m) = exports.get_mut(&export) {
            m.last_success = Some(at);
        }
    }
    let duration_seconds = match (
        parse_time(&run.started_at),
        run.finished_at.as_deref().and_then(parse_time),
    ) {
        (Some(a), Some(b)) => Some((b - a).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    Ok(RunMetrics {
        format_version: 1,
        run_id: run.run_id,
        plan_digest: run.plan_digest,
        status: run.status,
        started_at: run.started_at,
        finished_at: run.finished_at,
        duration_seconds,
        exports: exports.into_values().collect(),
    })
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// A per-export gauge: name, help text, and how to read it from an export's figures.
type Gauge = (&'static str, &'static str, fn(&ExportMetrics) -> f64);

fn header(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The run's figures in the Prometheus text exposition format.
pub fn prometheus(m: &RunMetrics) -> String {
    let mut text = String::new();
    let run = format!("run_id=\"{}\"", label(&m.run_id));
    let gauges: [Gauge; 5] = [
        (
            "rivet_export_rows",
            "Rows written by the run, by export.",
            |e| e.rows as f64,
        ),
        (
            "rivet_export_bytes",
            "Bytes written by the run, by export.",
            |e| e.bytes as f64,
        ),
        (
            "rivet_export_chunks",
            "Chunks committed by the run, by export.",
            |e| e.chunks as f64,
        ),
        (
            "rivet_export_retries",
            "Chunk reads retried after transient errors, by export.",
            |e| e.retries as f64,
        ),
        (
            "rivet_longest_statement_seconds",
            "The longest source read of one chunk, by export.",
            |e| e.longest_statement_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut text, name, "gauge", help);
        for e in &m.exports {
            let _ = writeln!(
                text,
                "{name}{{export=\"{}\",{run}}} {}",
                label(&e.export),
                num(value(e))
            );
        }
    }
    let name = "rivet_chunk_duration_seconds";
    header(
        &mut text,
        name,
        "histogram",
        "Time from a chunk's first read to its commit.",
    );
    for e in &m.exports {
        let ex = label(&e.export);
        for (bound, count) in &e.chunk_seconds_buckets {
            let _ = writeln!(
                text,
                "{name}_bucket{{export=\"{ex}\",{run},le=\"{}\"}} {count}",
                num(*bound)
            );
        }
        let _ = writeln!(
            text,
            "{name}_bucket{{export=\"{ex}\",{run},le=\"+Inf\"}} {}",
            e.chunks
        );
        let _ = writeln!(
            text,
            "{name}_sum{{export=\"{ex}\",{run}}} {}",
            num(e.chunk_seconds_sum)
        );
        let _ = writeln!(text, "{name}_count{{export=\"{ex}\",{run}}} {}", e.chunks);
    }
    let name = "rivet_export_last_success_timestamp_seconds";
    header(
        &mut text,
        name,
        "gauge",
        "When the export last finished (manifest and _SUCCESS written), in any run.",
    );
    for e in &m.exports {
        if let Some(t) = e.last_success.as_deref().and_then(parse_time) {
            let _ = writeln!(
                text,
                "{name}{{export=\"{}\"}} {}",
                label(&e.export),
                t.timestamp()
            );
        }
    }
    let name = "rivet_run_duration_seconds";
    header(&mut text, name, "gauge", "Wall time of the run.");
    if let Some(d) = m.duration_seconds {
        let _ = writeln!(text, "{name}{{{run}}} {}", num(d));
    }
    let name = "rivet_run_success";
    header(
        &mut text,
        name,
        "gauge",
        "1 when the run succeeded, 0 otherwise.",
    );
    let _ = writeln!(
        text,
        "{name}{{{run},status=\"{}\"}} {}",
        label(&m.status),
        u8::from(m.status == "succeeded")
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn prometheus_text_has_histogram_buckets_sum_and_count() {
        let m = RunMetrics {
            format_version: 1,
            run_id: "run-1-2".into(),
            plan_digest: "d".into(),
            status: "succeeded".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: Some("2026-01-01T00:00:02.500Z".into()),
            duration_seconds: Some(2.5),
            exports: vec![ExportMetrics {
                export: "or\"ders".into(),
                rows: 10,
                bytes: 100,
                chunks: 2,
                retries: 1,
                chunk_seconds_sum: 0.7,
                chunk_seconds_buckets: BUCKETS
                    .iter()
                    .map(|b| (*b, u64::from(*b >= 0.5) * 2))
                    .collect(),
                longest_statement_seconds: 0.4,
                last_success: Some("2026-01-01T00:00:02Z".into()),
            }],
        };
        let text = prometheus(&m);
        for line in [
            "# TYPE rivet_chunk_duration_seconds histogram",
            "rivet_export_rows{export=\"or\\\"ders\",run_id=\"run-1-2\"} 10",
            "rivet_chunk_duration_seconds_bucket{export=\"or\\\"ders\",run_id=\"run-1-2\",le=\"+Inf\"} 2",
            "rivet_chunk_duration_seconds_count{export=\"or\\\"ders\",run_id=\"run-1-2\"} 2",
            "rivet_export_last_success_timestamp_seconds{export=\"or\\\"ders\"} 1767225602",
            "rivet_run_success{run_id=\"run-1-2\",status=\"succeeded\"} 1",
        ] {
            assert!(text.contains(line), "{line}\n---\n{text}");
        }
    }
}
