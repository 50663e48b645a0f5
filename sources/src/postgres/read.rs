//! Reading one chunk. Key-range chunks run `COPY (SELECT …) TO STDOUT (FORMAT binary)`
//! inside a short read-only transaction; whole-relation reads declare a server-side
//! cursor and fetch it in batches, so no single statement runs long. Both set
//! `statement_timeout` and `lock_timeout` with `SET LOCAL` so nothing outlives the
//! transaction.

use std::io::BufRead;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use postgres::types::{FromSql, Type};
use postgres::{Client, IsolationLevel};

use super::decode::{BatchAssembler, ColumnDecoder};
use super::{error_text, quote_ident};
use crate::error::SourceError;
use crate::{ChunkRead, ReadStats, RelationRef};

/// A read fails either in the source or in the caller's batch sink.
#[derive(Debug)]
pub enum ReadFailure<E> {
    Source(SourceError),
    Sink(E),
}

impl<E> From<SourceError> for ReadFailure<E> {
    fn from(e: SourceError) -> Self {
        ReadFailure::Source(e)
    }
}

/// The `FROM` target of a relation.
pub(crate) fn from_clause(rel: &RelationRef) -> String {
    match rel {
        RelationRef::Table { schema, name } => {
            format!("{}.{}", quote_ident(schema), quote_ident(name))
        }
        RelationRef::Query(sql) => format!("({}) AS rivet_query", sql.trim().trim_end_matches(';')),
    }
}

/// The SELECT a chunk runs. Identifiers are quoted; the only values are the plan's
/// integer key bounds, written as integer literals.
pub fn select_sql(req: &ChunkRead) -> String {
    let cols = req
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!("SELECT {cols} FROM {}", from_clause(&req.relation));
    if let Some(r) = &req.range {
        let k = quote_ident(&r.column);
        let mut conds = Vec::new();
        if let Some(lo) = r.lower {
            conds.push(format!("{k} >= {lo}"));
        }
        if let Some(hi) = r.upper {
            conds.push(format!("{k} < {hi}"));
        }
        let range = if conds.is_empty() {
            format!("{k} IS NOT NULL")
        } else {
            conds.join(" AND ")
        };
        if r.include_null {
            sql.push_str(&format!(" WHERE (({range}) OR {k} IS NULL)"));
        } else {
            sql.push_str(&format!(" WHERE {range}"));
        }
    }
    sql
}

struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Reads one chunk, handing each finished batch to `sink`. `label` names the chunk in
/// error messages (e.g. `export orders, chunk orders/00003`).
pub fn read_chunk<E>(
    client: &mut Client,
    req: &ChunkRead,
    label: &str,
    mut sink: impl FnMut(RecordBatch) -> Result<(), E>,
) -> Result<ReadStats, ReadFailure<E>> {
    let schema = Arc::new(crate::arrow_types::schema(
        req.columns
            .iter()
            .map(|c| (c.name.as_str(), &c.logical, c.nullable)),
    ));
    let decoders = req
        .columns
        .iter()
        .map(|c| {
            ColumnDecoder::new(&c.wire_type, &c.logical).map_err(|e| SourceError::Decode {
                relation: label.to_owned(),
                column: c.name.clone(),
                detail: e.0,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut asm = BatchAssembler::new(schema, decoders);
    let q = |what: &'static str| {
        let label = label.to_owned();
        move |e: postgres::Error| SourceError::Query {
            context: format!("{label}: {what}"),
            detail: error_text(&e),
        }
    };
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(q("starting the read transaction"))?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
        req.statement_timeout_ms, req.lock_timeout_ms
    ))
    .map_err(q("setting statement_timeout and lock_timeout"))?;
    let select = select_sql(req);
    let mut rows: u64 = 0;
    let mut emit = |asm: &mut BatchAssembler, force: bool| -> Result<(), ReadFailure<E>> {
        if force || asm.rows() >= req.batch_rows || asm.bytes() >= req.batch_bytes {
            if let Some(batch) = asm.take().map_err(|e| SourceError::Decode {
                relation: label.to_owned(),
                column: String::new(),
                detail: e.to_string(),
            })? {
                sink(batch).map_err(ReadFailure::Sink)?;
            }
        }
        Ok(())
    };
    let decode_err = |asm: &BatchAssembler, col: usize, e: super::decode::DecodeError| {
        let _ = asm;
        SourceError::Decode {
            relation: label.to_owned(),
            column: req.columns[col].name.clone(),
            detail: e.0,
        }
    };
    if req.use_cursor {
        tx.batch_execute(&format!(
            "DECLARE rivet_cursor NO SCROLL CURSOR FOR {select}"
        ))
        .map_err(q("declaring the server-side cursor"))?;
        let fetch = format!("FETCH FORWARD {} FROM rivet_cursor", req.batch_rows.max(1));
        loop {
            let batch_rows = tx
                .query(fetch.as_str(), &[])
                .map_err(q("fetching from the cursor"))?;
            if batch_rows.is_empty() {
                break;
            }
            for row in &batch_rows {
                let mut bytes = 0;
                for i in 0..req.columns.len() {
                    let raw: Option<Raw> = row.try_get(i).map_err(q("reading a row"))?;
                    let raw = raw.map(|r| r.0);
                    bytes += raw.map_or(0, <[u8]>::len);
                    asm.columns[i]
                        .append(raw)
                        .map_err(|e| decode_err(&asm, i, e))?;
                }
                asm.row_done(bytes);
                rows += 1;
            }
            emit(&mut asm, false)?;
        }
        tx.batch_execute("CLOSE rivet_cursor")
            .map_err(q("closing the cursor"))?;
    } else {
        let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
        let reader = tx.copy_out(copy.as_str()).map_err(q("starting COPY"))?;
        let ncols = req.columns.len();
        let mut parser = CopyParser::new(reader);
        while let Some(done) = parser
            .next_tuple(ncols, |i, raw| {
                asm.columns[i].append(raw).map_err(|e| (i, e))
            })
            .map_err(|e| match e {
                CopyError::Io(e) => SourceError::Query {
                    context: format!("{label}: reading COPY data"),
                    detail: io_text(&e),
                },
                CopyError::Format(m) => SourceError::Decode {
                    relation: label.to_owned(),
                    column: String::new(),
                    detail: m,
                },
                CopyError::Value(i, e) => decode_err(&asm, i, e),
            })?
        {
            asm.row_done(done);
            rows += 1;
            emit(&mut asm, false)?;
        }
    }
    emit(&mut asm, true)?;
    tx.commit().map_err(q("committing the read transaction"))?;
    let nulled_values = req
        .columns
        .iter()
        .zip(&asm.columns)
        .filter(|(_, d)| d.nulled_total() > 0)
        .map(|(c, d)| (c.name.clone(), d.nulled_total()))
        .collect();
    Ok(ReadStats {
        rows,
        nulled_values,
    })
}

fn io_text(e: &std::io::Error) -> String {
    let mut s = e.to_string();
    if let Some(inner) = e.get_ref() {
        if let Some(pg) = inner.downcast_ref::<postgres::Error>() {
            s = error_text(pg);
        }
    }
    s
}

enum CopyError {
    Io(std::io::Error),
    Format(String),
    Value(usize, super::decode::DecodeError),
}

/// Incremental parser of the binary COPY stream. Tuples are parsed in place from the
/// reader's buffer when they arrive whole (the server sends one tuple per message), and
/// assembled in `pending` only when one spans messages.
struct CopyParser<R> {
    reader: R,
    pending: Vec<u8>,
    header_done: bool,
    finished: bool,
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl<R: BufRead> CopyParser<R> {
    fn new(reader: R) -> Self {
        CopyParser {
            reader,
            pending: Vec::new(),
            header_done: false,
            finished: false,
        }
    }

    /// Decodes the next tuple through `put(column, value)`; returns its wire size, or
    /// None at the end of the stream.
    fn next_tuple(
        &mut self,
        ncols: usize,
        mut put: impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, super::decode::DecodeError)>,
    ) -> Result<Option<usize>, CopyError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            // Parse from pending first, if anything is there.
            if !self.pending.is_empty() || !self.header_done {
                if let Some(n) = self.try_parse_pending(ncols, &mut put)? {
                    return Ok(Some(n));
                }
                if self.finished {
                    return Ok(None);
                }
                let buf = self.reader.fill_buf().map_err(CopyError::Io)?;
                if buf.is_empty() {
                    return Err(CopyError::Format("COPY stream ended early".into()));
                }
                let len = buf.len();
                self.pending.extend_from_slice(buf);
                self.reader.consume(len);
                continue;
            }
            let buf = self.reader.fill_buf().map_err(CopyError::Io)?;
            if buf.is_empty() {
                return Err(CopyError::Format(
                    "COPY stream ended without its trailer".into(),
                ));
            }
            match tuple_extent(buf, ncols).map_err(CopyError::Format)? {
                Some(Extent::Trailer) => {
                    self.finished = true;
                    let n = 2;
                    self.reader.consume(n);
                    return Ok(None);
                }
                Some(Extent::Tuple(n)) => {
                    decode_tuple(&buf[..n], ncols, &mut put)
                        .map_err(|(i, e)| CopyError::Value(i, e))?;
                    self.reader.consume(n);
                    return Ok(Some(n));
                }
                None => {
                    let len = buf.len();
                    self.pending.extend_from_slice(buf);
                    self.reader.consume(len);
                }
            }
        }
    }

    fn try_parse_pending(
        &mut self,
        ncols: usize,
        put: &mut impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, super::decode::DecodeError)>,
    ) -> Result<Option<usize>, CopyError> {
        if !self.header_done {
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err(CopyError::Format(
                    "COPY stream has no binary signature".into(),
                ));
            }
            let ext = be_u32(&self.pending[SIGNATURE.len() + 4..]) as usize;
            let header = SIGNATURE.len() + 8 + ext;
            if self.pending.len() < header {
                return Ok(None);
            }
            self.pending.drain(..header);
            self.header_done = true;
        }
        match tuple_extent(&self.pending, ncols).map_err(CopyError::Format)? {
            None => Ok(None),
            Some(Extent::Trailer) => {
                self.finished = true;
                self.pending.clear();
                Ok(None)
            }
            Some(Extent::Tuple(n)) => {
                decode_tuple(&self.pending[..n], ncols, put)
                    .map_err(|(i, e)| CopyError::Value(i, e))?;
                self.pending.drain(..n);
                Ok(Some(n))
            }
        }
    }
}

enum Extent {
    Tuple(usize),
    Trailer,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Length of the complete tuple at the start of `buf`, or None if it is incomplete.
fn tuple_extent(buf: &[u8], ncols: usize) -> Result<Option<Extent>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let count = i16::from_be_bytes([buf[0], buf[1]]);
    if count == -1 {
        return Ok(Some(Extent::Trailer));
    }
    if count as usize != ncols {
        return Err(format!("COPY tuple has {count} fields, expected {ncols}"));
    }
    let mut at = 2;
    for _ in 0..ncols {
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

fn decode_tuple(
    buf: &[u8],
    ncols: usize,
    put: &mut impl FnMut(usize, Option<&[u8]>) -> Result<(), (usize, super::decode::DecodeError)>,
) -> Result<(), (usize, super::decode::DecodeError)> {
    let mut at = 2;
    for i in 0..ncols {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RangeFilter, ReadColumn};
    use rivet_schema::LogicalType;

    fn req(range: Option<RangeFilter>) -> ChunkRead {
        ChunkRead {
            relation: RelationRef::Table {
                schema: "Sales \"EU\"".into(),
                name: "order items".into(),
            },
            columns: vec![ReadColumn {
                name: "Id".into(),
                wire_type: "int8".into(),
                logical: LogicalType::Int64,
                nullable: false,
            }],
            range,
            batch_rows: 10,
            batch_bytes: 10,
            statement_timeout_ms: 1,
            lock_timeout_ms: 1,
            use_cursor: false,
        }
    }

    #[test]
    fn select_quotes_identifiers_and_writes_integer_bounds() {
        assert_eq!(
            select_sql(&req(None)),
            r#"SELECT "Id" FROM "Sales ""EU"""."order items""#
        );
        let r = RangeFilter {
            column: "Id".into(),
            lower: Some(-5),
            upper: Some(100),
            include_null: true,
        };
        assert_eq!(
            select_sql(&req(Some(r))),
            r#"SELECT "Id" FROM "Sales ""EU"""."order items" WHERE (("Id" >= -5 AND "Id" < 100) OR "Id" IS NULL)"#
        );
    }

    #[test]
    fn copy_parser_reads_tuples_split_across_messages() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [7i64, -1] {
            stream.extend(1i16.to_be_bytes());
            if v < 0 {
                stream.extend((-1i32).to_be_bytes());
            } else {
                stream.extend(8i32.to_be_bytes());
                stream.extend(v.to_be_bytes());
            }
        }
        stream.extend((-1i16).to_be_bytes());
        // A reader that hands out 3 bytes at a time.
        let reader = std::io::BufReader::with_capacity(3, std::io::Cursor::new(stream));
        let mut p = CopyParser::new(reader);
        let mut seen = Vec::new();
        let mut tuples = 0;
        while p
            .next_tuple(1, |_, raw| {
                seen.push(raw.map(|b| i64::from_be_bytes(b.try_into().unwrap())));
                Ok(())
            })
            .map_err(|_| "parse error")
            .unwrap()
            .is_some()
        {
            tuples += 1;
        }
        assert_eq!(tuples, 2);
        assert_eq!(seen, vec![Some(7), None]);
    }
}
