//! `rivet schema config|plan`: the JSON Schemas, as committed under `schema/`.

use anyhow::Result;

use crate::cli::SchemaKind;
use crate::exit::Status;

pub fn print(what: SchemaKind) -> Result<Status> {
    let schema = match what {
        SchemaKind::Config => rivet_schema::config_json_schema(),
        SchemaKind::Plan => rivet_schema::plan_json_schema(),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Status::Success)
}
