//! Reading one SQL Server chunk: one batch `SET NOCOUNT ON; SET LOCK_TIMEOUT n;
//! SELECT … WHERE k >= @P1 AND k < @P2` sent through `sp_executesql` (so the settings
//! end with the batch and nothing leaks into a pooled session), its rows streamed off
//! the socket one at a time and decoded from tiberius values into Arrow builders.
//!
//! The statement limit is enforced here: a chunk read must finish within
//! `statement_timeout_ms`, and a whole-table (`full`) read may wait at most that long
//! for each next row. When a limit passes, or a read stops half-way, the connection is
//! dropped (never drained), which makes the server abandon the query.
//!
//! Why one long file: the chunk read, its client-side statement limit and the decoding
//! of every tiberius value kind belong together; about 200 of its lines are tests.

use std::time::Duration;

use arrow::datatypes::{Decimal128Type, DecimalType};
use arrow::record_batch::RecordBatch;
use futures_util::TryStreamExt;
use tiberius::{ColumnData, ToSql};
use tokio::runtime::Runtime;

use super::{connect, query_err, quote_ident, MsClient};
use crate::builders::{Batcher, Col, HasCol};
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ChunkSource, ReadFailure, SinkClosed};
use crate::{ChunkRead, ReadStats, SqlValue};

/// A SQL Server connection dedicated to reading chunks.
pub struct MsReader {
    rt: Runtime,
    /// None once a read stopped half-way: the connection is closed, not reused.
    client: Option<MsClient>,
}

impl MsReader {
    pub fn connect(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (rt, client) = connect(settings)?;
        Ok(MsReader {
            rt,
            client: Some(client),
        })
    }
}

/// Days from 0001-01-01 (the `date`/`datetime2` epoch) to 1970-01-01.
const DAYS_0001_TO_1970: i64 = 719_162;
/// Days from 1900-01-01 (the `datetime`/`smalldatetime` epoch) to 1970-01-01.
const DAYS_1900_TO_1970: i64 = 25_567;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Microseconds since midnight of a `time(n)` value (7 digits are cut to 6).
fn time_micros(t: tiberius::time::Time) -> i64 {
    let inc = t.increments() as i64;
    let scale = u32::from(t.scale());
    if scale <= 6 {
        inc * 10i64.pow(6 - scale)
    } else {
        inc / 10i64.pow(scale - 6)
    }
}

fn datetime2_micros(dt: tiberius::time::DateTime2) -> i64 {
    (i64::from(dt.date().days()) - DAYS_0001_TO_1970) * MICROS_PER_DAY + time_micros(dt.time())
}

/// Timestamp microseconds of any date-time value. `datetime` ticks are 1/300 s and
/// round to the nearest microsecond; the date-time part of a `datetimeoffset` is
/// already UTC on the wire (the offset only says how it was written).
fn timestamp_micros(v: &ColumnData<'_>) -> Option<Result<i64, String>> {
    Some(Ok(match v {
        ColumnData::DateTime(Some(dt)) => {
            (i64::from(dt.days()) - DAYS_1900_TO_1970) * MICROS_PER_DAY
                + (i64::from(dt.seconds_fragments()) * 10_000 + 1) / 3
        }
        ColumnData::SmallDateTime(Some(dt)) => {
            (i64::from(dt.days()) - DAYS_1900_TO_1970) * MICROS_PER_DAY
                + i64::from(dt.seconds_fragments()) * 60_000_000
        }
        ColumnData::DateTime2(Some(dt)) => datetime2_micros(*dt),
        ColumnData::DateTimeOffset(Some(dto)) => datetime2_micros(dto.datetime2()),
        ColumnData::Date(Some(d)) => (i64::from(d.days()) - DAYS_0001_TO_1970) * MICROS_PER_DAY,
        _ => return None,
    }))
}

fn is_null(v: &ColumnData<'_>) -> bool {
    matches!(
        v,
        ColumnData::U8(None)
            | ColumnData::I16(None)
            | ColumnData::I32(None)
            | ColumnData::I64(None)
            | ColumnData::F32(None)
            | ColumnData::F64(None)
            | ColumnData::Bit(None)
            | ColumnData::String(None)
            | ColumnData::Guid(None)
            | ColumnData::Binary(None)
            | ColumnData::Numeric(None)
            | ColumnData::Xml(None)
            | ColumnData::DateTime(None)
            | ColumnData::SmallDateTime(None)
            | ColumnData::Time(None)
            | ColumnData::Date(None)
            | ColumnData::DateTime2(None)
            | ColumnData::DateTimeOffset(None)
    )
}

fn int_of(v: &ColumnData<'_>) -> Option<i64> {
    match v {
        ColumnData::U8(Some(n)) => Some(i64::from(*n)),
        ColumnData::I16(Some(n)) => Some(i64::from(*n)),
        ColumnData::I32(Some(n)) => Some(i64::from(*n)),
        ColumnData::I64(Some(n)) => Some(*n),
        ColumnData::Bit(Some(b)) => Some(i64::from(*b)),
        _ => None,
    }
}

fn bad(v: &ColumnData<'_>, what: &str) -> String {
    format!("unexpected {v:?} for a {what} column")
}

fn fit<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{v} does not fit a {what} column"))
}

/// `value × 10^-from` as an integer scaled by `10^-to`, refusing to drop digits.
fn rescale(value: i128, from: u8, to: i8) -> Result<i128, String> {
    let to = u32::try_from(to).map_err(|_| "negative decimal scale".to_string())?;
    let from = u32::from(from);
    if from <= to {
        value
            .checked_mul(10i128.pow(to - from))
            .ok_or_else(|| "decimal value out of range".to_string())
    } else {
        let div = 10i128.pow(from - to);
        if value % div == 0 {
            Ok(value / div)
        } else {
            Err(format!(
                "decimal value with scale {from} does not fit scale {to} without rounding"
            ))
        }
    }
}

/// One column's builder and its conversion from tiberius values.
struct Decoder {
    col: Col,
}

impl HasCol for Decoder {
    fn col_mut(&mut self) -> &mut Col {
        &mut self.col
    }
}

impl Decoder {
    /// Appends one value; returns its approximate size in bytes for batch cutting.
    fn append(&mut self, v: &ColumnData<'_>) -> Result<usize, String> {
        if is_null(v) {
            self.col.append_null();
            return Ok(0);
        }
        let mut size = 8;
        match &mut self.col {
            Col::Bool(b) => b.append_value(int_of(v).ok_or_else(|| bad(v, "bit"))? != 0),
            Col::I8(b) => b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "integer"))?, "Int8")?),
            Col::I16(b) => b.append_value(fit(
                int_of(v).ok_or_else(|| bad(v, "smallint"))?,
                "smallint",
            )?),
            Col::I32(b) => b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "int"))?, "int")?),
            Col::I64(b) => b.append_value(int_of(v).ok_or_else(|| bad(v, "bigint"))?),
            Col::U8(b) => {
                b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "tinyint"))?, "tinyint")?)
            }
            Col::U16(b) => {
                b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "integer"))?, "UInt16")?)
            }
            Col::U32(b) => {
                b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "integer"))?, "UInt32")?)
            }
            Col::U64(b) => {
                b.append_value(fit(int_of(v).ok_or_else(|| bad(v, "integer"))?, "UInt64")?)
            }
            Col::F32(b) => match v {
                ColumnData::F32(Some(f)) => b.append_value(*f),
                ColumnData::F64(Some(f)) => b.append_value(*f as f32),
                other => return Err(bad(other, "real")),
            },
            Col::F64(b) => match v {
                ColumnData::F64(Some(f)) => b.append_value(*f),
                ColumnData::F32(Some(f)) => b.append_value(f64::from(*f)),
                other => return Err(bad(other, "float")),
            },
            Col::Dec128(b, p, s) => {
                let scaled = match v {
                    ColumnData::Numeric(Some(n)) => rescale(n.value(), n.scale(), *s)?,
                    other => match int_of(other) {
                        Some(i) => rescale(i128::from(i), 0, *s)?,
                        None => return Err(bad(other, "decimal")),
                    },
                };
                if !Decimal128Type::is_valid_decimal_precision(scaled, *p) {
                    return Err(format!(
                        "decimal value {scaled} (scale {s}) has more than {p} digits"
                    ));
                }
                b.append_value(scaled)
            }
            Col::Utf8(b) => match v {
                ColumnData::String(Some(text)) => {
                    size = text.len();
                    b.append_value(text)
                }
                ColumnData::Xml(Some(xml)) => {
                    let text: &str = xml.as_ref().as_ref();
                    size = text.len();
                    b.append_value(text)
                }
                ColumnData::Guid(Some(u)) => b.append_value(u.to_string()),
                other => return Err(bad(other, "text")),
            },
            Col::Bin(b) => match v {
                ColumnData::Binary(Some(raw)) => {
                    size = raw.len();
                    b.append_value(raw)
                }
                other => return Err(bad(other, "binary")),
            },
            Col::Date(b) => match v {
                ColumnData::Date(Some(d)) => b.append_value(
                    i32::try_from(i64::from(d.days()) - DAYS_0001_TO_1970)
                        .map_err(|_| "date out of range".to_string())?,
                ),
                other => return Err(bad(other, "date")),
            },
            Col::Ts(b, _) => match timestamp_micros(v) {
                Some(micros) => b.append_value(micros?),
                None => return Err(bad(v, "datetime")),
            },
            Col::Time(b) => match v {
                ColumnData::Time(Some(t)) => b.append_value(time_micros(*t)),
                other => return Err(bad(other, "time")),
            },
            Col::Uuid(b) => match v {
                // tiberius has already put the GUID's mixed-endian bytes in RFC 4122 order.
                ColumnData::Guid(Some(u)) => {
                    b.append_value(u.as_bytes()).map_err(|e| e.to_string())?
                }
                other => return Err(bad(other, "uniqueidentifier")),
            },
            Col::Dec256(..) | Col::Dur(_) | Col::Interval(_) | Col::List(_) => {
                return Err("SQL Server sends no value of this output type".into())
            }
        }
        Ok(size)
    }
}

/// A bound parameter of a chunk batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsParam {
    Int(i64),
    Text(String),
}

/// The batch Rivet sends for one chunk, and the bounds to bind as `@P1`, `@P2`, …
/// (dates and times are bound as text and cast by the server to the column's type
/// family: `datetime2(7)`, `datetimeoffset(7)` or `date`).
pub fn chunk_batch(req: &ChunkRead) -> (String, Vec<MsParam>) {
    let cols = req
        .columns
        .iter()
        .map(|c| match &c.select_expr {
            Some(expr) => format!("{expr} AS {}", quote_ident(&c.name)),
            None => quote_ident(&c.name),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut params = Vec::new();
    let filter = req.where_clause(quote_ident, |v| {
        let (param, cast) = match v {
            SqlValue::Int(i) => (MsParam::Int(*i), None),
            SqlValue::Text(t) => (MsParam::Text(t.clone()), None),
            SqlValue::Timestamp(_) => (MsParam::Text(v.sql_text()), Some("datetime2(7)")),
            SqlValue::TimestampUtc(_) => (MsParam::Text(v.sql_text()), Some("datetimeoffset(7)")),
            SqlValue::Date(_) => (MsParam::Text(v.sql_text()), Some("date")),
        };
        params.push(param);
        let p = format!("@P{}", params.len());
        match cast {
            Some(t) => format!("CAST({p} AS {t})"),
            None => p,
        }
    });
    let sql = format!(
        "SET NOCOUNT ON; SET LOCK_TIMEOUT {}; SELECT {cols} FROM {}{filter}",
        req.lock_timeout_ms,
        req.relation.from_clause(quote_ident)
    );
    (sql, params)
}

/// Why the row loop stopped early.
enum Stop {
    Failed(ReadFailure),
    TimedOut,
}

impl ChunkSource for MsReader {
    fn read_chunk(
        &mut self,
        req: &ChunkRead,
        label: &str,
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<ReadStats, ReadFailure> {
        req.refuse_postgres_only(label)?;
        let decode_err = |column: &str, detail: String| SourceError::Decode {
            relation: label.to_owned(),
            column: column.to_owned(),
            detail,
        };
        let mut decoders = req
            .columns
            .iter()
            .map(|c| {
                Col::new(&c.logical)
                    .map(|col| Decoder { col })
                    .map_err(|d| decode_err(&c.name, d))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(mut client) = self.client.take() else {
            return Err(SourceError::Query {
                context: format!("{label}: reading the chunk"),
                detail: "the connection was closed after an earlier read stopped half-way".into(),
                transient: true,
            }
            .into());
        };
        let (sql, bounds) = match req.cdc.as_ref().map(|w| &w.log) {
            None => chunk_batch(req),
            Some(crate::CdcLog::ChangeTable {
                capture_instance,
                from,
                to,
            }) => {
                if from > to {
                    // An empty window: nothing was captured since the last one.
                    self.client = Some(client);
                    return Ok(ReadStats {
                        rows: 0,
                        nulled_values: Vec::new(),
                        batches_over_memory_target: 0,
                    });
                }
                (
                    super::cdc::change_batch(req, capture_instance, from, to),
                    Vec::new(),
                )
            }
            Some(_) => {
                self.client = Some(client);
                return Err(SourceError::Query {
                    context: label.to_owned(),
                    detail:
                        "a SQL Server source was handed another engine's log window; plan again"
                            .into(),
                    transient: false,
                }
                .into());
            }
        };
        let params: Vec<&dyn ToSql> = bounds
            .iter()
            .map(|b| match b {
                MsParam::Int(i) => i as &dyn ToSql,
                MsParam::Text(t) => t as &dyn ToSql,
            })
            .collect();
        let limit = Duration::from_millis(req.statement_timeout_ms.max(1));
        // Chunk reads are one short statement; whole-table reads are one long one whose
        // every wait for the next row is bounded instead.
        let per_row = req.range.is_none() || req.cdc.is_some();
        let mut batcher = Batcher::new(req, label);
        let ctx = |what: &str| format!("{label}: {what}");
        let outcome = self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            let wait = |per_row: bool| {
                if per_row {
                    tokio::time::Instant::now() + limit
                } else {
                    deadline
                }
            };
            let stream =
                match tokio::time::timeout_at(wait(per_row), client.query(&sql, &params)).await {
                    Err(_) => return Err(Stop::TimedOut),
                    Ok(Err(e)) => {
                        return Err(Stop::Failed(
                            query_err(&ctx("running the chunk's SELECT"))(e).into(),
                        ))
                    }
                    Ok(Ok(stream)) => stream,
                };
            let mut rows = stream.into_row_stream();
            loop {
                let row = match tokio::time::timeout_at(wait(per_row), rows.try_next()).await {
                    Err(_) => return Err(Stop::TimedOut),
                    Ok(Err(e)) => {
                        return Err(Stop::Failed(query_err(&ctx("reading rows"))(e).into()))
                    }
                    Ok(Ok(None)) => break,
                    Ok(Ok(Some(row))) => row,
                };
                let mut bytes = 0;
                for ((d, v), c) in decoders.iter_mut().zip(row).zip(&req.columns) {
                    bytes += d
                        .append(&v)
                        .map_err(|detail| Stop::Failed(decode_err(&c.name, detail).into()))?;
                }
                batcher
                    .row(bytes, &mut decoders, sink)
                    .map_err(Stop::Failed)?;
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.client = Some(client);
                batcher.flush(&mut decoders, sink)?;
                Ok(ReadStats {
                    rows: batcher.total_rows,
                    nulled_values: Vec::new(),
                    batches_over_memory_target: batcher.over_target,
                })
            }
            // The client is dropped here, closing the connection mid-result.
            Err(Stop::Failed(f)) => Err(f),
            Err(Stop::TimedOut) => Err(SourceError::Query {
                context: ctx("reading the chunk"),
                detail: format!(
                    "the statement passed tuning.statement_timeout_ms ({} ms){}; the connection was closed so the server stops the query. Lower chunk_size (or use mode: chunked) or raise the timeout",
                    req.statement_timeout_ms,
                    if per_row { " waiting for the next row" } else { "" }
                ),
                transient: false,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use rivet_schema::LogicalType;
    use tiberius::numeric::Numeric;
    use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};

    fn decode(logical: LogicalType, values: &[ColumnData<'static>]) -> arrow::array::ArrayRef {
        let mut d = Decoder {
            col: Col::new(&logical).unwrap(),
        };
        for v in values {
            d.append(v).unwrap();
        }
        d.col.finish()
    }

    #[test]
    fn date_and_time_values_convert_exactly() {
        // 2024-02-29 is day 738_944 after 0001-01-01; 19_782 after 1970-01-01.
        let date = Date::new(738_944);
        let a = decode(
            LogicalType::Date,
            &[ColumnData::Date(Some(date)), ColumnData::Date(None)],
        );
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .unwrap();
        assert_eq!(a.value(0), 19_782);
        assert!(a.is_null(1));
        // datetime2(7) 12:34:56.1234567 → µs, the 100 ns digit cut.
        let t = Time::new(((12 * 3600 + 34 * 60 + 56) * 10_000_000) + 1_234_567, 7);
        let dt2 = DateTime2::new(date, t);
        let expected = 19_782 * MICROS_PER_DAY + (12 * 3600 + 34 * 60 + 56) * 1_000_000 + 123_456;
        // datetimeoffset: the wire's date-time is UTC whatever the offset (+05:30 here).
        let dto = DateTimeOffset::new(dt2, 330);
        // datetime: 1/300 s ticks; 2024-02-29 is day 45_349 after 1900-01-01.
        let dt = DateTime::new(45_349, 1);
        let sdt = SmallDateTime::new(45_349, 61);
        let a = decode(
            LogicalType::Timestamp,
            &[
                ColumnData::DateTime2(Some(dt2)),
                ColumnData::DateTimeOffset(Some(dto)),
                ColumnData::DateTime(Some(dt)),
                ColumnData::SmallDateTime(Some(sdt)),
            ],
        );
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), expected);
        assert_eq!(a.value(1), expected);
        assert_eq!(a.value(2), 19_782 * MICROS_PER_DAY + 3_333);
        assert_eq!(a.value(3), 19_782 * MICROS_PER_DAY + 61 * 60_000_000);
        let a = decode(
            LogicalType::Time,
            &[ColumnData::Time(Some(Time::new(5, 1)))],
        );
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::Time64MicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), 500_000);
    }

    #[test]
    fn numbers_guids_and_text_convert() {
        let a = decode(
            LogicalType::Decimal {
                precision: 19,
                scale: 4,
            },
            &[
                ColumnData::Numeric(Some(Numeric::new_with_scale(-12_345, 2))),
                ColumnData::I32(Some(7)),
            ],
        );
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>()
            .unwrap();
        assert_eq!(a.value(0), -1_234_500);
        assert_eq!(a.value(1), 70_000);
        let mut d = Decoder {
            col: Col::new(&LogicalType::Decimal {
                precision: 4,
                scale: 0,
            })
            .unwrap(),
        };
        assert!(d
            .append(&ColumnData::Numeric(Some(Numeric::new_with_scale(
                12_345, 0
            ))))
            .is_err());
        assert!(d
            .append(&ColumnData::Numeric(Some(Numeric::new_with_scale(15, 1))))
            .unwrap_err()
            .contains("rounding"));
        let u = tiberius::Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
        let a = decode(LogicalType::Uuid, &[ColumnData::Guid(Some(u))]);
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::FixedSizeBinaryArray>()
            .unwrap();
        assert_eq!(a.value(0), u.as_bytes());
        let a = decode(
            LogicalType::Utf8,
            &[
                ColumnData::String(Some("héllo 🦀".into())),
                ColumnData::Xml(Some(std::borrow::Cow::Owned(tiberius::xml::XmlData::new(
                    "<a/>",
                )))),
            ],
        );
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert_eq!((a.value(0), a.value(1)), ("héllo 🦀", "<a/>"));
        let a = decode(LogicalType::UInt8, &[ColumnData::U8(Some(255))]);
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow::array::UInt8Array>()
                .unwrap()
                .value(0),
            255
        );
    }

    #[test]
    fn chunk_batch_binds_bounds_and_converts_columns() {
        let req = ChunkRead {
            relation: crate::RelationRef::Table {
                schema: "Sales Data".into(),
                name: "Order Items".into(),
            },
            columns: vec![
                crate::ReadColumn {
                    name: "Order ID".into(),
                    wire_type: "int".into(),
                    logical: LogicalType::Int64,
                    nullable: false,
                    select_expr: None,
                },
                crate::ReadColumn {
                    name: "price".into(),
                    wire_type: "decimal".into(),
                    logical: LogicalType::Decimal {
                        precision: 19,
                        scale: 4,
                    },
                    nullable: true,
                    select_expr: Some("CAST([price] AS decimal(19,4))".into()),
                },
            ],
            range: Some(crate::RangeFilter {
                column: "Order ID".into(),
                lower: Some(10),
                upper: Some(20),
                include_null: true,
            }),
            window: None,
            batch_rows: 1,
            batch_bytes: 1,
            statement_timeout_ms: 1,
            lock_timeout_ms: 5000,
            use_cursor: false,
            pages: None,
            snapshot: None,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
            infinity: crate::InfinityPolicy::Clamp,
            cdc: None,
        };
        let (sql, params) = chunk_batch(&req);
        assert_eq!(
            sql,
            "SET NOCOUNT ON; SET LOCK_TIMEOUT 5000; SELECT [Order ID], CAST([price] AS decimal(19,4)) AS [price] \
             FROM [Sales Data].[Order Items] WHERE (([Order ID] >= @P1 AND [Order ID] < @P2) OR [Order ID] IS NULL)"
        );
        assert_eq!(params, vec![MsParam::Int(10), MsParam::Int(20)]);
        let mut windowed = req.clone();
        windowed.range = None;
        windowed.window = Some(crate::WindowFilter {
            column: "updated_at".into(),
            fallback: Some("created_at".into()),
            lower: Some(SqlValue::TimestampUtc(1_767_225_600_000_000)),
            upper: SqlValue::TimestampUtc(1_767_312_000_000_000),
        });
        let (sql, params) = chunk_batch(&windowed);
        assert!(
            sql.ends_with(
                "WHERE COALESCE([updated_at], [created_at]) >= CAST(@P1 AS datetimeoffset(7)) \
             AND COALESCE([updated_at], [created_at]) < CAST(@P2 AS datetimeoffset(7))"
            ),
            "{sql}"
        );
        assert_eq!(
            params,
            vec![
                MsParam::Text("2026-01-01 00:00:00.000000+00:00".into()),
                MsParam::Text("2026-01-02 00:00:00.000000+00:00".into())
            ]
        );
    }
}
