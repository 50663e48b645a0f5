//! `rivet-mcp`: a Model Context Protocol server over stdio that lets an agent ask
//! read-only questions about Rivet's sources, plans and state — is the source healthy
//! enough to extract from now, what will a chunk run, what did the last apply do. It
//! reuses the libraries the `rivet` binary uses and never writes to a source, a plan
//! or a state database. Modules: `server` (the MCP tools), `tools` (their work),
//! `assess` (`safe_to_apply`'s rules), `error`.

mod assess;
mod error;
mod server;
mod tools;

use rmcp::ServiceExt;

const HELP: &str = "rivet-mcp: a read-only Model Context Protocol server for Rivet (stdio)

Usage: rivet-mcp

Speaks MCP on standard input/output; start it from an MCP client (see docs/mcp.md).
Credentials come from the environment, as for `rivet` (source.url_env, password_env).
Tools: source_health, plan_show, plan_diff, state_summary, validate, explain_chunk,
safe_to_apply.

Options:
  -h, --help     Print this help
  -V, --version  Print the version
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            print!("{HELP}");
            return Ok(());
        }
        Some("-V" | "--version") => {
            println!("rivet-mcp {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Some(other) => {
            eprint!("error: unexpected argument `{other}`\n\n{HELP}");
            std::process::exit(2);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let service = server::RivetMcp::new()
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the MCP session: {e}"))?;
        service
            .waiting()
            .await
            .map_err(|e| anyhow::anyhow!("the MCP session ended with an error: {e}"))?;
        Ok(())
    })
}
