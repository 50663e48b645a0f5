//! Canonical JSON and the sha256 seal. Canonical means: object keys sorted bytewise,
//! no insignificant whitespace, serde_json's number and string encoding. Plans contain
//! no floats, so number formatting cannot differ between machines.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::PlanFileError;
use crate::plan::{Plan, PlanBody, Seal, PLAN_FORMAT_VERSION};

/// Rebuilds `value` with every object's keys in sorted order.
pub fn canonicalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::with_capacity(map.len());
            for k in keys {
                out.insert(k.clone(), canonicalize(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

/// Canonical bytes of a JSON value.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&canonicalize(value)).expect("a JSON value always serializes")
}

/// Hex sha256 of arbitrary bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn digest_of(format_version: &Value, body: &Value) -> String {
    let mut sealed = serde_json::Map::new();
    sealed.insert("body".into(), body.clone());
    sealed.insert("format_version".into(), format_version.clone());
    sha256_hex(&canonical_bytes(&Value::Object(sealed)))
}

/// Seals a body into a plan of the current format version.
pub fn seal(body: PlanBody) -> Plan {
    let body_value = serde_json::to_value(&body).expect("plan types always serialize");
    let digest = digest_of(&Value::from(PLAN_FORMAT_VERSION), &body_value);
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        seal: Seal {
            algorithm: "sha256".into(),
            digest,
        },
        body,
    }
}

/// Parses and verifies a plan file's text: JSON, format version, seal, then types.
/// `file` only names the file in errors.
pub fn open_sealed(file: &str, text: &str) -> Result<Plan, PlanFileError> {
    let value: Value = serde_json::from_str(text).map_err(|e| PlanFileError::NotJson {
        file: file.into(),
        detail: e.to_string(),
    })?;
    let obj = value.as_object().ok_or_else(|| PlanFileError::NotAPlan {
        file: file.into(),
        detail: "the document is not a JSON object".into(),
    })?;
    let version = obj
        .get("format_version")
        .ok_or_else(|| PlanFileError::NotAPlan {
            file: file.into(),
            detail: "missing `format_version`".into(),
        })?;
    if version.as_u64() != Some(u64::from(PLAN_FORMAT_VERSION)) {
        return Err(PlanFileError::UnknownFormatVersion {
            file: file.into(),
            found: version.to_string(),
            supported: PLAN_FORMAT_VERSION,
        });
    }
    let body = obj.get("body").ok_or_else(|| PlanFileError::NotAPlan {
        file: file.into(),
        detail: "missing `body`".into(),
    })?;
    let sealed = obj
        .get("seal")
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .ok_or_else(|| PlanFileError::NotAPlan {
            file: file.into(),
            detail: "missing `seal.digest`".into(),
        })?;
    let algorithm = obj
        .get("seal")
        .and_then(|s| s.get("algorithm"))
        .and_then(Value::as_str);
    if algorithm != Some("sha256") {
        return Err(PlanFileError::NotAPlan {
            file: file.into(),
            detail: "`seal.algorithm` must be \"sha256\"".into(),
        });
    }
    let actual = digest_of(version, body);
    if actual != sealed {
        return Err(PlanFileError::SealMismatch {
            file: file.into(),
            sealed: sealed.into(),
            actual,
        });
    }
    serde_path_to_error::deserialize::<_, Plan>(value.clone()).map_err(|e| {
        PlanFileError::Malformed {
            file: file.into(),
            path: e.path().to_string(),
            detail: e.inner().to_string(),
        }
    })
}

/// Pretty JSON text of a plan, as `rivet plan -o` writes it.
pub fn to_pretty_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("plan types always serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"c":null}}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_bytes(&v)).unwrap(),
            r#"{"a":{"c":null,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }
}
