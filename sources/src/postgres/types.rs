//! Which PostgreSQL types Rivet exports and as what. The rule is decided once, at plan
//! time, from catalog rows; a type without a faithful mapping becomes a plan-time error
//! that names the column and suggests a cast.

use std::collections::HashMap;

use rivet_schema::LogicalType;

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
}

/// What a column resolves to: the wire type Rivet decodes and the output type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub wire_type: String,
    pub logical: Result<LogicalType, String>,
}

/// Resolves a type oid (with its typmod) through domains and arrays.
pub fn resolve(types: &HashMap<u32, PgTypeRow>, oid: u32, typmod: i32) -> Resolved {
    resolve_inner(types, oid, typmod, 0)
}

fn unsupported(name: &str) -> Resolved {
    Resolved {
        wire_type: name.to_owned(),
        logical: Err(format!(
            "type `{name}` has no faithful Parquet/CSV mapping in rivet; export the column through \
             a `query:` export with a cast, e.g. `SELECT …, \"col\"::text AS \"col\" FROM …`"
        )),
    }
}

fn resolve_inner(types: &HashMap<u32, PgTypeRow>, oid: u32, typmod: i32, depth: u8) -> Resolved {
    let Some(t) = types.get(&oid) else {
        return unsupported(&format!("oid {oid}"));
    };
    if depth > 16 {
        return unsupported(&t.name);
    }
    match t.typtype {
        b'd' => {
            let mod_ = if t.basetypmod >= 0 {
                t.basetypmod
            } else {
                typmod
            };
            return resolve_inner(types, t.basetype, mod_, depth + 1);
        }
        b'e' => {
            return Resolved {
                wire_type: "text".into(),
                logical: Ok(LogicalType::Utf8),
            }
        }
        _ => {}
    }
    if t.category == b'A' && t.elem != 0 {
        let inner = resolve_inner(types, t.elem, typmod, depth + 1);
        if inner.wire_type.ends_with("[]") {
            return unsupported(&t.name);
        }
        return Resolved {
            wire_type: format!("{}[]", inner.wire_type),
            logical: inner.logical.map(|l| LogicalType::List {
                element: Box::new(l),
            }),
        };
    }
    let scalar = |wire: &str, logical: LogicalType| Resolved {
        wire_type: wire.to_owned(),
        logical: Ok(logical),
    };
    // Extension types are matched by name; built-ins live in pg_catalog.
    if t.name == "citext" {
        return scalar("text", LogicalType::Utf8);
    }
    if t.namespace != "pg_catalog" {
        return unsupported(&t.name);
    }
    match t.name.as_str() {
        "bool" => scalar("bool", LogicalType::Boolean),
        "int2" => scalar("int2", LogicalType::Int16),
        "int4" => scalar("int4", LogicalType::Int32),
        "int8" => scalar("int8", LogicalType::Int64),
        "oid" => scalar("oid", LogicalType::UInt32),
        "float4" => scalar("float4", LogicalType::Float32),
        "float8" => scalar("float8", LogicalType::Float64),
        "numeric" => scalar("numeric", numeric_type(typmod)),
        "text" | "varchar" | "bpchar" | "name" | "char" | "xml" => {
            scalar("text", LogicalType::Utf8)
        }
        "json" => scalar("json", LogicalType::Json),
        "jsonb" => scalar("jsonb", LogicalType::Json),
        "bytea" => scalar("bytea", LogicalType::Binary),
        "date" => scalar("date", LogicalType::Date),
        "timestamp" => scalar("timestamp", LogicalType::Timestamp),
        "timestamptz" => scalar("timestamptz", LogicalType::TimestampUtc),
        "time" => scalar("time", LogicalType::Time),
        "uuid" => scalar("uuid", LogicalType::Uuid),
        other => unsupported(other),
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
