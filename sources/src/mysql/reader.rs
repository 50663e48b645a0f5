//! Reading one MySQL/MariaDB chunk: a prepared `SELECT` with the key bounds as bound
//! parameters, run in a `REPEATABLE READ` read-only transaction, streamed row by row
//! (the driver reads rows from the socket as they are iterated, never the whole result)
//! and decoded from binary-protocol values into Arrow builders.

use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{Decimal128Type, Decimal256Type};
use arrow::record_batch::RecordBatch;
use mysql::prelude::Queryable;
use mysql::Value;
use rivet_schema::LogicalType;

use super::{connect, query_err, quote_ident, scoped_select, Flavor};
use crate::builders::{days_from_civil, Batcher, Col, HasCol};
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ChunkSource, ReadFailure, SinkClosed};
use crate::{ChunkRead, ReadStats};

/// A MySQL/MariaDB connection dedicated to reading chunks.
pub struct MyReader {
    conn: mysql::Conn,
    flavor: Flavor,
    /// Kept for the binary log reader, which needs a connection of its own.
    settings: ConnectionSettings,
}

impl MyReader {
    pub fn connect(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (conn, flavor) = connect(settings)?;
        Ok(MyReader {
            conn,
            flavor,
            settings: settings.clone(),
        })
    }
}

/// One column's builder and its conversion from binary-protocol values (also used by
/// the binary log reader, whose values are first brought to the same form).
pub(super) struct Decoder {
    col: Col,
    /// MySQL geometry: a 4-byte SRID before the WKB.
    geometry: bool,
    /// BIT(n): the value is big-endian bytes, whatever they look like.
    bit: bool,
    /// Zero or partial-zero dates written as NULL.
    pub(super) nulled: u64,
}

fn bad(v: &Value, what: &str) -> String {
    format!("unexpected {v:?} for a {what} column")
}

fn int_of(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
            .ok_or_else(|| bad(v, "integer")),
        _ => Err(bad(v, "integer")),
    }
}

fn fit<T: TryFrom<i128>>(v: i128, what: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{v} does not fit a {what} column"))
}

impl HasCol for Decoder {
    fn col_mut(&mut self) -> &mut Col {
        &mut self.col
    }
}

impl Decoder {
    pub(super) fn new(logical: &LogicalType, wire: &str) -> Result<Self, String> {
        Ok(Decoder {
            col: Col::new(logical)?,
            geometry: wire == "geometry",
            bit: wire == "bit",
            nulled: 0,
        })
    }

    pub(super) fn append(&mut self, v: &Value) -> Result<usize, String> {
        if matches!(v, Value::NULL) {
            self.col.append_null();
            return Ok(0);
        }
        let size = match v {
            Value::Bytes(b) => b.len(),
            _ => 8,
        };
        match &mut self.col {
            Col::Bool(b) => match v {
                Value::Bytes(bits) => b.append_value(bits.iter().any(|x| *x != 0)),
                other => b.append_value(int_of(other)? != 0),
            },
            Col::I8(b) => b.append_value(fit(int_of(v)?, "TINYINT")?),
            Col::I16(b) => b.append_value(fit(int_of(v)?, "SMALLINT")?),
            Col::I32(b) => b.append_value(fit(int_of(v)?, "INT")?),
            Col::I64(b) => b.append_value(fit(int_of(v)?, "BIGINT")?),
            Col::U8(b) => b.append_value(fit(int_of(v)?, "TINYINT UNSIGNED")?),
            Col::U16(b) => b.append_value(fit(int_of(v)?, "SMALLINT UNSIGNED")?),
            Col::U32(b) => b.append_value(fit(int_of(v)?, "INT UNSIGNED")?),
            Col::U64(b) => match v {
                // BIT(n): big-endian bytes, decided by the planned wire type (never by
                // whether the bytes happen to look like digits).
                Value::Bytes(bits) if self.bit => {
                    if bits.is_empty() || bits.len() > 8 {
                        return Err(format!("a BIT value of {} byte(s)", bits.len()));
                    }
                    b.append_value(bits.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
                }
                other => b.append_value(fit(int_of(other)?, "BIGINT UNSIGNED")?),
            },
            Col::F32(b) => match v {
                Value::Float(f) => b.append_value(*f),
                Value::Double(d) => b.append_value(*d as f32),
                other => return Err(bad(other, "FLOAT")),
            },
            Col::F64(b) => match v {
                Value::Double(d) => b.append_value(*d),
                Value::Float(f) => b.append_value(f64::from(*f)),
                other => return Err(bad(other, "DOUBLE")),
            },
            Col::Dec128(b, p, s) => {
                let text = bytes_text(v)?;
                b.append_value(
                    parse_decimal::<Decimal128Type>(text, *p, *s).map_err(|e| e.to_string())?,
                )
            }
            Col::Dec256(b, p, s) => {
                let text = bytes_text(v)?;
                b.append_value(
                    parse_decimal::<Decimal256Type>(text, *p, *s).map_err(|e| e.to_string())?,
                )
            }
            Col::Utf8(b) => match v {
                Value::Bytes(_) => b.append_value(bytes_text(v)?),
                Value::Int(i) => b.append_value(i.to_string()),
                Value::UInt(u) => b.append_value(u.to_string()),
                Value::Double(d) => b.append_value(d.to_string()),
                Value::Float(f) => b.append_value(f.to_string()),
                other => return Err(bad(other, "text")),
            },
            Col::Bin(b) => match v {
                // Geometry is stored as a 4-byte SRID followed by WKB.
                Value::Bytes(raw) if self.geometry => {
                    b.append_value(raw.get(4..).unwrap_or_default())
                }
                Value::Bytes(raw) => b.append_value(raw),
                other => return Err(bad(other, "binary")),
            },
            Col::Date(b) => match v {
                Value::Date(y, m, d, ..) if *m == 0 || *d == 0 => {
                    self.nulled += 1;
                    b.append_null();
                }
                Value::Date(y, m, d, ..) => b.append_value(
                    i32::try_from(days_from_civil(i64::from(*y), u32::from(*m), u32::from(*d)))
                        .map_err(|_| "date out of range".to_string())?,
                ),
                other => return Err(bad(other, "DATE")),
            },
            Col::Ts(b, _) => match v {
                Value::Date(_, m, d, ..) if *m == 0 || *d == 0 => {
                    self.nulled += 1;
                    b.append_null();
                }
                Value::Date(y, m, d, hh, mi, ss, us) => {
                    let days = days_from_civil(i64::from(*y), u32::from(*m), u32::from(*d));
                    let secs = days * 86_400
                        + i64::from(*hh) * 3600
                        + i64::from(*mi) * 60
                        + i64::from(*ss);
                    b.append_value(secs * 1_000_000 + i64::from(*us))
                }
                other => return Err(bad(other, "DATETIME")),
            },
            Col::Dur(b) => match v {
                Value::Time(neg, days, hh, mi, ss, us) => {
                    let secs = i64::from(*days) * 86_400
                        + i64::from(*hh) * 3600
                        + i64::from(*mi) * 60
                        + i64::from(*ss);
                    let micros = secs * 1_000_000 + i64::from(*us);
                    b.append_value(if *neg { -micros } else { micros })
                }
                other => return Err(bad(other, "TIME")),
            },
            Col::Uuid(b) => {
                let text = bytes_text(v)?;
                b.append_value(parse_uuid(text)?)
                    .map_err(|e| e.to_string())?
            }
            Col::Time(_) | Col::Interval(_) | Col::List(_) => {
                return Err("MySQL sends no value of this output type".into())
            }
        }
        Ok(size)
    }
}

/// The 16 bytes of a UUID's text (`8-4-4-4-12` hex digits, as MariaDB sends it).
fn parse_uuid(text: &str) -> Result<[u8; 16], String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    if hex.len() != 32 || text.len() != 36 {
        return Err(format!("`{text}` is not a UUID"));
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("`{text}` is not a UUID"))?;
    }
    Ok(out)
}

fn bytes_text(v: &Value) -> Result<&str, String> {
    match v {
        Value::Bytes(b) => {
            std::str::from_utf8(b).map_err(|e| format!("text is not valid UTF-8: {e}"))
        }
        other => Err(bad(other, "text")),
    }
}

/// A bound as a binary-protocol parameter (dates and times as MySQL date values, which
/// compare with DATETIME, TIMESTAMP — in the statement's UTC time zone — and DATE).
pub fn mysql_value(v: &crate::SqlValue) -> Value {
    use crate::SqlValue;
    use chrono::{Datelike, Timelike};
    let datetime = |us: i64| {
        let t = crate::naive(us);
        Value::Date(
            t.year() as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond() / 1000,
        )
    };
    match v {
        SqlValue::Int(i) => Value::Int(*i),
        SqlValue::Timestamp(us) | SqlValue::TimestampUtc(us) => datetime(*us),
        SqlValue::Date(d) => datetime(i64::from(*d) * 86_400_000_000),
        SqlValue::Text(t) => Value::Bytes(t.as_bytes().to_vec()),
    }
}

/// `SELECT cols FROM rel [WHERE key range AND window]` with `?` placeholders and their
/// values.
pub fn select_with_params(req: &ChunkRead) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let sql = req.select_sql(quote_ident, |v| {
        params.push(mysql_value(v));
        "?".to_owned()
    });
    (sql, params)
}

impl ChunkSource for MyReader {
    fn read_chunk(
        &mut self,
        req: &ChunkRead,
        label: &str,
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<ReadStats, ReadFailure> {
        if let Some(w) = &req.cdc {
            let crate::CdcLog::Binlog {
                server_id,
                start,
                end,
            } = &w.log
            else {
                return Err(SourceError::Query {
                    context: label.to_owned(),
                    detail:
                        "a MySQL/MariaDB source was handed a PostgreSQL slot window; plan again"
                            .into(),
                    transient: false,
                }
                .into());
            };
            return super::binlog::read_window(
                &self.settings,
                &mut self.conn,
                req,
                w,
                *server_id,
                start,
                end,
                label,
                sink,
            );
        }
        req.refuse_postgres_only(label)?;
        let decode_err = |column: &str, detail: String| SourceError::Decode {
            relation: label.to_owned(),
            column: column.to_owned(),
            detail,
        };
        let mut decoders = req
            .columns
            .iter()
            .map(|c| Decoder::new(&c.logical, &c.wire_type).map_err(|d| decode_err(&c.name, d)))
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = |what: &str| format!("{label}: {what}");
        let (select, params) = select_with_params(req);
        let sql = scoped_select(self.flavor, &select, req.statement_timeout_ms);
        let mut tx = self
            .conn
            .start_transaction(
                mysql::TxOpts::default()
                    .set_isolation_level(Some(mysql::IsolationLevel::RepeatableRead))
                    .set_access_mode(Some(mysql::AccessMode::ReadOnly)),
            )
            .map_err(|e| query_err(&ctx("starting the read transaction"))(e))?;
        let mut batcher = Batcher::new(req, label);
        {
            let result = tx
                .exec_iter(sql.as_str(), params)
                .map_err(|e| query_err(&ctx("running the chunk's SELECT"))(e))?;
            for row in result {
                let row = row.map_err(|e| query_err(&ctx("reading rows"))(e))?;
                let values = row.unwrap();
                let mut bytes = 0;
                for ((d, v), c) in decoders.iter_mut().zip(&values).zip(&req.columns) {
                    bytes += d.append(v).map_err(|detail| decode_err(&c.name, detail))?;
                }
                batcher.row(bytes, &mut decoders, sink)?;
            }
        }
        batcher.flush(&mut decoders, sink)?;
        tx.commit()
            .map_err(|e| query_err(&ctx("committing the read transaction"))(e))?;
        Ok(batcher.stats(decoders.iter().map(|d| d.nulled)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_into_their_arrow_types() {
        let mut d = Decoder::new(&LogicalType::Duration, "time").unwrap();
        d.append(&Value::Time(true, 34, 22, 59, 59, 0)).unwrap();
        d.append(&Value::Time(true, 0, 0, 0, 0, 1)).unwrap();
        let a = d.col.finish();
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::DurationMicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), -((838 * 3600 + 59 * 60 + 59) * 1_000_000));
        assert_eq!(a.value(1), -1);
        let mut z = Decoder::new(&LogicalType::Date, "date").unwrap();
        z.append(&Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap();
        assert_eq!(z.nulled, 1);
        let mut g = Decoder::new(&LogicalType::Binary, "geometry").unwrap();
        g.append(&Value::Bytes(vec![0, 0, 0, 0, 1, 2])).unwrap();
        let a = g.col.finish();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow::array::BinaryArray>()
                .unwrap()
                .value(0),
            &[1, 2]
        );
        let mut u = Decoder::new(&LogicalType::Uuid, "uuid_text").unwrap();
        u.append(&Value::Bytes(
            b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_vec(),
        ))
        .unwrap();
        assert!(u
            .append(&Value::Bytes(b"a0eebc999c0b4ef8bb6d6bb9bd380a11".to_vec()))
            .is_err());
        let a = u.col.finish();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow::array::FixedSizeBinaryArray>()
                .unwrap()
                .value(0),
            &[
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ]
        );
        let mut b = Decoder::new(&LogicalType::UInt64, "bit").unwrap();
        b.append(&Value::Bytes(vec![0x0f, 0xff])).unwrap();
        let a = b.col.finish();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .unwrap()
                .value(0),
            4095
        );
    }

    #[test]
    fn chunk_bounds_are_bound_parameters() {
        let req = ChunkRead {
            relation: crate::RelationRef::Table {
                schema: "db".into(),
                name: "Order Items".into(),
            },
            columns: vec![crate::ReadColumn {
                name: "Order ID".into(),
                wire_type: "int".into(),
                logical: LogicalType::Int64,
                nullable: false,
                select_expr: None,
            }],
            range: Some(crate::RangeFilter {
                column: "Order ID".into(),
                lower: Some(10),
                upper: Some(20),
                include_null: false,
            }),
            window: None,
            batch_rows: 1,
            batch_bytes: 1,
            statement_timeout_ms: 1,
            lock_timeout_ms: 1,
            use_cursor: false,
            pages: None,
            snapshot: None,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
            infinity: crate::InfinityPolicy::Clamp,
            cdc: None,
        };
        let (sql, params) = select_with_params(&req);
        assert_eq!(
            sql,
            "SELECT `Order ID` FROM `db`.`Order Items` WHERE `Order ID` >= ? AND `Order ID` < ?"
        );
        assert_eq!(params, vec![Value::Int(10), Value::Int(20)]);
        assert_eq!(
            mysql_value(&crate::SqlValue::Timestamp(1_767_225_600_500_000)),
            Value::Date(2026, 1, 1, 0, 0, 0, 500_000)
        );
        assert_eq!(
            mysql_value(&crate::SqlValue::Date(20_454)),
            Value::Date(2026, 1, 1, 0, 0, 0, 0)
        );
    }
}
