//! The MCP face of the tools: one `#[tool]` per function of [`crate::tools`], each run
//! on the blocking pool (the database drivers block), each answered as text content.
//! A failed call is a tool result with `isError` and the reason, so the agent sees it.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router, ErrorData, ServerHandler};

use crate::error::ToolError;
use crate::tools::{self, Answer, ChunkArgs, DiffArgs, PlanArgs, SourceArgs, StateArgs};

/// The server: the tool router and nothing else (every call opens what it needs).
#[derive(Clone)]
pub struct RivetMcp {
    tool_router: ToolRouter<Self>,
}

impl Default for RivetMcp {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a tool body on the blocking pool and turns its outcome into a tool result.
async fn run<A: Send + 'static>(
    args: A,
    body: fn(A) -> Result<Answer, ToolError>,
) -> Result<CallToolResult, ErrorData> {
    let outcome = tokio::task::spawn_blocking(move || body(args))
        .await
        .map_err(|e| ToolError::Worker(e.to_string()))
        .and_then(|r| r);
    Ok(match outcome {
        Ok(answer) => {
            CallToolResult::success(answer.blocks.into_iter().map(ContentBlock::text).collect())
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("error: {e}"))]),
    })
}

#[tool_router]
impl RivetMcp {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Health of the source database a rivet.yaml or plan.json names, read on a read-only session: active queries, lock waits, sessions idle in a transaction, connections; PostgreSQL replication slots (retained WAL, wal_status), pg_stat_statements top I/O when installed, checkpoint pressure; MySQL/MariaDB processlist, InnoDB lock waits, binary-log retention; SQL Server active requests and blocking.",
        annotations(read_only_hint = true)
    )]
    async fn source_health(
        &self,
        Parameters(args): Parameters<SourceArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::source_health).await
    }

    #[tool(
        description = "Show a sealed plan.json as `rivet plan show` does: exports, columns and types, chunks, destinations, tuning (a rendering, then the JSON form).",
        annotations(read_only_hint = true)
    )]
    async fn plan_show(
        &self,
        Parameters(args): Parameters<PlanArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::plan_show).await
    }

    #[tool(
        description = "Compare two sealed plans as `rivet plan diff` does: structural changes (columns, types, destinations) and volume changes (chunks, row estimates).",
        annotations(read_only_hint = true)
    )]
    async fn plan_diff(
        &self,
        Parameters(args): Parameters<DiffArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::plan_diff).await
    }

    #[tool(
        description = "Summarize a Rivet state database (opened read-only): recent runs with their status, per-export progress of the latest plan, committed incremental positions.",
        annotations(read_only_hint = true)
    )]
    async fn state_summary(
        &self,
        Parameters(args): Parameters<StateArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::state_summary).await
    }

    #[tool(
        description = "Validate what a plan's exports wrote, as `rivet validate plan.json` does: every file the manifest lists exists with its size, sha256 and row count, _SUCCESS is present, no stray chunk files. Reads the destination only.",
        annotations(read_only_hint = true)
    )]
    async fn validate(
        &self,
        Parameters(args): Parameters<PlanArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::validate).await
    }

    #[tool(
        description = "The SQL one chunk of a plan will run, built by the same code apply uses, with the database's EXPLAIN of it (not executed).",
        annotations(read_only_hint = true)
    )]
    async fn explain_chunk(
        &self,
        Parameters(args): Parameters<ChunkArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::explain_chunk).await
    }

    #[tool(
        description = "Is now a good time to apply this plan? Weighs the plan's load (connections at once, chunks, rows) against the source's current activity and answers safe, caution or unsafe with the reasons.",
        annotations(read_only_hint = true)
    )]
    async fn safe_to_apply(
        &self,
        Parameters(args): Parameters<PlanArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        run(args, tools::safe_to_apply).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for RivetMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rivet-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Read-only insight into Rivet extractions: source health, sealed plans, state, validation, chunk SQL with EXPLAIN, and whether now is a good time to apply. Paths are files on the server's machine; credentials come from the server's environment as for `rivet`.",
            )
    }
}
