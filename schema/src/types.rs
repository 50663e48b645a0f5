//! Engine-neutral column types as recorded in a plan. Each variant names one Arrow
//! representation, so a reviewer reading the plan knows exactly what readers will see,
//! and the executor builds the Arrow schema from the plan alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The type a column has in the output files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogicalType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    /// Unsigned integers (MySQL `UNSIGNED` columns; PostgreSQL `oid` is `uint32`).
    #[serde(rename = "uint8")]
    UInt8,
    #[serde(rename = "uint16")]
    UInt16,
    #[serde(rename = "uint32")]
    UInt32,
    #[serde(rename = "uint64")]
    UInt64,
    Float32,
    Float64,
    /// Exact decimal; Decimal128 up to 38 digits, Decimal256 above.
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// A decimal with no declared precision, kept digit for digit as text.
    DecimalText,
    Utf8,
    Binary,
    /// Days since 1970-01-01 (Arrow Date32).
    Date,
    /// Microseconds, no time zone (Arrow Timestamp(µs)).
    Timestamp,
    /// Microseconds in UTC (Arrow Timestamp(µs, "UTC")).
    TimestampUtc,
    /// Microseconds since midnight (Arrow Time64(µs)).
    Time,
    /// A signed span of microseconds (Arrow Duration(µs)); MySQL `TIME`, which may be
    /// negative or longer than a day.
    Duration,
    /// 16 bytes with the `arrow.uuid` extension (Parquet UUID).
    Uuid,
    /// UTF-8 text with the `arrow.json` extension (Parquet JSON).
    Json,
    /// One-dimensional array of the element type (Arrow List).
    List {
        element: Box<LogicalType>,
    },
    /// PostgreSQL `interval` as Arrow `Struct{months: Int32, days: Int32,
    /// microseconds: Int64}`: the three parts PostgreSQL keeps apart (a month is not 30
    /// days in date arithmetic), so nothing is lost and readers can compute with each.
    Interval,
}

impl LogicalType {
    /// Integer types a chunked export can split on (key bounds must fit in i64).
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            LogicalType::Int8
                | LogicalType::Int16
                | LogicalType::Int32
                | LogicalType::Int64
                | LogicalType::UInt8
                | LogicalType::UInt16
                | LogicalType::UInt32
                | LogicalType::UInt64
        )
    }

    /// Short human name used by `plan show`.
    pub fn display_name(&self) -> String {
        match self {
            LogicalType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            LogicalType::List { element } => format!("list<{}>", element.display_name()),
            LogicalType::Interval => "struct<months,days,microseconds>".to_owned(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("{other:?}")),
        }
    }
}
