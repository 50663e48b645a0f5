//! Which SQL Server types Rivet exports and as what, decided at plan time from `sys.*`
//! (tables) or `sp_describe_first_result_set` (queries). The `wire_type` recorded in the
//! plan tells the reader both how to select the column (a few types are converted by
//! the server: money to decimal, spatial types to WKB) and how to decode it.

use rivet_schema::LogicalType;

use super::quote_ident;

pub use crate::Resolved;

fn ok(wire: &str, logical: LogicalType) -> Resolved {
    Resolved::ok(wire, logical)
}

fn unsupported(name: &str, hint: &str) -> Resolved {
    Resolved {
        wire_type: name.to_owned(),
        logical: Err(format!(
            "type `{name}` has no faithful Parquet/CSV mapping in rivet; export the column through \
             a `query:` export with a conversion, e.g. {hint}"
        )),
    }
}

/// Maps a base (system) type name with its precision and scale.
pub fn resolve(base_type: &str, precision: u8, scale: u8) -> Resolved {
    match base_type.to_ascii_lowercase().as_str() {
        "tinyint" => ok("int", LogicalType::UInt8),
        "smallint" => ok("int", LogicalType::Int16),
        "int" => ok("int", LogicalType::Int32),
        "bigint" => ok("int", LogicalType::Int64),
        "bit" => ok("bit", LogicalType::Boolean),
        "decimal" | "numeric" if (1..=38).contains(&precision) && scale <= precision => ok(
            "decimal",
            LogicalType::Decimal {
                precision,
                scale: scale as i8,
            },
        ),
        "decimal" | "numeric" => ok(
            "decimal",
            LogicalType::Decimal {
                precision: 38,
                scale: scale.min(38) as i8,
            },
        ),
        "money" => ok(
            "money",
            LogicalType::Decimal {
                precision: 19,
                scale: 4,
            },
        ),
        "smallmoney" => ok(
            "smallmoney",
            LogicalType::Decimal {
                precision: 10,
                scale: 4,
            },
        ),
        "real" => ok("float", LogicalType::Float32),
        "float" => ok("float", LogicalType::Float64),
        "char" | "varchar" | "nchar" | "nvarchar" | "text" | "ntext" | "sysname" => {
            ok("text", LogicalType::Utf8)
        }
        "xml" => ok("xml", LogicalType::Utf8),
        "json" => ok("json", LogicalType::Json),
        "binary" | "varbinary" | "image" | "timestamp" | "rowversion" => {
            ok("bytes", LogicalType::Binary)
        }
        "date" => ok("date", LogicalType::Date),
        "datetime" | "datetime2" | "smalldatetime" => ok("datetime", LogicalType::Timestamp),
        "datetimeoffset" => ok("datetime", LogicalType::TimestampUtc),
        "time" => ok("time", LogicalType::Time),
        "uniqueidentifier" => ok("uuid", LogicalType::Uuid),
        "geometry" | "geography" => ok("wkb", LogicalType::Binary),
        "hierarchyid" => ok("clr_text", LogicalType::Utf8),
        "sql_variant" => unsupported("sql_variant", "`CAST([col] AS nvarchar(4000)) AS [col]`"),
        other => unsupported(other, "`CAST([col] AS nvarchar(max)) AS [col]`"),
    }
}

/// The type as a user would write it in DDL, from `sys.columns` facts
/// (`max_length` is in bytes, -1 for `max`).
pub fn declared(type_name: &str, max_length: i16, precision: u8, scale: u8) -> String {
    let len = |per_char: i16| {
        if max_length < 0 {
            "max".to_owned()
        } else {
            (max_length / per_char).to_string()
        }
    };
    match type_name.to_ascii_lowercase().as_str() {
        "char" | "varchar" | "binary" | "varbinary" => format!("{type_name}({})", len(1)),
        "nchar" | "nvarchar" => format!("{type_name}({})", len(2)),
        "decimal" | "numeric" => format!("{type_name}({precision},{scale})"),
        "datetime2" | "datetimeoffset" | "time" => format!("{type_name}({scale})"),
        _ => type_name.to_owned(),
    }
}

/// The base name of a `system_type_name` such as `decimal(12,2)` or `nvarchar(max)`.
pub fn base_name(system_type_name: &str) -> &str {
    system_type_name
        .split('(')
        .next()
        .unwrap_or(system_type_name)
        .trim()
}

/// The select-list expression for a column: the quoted name, or a server-side
/// conversion for the types whose wire form Rivet does not read directly (money as
/// floating point would lose cents; spatial and hierarchyid are CLR types).
pub fn select_expr(name: &str, wire_type: &str) -> String {
    let q = quote_ident(name);
    match wire_type {
        "money" => format!("CAST({q} AS decimal(19,4)) AS {q}"),
        "smallmoney" => format!("CAST({q} AS decimal(10,4)) AS {q}"),
        "wkb" => format!("{q}.STAsBinary() AS {q}"),
        "clr_text" => format!("{q}.ToString() AS {q}"),
        "json" => format!("CAST({q} AS nvarchar(max)) AS {q}"),
        _ => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_map_to_arrow_types() {
        let m = |t: &str| resolve(t, 0, 0).logical.unwrap();
        assert_eq!(m("tinyint"), LogicalType::UInt8);
        assert_eq!(m("smallint"), LogicalType::Int16);
        assert_eq!(m("bigint"), LogicalType::Int64);
        assert_eq!(m("BIT"), LogicalType::Boolean);
        assert_eq!(m("real"), LogicalType::Float32);
        assert_eq!(m("float"), LogicalType::Float64);
        assert_eq!(m("ntext"), LogicalType::Utf8);
        assert_eq!(m("xml"), LogicalType::Utf8);
        assert_eq!(m("image"), LogicalType::Binary);
        assert_eq!(m("timestamp"), LogicalType::Binary);
        assert_eq!(m("smalldatetime"), LogicalType::Timestamp);
        assert_eq!(m("datetimeoffset"), LogicalType::TimestampUtc);
        assert_eq!(m("time"), LogicalType::Time);
        assert_eq!(m("uniqueidentifier"), LogicalType::Uuid);
        assert_eq!(m("geography"), LogicalType::Binary);
        assert_eq!(
            resolve("numeric", 38, 10).logical.unwrap(),
            LogicalType::Decimal {
                precision: 38,
                scale: 10
            }
        );
        assert_eq!(
            resolve("money", 19, 4),
            ok(
                "money",
                LogicalType::Decimal {
                    precision: 19,
                    scale: 4
                }
            )
        );
        let v = resolve("sql_variant", 0, 0);
        assert!(v
            .logical
            .unwrap_err()
            .contains("CAST([col] AS nvarchar(4000))"));
    }

    #[test]
    fn declared_types_read_like_ddl() {
        assert_eq!(declared("nvarchar", 100, 0, 0), "nvarchar(50)");
        assert_eq!(declared("varbinary", -1, 0, 0), "varbinary(max)");
        assert_eq!(declared("decimal", 9, 12, 2), "decimal(12,2)");
        assert_eq!(declared("datetime2", 8, 27, 7), "datetime2(7)");
        assert_eq!(declared("int", 4, 10, 0), "int");
        assert_eq!(base_name("decimal(12,2)"), "decimal");
        assert_eq!(base_name("nvarchar(max)"), "nvarchar");
    }

    #[test]
    fn converted_types_are_converted_by_the_server() {
        assert_eq!(
            select_expr("Price]x", "money"),
            "CAST([Price]]x] AS decimal(19,4)) AS [Price]]x]"
        );
        assert_eq!(
            select_expr("shape", "wkb"),
            "[shape].STAsBinary() AS [shape]"
        );
        assert_eq!(
            select_expr("node", "clr_text"),
            "[node].ToString() AS [node]"
        );
        assert_eq!(select_expr("id", "int"), "[id]");
    }
}
