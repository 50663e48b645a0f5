//! Standard output as a destination: one export, one chunk, streamed as it is encoded.

use std::io::{self, BufWriter, Write};

use super::FileSink;

/// Standard output (one export, one file).
pub struct StdoutSink(BufWriter<io::Stdout>);

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink(BufWriter::with_capacity(1 << 20, io::stdout()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileSink for StdoutSink {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}
