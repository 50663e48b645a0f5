//! Reading one MySQL/MariaDB chunk: a prepared `SELECT` with the key bounds as bound
//! parameters, run in a `REPEATABLE READ` read-only transaction, streamed row by row
//! (the driver reads rows from the socket as they are iterated, never the whole result)
//! and decoded from binary-protocol values into Arrow builders.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, DurationMicrosecondBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, Int8Builder, StringBuilder, TimestampMicrosecondBuilder,
    UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{Decimal128Type, Decimal256Type};
use arrow::record_batch::RecordBatch;
use mysql::prelude::Queryable;
use mysql::Value;
use rivet_schema::LogicalType;

use super::{connect, query_err, quote_ident, scoped_select, Flavor};
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ChunkSource, ReadFailure, SinkClosed};
use crate::{ChunkRead, ReadStats};

/// A MySQL/MariaDB connection dedicated to reading chunks.
pub struct MyReader {
    conn: mysql::Conn,
    flavor: Flavor,
}

impl MyReader {
    pub fn connect(settings: &ConnectionSettings) -> Result<Self, SourceError> {
        let (conn, flavor) = connect(settings)?;
        Ok(MyReader { conn, flavor })
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

enum Col {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec128(Decimal128Builder, u8, i8),
    Dec256(Decimal256Builder, u8, i8),
    Utf8(StringBuilder),
    Bin(BinaryBuilder, bool),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Dur(DurationMicrosecondBuilder),
}

/// One column's builder and its conversion from binary-protocol values.
struct Decoder {
    col: Col,
    /// Zero or partial-zero dates written as NULL.
    nulled: u64,
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

impl Decoder {
    fn new(logical: &LogicalType, wire: &str) -> Result<Self, String> {
        let col = match logical {
            LogicalType::Boolean => Col::Bool(BooleanBuilder::new()),
            LogicalType::Int8 => Col::I8(Int8Builder::new()),
            LogicalType::Int16 => Col::I16(Int16Builder::new()),
            LogicalType::Int32 => Col::I32(Int32Builder::new()),
            LogicalType::Int64 => Col::I64(Int64Builder::new()),
            LogicalType::UInt8 => Col::U8(UInt8Builder::new()),
            LogicalType::UInt16 => Col::U16(UInt16Builder::new()),
            LogicalType::UInt32 => Col::U32(UInt32Builder::new()),
            LogicalType::UInt64 => Col::U64(UInt64Builder::new()),
            LogicalType::Float32 => Col::F32(Float32Builder::new()),
            LogicalType::Float64 => Col::F64(Float64Builder::new()),
            LogicalType::Decimal { precision, scale } if *precision <= 38 => Col::Dec128(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| e.to_string())?,
                *precision,
                *scale,
            ),
            LogicalType::Decimal { precision, scale } => Col::Dec256(
                Decimal256Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| e.to_string())?,
                *precision,
                *scale,
            ),
            LogicalType::DecimalText | LogicalType::Utf8 | LogicalType::Json => {
                Col::Utf8(StringBuilder::new())
            }
            LogicalType::Binary => Col::Bin(BinaryBuilder::new(), wire == "geometry"),
            LogicalType::Date => Col::Date(Date32Builder::new()),
            LogicalType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::new(), None),
            LogicalType::TimestampUtc => Col::Ts(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                Some("UTC".into()),
            ),
            LogicalType::Duration => Col::Dur(DurationMicrosecondBuilder::new()),
            other => {
                return Err(format!(
                    "MySQL has no wire type for output type {}",
                    other.display_name()
                ))
            }
        };
        Ok(Decoder { col, nulled: 0 })
    }

    fn append(&mut self, v: &Value) -> Result<usize, String> {
        if matches!(v, Value::NULL) {
            self.append_null();
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
                // BIT(n): big-endian bytes.
                Value::Bytes(bits)
                    if bits.len() <= 8
                        && !bits.is_empty()
                        && !bits.iter().all(u8::is_ascii_digit) =>
                {
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
            Col::Bin(b, geometry) => match v {
                // Geometry is stored as a 4-byte SRID followed by WKB.
                Value::Bytes(raw) if *geometry => b.append_value(raw.get(4..).unwrap_or_default()),
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
        }
        Ok(size)
    }

    fn append_null(&mut self) {
        match &mut self.col {
            Col::Bool(b) => b.append_null(),
            Col::I8(b) => b.append_null(),
            Col::I16(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::U8(b) => b.append_null(),
            Col::U16(b) => b.append_null(),
            Col::U32(b) => b.append_null(),
            Col::U64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Dec128(b, ..) => b.append_null(),
            Col::Dec256(b, ..) => b.append_null(),
            Col::Utf8(b) => b.append_null(),
            Col::Bin(b, _) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b, _) => b.append_null(),
            Col::Dur(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match &mut self.col {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I8(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::U8(b) => Arc::new(b.finish()),
            Col::U16(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::U64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Dec128(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Col::Dec256(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Col::Utf8(b) => Arc::new(b.finish()),
            Col::Bin(b, _) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Col::Dur(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match &self.col {
            Col::Bool(b) => b.len(),
            Col::I8(b) => b.len(),
            Col::I16(b) => b.len(),
            Col::I32(b) => b.len(),
            Col::I64(b) => b.len(),
            Col::U8(b) => b.len(),
            Col::U16(b) => b.len(),
            Col::U32(b) => b.len(),
            Col::U64(b) => b.len(),
            Col::F32(b) => b.len(),
            Col::F64(b) => b.len(),
            Col::Dec128(b, ..) => b.len(),
            Col::Dec256(b, ..) => b.len(),
            Col::Utf8(b) => b.len(),
            Col::Bin(b, _) => b.len(),
            Col::Date(b) => b.len(),
            Col::Ts(b, _) => b.len(),
            Col::Dur(b) => b.len(),
        }
    }
}

fn bytes_text(v: &Value) -> Result<&str, String> {
    match v {
        Value::Bytes(b) => {
            std::str::from_utf8(b).map_err(|e| format!("text is not valid UTF-8: {e}"))
        }
        other => Err(bad(other, "text")),
    }
}

/// `SELECT cols FROM rel [WHERE key range]` with `?` placeholders and their values.
pub fn select_with_params(req: &ChunkRead) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let sql = req.select_sql(quote_ident, |v| {
        params.push(Value::Int(v));
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
        let schema = Arc::new(crate::arrow_types::schema(
            req.columns
                .iter()
                .map(|c| (c.name.as_str(), &c.logical, c.nullable)),
        ));
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
        let mut rows: u64 = 0;
        let mut batch_rows = 0usize;
        let mut batch_bytes = 0usize;
        let mut over_target = 0u64;
        let mut emit = |decoders: &mut Vec<Decoder>,
                        batch_rows: &mut usize,
                        batch_bytes: &mut usize,
                        force: bool|
         -> Result<(), ReadFailure> {
            let (cut, over) = req.on_batch_memory_exceeded.decide(
                req,
                *batch_rows,
                *batch_bytes,
                force,
                label,
            )?;
            if cut {
                if over {
                    over_target += 1;
                }
                let arrays: Vec<ArrayRef> = decoders.iter_mut().map(Decoder::finish).collect();
                let batch = RecordBatch::try_new(schema.clone(), arrays)
                    .map_err(|e| decode_err("", e.to_string()))?;
                *batch_rows = 0;
                *batch_bytes = 0;
                sink(batch).map_err(|SinkClosed| ReadFailure::SinkClosed)?;
            }
            Ok(())
        };
        {
            let result = tx
                .exec_iter(sql.as_str(), params)
                .map_err(|e| query_err(&ctx("running the chunk's SELECT"))(e))?;
            for row in result {
                let row = row.map_err(|e| query_err(&ctx("reading rows"))(e))?;
                let values = row.unwrap();
                for ((d, v), c) in decoders.iter_mut().zip(&values).zip(&req.columns) {
                    batch_bytes += d.append(v).map_err(|detail| decode_err(&c.name, detail))?;
                }
                batch_rows += 1;
                rows += 1;
                emit(&mut decoders, &mut batch_rows, &mut batch_bytes, false)?;
            }
        }
        emit(&mut decoders, &mut batch_rows, &mut batch_bytes, true)?;
        tx.commit()
            .map_err(|e| query_err(&ctx("committing the read transaction"))(e))?;
        debug_assert!(decoders.iter().all(|d| d.len() == 0));
        let nulled_values = req
            .columns
            .iter()
            .zip(&decoders)
            .filter(|(_, d)| d.nulled > 0)
            .map(|(c, d)| (c.name.clone(), d.nulled))
            .collect();
        Ok(ReadStats {
            rows,
            nulled_values,
            batches_over_memory_target: over_target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_convert_to_unix_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1000, 1, 1), -354_285);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }

    #[test]
    fn values_decode_into_their_arrow_types() {
        let mut d = Decoder::new(&LogicalType::Duration, "time").unwrap();
        d.append(&Value::Time(true, 34, 22, 59, 59, 0)).unwrap();
        d.append(&Value::Time(true, 0, 0, 0, 0, 1)).unwrap();
        let a = d.finish();
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
        let a = g.finish();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow::array::BinaryArray>()
                .unwrap()
                .value(0),
            &[1, 2]
        );
        let mut b = Decoder::new(&LogicalType::UInt64, "bit").unwrap();
        b.append(&Value::Bytes(vec![0x0f, 0xff])).unwrap();
        let a = b.finish();
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
            }],
            range: Some(crate::RangeFilter {
                column: "Order ID".into(),
                lower: Some(10),
                upper: Some(20),
                include_null: false,
            }),
            batch_rows: 1,
            batch_bytes: 1,
            statement_timeout_ms: 1,
            lock_timeout_ms: 1,
            use_cursor: false,
            on_batch_memory_exceeded: crate::BatchMemoryPolicy::AutoShrink,
        };
        let (sql, params) = select_with_params(&req);
        assert_eq!(
            sql,
            "SELECT `Order ID` FROM `db`.`Order Items` WHERE `Order ID` >= ? AND `Order ID` < ?"
        );
        assert_eq!(params, vec![Value::Int(10), Value::Int(20)]);
    }
}
