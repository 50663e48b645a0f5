//! Encoding Arrow batches into one output file: Parquet with the plan's codec and
//! size-bounded row groups, or RFC 4180 CSV (optionally gzip/zstd). Bytes pass through
//! a hashing writer so the checksum recorded in the manifest is of exactly what was
//! written, without reading the file back.
//!
//! Why one long file: the Parquet and CSV paths share the hashing writer, the row-group
//! sizing and the finish/abort protocol; split apart, each half would need the other's
//! internals. About 150 of its lines are tests.

use std::io::{self, Write};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rivet_schema::config::{Compression, Format, MetaColumn};
use sha2::{Digest, Sha256};

use crate::dest::FileSink;

/// Why an output file could not be written: the destination refused the bytes (a full
/// disk, a permission, a network failure: what to fix is there), or the data could not
/// be encoded (what to fix is in the data or the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    Sink(String),
    Encode(String),
}

impl WriteError {
    /// The failure of an encoder whose sink may have failed underneath it: the sink's
    /// own error wins, because the encoder's message about it is second-hand.
    fn of(sink_error: Option<&String>, encoder: impl std::fmt::Display) -> WriteError {
        match sink_error {
            Some(e) => WriteError::Sink(e.clone()),
            None => WriteError::Encode(encoder.to_string()),
        }
    }
}

/// A writer that counts and hashes every byte on its way to a [`FileSink`].
pub struct HashingWriter {
    inner: Box<dyn FileSink>,
    hasher: Sha256,
    bytes: u64,
    /// The first error the sink returned, as the OS or store said it.
    sink_error: Option<String>,
}

impl HashingWriter {
    pub fn new(sink: Box<dyn FileSink>) -> Self {
        HashingWriter {
            inner: sink,
            hasher: Sha256::new(),
            bytes: 0,
            sink_error: None,
        }
    }

    /// Finishes the sink (fsync, or complete the upload) and returns (bytes, sha256 hex).
    pub fn finish(self) -> Result<(u64, String), WriteError> {
        self.inner
            .finish()
            .map_err(|e| WriteError::Sink(e.to_string()))?;
        Ok((self.bytes, hex::encode(self.hasher.finalize())))
    }

    fn record<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            self.sink_error.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf);
        let n = self.record(written)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.inner.flush();
        self.record(flushed)
    }
}

/// Encoder for one chunk's file.
pub enum ChunkWriter {
    Parquet(Box<ArrowWriter<HashingWriter>>),
    Csv(Box<CsvWriter>),
}

impl ChunkWriter {
    /// `dictionary_off` names the columns written without a Parquet dictionary.
    pub fn create(
        sink: Box<dyn FileSink>,
        schema: SchemaRef,
        format: Format,
        compression: Compression,
        row_group_bytes: u64,
        dictionary_off: &[&str],
    ) -> Result<Self, WriteError> {
        let out = HashingWriter::new(sink);
        match format {
            Format::Parquet => {
                let codec = match compression {
                    Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
                    Compression::Snappy => PqCompression::SNAPPY,
                    Compression::Gzip => PqCompression::GZIP(GzipLevel::default()),
                    Compression::Lz4 => PqCompression::LZ4_RAW,
                    Compression::None => PqCompression::UNCOMPRESSED,
                };
                let mut props = WriterProperties::builder()
                    .set_compression(codec)
                    .set_max_row_group_bytes(Some(row_group_bytes.max(1) as usize))
                    .set_created_by(format!("rivet {}", env!("CARGO_PKG_VERSION")));
                for name in dictionary_off {
                    props = props.set_column_dictionary_enabled(
                        parquet::schema::types::ColumnPath::from(*name),
                        false,
                    );
                }
                let props = props.build();
                let writer = ArrowWriter::try_new(out, schema, Some(props))
                    .map_err(|e| WriteError::Encode(e.to_string()))?;
                Ok(ChunkWriter::Parquet(Box::new(writer)))
            }
            Format::Csv => Ok(ChunkWriter::Csv(Box::new(
                CsvWriter::new(out, schema, compression).map_err(WriteError::Encode)?,
            ))),
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        match self {
            ChunkWriter::Parquet(writer) => writer
                .write(batch)
                .map_err(|e| WriteError::of(writer.inner().sink_error.as_ref(), e)),
            ChunkWriter::Csv(w) => w
                .write(batch)
                .map_err(|e| WriteError::of(w.out.hashing().sink_error.as_ref(), e)),
        }
    }

    /// Bytes the file will have if finished now (approximate: what was written plus
    /// the row group or compressor buffer in progress).
    pub fn size_estimate(&self) -> u64 {
        match self {
            ChunkWriter::Parquet(writer) => {
                (writer.bytes_written() + writer.in_progress_size()) as u64
            }
            ChunkWriter::Csv(w) => w.out.written(),
        }
    }

    /// Finishes the file; returns (bytes, sha256).
    pub fn finish(self) -> Result<(u64, String), WriteError> {
        match self {
            ChunkWriter::Parquet(mut writer) => {
                // Flush first, so a failing sink is still reachable for its own error.
                writer
                    .flush()
                    .map_err(|e| WriteError::of(writer.inner().sink_error.as_ref(), e))?;
                let out = writer
                    .into_inner()
                    .map_err(|e| WriteError::Encode(e.to_string()))?;
                out.finish()
            }
            ChunkWriter::Csv(w) => w.finish(),
        }
    }
}

enum CsvSink {
    Plain(HashingWriter),
    Gzip(flate2::write::GzEncoder<HashingWriter>),
    Zstd(zstd::Encoder<'static, HashingWriter>),
}

impl CsvSink {
    fn hashing(&self) -> &HashingWriter {
        match self {
            CsvSink::Plain(w) => w,
            CsvSink::Gzip(w) => w.get_ref(),
            CsvSink::Zstd(w) => w.get_ref(),
        }
    }

    fn written(&self) -> u64 {
        self.hashing().bytes
    }
}

impl Write for CsvSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            CsvSink::Plain(w) => w.write(buf),
            CsvSink::Gzip(w) => w.write(buf),
            CsvSink::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            CsvSink::Plain(w) => w.flush(),
            CsvSink::Gzip(w) => w.flush(),
            CsvSink::Zstd(w) => w.flush(),
        }
    }
}

/// RFC 4180 CSV: a header row, CRLF-free `\n` record ends, fields quoted when they hold
/// a comma, quote, CR or LF, or are empty strings; SQL NULL is an empty unquoted field,
/// so NULL and `""` stay distinguishable. Lists and structs are written as JSON. See
/// docs/types.md for value rendering.
pub struct CsvWriter {
    out: CsvSink,
    /// Per column: rendered by Rivet ([`render`]) rather than by Arrow's formatter.
    custom: Vec<bool>,
    schema: SchemaRef,
    line: String,
}

/// Whether a field's values are rendered by [`render`]: every type whose text Rivet
/// defines itself (temporal types, UUIDs, lists, structs).
fn custom_rendered(field: &Field) -> bool {
    field.extension_type_name() == Some("arrow.uuid")
        || matches!(
            field.data_type(),
            DataType::Date32
                | DataType::Timestamp(..)
                | DataType::Time64(_)
                | DataType::Duration(_)
                | DataType::List(_)
                | DataType::Struct(_)
        )
}

impl CsvWriter {
    fn new(
        out: HashingWriter,
        schema: SchemaRef,
        compression: Compression,
    ) -> Result<Self, String> {
        let mut out = match compression {
            Compression::Gzip => CsvSink::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )),
            Compression::Zstd => {
                CsvSink::Zstd(zstd::Encoder::new(out, 3).map_err(|e| e.to_string())?)
            }
            _ => CsvSink::Plain(out),
        };
        let header: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| csv_field(f.name()))
            .collect();
        writeln!(out, "{}", header.join(",")).map_err(|e| e.to_string())?;
        let custom = schema.fields().iter().map(|f| custom_rendered(f)).collect();
        Ok(CsvWriter {
            out,
            custom,
            schema,
            line: String::new(),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), arrow::error::ArrowError> {
        let options = FormatOptions::default()
            .with_null("")
            .with_display_error(false);
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let fail = |field: &Field, row: usize, detail: String| {
            arrow::error::ArrowError::ExternalError(
                format!(
                    "column `{}`, row {} of a batch: cannot write the value as CSV text: {detail}",
                    field.name(),
                    row + 1
                )
                .into(),
            )
        };
        let mut value = String::new();
        for row in 0..batch.num_rows() {
            self.line.clear();
            for (i, column) in batch.columns().iter().enumerate() {
                if i > 0 {
                    self.line.push(',');
                }
                if column.is_null(row) {
                    continue;
                }
                value.clear();
                let field = self.schema.field(i);
                if self.custom[i] {
                    render(column.as_ref(), field, row, false, &mut value)
                        .map_err(|d| fail(field, row, d))?;
                } else {
                    use std::fmt::Write as _;
                    write!(value, "{}", formatters[i].value(row)).map_err(|_| {
                        fail(field, row, "Arrow's formatter cannot render it".into())
                    })?;
                }
                self.line.push_str(&csv_field(&value));
            }
            self.line.push('\n');
            self.out
                .write_all(self.line.as_bytes())
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e)))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(u64, String), WriteError> {
        // A compressor's trailer goes through the hashing writer, which keeps the sink's
        // own error if writing it fails.
        let sink_error = |w: &HashingWriter, e: io::Error| WriteError::of(w.sink_error.as_ref(), e);
        let inner = match self.out {
            CsvSink::Plain(w) => w,
            CsvSink::Gzip(mut w) => {
                w.try_finish().map_err(|e| sink_error(w.get_ref(), e))?;
                w.finish().map_err(|e| WriteError::Sink(e.to_string()))?
            }
            CsvSink::Zstd(mut w) => {
                w.do_finish().map_err(|e| sink_error(w.get_ref(), e))?;
                w.finish().map_err(|e| WriteError::Sink(e.to_string()))?
            }
        };
        inner.finish()
    }
}

/// Writes one value's CSV text to `out`; `json` is true inside a list or struct, where
/// the value is a JSON value (strings quoted and escaped, NULL as `null`). Scalars at
/// the top level follow the plain rules of docs/types.md.
fn render(
    array: &dyn Array,
    field: &Field,
    row: usize,
    json: bool,
    out: &mut String,
) -> Result<(), String> {
    use arrow::array::AsArray;
    use arrow::datatypes::*;
    use std::fmt::Write as _;
    if array.is_null(row) {
        if json {
            out.push_str("null");
        }
        return Ok(());
    }
    // A JSON string of `text` inside lists and structs, the bare text outside.
    let string = |out: &mut String, text: &str| {
        if json {
            out.push_str(&serde_json::Value::from(text).to_string());
        } else {
            out.push_str(text);
        }
    };
    match array.data_type() {
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Int8 => push(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => push(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => push(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => push(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => push(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => push(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => push(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => push(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 | DataType::Float64 => {
            let text = arrow::util::display::array_value_to_string(array, row)
                .map_err(|e| e.to_string())?;
            // JSON has no NaN or infinities: those are strings there.
            if json && !array_value_is_finite(array, row) {
                string(out, &text)
            } else {
                out.push_str(&text)
            }
        }
        DataType::Decimal128(..) => {
            let a = array.as_primitive::<Decimal128Type>();
            out.push_str(&a.value_as_string(row))
        }
        DataType::Decimal256(..) => {
            let a = array.as_primitive::<Decimal256Type>();
            out.push_str(&a.value_as_string(row))
        }
        DataType::Utf8 if json && field.extension_type_name() == Some("arrow.json") => {
            // Already JSON: embedded as a value, not as a string.
            out.push_str(array.as_string::<i32>().value(row))
        }
        DataType::Utf8 => string(out, array.as_string::<i32>().value(row)),
        DataType::Binary => string(out, &hex::encode(array.as_binary::<i32>().value(row))),
        DataType::FixedSizeBinary(_) => {
            let bytes = array.as_fixed_size_binary().value(row);
            if field.extension_type_name() == Some("arrow.uuid") {
                string(out, &format_uuid(bytes))
            } else {
                string(out, &hex::encode(bytes))
            }
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            string(out, &date_text(days))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let us = array.as_primitive::<TimestampMicrosecondType>().value(row);
            string(out, &timestamp_text(us, tz.is_some()))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let us = array.as_primitive::<Time64MicrosecondType>().value(row);
            if !(0..=86_400_000_000).contains(&us) {
                return Err(format!("{us} µs is not a time of day"));
            }
            string(out, &clock_text(us, 2))
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            let us = array.as_primitive::<DurationMicrosecondType>().value(row);
            let sign = if us < 0 { "-" } else { "" };
            string(
                out,
                &format!("{sign}{}", clock_text(us.unsigned_abs() as i64, 2)),
            )
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            out.push('[');
            for k in 0..values.len() {
                if k > 0 {
                    out.push(',');
                }
                render(values.as_ref(), item, k, true, out)?;
            }
            out.push(']');
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.push('{');
            for (k, (f, child)) in fields.iter().zip(s.columns()).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", serde_json::Value::from(f.name().as_str()));
                render(child.as_ref(), f, row, true, out)?;
            }
            out.push('}');
        }
        other => return Err(format!("no CSV rendering for Arrow type {other}")),
    }
    Ok(())
}

fn push(out: &mut String, v: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = write!(out, "{v}");
}

fn array_value_is_finite(array: &dyn Array, row: usize) -> bool {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type};
    match array.data_type() {
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).is_finite(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).is_finite(),
        _ => true,
    }
}

/// Year, month and day of days since 1970-01-01 (Howard Hinnant's algorithm), valid
/// for every i64 day count Rivet writes.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD`; astronomical years with a sign outside 0000..=9999 (`-0001`,
/// `+10000`); the clamped infinities (`i32::MAX`, `-i32::MAX`) as `infinity` and
/// `-infinity`, which is what PostgreSQL reads back.
fn date_text(days: i32) -> String {
    match days {
        i32::MAX => return "infinity".into(),
        d if d == -i32::MAX => return "-infinity".into(),
        _ => {}
    }
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{}-{m:02}-{d:02}", year_text(y))
}

fn year_text(y: i64) -> String {
    if y < 0 {
        format!("-{:04}", -y)
    } else if y > 9999 {
        format!("+{y}")
    } else {
        format!("{y:04}")
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]`, with `Z` for UTC instants; the clamped
/// infinities as `infinity` / `-infinity`.
fn timestamp_text(us: i64, utc: bool) -> String {
    match us {
        i64::MAX => return "infinity".into(),
        u if u == -i64::MAX => return "-infinity".into(),
        _ => {}
    }
    let days = us.div_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}-{m:02}-{d:02}T{}{}",
        year_text(y),
        clock_text(us.rem_euclid(86_400_000_000), 2),
        if utc { "Z" } else { "" }
    )
}

/// `HH:MM:SS` (hours at least `width` digits, more when larger: MySQL's `838:59:59`),
/// then `.fff` for whole milliseconds or `.ffffff`, nothing when zero.
fn clock_text(us: i64, width: usize) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let mut s = format!(
        "{:0width$}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        if frac % 1000 == 0 {
            s.push_str(&format!(".{:03}", frac / 1000));
        } else {
            s.push_str(&format!(".{frac:06}"));
        }
    }
    s
}

/// Quotes one CSV field when RFC 4180 requires it (and always for the empty string).
fn csv_field(v: &str) -> String {
    if v.is_empty() {
        return "\"\"".into();
    }
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn format_uuid(b: &[u8]) -> String {
    let h = hex::encode(b);
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Arrow schema of a planned export: its columns, then its meta columns.
pub fn export_schema(export: &rivet_schema::plan::PlannedExport) -> SchemaRef {
    // A `cdc` export's rows are changes: every table column may be NULL (a truncate
    // has no row), then the four change columns.
    let cdc = export.cdc.is_some();
    let change_columns = if cdc {
        rivet_schema::plan::cdc_columns().to_vec()
    } else {
        Vec::new()
    };
    let base = rivet_sources::arrow_types::schema(
        export
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    &c.logical,
                    c.wire_type.as_str(),
                    c.nullable || cdc,
                )
            })
            .chain(change_columns.iter().map(|(name, wire, logical)| {
                let nullable = *name == rivet_schema::plan::CDC_COLUMNS[3]
                    && export
                        .cdc
                        .as_ref()
                        .is_some_and(rivet_schema::plan::PlannedCdc::txid_nullable);
                (*name, logical, *wire, nullable)
            })),
    );
    if export.meta_columns.is_empty() {
        return Arc::new(base);
    }
    let mut fields: Vec<arrow::datatypes::FieldRef> = base.fields().iter().cloned().collect();
    for m in &export.meta_columns {
        let data_type = match m {
            MetaColumn::ExportedAt => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            MetaColumn::PlanDigest | MetaColumn::ChunkId => DataType::Utf8,
        };
        fields.push(Arc::new(Field::new(m.column_name(), data_type, false)));
    }
    Arc::new(Schema::new(fields))
}

/// The values of an export's meta columns for one chunk.
pub struct MetaValues {
    pub exported_at_us: i64,
    pub plan_digest: String,
    pub chunk_id: String,
}

/// Appends the meta columns to a batch read from the source.
pub fn with_meta(
    batch: RecordBatch,
    schema: &SchemaRef,
    meta: &[MetaColumn],
    values: &MetaValues,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if meta.is_empty() {
        return Ok(batch);
    }
    let n = batch.num_rows();
    let mut columns = batch.columns().to_vec();
    for m in meta {
        columns.push(match m {
            MetaColumn::ExportedAt => Arc::new(
                TimestampMicrosecondArray::from_value(values.exported_at_us, n)
                    .with_timezone("UTC"),
            ) as ArrayRef,
            MetaColumn::PlanDigest => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                values.plan_digest.as_str(),
                n,
            ))),
            MetaColumn::ChunkId => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                values.chunk_id.as_str(),
                n,
            ))),
        });
    }
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivet_schema::LogicalType;

    /// The CSV text of each row of one column of `logical` built from `array`.
    fn csv_of(logical: &LogicalType, array: ArrayRef) -> Vec<String> {
        let field = rivet_sources::arrow_types::field("c", logical, "", true);
        (0..array.len())
            .map(|row| {
                let mut out = String::new();
                if !array.is_null(row) {
                    render(array.as_ref(), &field, row, false, &mut out).unwrap();
                }
                out
            })
            .collect()
    }

    #[test]
    fn lists_are_json_that_reads_back_with_every_element_intact() {
        use arrow::array::{ListBuilder, StringBuilder};
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("a,b");
        b.values().append_value("c");
        b.append(true);
        b.values().append_value("");
        b.values().append_null();
        b.append(true);
        b.values().append_value("say \"hi\"\nline\\ é");
        b.append(true);
        b.append(true); // empty list
        b.append_null();
        let text = LogicalType::List {
            element: Box::new(LogicalType::Utf8),
        };
        let got = csv_of(&text, Arc::new(b.finish()));
        assert_eq!(
            got,
            vec![
                r#"["a,b","c"]"#,
                r#"["",null]"#,
                r#"["say \"hi\"\nline\\ é"]"#,
                "[]",
                ""
            ]
        );
        let back: Vec<Option<String>> = serde_json::from_str(&got[2]).unwrap();
        assert_eq!(back, vec![Some("say \"hi\"\nline\\ é".to_owned())]);
    }

    #[test]
    fn uuids_in_lists_are_dashed_and_structs_are_json_objects() {
        use arrow::array::{
            FixedSizeBinaryBuilder, Int32Array, Int64Array, ListBuilder, StructArray,
        };
        let uuid = LogicalType::List {
            element: Box::new(LogicalType::Uuid),
        };
        let field = rivet_sources::arrow_types::field("item", &LogicalType::Uuid, "", true);
        let mut b = ListBuilder::new(FixedSizeBinaryBuilder::new(16)).with_field(Arc::new(field));
        b.values().append_value([0xa0u8; 16]).unwrap();
        b.values().append_null();
        b.append(true);
        assert_eq!(
            csv_of(&uuid, Arc::new(b.finish())),
            vec![r#"["a0a0a0a0-a0a0-a0a0-a0a0-a0a0a0a0a0a0",null]"#]
        );
        let interval = StructArray::new(
            rivet_sources::arrow_types::interval_fields(),
            vec![
                Arc::new(Int32Array::from(vec![-14, 0])),
                Arc::new(Int32Array::from(vec![3, 0])),
                Arc::new(Int64Array::from(vec![-1, 0])),
            ],
            Some(vec![true, false].into()),
        );
        assert_eq!(
            csv_of(&LogicalType::Interval, Arc::new(interval)),
            vec![r#"{"months":-14,"days":3,"microseconds":-1}"#, ""]
        );
    }

    #[test]
    fn temporal_values_render_everywhere_arrow_cannot_and_infinity_is_a_word() {
        use arrow::array::{
            Date32Array, DurationMicrosecondArray, Time64MicrosecondArray,
            TimestampMicrosecondArray,
        };
        assert_eq!(
            csv_of(
                &LogicalType::Time,
                Arc::new(Time64MicrosecondArray::from(vec![
                    86_400_000_000,
                    1_500_000,
                    1
                ]))
            ),
            vec!["24:00:00", "00:00:01.500", "00:00:00.000001"]
        );
        assert_eq!(
            csv_of(
                &LogicalType::Duration,
                Arc::new(DurationMicrosecondArray::from(vec![
                    86_399_000_000,
                    -((838 * 3600 + 59 * 60 + 59) * 1_000_000),
                    -1
                ]))
            ),
            vec!["23:59:59", "-838:59:59", "-00:00:00.000001"]
        );
        assert_eq!(
            csv_of(
                &LogicalType::Date,
                Arc::new(Date32Array::from(vec![
                    i32::MAX,
                    -i32::MAX,
                    0,
                    -719_163,
                    2_145_042_905,
                    i32::MIN
                ]))
            ),
            vec![
                "infinity",
                "-infinity",
                "1970-01-01",
                "0000-12-31",
                "+5874897-12-31",
                "-5877641-06-23"
            ]
        );
        assert_eq!(
            csv_of(
                &LogicalType::TimestampUtc,
                Arc::new(
                    TimestampMicrosecondArray::from(vec![i64::MAX, -i64::MAX, -1, 9_000])
                        .with_timezone("UTC")
                )
            ),
            vec![
                "infinity",
                "-infinity",
                "1969-12-31T23:59:59.999999Z",
                "1970-01-01T00:00:00.009Z"
            ]
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed_and_empty_strings_always() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "\"\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(
            format_uuid(&[0u8; 16]),
            "00000000-0000-0000-0000-000000000000"
        );
    }
}
