//! The `rivet` command line: parses arguments, sets up logging and progress on stderr,
//! calls the library crates, and maps their errors to exit codes. Nothing else lives
//! here.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIVET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match commands::dispatch(cli) {
        Ok(status) => ExitCode::from(exit::code(status)),
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}
