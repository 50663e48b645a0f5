//! Decoding PostgreSQL's binary wire format straight into the shared Arrow builders
//! ([`crate::builders::Col`]). The same decoders serve `COPY … (FORMAT binary)` fields
//! and binary-format cursor rows, so there is one place where each type's bytes become
//! Arrow values.
//!
//! Why one long file: one decoder per PostgreSQL binary type, each a few lines, kept
//! side by side so a reader sees every type's wire format in one place; about 210 of its
//! lines are tests.

#[cfg(test)]
use arrow::array::ArrayRef;
use arrow::array::ListBuilder;
use arrow::datatypes::i256;
use rivet_schema::config::InfinityPolicy;
use rivet_schema::LogicalType;

use crate::builders::{Col, HasCol};

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
    Interval,
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
        "interval" => Wire::Interval,
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

/// One column's wire decoder feeding the shared [`Col`] builder model.
pub(crate) struct ColumnDecoder {
    wire: Wire,
    col: Col,
    /// `infinity: clamp` (true) or `infinity: null` (false).
    clamp: bool,
    /// Values written as NULL because the output type cannot hold them (infinity under
    /// `infinity: null`, numeric NaN/±Infinity in a decimal), array elements included.
    pub(crate) nulled: u64,
}

impl HasCol for ColumnDecoder {
    fn col_mut(&mut self) -> &mut Col {
        &mut self.col
    }
}

/// Whether a wire type can feed an output type (checked once per chunk, so a plan whose
/// wire and output types disagree fails before any row is read).
fn compatible(wire: &Wire, logical: &LogicalType) -> bool {
    match (wire, logical) {
        (Wire::Array(elem), LogicalType::List { element }) => compatible(elem, element),
        (Wire::Bool, LogicalType::Boolean)
        | (Wire::Int2, LogicalType::Int16)
        | (Wire::Int4, LogicalType::Int32)
        | (Wire::Int8, LogicalType::Int64)
        | (Wire::Oid, LogicalType::UInt32)
        | (Wire::Float4, LogicalType::Float32)
        | (Wire::Float8, LogicalType::Float64)
        | (Wire::Numeric, LogicalType::Decimal { .. } | LogicalType::DecimalText)
        | (Wire::Text, LogicalType::Utf8 | LogicalType::Json)
        | (Wire::Jsonb, LogicalType::Json)
        | (Wire::Bytea, LogicalType::Binary)
        | (Wire::Date, LogicalType::Date)
        | (Wire::Timestamp, LogicalType::Timestamp | LogicalType::TimestampUtc)
        | (Wire::Time, LogicalType::Time)
        | (Wire::Uuid, LogicalType::Uuid)
        | (Wire::Interval, LogicalType::Interval) => true,
        _ => false,
    }
}

impl ColumnDecoder {
    /// A decoder for a column whose wire type and output type were fixed at plan time.
    pub(crate) fn new(
        wire_type: &str,
        logical: &LogicalType,
        infinity: InfinityPolicy,
    ) -> DResult<Self> {
        let wire = wire_of(wire_type)?;
        if !compatible(&wire, logical) {
            return err(format!(
                "wire type `{wire_type}` cannot produce output type {}",
                logical.display_name()
            ));
        }
        Ok(ColumnDecoder {
            wire,
            col: Col::new(logical).map_err(DecodeError)?,
            clamp: infinity == InfinityPolicy::Clamp,
            nulled: 0,
        })
    }

    /// Appends one value (`None` is SQL NULL) in binary wire format.
    #[inline]
    pub(crate) fn append(&mut self, raw: Option<&[u8]>) -> DResult<()> {
        append_value(&self.wire, &mut self.col, raw, &mut self.nulled, self.clamp)
    }

    /// Takes the built array and resets the builder.
    #[cfg(test)]
    pub(crate) fn finish_array(&mut self) -> ArrayRef {
        self.col.finish()
    }
}

/// Decodes one binary value of wire type `wire` into `col`.
fn append_value(
    wire: &Wire,
    col: &mut Col,
    raw: Option<&[u8]>,
    nulled: &mut u64,
    clamp: bool,
) -> DResult<()> {
    let Some(raw) = raw else {
        col.append_null();
        return Ok(());
    };
    match col {
        Col::Bool(b) => b.append_value(fixed::<1>(raw, "bool")?[0] != 0),
        Col::I16(b) => b.append_value(i16::from_be_bytes(fixed(raw, "int2")?)),
        Col::I32(b) => b.append_value(i32::from_be_bytes(fixed(raw, "int4")?)),
        Col::I64(b) => b.append_value(i64::from_be_bytes(fixed(raw, "int8")?)),
        Col::U32(b) => b.append_value(u32::from_be_bytes(fixed(raw, "oid")?)),
        Col::F32(b) => b.append_value(f32::from_be_bytes(fixed(raw, "float4")?)),
        Col::F64(b) => b.append_value(f64::from_be_bytes(fixed(raw, "float8")?)),
        Col::Dec128(b, _, scale) => {
            let n = Numeric::parse(raw)?;
            if n.special().is_some() {
                *nulled += 1;
                b.append_null();
            } else {
                b.append_value(n.to_scaled_i128(*scale)?)
            }
        }
        Col::Dec256(b, _, scale) => {
            let n = Numeric::parse(raw)?;
            if n.special().is_some() {
                *nulled += 1;
                b.append_null();
            } else {
                b.append_value(n.to_scaled_i256(*scale)?)
            }
        }
        Col::Utf8(b) => match wire {
            Wire::Numeric => b.append_value(Numeric::parse(raw)?.to_text()),
            Wire::Jsonb => match raw.split_first() {
                Some((1, rest)) => b.append_value(utf8(rest)?),
                _ => return err("jsonb: unknown binary format version"),
            },
            _ => b.append_value(utf8(raw)?),
        },
        Col::Bin(b) => b.append_value(raw),
        Col::Date(b) => {
            let days = i32::from_be_bytes(fixed(raw, "date")?);
            match days {
                i32::MAX | i32::MIN if !clamp => {
                    *nulled += 1;
                    b.append_null();
                }
                // DuckDB's encoding of ±infinity: the largest value and its negation.
                i32::MAX => b.append_value(i32::MAX),
                i32::MIN => b.append_value(-i32::MAX),
                _ => b.append_value(
                    days.checked_add(PG_EPOCH_DAYS)
                        .ok_or_else(|| DecodeError("date out of range".into()))?,
                ),
            }
        }
        Col::Ts(b, _) => {
            let us = i64::from_be_bytes(fixed(raw, "timestamp")?);
            match us {
                i64::MAX | i64::MIN if !clamp => {
                    *nulled += 1;
                    b.append_null();
                }
                i64::MAX => b.append_value(i64::MAX),
                i64::MIN => b.append_value(-i64::MAX),
                _ => b.append_value(
                    us.checked_add(PG_EPOCH_MICROS)
                        .ok_or_else(|| DecodeError("timestamp out of range".into()))?,
                ),
            }
        }
        Col::Time(b) => b.append_value(i64::from_be_bytes(fixed(raw, "time")?)),
        Col::Uuid(b) => b
            .append_value(fixed::<16>(raw, "uuid")?)
            .map_err(|e| DecodeError(e.to_string()))?,
        Col::Interval(b) => {
            let v = fixed::<16>(raw, "interval")?;
            let micros = i64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
            let days = i32::from_be_bytes(v[8..12].try_into().expect("4 bytes"));
            let months = i32::from_be_bytes(v[12..16].try_into().expect("4 bytes"));
            b.append_value(months, days, micros);
        }
        Col::List(b) => {
            let Wire::Array(elem) = wire else {
                return err("list column without an array wire type");
            };
            append_array(elem, b, raw, nulled, clamp)?;
        }
        Col::I8(_) | Col::U8(_) | Col::U16(_) | Col::U64(_) | Col::Dur(_) => {
            return err("PostgreSQL sends no value of this output type")
        }
    }
    Ok(())
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
fn append_array(
    elem: &Wire,
    b: &mut ListBuilder<Col>,
    raw: &[u8],
    nulled: &mut u64,
    clamp: bool,
) -> DResult<()> {
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
                "a {n}-dimensional array value cannot be written as a list (the catalog does \
                 not record dimensions, so this is only seen while reading); export the \
                 column as text with a `query:` export selecting `\"col\"::text`"
            ))
        }
    };
    for _ in 0..count {
        let len = be_i32(raw, at)?;
        at += 4;
        if len < 0 {
            append_value(elem, b.values(), None, nulled, clamp)?;
        } else {
            let end = at + len as usize;
            let item = raw
                .get(at..end)
                .ok_or_else(|| DecodeError("array: truncated element".into()))?;
            append_value(elem, b.values(), Some(item), nulled, clamp)?;
            at = end;
        }
    }
    b.append(true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

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

    fn array(elem_oid: i32, items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(1i32.to_be_bytes());
        v.extend(1i32.to_be_bytes()); // has nulls
        v.extend(elem_oid.to_be_bytes());
        v.extend((items.len() as i32).to_be_bytes());
        v.extend(1i32.to_be_bytes());
        for item in items {
            match item {
                None => v.extend((-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend((b.len() as i32).to_be_bytes());
                    v.extend(*b);
                }
            }
        }
        v
    }

    #[test]
    fn infinity_is_clamped_to_duckdbs_encoding_or_nulled_and_counted() {
        use arrow::array::{AsArray, ListArray};
        use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
        let inf = i32::MAX.to_be_bytes();
        let ninf = i32::MIN.to_be_bytes();
        let mut d = ColumnDecoder::new("date", &LogicalType::Date, InfinityPolicy::Clamp).unwrap();
        for raw in [&inf[..], &ninf[..], &0i32.to_be_bytes()[..]] {
            d.append(Some(raw)).unwrap();
        }
        let a = d.finish_array();
        let a = a.as_primitive::<Date32Type>();
        assert_eq!(
            a.values().to_vec(),
            vec![i32::MAX, -i32::MAX, PG_EPOCH_DAYS]
        );
        assert_eq!(d.nulled, 0);
        let ts = LogicalType::TimestampUtc;
        let mut t = ColumnDecoder::new("timestamptz", &ts, InfinityPolicy::Null).unwrap();
        t.append(Some(&i64::MAX.to_be_bytes())).unwrap();
        t.append(Some(&0i64.to_be_bytes())).unwrap();
        let a = t.finish_array();
        let a = a.as_primitive::<TimestampMicrosecondType>();
        assert!(a.is_null(0));
        assert_eq!(a.value(1), PG_EPOCH_MICROS);
        assert_eq!(t.nulled, 1);
        // Inside arrays too, under both policies.
        let list = LogicalType::List {
            element: Box::new(LogicalType::Timestamp),
        };
        for (policy, nulled) in [(InfinityPolicy::Clamp, 0), (InfinityPolicy::Null, 2)] {
            let mut l = ColumnDecoder::new("timestamp[]", &list, policy).unwrap();
            let raw = array(
                1114,
                &[
                    Some(&i64::MAX.to_be_bytes()),
                    None,
                    Some(&i64::MIN.to_be_bytes()),
                ],
            );
            l.append(Some(&raw)).unwrap();
            assert_eq!(l.nulled, nulled);
            let a = l.finish_array();
            let items = a.as_any().downcast_ref::<ListArray>().unwrap().value(0);
            let items = items.as_primitive::<TimestampMicrosecondType>();
            assert!(items.is_null(1));
            match policy {
                InfinityPolicy::Clamp => {
                    assert_eq!((items.value(0), items.value(2)), (i64::MAX, -i64::MAX))
                }
                InfinityPolicy::Null => assert!(items.is_null(0) && items.is_null(2)),
            }
        }
    }

    #[test]
    fn numeric_specials_in_a_decimal_become_null_and_are_counted() {
        let dec = LogicalType::Decimal {
            precision: 10,
            scale: 2,
        };
        let mut d = ColumnDecoder::new("numeric", &dec, InfinityPolicy::Clamp).unwrap();
        for sign in [0xC000u16, 0xD000, 0xF000] {
            d.append(Some(&numeric(0, sign, 0, &[]))).unwrap();
        }
        d.append(Some(&numeric(0, 0, 2, &[12]))).unwrap();
        assert_eq!(d.nulled, 3);
        let a = d.finish_array();
        assert_eq!(a.null_count(), 3);
        // Unconstrained numeric keeps the words.
        let mut t = ColumnDecoder::new("numeric", &LogicalType::DecimalText, InfinityPolicy::Clamp)
            .unwrap();
        t.append(Some(&numeric(0, 0xF000, 0, &[]))).unwrap();
        let a = t.finish_array();
        use arrow::array::AsArray;
        assert_eq!(a.as_string::<i32>().value(0), "-Infinity");
    }

    #[test]
    fn intervals_decode_into_the_three_part_struct_also_inside_lists() {
        use arrow::array::{AsArray, ListArray, StructArray};
        use arrow::datatypes::{Int32Type, Int64Type};
        let mut raw = Vec::new();
        raw.extend((-3_600_000_001i64).to_be_bytes());
        raw.extend(40i32.to_be_bytes());
        raw.extend((-14i32).to_be_bytes());
        let mut d =
            ColumnDecoder::new("interval", &LogicalType::Interval, InfinityPolicy::Clamp).unwrap();
        d.append(Some(&raw)).unwrap();
        d.append(None).unwrap();
        let a = d.finish_array();
        let s = a.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(s.column(0).as_primitive::<Int32Type>().value(0), -14);
        assert_eq!(s.column(1).as_primitive::<Int32Type>().value(0), 40);
        assert_eq!(
            s.column(2).as_primitive::<Int64Type>().value(0),
            -3_600_000_001
        );
        assert!(s.is_null(1));
        let list = LogicalType::List {
            element: Box::new(LogicalType::Interval),
        };
        let mut l = ColumnDecoder::new("interval[]", &list, InfinityPolicy::Clamp).unwrap();
        l.append(Some(&array(1186, &[Some(&raw), None]))).unwrap();
        l.append(Some(&array(1186, &[]))).unwrap();
        let a = l.finish_array();
        let a = a.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(a.value_length(0), 2);
        assert_eq!(a.value_length(1), 0);
        assert_eq!(
            a.data_type(),
            &crate::arrow_types::data_type(&list),
            "the list carries the same item field as the file schema"
        );
    }

    #[test]
    fn multi_dimensional_arrays_fail_with_advice() {
        let list = LogicalType::List {
            element: Box::new(LogicalType::Int32),
        };
        let mut l = ColumnDecoder::new("int4[]", &list, InfinityPolicy::Clamp).unwrap();
        let mut raw = Vec::new();
        raw.extend(2i32.to_be_bytes());
        let e = l.append(Some(&raw)).unwrap_err();
        assert!(
            e.0.contains("2-dimensional") && e.0.contains("::text"),
            "{}",
            e.0
        );
        assert!(
            ColumnDecoder::new("int4", &LogicalType::Utf8, InfinityPolicy::Clamp).is_err(),
            "a plan whose wire and output types disagree is refused"
        );
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
