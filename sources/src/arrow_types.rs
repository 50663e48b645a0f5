//! The one mapping from [`LogicalType`] to Arrow fields, shared by the decoders that
//! fill batches and the writers that declare file schemas, so the two cannot disagree.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_schema::extension::{Json, Uuid};
use rivet_schema::LogicalType;

/// Arrow data type of a logical type.
pub fn data_type(logical: &LogicalType) -> DataType {
    match logical {
        LogicalType::Boolean => DataType::Boolean,
        LogicalType::Int8 => DataType::Int8,
        LogicalType::Int16 => DataType::Int16,
        LogicalType::Int32 => DataType::Int32,
        LogicalType::Int64 => DataType::Int64,
        LogicalType::UInt8 => DataType::UInt8,
        LogicalType::UInt16 => DataType::UInt16,
        LogicalType::UInt32 => DataType::UInt32,
        LogicalType::UInt64 => DataType::UInt64,
        LogicalType::Float32 => DataType::Float32,
        LogicalType::Float64 => DataType::Float64,
        LogicalType::Decimal { precision, scale } if *precision <= 38 => {
            DataType::Decimal128(*precision, *scale)
        }
        LogicalType::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale),
        LogicalType::DecimalText | LogicalType::Utf8 | LogicalType::Json => DataType::Utf8,
        LogicalType::Binary => DataType::Binary,
        LogicalType::Date => DataType::Date32,
        LogicalType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        LogicalType::TimestampUtc => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        LogicalType::Time => DataType::Time64(TimeUnit::Microsecond),
        LogicalType::Duration => DataType::Duration(TimeUnit::Microsecond),
        LogicalType::Uuid => DataType::FixedSizeBinary(16),
        LogicalType::List { element } => DataType::List(Arc::new(field("item", element, true))),
    }
}

/// Whether values of this type can turn into NULL on the way out (PostgreSQL's
/// `infinity` dates and timestamps have no Arrow value; see docs/types.md).
pub fn may_be_nulled(logical: &LogicalType) -> bool {
    matches!(
        logical,
        LogicalType::Date | LogicalType::Timestamp | LogicalType::TimestampUtc
    )
}

/// Arrow field for a column, carrying canonical extension types for UUID and JSON.
pub fn field(name: &str, logical: &LogicalType, nullable: bool) -> Field {
    let f = Field::new(name, data_type(logical), nullable || may_be_nulled(logical));
    match logical {
        LogicalType::Uuid => f.with_extension_type(Uuid),
        LogicalType::Json => f.with_extension_type(Json::default()),
        _ => f,
    }
}

/// Arrow schema of a list of `(name, type, nullable)` columns.
pub fn schema<'a>(columns: impl IntoIterator<Item = (&'a str, &'a LogicalType, bool)>) -> Schema {
    Schema::new(
        columns
            .into_iter()
            .map(|(n, t, nullable)| field(n, t, nullable))
            .collect::<Vec<_>>(),
    )
}
