//! Config + live catalog → sealed plan, and the two read-only views of plans:
//! `plan show` (a reviewable tree) and `plan diff` (structural vs volume changes).
//!
//! **Architecture invariant:** the planner reads the source catalog, statistics and the
//! `min`/`max` of chunk keys (under a `statement_timeout`), never the exported rows, and
//! writes nothing but the plan it returns. The executor does not depend on this crate.

pub mod check;
mod clash;
mod compile;
mod diff;
mod error;
mod load;
mod reference;
pub mod scaffold;
mod show;
mod tuning;

pub use clash::destination_clashes;
pub use compile::cdc::slot_warnings;
pub use compile::{compile, plan_from_config, planned_destination, PlanInputs};
pub use diff::{diff_plans, PlanDiff};
pub use error::PlanError;
pub use load::load_config;
pub use show::{render_plan, show_json, summary_line};
pub use tuning::resolve_tuning;
