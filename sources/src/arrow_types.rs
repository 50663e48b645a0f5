//! The one mapping from [`LogicalType`] to Arrow fields, shared by the decoders that
//! fill batches and the writers that declare file schemas, so the two cannot disagree.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
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
        LogicalType::List { element } => DataType::List(Arc::new(field("item", element, "", true))),
        LogicalType::Interval => DataType::Struct(interval_fields()),
    }
}

/// The children of an interval struct: `months` (Int32), `days` (Int32) and
/// `microseconds` (Int64), never NULL themselves (the struct is NULL instead).
pub fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("microseconds", DataType::Int64, false),
    ])
}

/// Whether values of this type can turn into NULL on the way out even in a NOT NULL
/// column: dates and timestamps (PostgreSQL `infinity` under `infinity: null`, MySQL zero
/// dates) and PostgreSQL `numeric(p,s)` read as a decimal (`NaN`, `±Infinity`); see
/// docs/types.md. `wire_type` is the plan's wire type of the column.
pub fn may_be_nulled(logical: &LogicalType, wire_type: &str) -> bool {
    match logical {
        LogicalType::Date | LogicalType::Timestamp | LogicalType::TimestampUtc => true,
        LogicalType::Decimal { .. } => wire_type == "numeric",
        _ => false,
    }
}

/// Arrow field for a column, carrying canonical extension types for UUID and JSON.
pub fn field(name: &str, logical: &LogicalType, wire_type: &str, nullable: bool) -> Field {
    let nullable = nullable || may_be_nulled(logical, wire_type);
    let f = Field::new(name, data_type(logical), nullable);
    match logical {
        LogicalType::Uuid => f.with_extension_type(Uuid),
        LogicalType::Json => f.with_extension_type(Json::default()),
        _ => f,
    }
}

/// Arrow schema of a list of `(name, type, wire type, nullable)` columns.
pub fn schema<'a>(
    columns: impl IntoIterator<Item = (&'a str, &'a LogicalType, &'a str, bool)>,
) -> Schema {
    Schema::new(
        columns
            .into_iter()
            .map(|(n, t, w, nullable)| field(n, t, w, nullable))
            .collect::<Vec<_>>(),
    )
}
