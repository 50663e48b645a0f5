//! `rivet completions SHELL` and `rivet man`: generated from the same clap definitions
//! as `--help`, so they can never disagree with the binary.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Status;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Status> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "rivet", &mut std::io::stdout());
    Ok(Status::Success)
}

/// Prints `rivet.1`, or writes it and one page per subcommand into `out_dir`.
pub fn man(out_dir: Option<&Path>) -> Result<Status> {
    let cmd = Cli::command();
    match out_dir {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write manual pages into {}", dir.display()))?;
            crate::say!("wrote manual pages into {}", dir.display());
        }
    }
    Ok(Status::Success)
}
