//! Encoding Arrow batches into one output file: Parquet with the plan's codec and
//! size-bounded row groups, or RFC 4180 CSV (optionally gzip/zstd). Bytes pass through
//! a hashing writer so the checksum recorded in the manifest is of exactly what was
//! written, without reading the file back.

use std::io::{self, Write};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeBinaryArray, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rivet_schema::config::{Compression, Format, MetaColumn};
use sha2::{Digest, Sha256};

use crate::dest::FileSink;

/// A writer that counts and hashes every byte on its way to a [`FileSink`].
pub struct HashingWriter {
    inner: Box<dyn FileSink>,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    pub fn new(sink: Box<dyn FileSink>) -> Self {
        HashingWriter {
            inner: sink,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Finishes the sink (fsync, or complete the upload) and returns (bytes, sha256 hex).
    pub fn finish(self) -> io::Result<(u64, String)> {
        self.inner.finish()?;
        Ok((self.bytes, hex::encode(self.hasher.finalize())))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
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
    ) -> Result<Self, String> {
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
                let writer =
                    ArrowWriter::try_new(out, schema, Some(props)).map_err(|e| e.to_string())?;
                Ok(ChunkWriter::Parquet(Box::new(writer)))
            }
            Format::Csv => Ok(ChunkWriter::Csv(Box::new(CsvWriter::new(
                out,
                schema,
                compression,
            )?))),
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            ChunkWriter::Parquet(writer) => writer.write(batch).map_err(|e| e.to_string()),
            ChunkWriter::Csv(w) => w.write(batch).map_err(|e| e.to_string()),
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
    pub fn finish(self) -> Result<(u64, String), String> {
        match self {
            ChunkWriter::Parquet(writer) => {
                let out = writer.into_inner().map_err(|e| e.to_string())?;
                out.finish().map_err(|e| e.to_string())
            }
            ChunkWriter::Csv(w) => w.finish().map_err(|e| e.to_string()),
        }
    }
}

enum CsvSink {
    Plain(HashingWriter),
    Gzip(flate2::write::GzEncoder<HashingWriter>),
    Zstd(zstd::Encoder<'static, HashingWriter>),
}

impl CsvSink {
    fn written(&self) -> u64 {
        match self {
            CsvSink::Plain(w) => w.bytes,
            CsvSink::Gzip(w) => w.get_ref().bytes,
            CsvSink::Zstd(w) => w.get_ref().bytes,
        }
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
/// so NULL and `""` stay distinguishable. See docs/types.md for value rendering.
pub struct CsvWriter {
    out: CsvSink,
    uuid_columns: Vec<bool>,
    line: String,
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
        let uuid_columns = schema
            .fields()
            .iter()
            .map(|f| f.extension_type_name() == Some("arrow.uuid"))
            .collect();
        Ok(CsvWriter {
            out,
            uuid_columns,
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
                if self.uuid_columns[i] {
                    let bytes = column
                        .as_any()
                        .downcast_ref::<FixedSizeBinaryArray>()
                        .map(|a| a.value(row))
                        .unwrap_or_default();
                    value.push_str(&format_uuid(bytes));
                } else {
                    use std::fmt::Write as _;
                    write!(value, "{}", formatters[i].value(row))
                        .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e)))?;
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

    fn finish(self) -> io::Result<(u64, String)> {
        let inner = match self.out {
            CsvSink::Plain(w) => w,
            CsvSink::Gzip(w) => w.finish()?,
            CsvSink::Zstd(w) => w.finish()?,
        };
        inner.finish()
    }
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
    let base = rivet_sources::arrow_types::schema(
        export
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.logical, c.nullable)),
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
