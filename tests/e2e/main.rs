//! The end-to-end suite: one test binary (compiled once) with a module per feature.
//! Tests run the `rivet` binary against the live services of `scripts/test-env.sh`
//! (PostgreSQL, MariaDB, moto, Azurite) and compare what it wrote with the source.
//! With `CI=true` a test whose service is missing fails instead of skipping.

#[macro_use]
mod common;

mod architecture;
mod cdc;
mod cdc_mysql;
mod chunking;
mod cli_output;
mod cloud;
mod concurrency;
mod config_errors;
mod crash;
mod drift;
mod fidelity;
mod hostile;
mod hostile_apply;
mod incremental;
mod init_check;
mod keyless;
mod mcp;
mod mssql;
mod mysql;
mod operator;
mod output_options;
mod plans;
mod pooler;
mod quality;
mod reference_keys;
mod repair;
mod resilience;
mod security;
mod types;
mod validate;
