//! The chunk reader: one source connection driven by `tokio-postgres` on a private
//! single-threaded runtime. A whole chunk runs inside one `block_on`, so the COPY
//! stream is consumed message after message without re-entering the runtime per row
//! (the synchronous client's per-message overhead dominated narrow tables).
//!
//! Key-range chunks run `COPY (SELECT …) TO STDOUT (FORMAT binary)`; whole-relation
//! reads declare a server-side cursor and `FETCH` it in batches. Both run in a
//! `REPEATABLE READ READ ONLY` transaction with `SET LOCAL statement_timeout`,
//! `lock_timeout` and fixed output formats (DateStyle, IntervalStyle, TimeZone,
//! extra_float_digits), so nothing outlives the transaction or leaks through a pooler.

use arrow::record_batch::RecordBatch;
use futures_util::StreamExt;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::IsolationLevel;

use super::copy_binary::{CopyDecoder, CopyError};
use super::decode::{ColumnDecoder, DecodeError};
use super::error_text;
use super::read::select_sql;
use crate::builders::Batcher;
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ChunkSource, ReadFailure, SinkClosed};
use crate::{ChunkRead, ReadStats};

/// A connection dedicated to reading chunks.
pub struct ChunkReader {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
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

impl ChunkReader {
    /// Connects with the same settings (and connect timeout) as the catalog connection.
    pub fn connect(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (runtime, client) = super::open(settings)?;
        Ok(ChunkReader { runtime, client })
    }
}

/// The coordinator of a `consistency: snapshot` export: a `REPEATABLE READ READ ONLY`
/// transaction left open on its own connection after `pg_export_snapshot()`, so that
/// each chunk's transaction can `SET TRANSACTION SNAPSHOT` to it. It holds back VACUUM
/// on the whole database for as long as it lives: the cost `plan show` states.
pub struct PgSnapshot {
    // Dropped in this order: the client (ending the transaction), then its runtime.
    _client: tokio_postgres::Client,
    _runtime: tokio::runtime::Runtime,
    id: String,
}

impl PgSnapshot {
    /// Opens the holding connection and exports its snapshot.
    pub fn open(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (runtime, client) = super::open(settings)?;
        let q = |what: &'static str| {
            move |e: tokio_postgres::Error| SourceError::Query {
                context: format!("exporting a snapshot for consistency: snapshot: {what}"),
                detail: error_text(&e),
                transient: super::is_transient(&e),
            }
        };
        let id: String = runtime.block_on(async {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(q("starting the transaction"))?;
            let row = client
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .map_err(q("pg_export_snapshot()"))?;
            Ok::<_, SourceError>(row.get(0))
        })?;
        // The id goes into `SET TRANSACTION SNAPSHOT '…'` (no parameters there): it must
        // look like the server's own ids (hex digits and dashes), never anything else.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(SourceError::Query {
                context: "exporting a snapshot for consistency: snapshot".into(),
                detail: format!("the server returned an unexpected snapshot id {id:?}"),
                transient: false,
            });
        }
        Ok(PgSnapshot {
            _client: client,
            _runtime: runtime,
            id,
        })
    }
}

impl crate::source::SnapshotHolder for PgSnapshot {
    fn snapshot_id(&self) -> &str {
        &self.id
    }
}

impl ChunkSource for ChunkReader {
    fn read_chunk(
        &mut self,
        req: &ChunkRead,
        label: &str,
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<ReadStats, ReadFailure> {
        let mut decoders = req
            .columns
            .iter()
            .map(|c| {
                ColumnDecoder::new(&c.wire_type, &c.logical, req.infinity).map_err(|e| {
                    SourceError::Decode {
                        relation: label.to_owned(),
                        column: c.name.clone(),
                        detail: e.0,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut batcher = Batcher::new(req, label);
        let q = |what: &'static str| {
            move |e: tokio_postgres::Error| SourceError::Query {
                context: format!("{label}: {what}"),
                detail: error_text(&e),
                transient: super::is_transient(&e),
            }
        };
        let decode_err = |col: usize, e: DecodeError| SourceError::Decode {
            relation: label.to_owned(),
            column: req
                .columns
                .get(col)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            detail: e.0,
        };
        if let Some(w) = &req.cdc {
            return self.runtime.block_on(super::cdc::read_window(
                &mut self.client,
                req,
                w,
                label,
                &mut decoders,
                sink,
            ));
        }
        let client = &mut self.client;
        self.runtime.block_on(async {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(q("starting the read transaction"))?;
            if let Some(id) = &req.snapshot {
                // Checked to be hex digits and dashes when it was exported.
                tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{id}'"))
                    .await
                    .map_err(q("adopting the export's snapshot (consistency: snapshot)"))?;
            }
            // Text renderings (columns read through a cast, values inside ranges and
            // composites) come out the same whatever the server's or role's defaults:
            // ISO dates, UTC offsets, shortest exact floats.
            tx.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
                 SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; \
                 SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1",
                req.statement_timeout_ms, req.lock_timeout_ms
            ))
            .await
            .map_err(q(
                "setting the read transaction's timeouts and output formats",
            ))?;
            let select = select_sql(req);
            if req.use_cursor {
                tx.batch_execute(&format!(
                    "DECLARE rivet_cursor NO SCROLL CURSOR FOR {select}"
                ))
                .await
                .map_err(q("declaring the server-side cursor"))?;
                let fetch = format!("FETCH FORWARD {} FROM rivet_cursor", req.batch_rows.max(1));
                loop {
                    let fetched = tx
                        .query(fetch.as_str(), &[])
                        .await
                        .map_err(q("fetching from the cursor"))?;
                    if fetched.is_empty() {
                        break;
                    }
                    for row in &fetched {
                        let mut bytes = 0;
                        for (i, d) in decoders.iter_mut().enumerate() {
                            let raw: Option<Raw> = row.try_get(i).map_err(q("reading a row"))?;
                            let raw = raw.map(|r| r.0);
                            bytes += raw.map_or(0, <[u8]>::len);
                            d.append(raw).map_err(|e| decode_err(i, e))?;
                        }
                        batcher.count(bytes);
                    }
                    batcher.cut(false, &mut decoders, sink)?;
                }
                tx.batch_execute("CLOSE rivet_cursor")
                    .await
                    .map_err(q("closing the cursor"))?;
            } else {
                let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
                let stream = tx
                    .copy_out(copy.as_str())
                    .await
                    .map_err(q("starting COPY"))?;
                futures_util::pin_mut!(stream);
                let mut decoder = CopyDecoder::new(req.columns.len());
                while let Some(message) = stream.next().await {
                    let data = message.map_err(q("reading COPY data"))?;
                    let mut done_bytes = Vec::new();
                    decoder
                        .feed(
                            &data,
                            &mut |i, raw| decoders[i].append(raw).map_err(|e| (i, e)),
                            &mut |n| done_bytes.push(n),
                        )
                        .map_err(|e| match e {
                            CopyError::Format(detail) => SourceError::Decode {
                                relation: label.to_owned(),
                                column: String::new(),
                                detail,
                            },
                            CopyError::Value(i, e) => decode_err(i, e),
                        })?;
                    for n in done_bytes {
                        batcher.count(n);
                    }
                    batcher.cut(false, &mut decoders, sink)?;
                }
                if !decoder.finished() {
                    return Err(SourceError::Decode {
                        relation: label.to_owned(),
                        column: String::new(),
                        detail: "the COPY stream ended without its trailer".into(),
                    }
                    .into());
                }
            }
            batcher.cut(true, &mut decoders, sink)?;
            tx.commit()
                .await
                .map_err(q("committing the read transaction"))?;
            Ok::<(), ReadFailure>(())
        })?;
        Ok(batcher.stats(decoders.iter().map(|d| d.nulled)))
    }
}
