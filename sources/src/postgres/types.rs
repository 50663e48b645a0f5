//! Which PostgreSQL types Rivet exports and as what. The rule is decided once, at plan
//! time, from catalog rows, and every type gets a mapping: a native Arrow type where one
//! holds every value, the interval struct, or the database's own text through a
//! server-side cast recorded in the plan. The decision follows catalog facts (`typtype`,
//! `typcategory`, `typelem`, the owning extension), so a type never seen before (an
//! extension's, a composite, a range) exports as text rather than being refused.

use std::collections::HashMap;

use rivet_schema::LogicalType;

pub use crate::Resolved;
use crate::{ColumnMapping, ReadExpr};

/// The `pg_type` facts needed to resolve a column's type.
#[derive(Debug, Clone)]
pub struct PgTypeRow {
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    /// `b` base, `d` domain, `e` enum, `c` composite, `r` range, `m` multirange, `p` pseudo.
    pub typtype: u8,
    pub basetype: u32,
    pub basetypmod: i32,
    pub elem: u32,
    pub category: u8,
    /// The extension that owns the type and the schema it was installed in, if any.
    pub extension: Option<(String, String)>,
}

/// Session facts that change how a type reads, fetched with the type rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgSession {
    /// Fractional digits of `money` under the session's `lc_monetary`.
    pub money_scale: i8,
}

/// Resolves a type oid (with its typmod) through domains and arrays.
pub fn resolve(
    types: &HashMap<u32, PgTypeRow>,
    session: PgSession,
    oid: u32,
    typmod: i32,
) -> Resolved {
    resolve_inner(types, session, oid, typmod, 0)
}

/// The type's canonical text, read back equal by its input function.
fn as_text() -> Resolved {
    Resolved::text("text", LogicalType::Utf8, ReadExpr::Cast("text".into()))
}

fn resolve_inner(
    types: &HashMap<u32, PgTypeRow>,
    session: PgSession,
    oid: u32,
    typmod: i32,
    depth: u8,
) -> Resolved {
    let Some(t) = types.get(&oid) else {
        // Not in the catalog closure Rivet read (should not happen): the text form is
        // still exact.
        return as_text();
    };
    if depth > 16 {
        return as_text();
    }
    match t.typtype {
        b'd' => {
            let mod_ = if t.basetypmod >= 0 {
                t.basetypmod
            } else {
                typmod
            };
            return resolve_inner(types, session, t.basetype, mod_, depth + 1);
        }
        // An enum's binary form is its label.
        b'e' => return Resolved::ok("text", LogicalType::Utf8),
        _ => {}
    }
    if t.category == b'A' && t.elem != 0 {
        return array_of(resolve_inner(types, session, t.elem, typmod, depth + 1));
    }
    if let Some((ext, schema)) = &t.extension {
        if ext == "postgis" && matches!(t.name.as_str(), "geometry" | "geography") {
            // ISO WKB, what the MySQL path writes and spatial readers take; the SRID is
            // in the declared type recorded in the plan.
            return Resolved::converted(
                "bytea",
                LogicalType::Binary,
                ReadExpr::Call(format!("{}.st_asbinary", super::quote_ident(schema))),
            );
        }
    }
    if t.namespace != "pg_catalog" || t.typtype != b'b' {
        return as_text();
    }
    let ok = Resolved::ok;
    match t.name.as_str() {
        "bool" => ok("bool", LogicalType::Boolean),
        "int2" => ok("int2", LogicalType::Int16),
        "int4" => ok("int4", LogicalType::Int32),
        "int8" => ok("int8", LogicalType::Int64),
        "oid" => ok("oid", LogicalType::UInt32),
        "float4" => ok("float4", LogicalType::Float32),
        "float8" => ok("float8", LogicalType::Float64),
        "numeric" => ok("numeric", numeric_type(typmod)),
        "text" | "varchar" | "bpchar" | "name" | "char" | "xml" => ok("text", LogicalType::Utf8),
        "json" => ok("json", LogicalType::Json),
        "jsonb" => ok("jsonb", LogicalType::Json),
        "bytea" => ok("bytea", LogicalType::Binary),
        "date" => ok("date", LogicalType::Date),
        "timestamp" => ok("timestamp", LogicalType::Timestamp),
        "timestamptz" => ok("timestamptz", LogicalType::TimestampUtc),
        "time" => ok("time", LogicalType::Time),
        "uuid" => ok("uuid", LogicalType::Uuid),
        "interval" => Resolved {
            mapping: ColumnMapping::Structured,
            ..ok("interval", LogicalType::Interval)
        },
        // money is an int64 of minor units: 19 digits always hold it, at the scale of
        // the session's lc_monetary; its text carries a locale's currency symbol.
        "money" => Resolved::converted(
            "numeric",
            LogicalType::Decimal {
                precision: 19,
                scale: session.money_scale,
            },
            ReadExpr::Cast("numeric".into()),
        ),
        _ => as_text(),
    }
}

/// A one-dimensional array of an element mapping: a list of the same elements, with the
/// element's cast applied to the whole array (`"c"::text[]`).
fn array_of(inner: Resolved) -> Resolved {
    let logical = match inner.logical {
        Ok(l) => l,
        Err(e) => return Resolved::refused(&format!("{}[]", inner.wire_type), e),
    };
    let list = |element: LogicalType| LogicalType::List {
        element: Box::new(element),
    };
    match inner.read {
        None => Resolved {
            wire_type: format!("{}[]", inner.wire_type),
            logical: Ok(list(logical)),
            mapping: inner.mapping,
            read: None,
        },
        Some(ReadExpr::Cast(t)) => Resolved {
            wire_type: format!("{}[]", inner.wire_type),
            logical: Ok(list(logical)),
            mapping: inner.mapping,
            read: Some(ReadExpr::Cast(format!("{t}[]"))),
        },
        // A function of one value does not apply to an array; its elements' text does.
        Some(_) => Resolved::text(
            "text[]",
            list(LogicalType::Utf8),
            ReadExpr::Cast("text[]".into()),
        ),
    }
}

const TEXT_CAST: &str = "text";

/// The SELECT-list expression of a converted column.
pub fn select_expr(name: &str, read: &ReadExpr) -> String {
    let q = super::quote_ident(name);
    match read {
        ReadExpr::Cast(t) => format!("{q}::{t}"),
        // PostgreSQL has no methods on values; a method is a function of the value.
        ReadExpr::Call(f) | ReadExpr::Method(f) => format!("{f}({q})"),
        // Only SQL Server has sql_variant; the plain text cast is this engine's text.
        ReadExpr::VariantText => select_expr(name, &ReadExpr::Cast(TEXT_CAST.into())),
    }
}

/// `numeric(p,s)` → Decimal(p,s); anything a Parquet decimal cannot hold exactly
/// (no declared precision, negative scale, scale above precision, more than 76 digits)
/// → text that keeps every digit.
pub fn numeric_type(typmod: i32) -> LogicalType {
    if typmod < 4 {
        return LogicalType::DecimalText;
    }
    let m = typmod - 4;
    let precision = (m >> 16) & 0xffff;
    // PostgreSQL 15 stores the scale as an 11-bit two's complement number.
    let raw_scale = m & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 {
        raw_scale - 0x800
    } else {
        raw_scale
    };
    if !(1..=76).contains(&precision) || scale < 0 || scale > precision {
        return LogicalType::DecimalText;
    }
    LogicalType::Decimal {
        precision: precision as u8,
        scale: scale as i8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(oid: u32, ns: &str, name: &str, typtype: u8, category: u8) -> PgTypeRow {
        PgTypeRow {
            oid,
            namespace: ns.into(),
            name: name.into(),
            typtype,
            basetype: 0,
            basetypmod: -1,
            elem: 0,
            category,
            extension: None,
        }
    }

    fn catalog() -> HashMap<u32, PgTypeRow> {
        let mut rows = vec![
            row(23, "pg_catalog", "int4", b'b', b'N'),
            row(1186, "pg_catalog", "interval", b'b', b'T'),
            row(869, "pg_catalog", "inet", b'b', b'I'),
            row(790, "pg_catalog", "money", b'b', b'N'),
            row(3904, "pg_catalog", "int4range", b'r', b'R'),
            row(5000, "shop", "address", b'c', b'C'),
            row(5001, "public", "ltree", b'b', b'U'),
            row(5002, "gis", "geometry", b'b', b'U'),
            row(5003, "public", "mood", b'e', b'E'),
        ];
        rows[6].extension = Some(("ltree".into(), "public".into()));
        rows[7].extension = Some(("postgis".into(), "gis".into()));
        let mut map: HashMap<u32, PgTypeRow> = rows.into_iter().map(|r| (r.oid, r)).collect();
        for (arr, elem) in [
            (1007, 23),
            (1187, 1186),
            (1041, 869),
            (6000, 5000),
            (6002, 5002),
        ] {
            let mut a = row(arr, "pg_catalog", "_x", b'b', b'A');
            a.elem = elem;
            map.insert(arr, a);
        }
        let mut domain = row(7000, "public", "positive", b'd', b'N');
        domain.basetype = 23;
        map.insert(7000, domain);
        map
    }

    const SESSION: PgSession = PgSession { money_scale: 2 };

    fn r(oid: u32) -> (String, LogicalType, ColumnMapping, Option<String>) {
        let res = resolve(&catalog(), SESSION, oid, -1);
        (
            res.wire_type,
            res.logical.unwrap(),
            res.mapping,
            res.read.map(|x| select_expr("c", &x)),
        )
    }

    #[test]
    fn every_type_gets_a_mapping_decided_by_catalog_facts() {
        let text = (
            "text".to_owned(),
            LogicalType::Utf8,
            ColumnMapping::Text,
            Some(r#""c"::text"#.to_owned()),
        );
        let list = |l: LogicalType| LogicalType::List {
            element: Box::new(l),
        };
        assert_eq!(r(869), text, "inet");
        assert_eq!(r(3904), text, "a range type");
        assert_eq!(r(5000), text, "a composite type");
        assert_eq!(r(5001), text, "an extension type");
        assert_eq!(r(424242), text, "a type missing from the closure");
        assert_eq!(
            r(5003),
            (
                "text".into(),
                LogicalType::Utf8,
                ColumnMapping::Native,
                None
            ),
            "enum"
        );
        assert_eq!(
            r(7000),
            (
                "int4".into(),
                LogicalType::Int32,
                ColumnMapping::Native,
                None
            ),
            "domain"
        );
        assert_eq!(
            r(1186),
            (
                "interval".into(),
                LogicalType::Interval,
                ColumnMapping::Structured,
                None
            )
        );
        assert_eq!(
            r(1187),
            (
                "interval[]".into(),
                list(LogicalType::Interval),
                ColumnMapping::Structured,
                None
            )
        );
        assert_eq!(
            r(1041),
            (
                "text[]".into(),
                list(LogicalType::Utf8),
                ColumnMapping::Text,
                Some(r#""c"::text[]"#.into())
            ),
            "inet[]"
        );
        assert_eq!(r(6000).3, Some(r#""c"::text[]"#.into()), "composite[]");
        assert_eq!(
            r(790),
            (
                "numeric".into(),
                LogicalType::Decimal {
                    precision: 19,
                    scale: 2
                },
                ColumnMapping::Native,
                Some(r#""c"::numeric"#.into())
            ),
            "money"
        );
        assert_eq!(
            r(5002),
            (
                "bytea".into(),
                LogicalType::Binary,
                ColumnMapping::Native,
                Some(r#""gis".st_asbinary("c")"#.into())
            ),
            "postgis geometry"
        );
        assert_eq!(r(6002).2, ColumnMapping::Text, "geometry[] as text[]");
        assert_eq!(r(1007).1, list(LogicalType::Int32));
    }

    #[test]
    fn numeric_typmods_map_to_decimals_or_text() {
        let tm = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        assert_eq!(
            numeric_type(tm(12, 2)),
            LogicalType::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            numeric_type(tm(60, 10)),
            LogicalType::Decimal {
                precision: 60,
                scale: 10
            }
        );
        assert_eq!(numeric_type(-1), LogicalType::DecimalText);
        assert_eq!(numeric_type(tm(5, -2)), LogicalType::DecimalText);
        assert_eq!(numeric_type(tm(2, 5)), LogicalType::DecimalText);
        assert_eq!(numeric_type(tm(1000, 0)), LogicalType::DecimalText);
    }
}
