//! `rivet repair plan.json -o repair.json`: a sealed plan of only the chunks that are
//! missing, corrupt or drifted.

use std::path::Path;

use anyhow::Result;

use super::{read_plan, write_plan_file};
use crate::exit::Status;

/// `rivet repair`: writes the repair plan and says why each chunk is in it.
pub fn repair(plan_path: &Path, out: &Path, with_reconcile: bool) -> Result<Status> {
    let plan = read_plan(plan_path)?;
    let (repair, reasons) = rivet_executor::repair::repair_plan(&plan, with_reconcile)?;
    let Some(repair) = repair else {
        crate::say!(
            "nothing to repair: every export of {} is intact",
            plan_path.display()
        );
        return Ok(Status::Success);
    };
    for r in &reasons {
        crate::say!("  export {}, chunk {}: {}", r.export, r.chunk, r.reason);
    }
    write_plan_file(out, &repair)?;
    crate::say!(
        "wrote {} (sha256:{}): {} chunk(s) to rewrite",
        out.display(),
        repair.seal.digest,
        reasons.len()
    );
    crate::say!(
        "review it with `rivet plan show {}` (or `rivet plan diff {} {}`), then run `rivet apply {}`",
        out.display(),
        plan_path.display(),
        out.display(),
        out.display()
    );
    Ok(Status::Success)
}
