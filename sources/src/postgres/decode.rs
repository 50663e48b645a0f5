//! Decoding PostgreSQL's binary wire format straight into Arrow builders. The same
//! decoders serve `COPY … (FORMAT binary)` fields and binary-format cursor rows, so
//! there is one place where each type's bytes become Arrow values.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, ListBuilder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::datatypes::{i256, SchemaRef};
use arrow::record_batch::RecordBatch;
use rivet_schema::LogicalType;

/// Days between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds between 1970-01-01 and 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How one value failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

type DResult<T> = Result<T, DecodeError>;

fn err<T>(msg: impl Into<String>) -> DResult<T> {
    Err(DecodeError(msg.into()))
}

fn fixed<const N: usize>(raw: &[u8], what: &str) -> DResult<[u8; N]> {
    raw.try_into()
        .map_err(|_| DecodeError(format!("{what}: expected {N} bytes, got {}", raw.len())))
}

/// Wire representations Rivet decodes, derived from a column's `wire_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    Date,
    Timestamp,
    Time,
    Uuid,
    Jsonb,
    Array(Box<Wire>),
}

fn wire_of(wire_type: &str) -> DResult<Wire> {
    if let Some(elem) = wire_type.strip_suffix("[]") {
        return Ok(Wire::Array(Box::new(wire_of(elem)?)));
    }
    Ok(match wire_type {
        "bool" => Wire::Bool,
        "int2" => Wire::Int2,
        "int4" => Wire::Int4,
        "int8" => Wire::Int8,
        "oid" => Wire::Oid,
        "float4" => Wire::Float4,
        "float8" => Wire::Float8,
        "numeric" => Wire::Numeric,
        "text" | "json" => Wire::Text,
        "jsonb" => Wire::Jsonb,
        "bytea" => Wire::Bytea,
        "date" => Wire::Date,
        "timestamp" | "timestamptz" => Wire::Timestamp,
        "time" => Wire::Time,
        "uuid" => Wire::Uuid,
        other => return err(format!("no binary decoder for wire type `{other}`")),
    })
}

/// A decoded PostgreSQL numeric: sign, base-10000 digits and weight, display scale.
struct Numeric<'a> {
    raw: &'a [u8],
    ndigits: usize,
    weight: i32,
    sign: u16,
    dscale: u16,
}

impl<'a> Numeric<'a> {
    fn parse(raw: &'a [u8]) -> DResult<Self> {
        if raw.len() < 8 {
            return err("numeric: truncated header");
        }
        let ndigits = u16::from_be_bytes([raw[0], raw[1]]) as usize;
        if raw.len() != 8 + 2 * ndigits {
            return err("numeric: length does not match digit count");
        }
        Ok(Numeric {
            raw,
            ndigits,
            weight: i32::from(i16::from_be_bytes([raw[2], raw[3]])),
            sign: u16::from_be_bytes([raw[4], raw[5]]),
            dscale: u16::from_be_bytes([raw[6], raw[7]]),
        })
    }

    fn digit(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.raw[8 + 2 * i], self.raw[9 + 2 * i]])
    }

    fn special(&self) -> Option<&'static str> {
        match self.sign {
            0xC000 => Some("NaN"),
            0xD000 => Some("Infinity"),
            0xF000 => Some("-Infinity"),
            _ => None,
        }
    }

    /// Exact text, e.g. `-12.3400` (dscale digits after the point).
    fn to_text(&self) -> String {
        if let Some(s) = self.special() {
            return s.to_owned();
        }
        let mut int_part = String::new();
        let mut frac = String::new();
        for i in 0..self.ndigits {
            let pos = self.weight - i as i32; // power of 10000 of this digit
            let d = format!("{:04}", self.digit(i));
            if pos >= 0 {
                int_part.push_str(&d);
            } else {
                // fill skipped groups between the point and this digit
                while (frac.len() as i32) < (-pos - 1) * 4 {
                    frac.push_str("0000");
                }
                frac.push_str(&d);
            }
        }
        // groups of the integer part beyond the last stored digit are zero
        if self.weight >= 0 {
            let stored_int = (0..self.ndigits)
                .filter(|i| self.weight - (*i as i32) >= 0)
                .count() as i32;
            for _ in stored_int..=self.weight {
                int_part.push_str("0000");
            }
        }
        let int_trim = int_part.trim_start_matches('0');
        let int_text = if int_trim.is_empty() { "0" } else { int_trim };
        let scale = self.dscale as usize;
        let mut frac_text: String = frac.chars().take(scale).collect();
        while frac_text.len() < scale {
            frac_text.push('0');
        }
        let negative =
            self.sign == 0x4000 && (int_text != "0" || frac_text.chars().any(|c| c != '0'));
        let mut out = String::with_capacity(int_text.len() + scale + 2);
        if negative {
            out.push('-');
        }
        out.push_str(int_text);
        if scale > 0 {
            out.push('.');
            out.push_str(&frac_text);
        }
        out
    }

    /// The value scaled by 10^scale as an i128, when it fits (the common case of
    /// precision <= 38); falls back to the 256-bit path otherwise.
    fn to_scaled_i128(&self, scale: i8) -> DResult<i128> {
        if self.special().is_none() && self.ndigits <= 9 {
            let mut acc: i128 = 0;
            for i in 0..self.ndigits {
                acc = acc * 10_000 + i128::from(self.digit(i));
            }
            let exp10 = 4 * (self.weight - self.ndigits as i32 + 1) + i32::from(scale);
            let exact = if exp10 >= 0 {
                10i128
                    .checked_pow(exp10 as u32)
                    .and_then(|p| acc.checked_mul(p))
            } else {
                10i128
                    .checked_pow((-exp10) as u32)
                    .filter(|p| acc % p == 0)
                    .map(|p| acc / p)
            };
            if let Some(v) = exact {
                return Ok(if self.sign == 0x4000 { -v } else { v });
            }
        }
        self.to_scaled_i256(scale)?
            .to_i128()
            .ok_or_else(|| DecodeError("numeric: value too large".into()))
    }

    /// The value as an integer scaled by 10^scale, or an error if it does not fit
    /// exactly.
    fn to_scaled_i256(&self, scale: i8) -> DResult<i256> {
        if let Some(s) = self.special() {
            return err(format!(
                "numeric {s} cannot be stored as a decimal; export the column as text \
                 (query export with `col::text`) or as double precision"
            ));
        }
        let ten_k = i256::from_i128(10_000);
        let mut acc = i256::ZERO;
        for i in 0..self.ndigits {
            acc = acc
                .checked_mul(ten_k)
                .and_then(|a| a.checked_add(i256::from_i128(i128::from(self.digit(i)))))
                .ok_or_else(|| DecodeError("numeric: value too large".into()))?;
        }
        // acc * 10^(4*(weight - ndigits + 1)) is the value; scale it by 10^scale.
        let exp10 = 4 * (self.weight - self.ndigits as i32 + 1) + i32::from(scale);
        let ten = i256::from_i128(10);
        if exp10 >= 0 {
            for _ in 0..exp10 {
                acc = acc.checked_mul(ten).ok_or_else(|| {
                    DecodeError("numeric: value too large for its declared precision".into())
                })?;
            }
        } else {
            for _ in 0..(-exp10) {
                let (q, r) = (acc / ten, acc % ten);
                if r != i256::ZERO {
                    return err(
                        "numeric: value has more fractional digits than the declared scale",
                    );
                }
                acc = q;
            }
        }
        Ok(if self.sign == 0x4000 {
            acc.wrapping_neg()
        } else {
            acc
        })
    }
}

/// An Arrow builder plus the wire decoder that feeds it.
pub struct ColumnDecoder {
    wire: Wire,
    builder: Builder,
    /// Values written as NULL because Arrow cannot hold them (infinity); see
    /// [`ColumnDecoder::nulled_total`] for the count including array elements.
    nulled: u64,
}

enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U32(UInt32Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec128(Decimal128Builder, u8, i8),
    Dec256(Decimal256Builder, u8, i8),
    Utf8(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Time(Time64MicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
    List(ListBuilder<Box<ColumnDecoder>>),
}

impl ArrayBuilder for Box<ColumnDecoder> {
    fn len(&self) -> usize {
        self.builder_ref().len()
    }
    fn finish(&mut self) -> ArrayRef {
        self.finish_array()
    }
    fn finish_cloned(&self) -> ArrayRef {
        self.builder_ref().finish_cloned()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn into_box_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl ColumnDecoder {
    /// A decoder for a column whose wire type and output type were fixed at plan time.
    pub fn new(wire_type: &str, logical: &LogicalType) -> DResult<Self> {
        let wire = wire_of(wire_type)?;
        let builder = match logical {
            LogicalType::Int8
            | LogicalType::UInt8
            | LogicalType::UInt16
            | LogicalType::UInt64
            | LogicalType::Duration => {
                return err(format!(
                    "PostgreSQL has no wire type for output type {}",
                    logical.display_name()
                ))
            }
            LogicalType::Boolean => Builder::Bool(BooleanBuilder::new()),
            LogicalType::Int16 => Builder::I16(Int16Builder::new()),
            LogicalType::Int32 => Builder::I32(Int32Builder::new()),
            LogicalType::Int64 => Builder::I64(Int64Builder::new()),
            LogicalType::UInt32 => Builder::U32(UInt32Builder::new()),
            LogicalType::Float32 => Builder::F32(Float32Builder::new()),
            LogicalType::Float64 => Builder::F64(Float64Builder::new()),
            LogicalType::Decimal { precision, scale } if *precision <= 38 => Builder::Dec128(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| DecodeError(e.to_string()))?,
                *precision,
                *scale,
            ),
            LogicalType::Decimal { precision, scale } => Builder::Dec256(
                Decimal256Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| DecodeError(e.to_string()))?,
                *precision,
                *scale,
            ),
            LogicalType::DecimalText | LogicalType::Utf8 | LogicalType::Json => {
                Builder::Utf8(StringBuilder::new())
            }
            LogicalType::Binary => Builder::Bin(BinaryBuilder::new()),
            LogicalType::Date => Builder::Date(Date32Builder::new()),
            LogicalType::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::new(), None),
            LogicalType::TimestampUtc => Builder::Ts(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                Some("UTC".into()),
            ),
            LogicalType::Time => Builder::Time(Time64MicrosecondBuilder::new()),
            LogicalType::Uuid => Builder::Uuid(FixedSizeBinaryBuilder::new(16)),
            LogicalType::List { element } => {
                let Wire::Array(elem_wire) = &wire else {
                    return err(format!(
                        "list column needs an array wire type, got `{wire_type}`"
                    ));
                };
                let elem_wire_name = wire_type.trim_end_matches("[]");
                let inner = ColumnDecoder::new(elem_wire_name, element)?;
                debug_assert_eq!(&inner.wire, elem_wire.as_ref());
                let field = crate::arrow_types::field("item", element, true);
                Builder::List(ListBuilder::new(Box::new(inner)).with_field(Arc::new(field)))
            }
        };
        let valid = matches!(
            (&wire, &builder),
            (Wire::Bool, Builder::Bool(_))
                | (Wire::Int2, Builder::I16(_))
                | (Wire::Int4, Builder::I32(_))
                | (Wire::Int8, Builder::I64(_))
                | (Wire::Oid, Builder::U32(_))
                | (Wire::Float4, Builder::F32(_))
                | (Wire::Float8, Builder::F64(_))
                | (
                    Wire::Numeric,
                    Builder::Dec128(..) | Builder::Dec256(..) | Builder::Utf8(_)
                )
                | (Wire::Text | Wire::Jsonb, Builder::Utf8(_))
                | (Wire::Bytea, Builder::Bin(_))
                | (Wire::Date, Builder::Date(_))
                | (Wire::Timestamp, Builder::Ts(..))
                | (Wire::Time, Builder::Time(_))
                | (Wire::Uuid, Builder::Uuid(_))
                | (Wire::Array(_), Builder::List(_))
        );
        if !valid {
            return err(format!(
                "wire type `{wire_type}` cannot produce output type {}",
                logical.display_name()
            ));
        }
        Ok(ColumnDecoder {
            wire,
            builder,
            nulled: 0,
        })
    }

    /// Values written as NULL because Arrow cannot hold them, array elements included.
    pub fn nulled_total(&self) -> u64 {
        match &self.builder {
            Builder::List(b) => self.nulled + b.values_ref().nulled_total(),
            _ => self.nulled,
        }
    }

    fn builder_ref(&self) -> &dyn ArrayBuilder {
        match &self.builder {
            Builder::Bool(b) => b,
            Builder::I16(b) => b,
            Builder::I32(b) => b,
            Builder::I64(b) => b,
            Builder::U32(b) => b,
            Builder::F32(b) => b,
            Builder::F64(b) => b,
            Builder::Dec128(b, ..) => b,
            Builder::Dec256(b, ..) => b,
            Builder::Utf8(b) => b,
            Builder::Bin(b) => b,
            Builder::Date(b) => b,
            Builder::Ts(b, _) => b,
            Builder::Time(b) => b,
            Builder::Uuid(b) => b,
            Builder::List(b) => b,
        }
    }

    /// Appends one value (`None` is SQL NULL) in binary wire format.
    pub fn append(&mut self, raw: Option<&[u8]>) -> DResult<()> {
        let Some(raw) = raw else {
            self.append_null();
            return Ok(());
        };
        match &mut self.builder {
            Builder::Bool(b) => b.append_value(fixed::<1>(raw, "bool")?[0] != 0),
            Builder::I16(b) => b.append_value(i16::from_be_bytes(fixed(raw, "int2")?)),
            Builder::I32(b) => b.append_value(i32::from_be_bytes(fixed(raw, "int4")?)),
            Builder::I64(b) => b.append_value(i64::from_be_bytes(fixed(raw, "int8")?)),
            Builder::U32(b) => b.append_value(u32::from_be_bytes(fixed(raw, "oid")?)),
            Builder::F32(b) => b.append_value(f32::from_be_bytes(fixed(raw, "float4")?)),
            Builder::F64(b) => b.append_value(f64::from_be_bytes(fixed(raw, "float8")?)),
            Builder::Dec128(b, _, scale) => {
                b.append_value(Numeric::parse(raw)?.to_scaled_i128(*scale)?)
            }
            Builder::Dec256(b, _, scale) => {
                b.append_value(Numeric::parse(raw)?.to_scaled_i256(*scale)?)
            }
            Builder::Utf8(b) => match self.wire {
                Wire::Numeric => b.append_value(Numeric::parse(raw)?.to_text()),
                Wire::Jsonb => match raw.split_first() {
                    Some((1, rest)) => b.append_value(utf8(rest)?),
                    _ => return err("jsonb: unknown binary format version"),
                },
                _ => b.append_value(utf8(raw)?),
            },
            Builder::Bin(b) => b.append_value(raw),
            Builder::Date(b) => {
                let days = i32::from_be_bytes(fixed(raw, "date")?);
                if days == i32::MAX || days == i32::MIN {
                    self.nulled += 1;
                    b.append_null();
                } else {
                    b.append_value(
                        days.checked_add(PG_EPOCH_DAYS)
                            .ok_or_else(|| DecodeError("date out of range".into()))?,
                    );
                }
            }
            Builder::Ts(b, _) => {
                let us = i64::from_be_bytes(fixed(raw, "timestamp")?);
                if us == i64::MAX || us == i64::MIN {
                    self.nulled += 1;
                    b.append_null();
                } else {
                    b.append_value(
                        us.checked_add(PG_EPOCH_MICROS)
                            .ok_or_else(|| DecodeError("timestamp out of range".into()))?,
                    );
                }
            }
            Builder::Time(b) => b.append_value(i64::from_be_bytes(fixed(raw, "time")?)),
            Builder::Uuid(b) => b
                .append_value(fixed::<16>(raw, "uuid")?)
                .map_err(|e| DecodeError(e.to_string()))?,
            Builder::List(b) => {
                append_array(b, raw)?;
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match &mut self.builder {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U32(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec128(b, ..) => b.append_null(),
            Builder::Dec256(b, ..) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, _) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Uuid(b) => b.append_null(),
            Builder::List(b) => b.append_null(),
        }
    }

    /// Takes the built array and resets the builder.
    pub fn finish_array(&mut self) -> ArrayRef {
        match &mut self.builder {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::U32(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Dec128(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Builder::Dec256(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Uuid(b) => Arc::new(b.finish()),
            Builder::List(b) => Arc::new(b.finish()),
        }
    }
}

fn utf8(raw: &[u8]) -> DResult<&str> {
    std::str::from_utf8(raw).map_err(|e| DecodeError(format!("text is not valid UTF-8: {e}")))
}

fn be_i32(raw: &[u8], at: usize) -> DResult<i32> {
    raw.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| DecodeError("array: truncated".into()))
}

/// Decodes a one-dimensional binary array into the list builder.
fn append_array(b: &mut ListBuilder<Box<ColumnDecoder>>, raw: &[u8]) -> DResult<()> {
    let ndim = be_i32(raw, 0)?;
    let mut at = 12;
    let count = match ndim {
        0 => 0,
        1 => {
            let n = be_i32(raw, at)?;
            at += 8; // dimension size + lower bound
            usize::try_from(n).map_err(|_| DecodeError("array: negative size".into()))?
        }
        n => {
            return err(format!(
                "{n}-dimensional array values are not supported (only one dimension maps to a \
                 list); export the column as text with a query export (`col::text`)"
            ))
        }
    };
    for _ in 0..count {
        let len = be_i32(raw, at)?;
        at += 4;
        if len < 0 {
            b.values().append(None)?;
        } else {
            let end = at + len as usize;
            let item = raw
                .get(at..end)
                .ok_or_else(|| DecodeError("array: truncated element".into()))?;
            b.values().append(Some(item))?;
            at = end;
        }
    }
    b.append(true);
    Ok(())
}

/// Builds record batches row by row from binary values.
pub struct BatchAssembler {
    schema: SchemaRef,
    pub columns: Vec<ColumnDecoder>,
    rows: usize,
    bytes: usize,
}

impl BatchAssembler {
    pub fn new(schema: SchemaRef, columns: Vec<ColumnDecoder>) -> Self {
        BatchAssembler {
            schema,
            columns,
            rows: 0,
            bytes: 0,
        }
    }

    /// Records that a row of `bytes` wire bytes was appended to every column.
    pub fn row_done(&mut self, bytes: usize) {
        self.rows += 1;
        self.bytes += bytes;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes the rows appended so far as a batch (None when empty).
    pub fn take(&mut self) -> Result<Option<RecordBatch>, arrow::error::ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish_array()).collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_text_keeps_every_digit() {
        // 12345678.9012 = [1234, 5678, 9012] weight 1
        let raw = numeric(1, 0, 4, &[1234, 5678, 9012]);
        assert_eq!(Numeric::parse(&raw).unwrap().to_text(), "12345678.9012");
        // -0.00012 = [1, 2000] weight -1? 0.0001 2000 -> digits [1,2000] weight -1
        let raw = numeric(-1, 0x4000, 5, &[1, 2000]);
        assert_eq!(Numeric::parse(&raw).unwrap().to_text(), "-0.00012");
        // 10000 = [1] weight 1
        let raw = numeric(1, 0, 0, &[1]);
        assert_eq!(Numeric::parse(&raw).unwrap().to_text(), "10000");
        let raw = numeric(0, 0, 2, &[]);
        assert_eq!(Numeric::parse(&raw).unwrap().to_text(), "0.00");
        let raw = numeric(-3, 0, 12, &[5]);
        assert_eq!(Numeric::parse(&raw).unwrap().to_text(), "0.000000000005");
    }

    #[test]
    fn numeric_scales_to_decimal_exactly_or_refuses() {
        let raw = numeric(1, 0x4000, 4, &[1234, 5678, 9012]);
        let v = Numeric::parse(&raw).unwrap().to_scaled_i256(4).unwrap();
        assert_eq!(v.to_i128(), Some(-123456789012));
        let v = Numeric::parse(&raw).unwrap().to_scaled_i256(6).unwrap();
        assert_eq!(v.to_i128(), Some(-12345678901200));
        assert_eq!(
            Numeric::parse(&raw).unwrap().to_scaled_i128(6).unwrap(),
            -12345678901200
        );
        assert_eq!(
            Numeric::parse(&raw).unwrap().to_scaled_i128(4).unwrap(),
            -123456789012
        );
        assert!(Numeric::parse(&raw).unwrap().to_scaled_i128(2).is_err());
        let small = numeric(-1, 0, 2, &[500]); // 0.05
        assert_eq!(
            Numeric::parse(&small).unwrap().to_scaled_i128(2).unwrap(),
            5
        );
        assert!(Numeric::parse(&raw).unwrap().to_scaled_i256(2).is_err());
        let nan = numeric(0, 0xC000, 0, &[]);
        assert!(Numeric::parse(&nan).unwrap().to_scaled_i256(2).is_err());
    }
}
