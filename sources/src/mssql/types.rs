//! Which SQL Server types Rivet exports and as what, decided at plan time from `sys.*`
//! (tables) or `sp_describe_first_result_set` (queries). Every type gets a mapping: a
//! native Arrow type, a server-side conversion into one (money to decimal, spatial types
//! to WKB), or the server's own text (`hierarchyid`, CLR user-defined types,
//! `sql_variant`, anything unknown). The conversion is rendered into the plan's
//! `select_expr`, so the reader only decodes.

use rivet_schema::LogicalType;

use super::quote_ident;
use crate::ReadExpr;
pub use crate::Resolved;

fn ok(wire: &str, logical: LogicalType) -> Resolved {
    Resolved::ok(wire, logical)
}

fn as_text(read: ReadExpr) -> Resolved {
    Resolved::text("text", LogicalType::Utf8, read)
}

/// Maps a base (system) type name with its precision and scale. `clr` is true for a
/// CLR type (`sys.types.is_assembly_type`, or a query column with an assembly type
/// name): those Rivet does not know are read through their `ToString()` method.
pub fn resolve(base_type: &str, precision: u8, scale: u8, clr: bool) -> Resolved {
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
        // As floating point money would lose cents; the exact decimal keeps them.
        "money" => Resolved::converted(
            "decimal",
            LogicalType::Decimal {
                precision: 19,
                scale: 4,
            },
            ReadExpr::Cast("decimal(19,4)".into()),
        ),
        "smallmoney" => Resolved::converted(
            "decimal",
            LogicalType::Decimal {
                precision: 10,
                scale: 4,
            },
            ReadExpr::Cast("decimal(10,4)".into()),
        ),
        "real" => ok("float", LogicalType::Float32),
        "float" => ok("float", LogicalType::Float64),
        "char" | "varchar" | "nchar" | "nvarchar" | "text" | "ntext" | "sysname" => {
            ok("text", LogicalType::Utf8)
        }
        "xml" => ok("xml", LogicalType::Utf8),
        "json" => Resolved::converted(
            "text",
            LogicalType::Json,
            ReadExpr::Cast("nvarchar(max)".into()),
        ),
        "binary" | "varbinary" | "image" | "timestamp" | "rowversion" => {
            ok("bytes", LogicalType::Binary)
        }
        "date" => ok("date", LogicalType::Date),
        "datetime" | "datetime2" | "smalldatetime" => ok("datetime", LogicalType::Timestamp),
        "datetimeoffset" => ok("datetime", LogicalType::TimestampUtc),
        "time" => ok("time", LogicalType::Time),
        "uniqueidentifier" => ok("uuid", LogicalType::Uuid),
        // OGC WKB, as the other engines write spatial values.
        "geometry" | "geography" => Resolved::converted(
            "bytes",
            LogicalType::Binary,
            ReadExpr::Method("STAsBinary".into()),
        ),
        "hierarchyid" => as_text(ReadExpr::Method("ToString".into())),
        "sql_variant" => as_text(ReadExpr::VariantText),
        _ if clr => as_text(ReadExpr::Method("ToString".into())),
        _ => as_text(ReadExpr::Cast("nvarchar(max)".into())),
    }
}

/// The SELECT-list expression of a converted column.
pub fn select_expr(name: &str, read: &ReadExpr) -> String {
    let q = quote_ident(name);
    match read {
        ReadExpr::Cast(t) => format!("CAST({q} AS {t})"),
        ReadExpr::Call(f) => format!("{f}({q})"),
        ReadExpr::Method(m) => format!("{q}.{m}()"),
        // Each value in the CONVERT style that keeps it exactly for its base type:
        // ISO 8601 for dates and times, 17 significant digits for floats, hex for bytes.
        ReadExpr::VariantText => format!(
            "CASE WHEN SQL_VARIANT_PROPERTY({q}, 'BaseType') IN ('date', 'time', 'datetime', \
             'datetime2', 'smalldatetime', 'datetimeoffset') THEN CONVERT(nvarchar(max), {q}, 126) \
             WHEN SQL_VARIANT_PROPERTY({q}, 'BaseType') IN ('float', 'real') \
             THEN CONVERT(nvarchar(max), CAST({q} AS float), 3) \
             WHEN SQL_VARIANT_PROPERTY({q}, 'BaseType') IN ('binary', 'varbinary') \
             THEN CONVERT(nvarchar(max), CAST({q} AS varbinary(8000)), 1) \
             ELSE CAST({q} AS nvarchar(max)) END"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_map_to_arrow_types() {
        let m = |t: &str| resolve(t, 0, 0, false).logical.unwrap();
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
            resolve("numeric", 38, 10, false).logical.unwrap(),
            LogicalType::Decimal {
                precision: 38,
                scale: 10
            }
        );
        let money = resolve("money", 19, 4, false);
        assert_eq!(
            money.logical,
            Ok(LogicalType::Decimal {
                precision: 19,
                scale: 4
            })
        );
        assert_eq!(money.mapping, crate::ColumnMapping::Native);
    }

    #[test]
    fn every_type_without_a_native_mapping_is_read_as_the_servers_text() {
        let text = |t: &str, clr: bool| {
            let r = resolve(t, 0, 0, clr);
            assert_eq!(r.logical, Ok(LogicalType::Utf8), "{t}");
            assert_eq!(r.mapping, crate::ColumnMapping::Text, "{t}");
            select_expr("c]x", r.read.as_ref().unwrap())
        };
        assert_eq!(text("hierarchyid", true), "[c]]x].ToString()");
        assert_eq!(text("PhoneNumber", true), "[c]]x].ToString()");
        assert_eq!(text("vector", false), "CAST([c]]x] AS nvarchar(max))");
        let variant = text("sql_variant", false);
        assert!(variant.starts_with("CASE WHEN SQL_VARIANT_PROPERTY([c]]x], 'BaseType')"));
        assert!(variant.contains("CONVERT(nvarchar(max), [c]]x], 126)"));
        assert!(variant.ends_with("ELSE CAST([c]]x] AS nvarchar(max)) END"));
        // rowversion, image, ntext, text and xml are native.
        for (t, l) in [
            ("rowversion", LogicalType::Binary),
            ("image", LogicalType::Binary),
            ("ntext", LogicalType::Utf8),
            ("text", LogicalType::Utf8),
            ("xml", LogicalType::Utf8),
        ] {
            let r = resolve(t, 0, 0, false);
            assert_eq!(
                (r.logical, r.mapping, r.read),
                (Ok(l), crate::ColumnMapping::Native, None)
            );
        }
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
        let expr =
            |t: &str, name: &str| select_expr(name, resolve(t, 0, 0, true).read.as_ref().unwrap());
        assert_eq!(
            expr("money", "Price]x"),
            "CAST([Price]]x] AS decimal(19,4))"
        );
        assert_eq!(expr("geography", "shape"), "[shape].STAsBinary()");
        assert_eq!(expr("json", "doc"), "CAST([doc] AS nvarchar(max))");
        assert!(resolve("int", 0, 0, false).read.is_none());
    }
}
