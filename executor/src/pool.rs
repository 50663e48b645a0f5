//! Source connections shared by every export of a run. A worker takes one when it
//! starts reading and gives it back when its export is done, so the next export (often
//! a small table) reuses an open connection instead of connecting again; at most `cap`
//! are open at once, which bounds what a run asks of the source however many exports
//! run concurrently. A connection that failed is discarded, never reused.

use std::sync::{Condvar, Mutex};

use rivet_sources::{open_chunk_source, ChunkSource, ConnectionSettings};

use crate::error::ExecError;

/// A bounded pool of chunk-source connections.
pub struct SourcePool<'a> {
    settings: &'a ConnectionSettings,
    cap: usize,
    inner: Mutex<Inner>,
    freed: Condvar,
}

struct Inner {
    idle: Vec<Box<dyn ChunkSource>>,
    /// Connections handed out or idle.
    open: usize,
}

impl<'a> SourcePool<'a> {
    /// A pool that opens at most `cap` connections (at least one).
    pub fn new(settings: &'a ConnectionSettings, cap: usize) -> Self {
        SourcePool {
            settings,
            cap: cap.max(1),
            inner: Mutex::new(Inner {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// An idle connection, a new one while under the cap, or the next one given back.
    pub fn take(&self) -> Result<Box<dyn ChunkSource>, ExecError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = inner.idle.pop() {
                return Ok(c);
            }
            if inner.open < self.cap {
                inner.open += 1;
                drop(inner);
                return open_chunk_source(self.settings).map_err(|e| {
                    self.forget();
                    ExecError::from(e)
                });
            }
            inner = self.freed.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Returns a healthy connection for reuse.
    pub fn give_back(&self, c: Box<dyn ChunkSource>) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .idle
            .push(c);
        self.freed.notify_one();
    }

    /// Forgets a connection that is dropped (broken, or its worker failed).
    pub fn forget(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.open = inner.open.saturating_sub(1);
        drop(inner);
        self.freed.notify_one();
    }
}
