//! Arrow column builders and batch cutting shared by every engine. Each engine's decoder
//! converts its driver's or wire format's values and appends them to a [`Col`]; this
//! module owns how a column's builder is made from its [`LogicalType`] (lists and the
//! interval struct included), and when a batch is cut and handed to the sink, so the
//! engines cannot drift apart on either. PostgreSQL decides per COPY message or cursor
//! fetch ([`Batcher::count`] then [`Batcher::cut`]); the row-at-a-time engines per row
//! ([`Batcher::row`]).

use std::any::Any;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Decimal256Builder, DurationMicrosecondBuilder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListBuilder,
    NullBufferBuilder, StringBuilder, StructArray, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use rivet_schema::LogicalType;

use crate::error::SourceError;
use crate::source::{ReadFailure, SinkClosed};
use crate::ChunkRead;

/// Builder of the interval struct (`months`, `days`, `microseconds`): three child
/// builders and the struct's own validity.
#[derive(Debug)]
pub(crate) struct IntervalBuilder {
    months: Int32Builder,
    days: Int32Builder,
    micros: Int64Builder,
    nulls: NullBufferBuilder,
}

impl IntervalBuilder {
    fn new() -> Self {
        IntervalBuilder {
            months: Int32Builder::new(),
            days: Int32Builder::new(),
            micros: Int64Builder::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append_value(&mut self, months: i32, days: i32, micros: i64) {
        self.months.append_value(months);
        self.days.append_value(days);
        self.micros.append_value(micros);
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        self.months.append_value(0);
        self.days.append_value(0);
        self.micros.append_value(0);
        self.nulls.append_null();
    }

    fn len(&self) -> usize {
        self.months.len()
    }

    fn finish(&mut self) -> ArrayRef {
        Arc::new(StructArray::new(
            crate::arrow_types::interval_fields(),
            vec![
                Arc::new(self.months.finish()),
                Arc::new(self.days.finish()),
                Arc::new(self.micros.finish()),
            ],
            self.nulls.finish(),
        ))
    }

    fn finish_cloned(&self) -> ArrayRef {
        Arc::new(StructArray::new(
            crate::arrow_types::interval_fields(),
            vec![
                Arc::new(self.months.finish_cloned()),
                Arc::new(self.days.finish_cloned()),
                Arc::new(self.micros.finish_cloned()),
            ],
            self.nulls.finish_cloned(),
        ))
    }
}

/// One output column's Arrow builder, typed by the column's [`LogicalType`].
#[derive(Debug)]
pub(crate) enum Col {
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
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Time(Time64MicrosecondBuilder),
    Dur(DurationMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Interval(Box<IntervalBuilder>),
    /// A list whose elements are built by a nested [`Col`].
    List(Box<ListBuilder<Col>>),
}

impl Col {
    /// The builder for a logical type.
    pub(crate) fn new(logical: &LogicalType) -> Result<Self, String> {
        Ok(match logical {
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
            LogicalType::Binary => Col::Bin(BinaryBuilder::new()),
            LogicalType::Date => Col::Date(Date32Builder::new()),
            LogicalType::Timestamp => Col::Ts(TimestampMicrosecondBuilder::new(), None),
            LogicalType::TimestampUtc => Col::Ts(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                Some("UTC".into()),
            ),
            LogicalType::Time => Col::Time(Time64MicrosecondBuilder::new()),
            LogicalType::Duration => Col::Dur(DurationMicrosecondBuilder::new()),
            LogicalType::Uuid => Col::Uuid(FixedSizeBinaryBuilder::new(16)),
            LogicalType::Interval => Col::Interval(Box::new(IntervalBuilder::new())),
            LogicalType::List { element } => {
                let item = crate::arrow_types::field("item", element, "", true);
                Col::List(Box::new(
                    ListBuilder::new(Col::new(element)?).with_field(Arc::new(item)),
                ))
            }
        })
    }

    fn simple(&mut self) -> Option<&mut dyn ArrayBuilder> {
        Some(match self {
            Col::Bool(b) => b,
            Col::I8(b) => b,
            Col::I16(b) => b,
            Col::I32(b) => b,
            Col::I64(b) => b,
            Col::U8(b) => b,
            Col::U16(b) => b,
            Col::U32(b) => b,
            Col::U64(b) => b,
            Col::F32(b) => b,
            Col::F64(b) => b,
            Col::Utf8(b) => b,
            Col::Bin(b) => b,
            Col::Date(b) => b,
            Col::Time(b) => b,
            Col::Dur(b) => b,
            Col::Uuid(b) => b,
            Col::List(b) => b.as_mut(),
            Col::Dec128(..) | Col::Dec256(..) | Col::Ts(..) | Col::Interval(_) => return None,
        })
    }

    pub(crate) fn append_null(&mut self) {
        match self {
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
            Col::Bin(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b, _) => b.append_null(),
            Col::Time(b) => b.append_null(),
            Col::Dur(b) => b.append_null(),
            Col::Uuid(b) => b.append_null(),
            Col::Interval(b) => b.append_null(),
            Col::List(b) => b.append_null(),
        }
    }

    /// Takes the column's values so far as an array (precision, scale and time zone
    /// applied), leaving the builder empty.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
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
            Col::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Col::Interval(b) => b.finish(),
            other => other
                .simple()
                .expect("every other builder is a plain arrow builder")
                .finish(),
        }
    }

    fn finish_cloned_array(&self) -> ArrayRef {
        match self {
            Col::Dec128(b, p, s) => Arc::new(
                b.finish_cloned()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Col::Dec256(b, p, s) => Arc::new(
                b.finish_cloned()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the builder was made"),
            ),
            Col::Ts(b, tz) => Arc::new(b.finish_cloned().with_timezone_opt(tz.clone())),
            Col::Interval(b) => b.finish_cloned(),
            Col::Bool(b) => ArrayBuilder::finish_cloned(b),
            Col::I8(b) => ArrayBuilder::finish_cloned(b),
            Col::I16(b) => ArrayBuilder::finish_cloned(b),
            Col::I32(b) => ArrayBuilder::finish_cloned(b),
            Col::I64(b) => ArrayBuilder::finish_cloned(b),
            Col::U8(b) => ArrayBuilder::finish_cloned(b),
            Col::U16(b) => ArrayBuilder::finish_cloned(b),
            Col::U32(b) => ArrayBuilder::finish_cloned(b),
            Col::U64(b) => ArrayBuilder::finish_cloned(b),
            Col::F32(b) => ArrayBuilder::finish_cloned(b),
            Col::F64(b) => ArrayBuilder::finish_cloned(b),
            Col::Utf8(b) => ArrayBuilder::finish_cloned(b),
            Col::Bin(b) => ArrayBuilder::finish_cloned(b),
            Col::Date(b) => ArrayBuilder::finish_cloned(b),
            Col::Time(b) => ArrayBuilder::finish_cloned(b),
            Col::Dur(b) => ArrayBuilder::finish_cloned(b),
            Col::Uuid(b) => ArrayBuilder::finish_cloned(b),
            Col::List(b) => ArrayBuilder::finish_cloned(b.as_ref()),
        }
    }

    fn count(&self) -> usize {
        match self {
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
            Col::Bin(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Ts(b, _) => b.len(),
            Col::Time(b) => b.len(),
            Col::Dur(b) => b.len(),
            Col::Uuid(b) => b.len(),
            Col::Interval(b) => b.len(),
            Col::List(b) => b.len(),
        }
    }
}

/// A [`Col`] is itself an Arrow builder, so a `ListBuilder<Col>` nests any element
/// type (lists of lists included) through the same model.
impl ArrayBuilder for Col {
    fn len(&self) -> usize {
        self.count()
    }
    fn finish(&mut self) -> ArrayRef {
        Col::finish(self)
    }
    fn finish_cloned(&self) -> ArrayRef {
        self.finish_cloned_array()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_box_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Anything that owns one column's [`Col`] (an engine's decoder wraps one with its
/// own per-column state).
pub(crate) trait HasCol {
    fn col_mut(&mut self) -> &mut Col;
}

impl HasCol for Col {
    fn col_mut(&mut self) -> &mut Col {
        self
    }
}

/// Counts rows and bytes of the batch being built and cuts it per the chunk's batch
/// limits and [`crate::BatchMemoryPolicy`].
pub(crate) struct Batcher<'a> {
    req: &'a ChunkRead,
    label: &'a str,
    schema: SchemaRef,
    rows: usize,
    bytes: usize,
    /// Rows read in the whole chunk.
    pub total_rows: u64,
    /// Batches that grew past the memory target.
    pub over_target: u64,
}

impl<'a> Batcher<'a> {
    /// What the read reports besides its batches: rows, values written as NULL per
    /// column (`nulled`, one count per requested column in order), batches over target.
    pub(crate) fn stats(&self, nulled: impl IntoIterator<Item = u64>) -> crate::ReadStats {
        crate::ReadStats {
            rows: self.total_rows,
            nulled_values: self
                .req
                .columns
                .iter()
                .zip(nulled)
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| (c.name.clone(), n))
                .collect(),
            batches_over_memory_target: self.over_target,
        }
    }

    pub(crate) fn new(req: &'a ChunkRead, label: &'a str) -> Self {
        let schema = Arc::new(crate::arrow_types::schema(req.columns.iter().map(|c| {
            (
                c.name.as_str(),
                &c.logical,
                c.wire_type.as_str(),
                c.nullable,
            )
        })));
        Batcher {
            req,
            label,
            schema,
            rows: 0,
            bytes: 0,
            total_rows: 0,
            over_target: 0,
        }
    }

    /// Records one decoded row of about `bytes` bytes and cuts a batch when it is time.
    pub(crate) fn row(
        &mut self,
        bytes: usize,
        cols: &mut [impl HasCol],
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<(), ReadFailure> {
        self.count(bytes);
        self.cut(false, cols, sink)
    }

    /// Records one decoded row of about `bytes` bytes without deciding on a cut (for
    /// engines that decide once per network message, see [`Batcher::cut`]).
    pub(crate) fn count(&mut self, bytes: usize) {
        self.rows += 1;
        self.bytes += bytes;
        self.total_rows += 1;
    }

    /// Hands over the last partial batch at the end of the chunk.
    pub(crate) fn flush(
        &mut self,
        cols: &mut [impl HasCol],
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<(), ReadFailure> {
        self.cut(true, cols, sink)
    }

    /// Cuts the batch built so far if the chunk's limits say so (always when `force`
    /// and it holds rows) and hands it to the sink.
    pub(crate) fn cut(
        &mut self,
        force: bool,
        cols: &mut [impl HasCol],
        sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    ) -> Result<(), ReadFailure> {
        let (cut, over) = self
            .req
            .on_batch_memory_exceeded
            .decide(self.req, self.rows, self.bytes, force, self.label)?;
        if cut {
            if over {
                self.over_target += 1;
            }
            let arrays: Vec<ArrayRef> = cols.iter_mut().map(|c| c.col_mut().finish()).collect();
            let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| {
                SourceError::Decode {
                    relation: self.label.to_owned(),
                    column: String::new(),
                    detail: e.to_string(),
                }
            })?;
            self.rows = 0;
            self.bytes = 0;
            sink(batch).map_err(|SinkClosed| ReadFailure::SinkClosed)?;
        }
        Ok(())
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(1900, 1, 1), -25_567);
    }

    #[test]
    fn builders_finish_with_their_declared_types() {
        let mut c = Col::new(&LogicalType::Decimal {
            precision: 10,
            scale: 4,
        })
        .unwrap();
        c.append_null();
        assert_eq!(ArrayBuilder::len(&c), 1);
        let a = c.finish();
        assert_eq!(
            a.data_type(),
            &arrow::datatypes::DataType::Decimal128(10, 4)
        );
        assert_eq!(ArrayBuilder::len(&c), 0);
        let mut t = Col::new(&LogicalType::TimestampUtc).unwrap();
        t.append_null();
        assert_eq!(
            t.finish().data_type(),
            &crate::arrow_types::data_type(&LogicalType::TimestampUtc)
        );
    }
}
