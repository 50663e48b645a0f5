//! The binary COPY stream format, parsed incrementally from whatever slices the
//! network hands over. Tuples are decoded in place when they arrive whole (the server
//! sends one tuple per message) and assembled in a small buffer only when one spans
//! messages.

use super::decode::DecodeError;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// What went wrong in the stream.
#[derive(Debug)]
pub enum CopyError {
    /// The stream is not valid binary COPY data.
    Format(String),
    /// A value of this column (by index) failed to decode.
    Value(usize, DecodeError),
}

/// Push parser of a binary COPY stream with a fixed column count.
pub struct CopyDecoder {
    ncols: usize,
    pending: Vec<u8>,
    header_done: bool,
    finished: bool,
}

enum Extent {
    Tuple(usize),
    Trailer,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl CopyDecoder {
    pub fn new(ncols: usize) -> Self {
        CopyDecoder {
            ncols,
            pending: Vec::new(),
            header_done: false,
            finished: false,
        }
    }

    /// True once the trailer was seen.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Consumes `data`; for every complete tuple calls `put(column, value)` for each
    /// field and then `row_done(tuple_bytes)`.
    pub fn feed(
        &mut self,
        data: &[u8],
        put: &mut impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, DecodeError)>,
        row_done: &mut impl FnMut(usize),
    ) -> Result<(), CopyError> {
        if self.finished {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(CopyError::Format("data after the COPY trailer".into()))
            };
        }
        if !self.pending.is_empty() || !self.header_done {
            self.pending.extend_from_slice(data);
            let buf = std::mem::take(&mut self.pending);
            let used = self.parse(&buf, put, row_done)?;
            self.pending = buf;
            self.pending.drain(..used);
            return Ok(());
        }
        let used = self.parse(data, put, row_done)?;
        self.pending.extend_from_slice(&data[used..]);
        Ok(())
    }

    /// Parses as many complete units as `buf` holds; returns the bytes used.
    fn parse(
        &mut self,
        buf: &[u8],
        put: &mut impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, DecodeError)>,
        row_done: &mut impl FnMut(usize),
    ) -> Result<usize, CopyError> {
        let mut at = 0;
        if !self.header_done {
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(CopyError::Format(
                    "COPY stream has no binary signature".into(),
                ));
            }
            let ext = be_u32(&buf[SIGNATURE.len() + 4..]) as usize;
            let header = SIGNATURE.len() + 8 + ext;
            if buf.len() < header {
                return Ok(0);
            }
            at = header;
            self.header_done = true;
        }
        loop {
            match self.extent(&buf[at..])? {
                None => return Ok(at),
                Some(Extent::Trailer) => {
                    self.finished = true;
                    return Ok(buf.len());
                }
                Some(Extent::Tuple(n)) => {
                    self.decode(&buf[at..at + n], put)
                        .map_err(|(i, e)| CopyError::Value(i, e))?;
                    row_done(n);
                    at += n;
                }
            }
        }
    }

    /// Length of the complete tuple at the start of `buf`, or None if incomplete.
    fn extent(&self, buf: &[u8]) -> Result<Option<Extent>, CopyError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([buf[0], buf[1]]);
        if count == -1 {
            return Ok(Some(Extent::Trailer));
        }
        if count as usize != self.ncols {
            return Err(CopyError::Format(format!(
                "COPY tuple has {count} fields, expected {}",
                self.ncols
            )));
        }
        let mut at = 2;
        for _ in 0..self.ncols {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let len = be_u32(&buf[at..]) as i32;
            at += 4;
            if len > 0 {
                at += len as usize;
            }
        }
        Ok((buf.len() >= at).then_some(Extent::Tuple(at)))
    }

    fn decode(
        &self,
        buf: &[u8],
        put: &mut impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, DecodeError)>,
    ) -> Result<(), (usize, DecodeError)> {
        let mut at = 2;
        for i in 0..self.ncols {
            let len = be_u32(&buf[at..]) as i32;
            at += 4;
            if len < 0 {
                put(i, None)?;
            } else {
                let end = at + len as usize;
                put(i, Some(&buf[at..end]))?;
                at = end;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_split_across_messages_decode_the_same() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [7i64, -1, 42] {
            stream.extend(1i16.to_be_bytes());
            if v < 0 {
                stream.extend((-1i32).to_be_bytes());
            } else {
                stream.extend(8i32.to_be_bytes());
                stream.extend(v.to_be_bytes());
            }
        }
        stream.extend((-1i16).to_be_bytes());
        for piece in [1usize, 3, 7, stream.len()] {
            let mut d = CopyDecoder::new(1);
            let mut seen = Vec::new();
            let mut rows = 0;
            for part in stream.chunks(piece) {
                d.feed(
                    part,
                    &mut |_, raw| {
                        seen.push(raw.map(|b| i64::from_be_bytes(b.try_into().unwrap())));
                        Ok(())
                    },
                    &mut |_| rows += 1,
                )
                .map_err(|_| "parse error")
                .unwrap();
            }
            assert!(d.finished());
            assert_eq!(rows, 3);
            assert_eq!(seen, vec![Some(7), None, Some(42)]);
        }
    }

    #[test]
    fn a_wrong_field_count_is_a_format_error() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend(2i16.to_be_bytes());
        let mut d = CopyDecoder::new(1);
        let r = d.feed(&stream, &mut |_, _| Ok(()), &mut |_| {});
        assert!(matches!(r, Err(CopyError::Format(_))));
    }
}
