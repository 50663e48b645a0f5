//! The vocabulary of Rivet: configuration (YAML) and plan (JSON) types, their JSON
//! Schemas, config validation with precise key paths, canonical serialization and the
//! sha256 seal, and the execution DAG derived from a plan.
//!
//! **Architecture invariant:** this crate does no I/O beyond parsing the text it is
//! handed and knows no database driver. The planner writes its types, the executor
//! reads them, and neither reaches into the other.

pub mod config;
pub mod dag;
pub mod error;
pub mod layout;
pub mod load;
pub mod names;
pub mod plan;
pub mod reference;
pub mod seal;
pub mod types;
mod yaml;

pub use config::Config;
pub use error::{ConfigError, ConfigProblem, FailureKind, PlanFileError};
pub use plan::{Plan, PlanBody, PLAN_FORMAT_VERSION};
pub use types::LogicalType;

/// The config and plan spelling of a unit enum value (`zstd`, `local`, `timestamptz`),
/// so messages, `plan show`, manifests and state all name a setting the way users write
/// it. Only for enums whose variants serialize as strings; anything else is a bug.
pub fn variant_name<T: serde::Serialize + std::fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("{value:?} does not serialize as a string ({other:?}): variant_name is only for unit enums"),
    }
}

/// JSON Schema of the YAML configuration, as committed under `schema/config.schema.json`.
pub fn config_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(config::Config))
        .expect("a generated JSON Schema always serializes to JSON")
}

/// JSON Schema of a sealed plan file, as committed under `schema/plan.schema.json`.
pub fn plan_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(plan::Plan))
        .expect("a generated JSON Schema always serializes to JSON")
}
