//! `rivet check -c rivet.yaml`: the library gathers facts and assesses them; this
//! prints one WARN line per finding (or JSON) and says how the command ends.

use std::path::Path;

use anyhow::Result;
use rivet_planner::check::{assess, gather, Finding};
use rivet_sources::{open_survey, ConnectionSettings};

use super::plan::plan_inputs;
use crate::exit::Status;

pub fn check(config_path: &Path, strict: bool, json: bool) -> Result<Status> {
    let config = rivet_planner::load_config(config_path)?;
    let state = super::beside(config_path, super::STATE_FILE);
    let inputs = plan_inputs(&config, &state, None)?;
    let settings = ConnectionSettings::resolve(&config.source)?;
    let mut survey = open_survey(&settings)?;
    let free = |p: &str| rivet_executor::doctor::free_space(Path::new(p));
    let (exports, source) = gather(&config, survey.as_mut(), &inputs, &free)?;
    let findings = assess(&exports, &source);
    if json {
        let doc = serde_json::json!({
            "exports": exports.len(),
            "warnings": findings.len(),
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&findings, exports.len()));
    }
    if strict && !findings.is_empty() {
        Ok(Status::ChecksFailed)
    } else {
        Ok(Status::Success)
    }
}

/// The text report: one `WARN` block per finding, then a summary line.
pub fn render(findings: &[Finding], exports: usize) -> String {
    let mut out = String::new();
    for f in findings {
        let mut about = Vec::new();
        if let Some(e) = &f.export {
            about.push(format!("export {e}"));
        } else {
            about.push("source".to_owned());
        }
        if let Some(t) = &f.table {
            about.push(format!("table {t}"));
        }
        if let Some(c) = &f.column {
            about.push(format!("column {c}"));
        }
        out.push_str(&format!(
            "WARN  [{}] {}: {}\n      fix: {}\n",
            f.code,
            about.join(", "),
            f.message,
            f.fix
        ));
    }
    match findings.len() {
        0 => out.push_str(&format!("{exports} export(s) checked: no warnings\n")),
        n => out.push_str(&format!("{exports} export(s) checked: {n} warning(s)\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_text_output_snapshot() {
        let findings = vec![
            Finding {
                code: "chunk_column_not_indexed",
                export: Some("orders".into()),
                table: Some("public.orders".into()),
                column: Some("k".into()),
                message: "chunk column `k` leads no index of public.orders: each of the 12 chunks scans the whole table".into(),
                fix: "create an index on public.orders (k), or chunk on an indexed integer column (chunk_column)".into(),
            },
            Finding {
                code: "connection_headroom",
                export: None,
                table: None,
                column: None,
                message: "the plan may hold 16 source connections but the server has 7 left (max_connections 100, 3 reserved, 90 in use)".into(),
                fix: "lower tuning.max_source_connections (and parallelism) to at most 7, or run when fewer sessions are open".into(),
            },
        ];
        insta::assert_snapshot!(render(&findings, 3));
        assert_eq!(render(&[], 2), "2 export(s) checked: no warnings\n");
    }
}
