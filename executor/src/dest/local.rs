//! A local destination's file: written under a temporary name through a large buffer
//! and fsynced at `finish`; the chunk commit renames it into place.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::FileSink;

/// A local temporary file.
pub struct LocalSink(BufWriter<File>);

impl LocalSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(LocalSink(BufWriter::with_capacity(
            1 << 20,
            File::create(path)?,
        )))
    }
}

impl Write for LocalSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileSink for LocalSink {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self.0.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}
