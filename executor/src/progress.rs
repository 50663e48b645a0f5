//! Progress the executor reports while it works. The library never draws anything: the
//! CLI turns these events into a progress bar or log lines, a test collects them.

/// A step of an apply, in the order they happen.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    Started {
        chunks_to_run: usize,
        chunks_skipped: usize,
        estimated_rows: u64,
    },
    /// An export's chunks are about to run (after a resume, only those not committed).
    ExportStarted {
        export: String,
        chunks_to_run: usize,
        estimated_rows: u64,
    },
    /// A chunk failed with a transient error and is read again.
    ChunkRetry {
        export: String,
        chunk: String,
        attempt: u32,
    },
    ChunkCommitted {
        export: String,
        chunk: String,
        rows: u64,
        bytes: u64,
    },
    ExportFinalized {
        export: String,
        rows: u64,
        files: usize,
    },
}

/// Where progress events go; called from worker threads.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Sync);
