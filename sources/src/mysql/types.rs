//! Which MySQL/MariaDB types Rivet exports and as what, decided at plan time from
//! `information_schema` (tables) or from a prepared statement's column definitions
//! (queries). The `wire_type` recorded in the plan tells the reader how to turn the
//! binary-protocol value into Arrow.

use mysql::consts::{ColumnFlags, ColumnType};
use rivet_schema::LogicalType;

use super::{quote_ident, Flavor};
pub use crate::Resolved;
use crate::{ReadExpr, SourceColumn};

fn ok(wire: &str, logical: LogicalType) -> Resolved {
    Resolved::ok(wire, logical)
}

/// The server's own text for a type Rivet has no native mapping for (`CAST(… AS CHAR)`
/// in the connection's utf8mb4), which the type's input conversion reads back equal.
fn as_text() -> Resolved {
    Resolved::text("text", LogicalType::Utf8, ReadExpr::Cast("CHAR".into()))
}

/// A vector column's text (`[1,2.5,…]`): MariaDB 11.7+ `VEC_ToText`, MySQL 9
/// `VECTOR_TO_STRING`. Neither server version runs in the test environment (MariaDB
/// 10.11 has no vector type), so this mapping is tested offline only.
fn vector(flavor: Flavor) -> Resolved {
    Resolved::text(
        "text",
        LogicalType::Utf8,
        ReadExpr::Call(
            match flavor {
                Flavor::MariaDb => "VEC_ToText",
                Flavor::MySql => "VECTOR_TO_STRING",
            }
            .into(),
        ),
    )
}

const TEXT_CAST: &str = "CHAR";

/// The SELECT-list expression of a converted column.
pub fn select_expr(name: &str, read: &ReadExpr) -> String {
    let q = quote_ident(name);
    match read {
        ReadExpr::Cast(t) => format!("CAST({q} AS {t})"),
        ReadExpr::Call(f) | ReadExpr::Method(f) => format!("{f}({q})"),
        // Only SQL Server has sql_variant; the plain text cast is this engine's text.
        ReadExpr::VariantText => select_expr(name, &ReadExpr::Cast(TEXT_CAST.into())),
    }
}

/// `TINYINT(1)` as Boolean (the source's `tinyint1_as_boolean`): 0 is false, any
/// other value true, like MySQL's own `BOOL` and DuckDB's MySQL reader. None when the
/// column is not a signed or unsigned `TINYINT(1)`.
pub fn tinyint1_as_boolean(column: &SourceColumn) -> Option<Resolved> {
    let declared = column.declared_type.to_ascii_lowercase();
    let base = declared
        .strip_suffix(" unsigned")
        .unwrap_or(&declared)
        .trim();
    (base == "tinyint(1)").then(|| ok("int", LogicalType::Boolean))
}

fn decimal(precision: u32, scale: u32) -> Resolved {
    if precision == 0 || precision > 76 || scale > precision {
        return ok("decimal_text", LogicalType::DecimalText);
    }
    ok(
        "decimal",
        LogicalType::Decimal {
            precision: precision as u8,
            scale: scale as i8,
        },
    )
}

/// Integer type by storage size and signedness.
fn integer(bytes: u8, unsigned: bool) -> Resolved {
    let logical = match (bytes, unsigned) {
        (1, false) => LogicalType::Int8,
        (1, true) => LogicalType::UInt8,
        (2, false) => LogicalType::Int16,
        (2, true) => LogicalType::UInt16,
        (3 | 4, false) => LogicalType::Int32,
        (3 | 4, true) => LogicalType::UInt32,
        (_, false) => LogicalType::Int64,
        (_, true) => LogicalType::UInt64,
    };
    ok(if unsigned { "uint" } else { "int" }, logical)
}

/// Maps an `information_schema.COLUMNS` row. `is_json` is true for MariaDB's JSON
/// (a LONGTEXT with a `json_valid` check) as well as MySQL's JSON type.
pub fn from_catalog(
    flavor: Flavor,
    data_type: &str,
    column_type: &str,
    precision: Option<u64>,
    scale: Option<u64>,
    is_json: bool,
) -> Resolved {
    let unsigned = column_type.contains("unsigned");
    if is_json {
        return ok("text", LogicalType::Json);
    }
    match data_type {
        "tinyint" => integer(1, unsigned),
        "smallint" => integer(2, unsigned),
        "mediumint" => integer(3, unsigned),
        "int" | "integer" => integer(4, unsigned),
        "bigint" => integer(8, unsigned),
        "decimal" | "numeric" => decimal(precision.unwrap_or(0) as u32, scale.unwrap_or(0) as u32),
        "float" => ok("float", LogicalType::Float32),
        "double" | "real" => ok("double", LogicalType::Float64),
        "bit" if precision == Some(1) => ok("bit", LogicalType::Boolean),
        "bit" => ok("bit", LogicalType::UInt64),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            ok("text", LogicalType::Utf8)
        }
        "json" => ok("text", LogicalType::Json),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ok("bytes", LogicalType::Binary)
        }
        "date" => ok("date", LogicalType::Date),
        "datetime" => ok("datetime", LogicalType::Timestamp),
        "timestamp" => ok("datetime", LogicalType::TimestampUtc),
        "time" => ok("time", LogicalType::Duration),
        "year" => ok("int", LogicalType::Int16),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ok("geometry", LogicalType::Binary),
        // MariaDB 10.7+ UUID: sent as its 36-character text, written as the 16 bytes.
        "uuid" => ok("uuid_text", LogicalType::Uuid),
        "vector" => vector(flavor),
        // INET4, INET6 and any type Rivet does not know: the server's text.
        _ => as_text(),
    }
}

/// Character set id of binary strings in the protocol.
const BINARY_CHARSET: u16 = 63;

/// Maps a prepared statement's result column (query exports).
pub fn from_column(
    column_type: ColumnType,
    flags: ColumnFlags,
    length: u32,
    decimals: u8,
    charset: u16,
) -> Resolved {
    use ColumnType::*;
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = charset == BINARY_CHARSET;
    match column_type {
        MYSQL_TYPE_TINY => integer(1, unsigned),
        MYSQL_TYPE_SHORT => integer(2, unsigned),
        MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG => integer(4, unsigned),
        MYSQL_TYPE_LONGLONG => integer(8, unsigned),
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => {
            let sign = u32::from(!unsigned);
            let point = u32::from(decimals > 0);
            decimal(length.saturating_sub(sign + point), u32::from(decimals))
        }
        MYSQL_TYPE_FLOAT => ok("float", LogicalType::Float32),
        MYSQL_TYPE_DOUBLE => ok("double", LogicalType::Float64),
        MYSQL_TYPE_BIT if length == 1 => ok("bit", LogicalType::Boolean),
        MYSQL_TYPE_BIT => ok("bit", LogicalType::UInt64),
        MYSQL_TYPE_JSON => ok("text", LogicalType::Json),
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET => {
            if binary {
                ok("bytes", LogicalType::Binary)
            } else {
                ok("text", LogicalType::Utf8)
            }
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => ok("date", LogicalType::Date),
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => ok("datetime", LogicalType::Timestamp),
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => ok("datetime", LogicalType::TimestampUtc),
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => ok("time", LogicalType::Duration),
        MYSQL_TYPE_YEAR => ok("int", LogicalType::Int16),
        MYSQL_TYPE_GEOMETRY => ok("geometry", LogicalType::Binary),
        _ => as_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_map_by_size_sign_and_kind() {
        let m = |dt: &str, ct: &str| {
            from_catalog(Flavor::MariaDb, dt, ct, None, None, false)
                .logical
                .unwrap()
        };
        assert_eq!(m("tinyint", "tinyint(1)"), LogicalType::Int8);
        assert_eq!(m("tinyint", "tinyint(3) unsigned"), LogicalType::UInt8);
        assert_eq!(m("mediumint", "mediumint(9)"), LogicalType::Int32);
        assert_eq!(m("bigint", "bigint(20) unsigned"), LogicalType::UInt64);
        assert_eq!(m("timestamp", "timestamp(6)"), LogicalType::TimestampUtc);
        assert_eq!(m("time", "time(6)"), LogicalType::Duration);
        assert_eq!(m("set", "set('a','b')"), LogicalType::Utf8);
        assert_eq!(
            from_catalog(
                Flavor::MariaDb,
                "decimal",
                "decimal(50,10)",
                Some(50),
                Some(10),
                false
            )
            .logical
            .unwrap(),
            LogicalType::Decimal {
                precision: 50,
                scale: 10
            }
        );
        assert_eq!(
            from_catalog(Flavor::MariaDb, "bit", "bit(1)", Some(1), None, false)
                .logical
                .unwrap(),
            LogicalType::Boolean
        );
        assert_eq!(
            from_catalog(Flavor::MariaDb, "longtext", "longtext", None, None, true)
                .logical
                .unwrap(),
            LogicalType::Json
        );
        let inet = from_catalog(Flavor::MariaDb, "inet6", "inet6", None, None, false);
        assert_eq!(inet.mapping, crate::ColumnMapping::Text);
        assert_eq!(
            select_expr("a`b", inet.read.as_ref().unwrap()),
            "CAST(`a``b` AS CHAR)"
        );
        assert_eq!(m("uuid", "uuid"), LogicalType::Uuid);
    }

    #[test]
    fn vectors_are_read_as_text_with_the_flavors_function() {
        for (flavor, f) in [
            (Flavor::MariaDb, "VEC_ToText(`emb`)"),
            (Flavor::MySql, "VECTOR_TO_STRING(`emb`)"),
        ] {
            let v = from_catalog(flavor, "vector", "vector(3)", None, None, false);
            assert_eq!(v.logical, Ok(LogicalType::Utf8));
            assert_eq!(v.mapping, crate::ColumnMapping::Text);
            assert_eq!(select_expr("emb", v.read.as_ref().unwrap()), f);
        }
    }

    #[test]
    fn tinyint1_becomes_boolean_only_when_asked_and_only_for_tinyint1() {
        let col = |declared: &str| SourceColumn {
            name: "flag".into(),
            declared_type: declared.into(),
            wire_type: "int".into(),
            logical: Ok(LogicalType::Int8),
            mapping: crate::ColumnMapping::Native,
            select_expr: None,
            nullable: true,
            n_distinct: None,
        };
        assert_eq!(
            tinyint1_as_boolean(&col("tinyint(1)")).map(|r| r.logical),
            Some(Ok(LogicalType::Boolean))
        );
        assert!(tinyint1_as_boolean(&col("tinyint(1) unsigned")).is_some());
        assert!(tinyint1_as_boolean(&col("tinyint(4)")).is_none());
        assert!(tinyint1_as_boolean(&col("tinyint(10)")).is_none());
    }
}
