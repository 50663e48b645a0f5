//! The `rivet` command line: parses arguments, sets up logging and progress on stderr,
//! calls the library crates, and maps their errors to exit codes. Nothing else lives
//! here.

mod cli;
mod commands;
mod exit;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::set_quiet(cli.quiet);
    let level = match (cli.quiet, cli.verbose) {
        (true, _) | (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    // Progress lines (without a terminal) are info events of their own target, shown
    // unless `--quiet`.
    let filter = if cli.quiet {
        level.to_owned()
    } else {
        format!("{level},rivet::progress=info")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIVET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.log_format {
        cli::LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(ansi)
            .init(),
        cli::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
    }
    let progress = progress::Mode::detect(cli.quiet, cli.log_format);
    match commands::dispatch(cli, progress) {
        Ok(status) => ExitCode::from(exit::code(status)),
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("error: {err:#}");
            ExitCode::from(code)
        }
    }
}
