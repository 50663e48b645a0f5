//! Table names as users write them in a config. A name is split on an unquoted dot into
//! schema and table; each part is an exact catalog name (case and spaces kept), and a
//! part that itself contains a dot is written in double quotes (`""` for a quote).

/// A table reference split into its optional schema and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

/// Splits `table`, `schema.table` or `"sch.ema"."ta""ble"`.
pub fn split_table_name(input: &str) -> Result<TableName, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = input.chars().peekable();
    let mut quoted_part = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if current.is_empty() && !quoted_part => {
                quoted_part = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            current.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => current.push(ch),
                        None => return Err(format!("unterminated quote in `{input}`")),
                    }
                }
            }
            '.' => {
                parts.push(std::mem::take(&mut current));
                quoted_part = false;
            }
            _ if quoted_part => {
                return Err(format!("unexpected `{c}` after a quoted name in `{input}`"))
            }
            _ => current.push(c),
        }
    }
    parts.push(current);
    if parts.iter().any(String::is_empty) {
        return Err(format!("empty name part in `{input}`"));
    }
    match parts.len() {
        1 => Ok(TableName {
            schema: None,
            name: parts.remove(0),
        }),
        2 => {
            let name = parts.pop().expect("two parts");
            Ok(TableName {
                schema: parts.pop(),
                name,
            })
        }
        _ => Err(format!("`{input}` has more than two dot-separated parts")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_schema_and_quoted_names() {
        assert_eq!(
            split_table_name("orders").unwrap(),
            TableName {
                schema: None,
                name: "orders".into()
            }
        );
        assert_eq!(
            split_table_name("Sales Data.Order Items").unwrap(),
            TableName {
                schema: Some("Sales Data".into()),
                name: "Order Items".into()
            }
        );
        assert_eq!(
            split_table_name(r#""a.b"."c""d""#).unwrap(),
            TableName {
                schema: Some("a.b".into()),
                name: "c\"d".into()
            }
        );
        assert!(split_table_name("a.b.c").is_err());
        assert!(split_table_name("a.").is_err());
        assert!(split_table_name("\"open").is_err());
    }
}
