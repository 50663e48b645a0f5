//! Progress of an apply on stderr, in the form that suits where stderr goes: a bar per
//! export on a terminal (rows, MB, rows/s, ETA, chunks done/total, retries); one line per
//! export every few seconds otherwise (cron mails, CI logs, `--log-format json`, where
//! each line is a log event); nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rivet_executor::ProgressEvent;

use crate::cli::LogFormat;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on a terminal.
    Bars,
    /// A line per export at most this often, and one when it finishes.
    Lines(Duration),
    /// Nothing.
    Quiet,
}

impl Mode {
    /// The mode for this process's stderr and flags.
    pub fn detect(quiet: bool, log_format: LogFormat) -> Mode {
        if quiet {
            Mode::Quiet
        } else if log_format == LogFormat::Text && std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            let secs = std::env::var("RIVET_PROGRESS_EVERY_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(10);
            Mode::Lines(Duration::from_secs(secs))
        }
    }
}

/// Counters of one export during the run.
struct ExportProgress {
    chunks_total: u64,
    chunks_done: u64,
    rows: u64,
    bytes: u64,
    retries: u64,
    started: Instant,
    last_line: Option<Instant>,
    bar: Option<ProgressBar>,
}

impl ExportProgress {
    fn summary(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.rows as f64 / secs;
        let eta = if self.chunks_done > 0 && self.chunks_done < self.chunks_total {
            let per_chunk = secs / self.chunks_done as f64;
            format!(
                ", ETA {}",
                human_duration((self.chunks_total - self.chunks_done) as f64 * per_chunk)
            )
        } else {
            String::new()
        };
        format!(
            "{}/{} chunks, {} rows, {:.1} MB, {} rows/s{eta}{}",
            self.chunks_done,
            self.chunks_total,
            self.rows,
            self.bytes as f64 / 1e6,
            rate.round() as u64,
            if self.retries > 0 {
                format!(", {} retries", self.retries)
            } else {
                String::new()
            }
        )
    }
}

fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Receives the executor's progress events and shows them.
pub struct Reporter {
    mode: Mode,
    multi: MultiProgress,
    exports: Mutex<HashMap<String, ExportProgress>>,
}

impl Reporter {
    pub fn new(mode: Mode) -> Reporter {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Reporter {
            mode,
            multi,
            exports: Mutex::new(HashMap::new()),
        }
    }

    /// Prints a line above the bars (or plainly), unless quiet.
    fn line(&self, text: String) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => {
                let _ = self.multi.println(text);
            }
            Mode::Lines(_) => tracing::info!(target: "rivet::progress", "{text}"),
        }
    }

    /// Shows one event.
    pub fn event(&self, ev: ProgressEvent) {
        let mut exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            ProgressEvent::Started { chunks_skipped, .. } => {
                if chunks_skipped > 0 {
                    self.line(format!(
                        "resuming: {chunks_skipped} chunk(s) already committed are skipped"
                    ));
                }
            }
            ProgressEvent::ExportStarted {
                export,
                chunks_to_run,
                estimated_rows,
            } => {
                let bar = (self.mode == Mode::Bars).then(|| {
                    let bar = self.multi.add(ProgressBar::new(chunks_to_run as u64));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:.bold} {bar:24} {pos}/{len} chunks {msg}",
                        )
                        .expect("the progress template is valid"),
                    );
                    bar.set_prefix(export.clone());
                    bar.set_message(format!("~{estimated_rows} rows estimated"));
                    bar
                });
                exports.insert(
                    export,
                    ExportProgress {
                        chunks_total: chunks_to_run as u64,
                        chunks_done: 0,
                        rows: 0,
                        bytes: 0,
                        retries: 0,
                        started: Instant::now(),
                        last_line: None,
                        bar,
                    },
                );
            }
            ProgressEvent::ChunkRetry { export, .. } => {
                if let Some(p) = exports.get_mut(&export) {
                    p.retries += 1;
                }
            }
            ProgressEvent::ChunkCommitted {
                export,
                rows,
                bytes,
                ..
            } => {
                let Some(p) = exports.get_mut(&export) else {
                    return;
                };
                p.chunks_done += 1;
                p.rows += rows;
                p.bytes += bytes;
                if let Some(bar) = &p.bar {
                    bar.set_position(p.chunks_done);
                    bar.set_message(p.summary());
                }
                if let Mode::Lines(every) = self.mode {
                    if p.last_line.is_none_or(|t| t.elapsed() >= every) {
                        p.last_line = Some(Instant::now());
                        let text = format!("export {export}: {}", p.summary());
                        self.line(text);
                    }
                }
            }
            ProgressEvent::ExportFinalized {
                export,
                rows,
                files,
            } => {
                if let Some(bar) = exports.get(&export).and_then(|p| p.bar.as_ref()) {
                    bar.finish_and_clear();
                }
                drop(exports);
                self.line(format!(
                    "export {export}: {rows} rows in {files} file(s), manifest.json and _SUCCESS written"
                ));
            }
        }
    }

    /// Removes the bars (at the end of the apply, success or not).
    pub fn finish(&self) {
        let exports = self.exports.lock().unwrap_or_else(|p| p.into_inner());
        for p in exports.values() {
            if let Some(bar) = &p.bar {
                bar.finish_and_clear();
            }
        }
    }
}
