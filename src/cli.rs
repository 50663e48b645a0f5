//! Argument definitions. Help text teaches the workflow: plan, review, apply, inspect.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `rivet cdc` does.
#[derive(Debug, Subcommand)]
pub enum CdcAction {
    /// Create the slot (`pgoutput`) and publication of every PostgreSQL `cdc` export that
    /// lacks them; for MySQL/MariaDB, check the binary log's prerequisites.
    Setup {
        /// Config file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Drop the slot and publication of every PostgreSQL `cdc` export (MySQL/MariaDB:
    /// nothing is held on the server).
    Teardown {
        /// Config file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Extract database tables into Parquet and CSV through sealed, reviewable plans.
///
/// Workflow: `rivet plan -c rivet.yaml -o plan.json` reads the source catalog and seals
/// a plan; `rivet plan show plan.json` renders it for review; `rivet apply plan.json`
/// executes exactly that plan and journals every step; `rivet state` shows what ran.
/// Credentials are never written anywhere: configs name environment variables or files.
#[derive(Debug, Parser)]
#[command(
    name = "rivet",
    version,
    propagate_version = true,
    after_long_help = EXAMPLES_TOP
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RIVET_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress and no summary on stderr: only warnings, errors and the command's
    /// own output.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log lines on stderr as text (default) or one JSON object per line, for log
    /// shippers; progress is then logged too instead of drawn.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const EXAMPLES_TOP: &str = "Examples:
  rivet doctor -c rivet.yaml                 # can it connect, read and write?
  rivet plan -c rivet.yaml -o plan.json      # seal a plan from the live catalog
  rivet plan show plan.json                  # review it
  rivet apply plan.json                      # run exactly that plan
  rivet apply plan.json --resume             # after a crash: only what is missing
  rivet validate plan.json                   # re-read what was written
  rivet state && rivet journal               # what ran, step by step

Docs: docs/README.md; exit codes: docs/exit-codes.md";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a config against the live source into a sealed plan (or show/diff plans).
    #[command(after_long_help = "Examples:
  rivet plan -c rivet.yaml -o plan.json
  rivet plan -c rivet.yaml -o plan.json --as-of 2026-11-27   # time windows end there
  rivet plan show plan.json
  rivet plan show plan.json --json | jq '.exports[].chunks[].id'
  rivet plan diff yesterday.json plan.json    # exit 0 same, 2 different")]
    Plan(PlanArgs),
    /// Execute a sealed plan: verify its seal and freshness, then export every chunk.
    ///
    /// Exit codes: 0 done, 1 runtime failure, 3 plan refused (edited, unknown format
    /// version, or stale because the source changed shape since planning).
    #[command(after_long_help = "Examples:
  rivet apply plan.json
  rivet apply plan.json --resume              # only chunks not committed yet
  rivet apply plan.json --state /var/lib/rivet/state.db
  rivet apply rivet.yaml                      # plan and apply in one step
  rivet apply plan.json --metrics-file run.prom --quiet")]
    Apply(ApplyArgs),
    /// Plan and apply in one step; the plan is kept beside the state database for audit.
    #[command(after_long_help = "Examples:
  rivet run -c rivet.yaml
  rivet run -c rivet.yaml --resume            # finish the interrupted run's kept plan")]
    Run(RunArgs),
    /// Show recent runs and per-export progress from the state database.
    #[command(after_long_help = "Examples:
  rivet state
  rivet state --json --limit 50
  rivet state reset-cursor orders_delta       # next plan starts at window 1
  rivet state reset-shape orders              # forget the drift history")]
    State(StateArgs),
    /// Show the journal of a run (default: the latest).
    #[command(after_long_help = "Examples:
  rivet journal                               # the latest run
  rivet journal run-1764633600000-4242 --json")]
    Journal(JournalArgs),
    /// Check that what a plan's exports wrote is complete and intact.
    ///
    /// For every export of the plan (or the one directory given with --manifest): the
    /// manifest and `_SUCCESS` exist, every listed file exists with the recorded size,
    /// sha256 and row count (Parquet footer or CSV records), and no unlisted chunk file
    /// sits beside them. One line per problem; exit 4 if there is any. It reads the
    /// files back; it does not compare with the source.
    #[command(after_long_help = "Examples:
  rivet validate plan.json
  rivet validate -c rivet.yaml
  rivet validate --manifest out/orders
  rivet validate --manifest s3://bucket/exports/orders/manifest.json --json")]
    Validate {
        /// The sealed plan whose exports to check.
        #[arg(required_unless_present_any = ["manifest", "config"], conflicts_with_all = ["manifest", "config"])]
        plan: Option<PathBuf>,
        /// An export directory (or its manifest.json) to check instead of a plan: a local
        /// path, or s3://bucket/prefix, gs://bucket/prefix, az://container/prefix with the
        /// cloud's standard credential variables (AWS_ENDPOINT_URL for S3-compatible
        /// stores, AZURE_STORAGE_ACCOUNT_NAME for Azure).
        #[arg(long, value_name = "PATH", conflicts_with = "config")]
        manifest: Option<PathBuf>,
        /// Check the destinations of a config's exports (an incremental export's latest
        /// committed window, from the state database beside the config).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Compare each chunk of a plan with the source: re-read it (nothing is written).
    ///
    /// Reports every chunk whose source rows differ from what its manifest recorded:
    /// the row count, and with --checksum an order-independent checksum of the rows
    /// against the chunk's Parquet files. Exit 4 if any chunk drifted.
    #[command(after_long_help = "Examples:
  rivet reconcile plan.json
  rivet reconcile plan.json --checksum --json")]
    Reconcile {
        /// The sealed plan whose exports to compare.
        plan: PathBuf,
        /// Also compare row checksums (reads the Parquet files back; CSV is counted only).
        #[arg(long)]
        checksum: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Build a sealed repair plan of only the chunks that are missing, corrupt or (with
    /// --reconcile) drifted.
    ///
    /// Review it with `rivet plan show` / `rivet plan diff`, then run it with
    /// `rivet apply repair.json`: those chunks are read again and written under their
    /// same names, and the manifest is rewritten listing the kept files and the new ones.
    /// Exit 0 also when nothing needs repair (no file is written then).
    #[command(after_long_help = "Examples:
  rivet repair plan.json -o repair.json && rivet plan show repair.json && rivet apply repair.json
  rivet repair plan.json --reconcile -o repair.json")]
    Repair {
        /// The sealed plan whose exports to repair.
        plan: PathBuf,
        /// Where to write the repair plan.
        #[arg(short, long, value_name = "FILE", default_value = "repair.json")]
        out: PathBuf,
        /// Also re-read every chunk from the source and repair those that drifted.
        #[arg(long)]
        reconcile: bool,
    },
    /// Check a config's source, tables and destinations before a night run.
    ///
    /// Connects to the source, checks read access to every table or query, and writes,
    /// reads and deletes a probe file in every destination. One PASS/FAIL line per
    /// check, with the fix for each failure; exit 1 if any check fails.
    #[command(after_long_help = "Examples:
  rivet doctor -c rivet.yaml")]
    Doctor {
        /// Config file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Write a commented config from a live database, choosing a mode per table.
    ///
    /// Discovers each table's keys, sizes and cursor candidates and writes the reason
    /// for each choice as a comment.
    /// The URL is read from the environment variable named by --source-env, and the
    /// config refers to that variable: no credential is written. Without --table every
    /// table of the --schema(s) (default: the connection's own schema) is proposed.
    #[command(after_long_help = "Examples:
  rivet init --source-env DATABASE_URL -o rivet.yaml
  rivet init --source-env DATABASE_URL --schema sales --table orders --table 'Sales Data.Order Items' -o rivet.yaml
  rivet init --source-env DATABASE_URL --s3-bucket my-exports -o rivet.yaml --discover discovery.json
  rivet init --source-env DATABASE_URL --mode chunked --table events -o events.yaml")]
    Init(InitArgs),
    /// Warn about what a DBA would flag before a night run, from statistics.
    ///
    /// For each export: chunk or cursor columns without an index, chunks far from
    /// their target size because of key gaps or skew, nullable cursors without a
    /// fallback, full exports that hold one snapshot for long, local destinations
    /// without room, and more parallelism than the source has connections left. Each
    /// warning names the export, table and column and says what to do. Exit 0 (1 with
    /// --strict when there is any warning).
    #[command(after_long_help = "Examples:
  rivet check -c rivet.yaml
  rivet check -c rivet.yaml --strict          # exit 1 on any warning (CI)
  rivet check -c rivet.yaml --json | jq '.findings[] | select(.export == \"orders\")'")]
    Check {
        /// Config file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Exit 1 when there is any warning.
        #[arg(long)]
        strict: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Create or drop the replication slot and publication of `cdc` exports.
    ///
    /// PostgreSQL: plan and apply never create them. MySQL/MariaDB: nothing is created;
    /// setup checks log_bin, binlog_format=ROW, binlog_row_image=FULL and the grants
    /// (docs/cdc.md). Exit 2 when a prerequisite (wal_level, REPLICATION, table
    /// ownership, free slots, binary log settings) is missing.
    #[command(after_long_help = "Examples:
  rivet cdc setup -c rivet.yaml
  rivet cdc teardown -c rivet.yaml            # drops the slot: the next window needs a new snapshot")]
    Cdc {
        #[command(subcommand)]
        action: CdcAction,
    },
    /// Print the JSON Schema of the config or of plan files.
    #[command(after_long_help = "Examples:
  rivet schema config > rivet.schema.json     # for editor completion of rivet.yaml")]
    Schema {
        #[arg(value_enum)]
        what: SchemaKind,
    },
    /// Print a run's metrics (Prometheus text, or JSON) from the state database.
    #[command(after_long_help = "Examples:
  rivet metrics                               # the latest run, Prometheus text
  rivet metrics run-1764633600000-4242 --json
  rivet metrics > /var/lib/node_exporter/textfile/rivet.prom")]
    Metrics {
        /// Run id (default: the most recent run).
        run_id: Option<String>,
        /// State database (default: ./.rivet_state.db).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// JSON instead of the Prometheus text format.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    #[command(after_long_help = "Examples:
  rivet completions bash > /etc/bash_completion.d/rivet
  rivet completions zsh > \"${fpath[1]}/_rivet\"
  rivet completions fish > ~/.config/fish/completions/rivet.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_long_help = "Examples:
  rivet man | man -l -
  rivet man --out-dir /usr/local/share/man/man1")]
    Man {
        /// Write rivet.1 and rivet-<command>.1 files here instead of printing rivet.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `rivet init`'s arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Environment variable holding the source URL (postgres://, mysql://,
    /// sqlserver://); the config names the variable, never its value.
    #[arg(long, value_name = "VAR")]
    pub source_env: String,
    /// Schema to scan (repeatable); also the schema of --table names without one.
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Vec<String>,
    /// Table to propose (repeatable): `name` or `schema.name`, quoting a part that holds
    /// a dot as `"my.schema"."my.table"`.
    #[arg(long, value_name = "TABLE")]
    pub table: Vec<String>,
    /// Use this mode for every table instead of choosing per table.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<InitMode>,
    /// Tables estimated smaller than this many MB are exported whole (`full`).
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub full_below_mb: u64,
    /// Write to this local directory, one subdirectory per export (default ./output).
    #[arg(long, value_name = "DIR", group = "dest")]
    pub path: Option<String>,
    /// Write to this S3 bucket, one prefix per export.
    #[arg(long, value_name = "BUCKET", group = "dest")]
    pub s3_bucket: Option<String>,
    /// Write to this Google Cloud Storage bucket, one prefix per export.
    #[arg(long, value_name = "BUCKET", group = "dest")]
    pub gcs_bucket: Option<String>,
    /// Write to this Azure Blob container, one prefix per export.
    #[arg(long, value_name = "CONTAINER", group = "dest")]
    pub azure_container: Option<String>,
    /// Azure storage account of --azure-container (default: $AZURE_STORAGE_ACCOUNT_NAME).
    #[arg(long, value_name = "ACCOUNT", requires = "azure_container")]
    pub azure_account: Option<String>,
    /// Where to write the config; refuses to overwrite an existing file.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the evidence (tables, keys, indexes, sizes, candidates, choices) as
    /// JSON here.
    #[arg(long, value_name = "FILE")]
    pub discover: Option<PathBuf>,
}

/// Modes `rivet init --mode` can force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitMode {
    Full,
    Chunked,
    Incremental,
    TimeWindow,
    Cdc,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaKind {
    Config,
    Plan,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub action: Option<PlanAction>,
    /// Config file to plan from.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to write the sealed plan.
    #[arg(short, long, value_name = "FILE", default_value = "plan.json")]
    pub out: PathBuf,
    /// State database holding incremental positions (default: .rivet_state.db beside
    /// the plan, where `rivet apply` keeps it).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub as_of: AsOfArg,
}

/// The plan's reference time.
#[derive(Debug, Args)]
pub struct AsOfArg {
    /// Reference time for `time_window` bounds (truncated to the day) and date/time
    /// incremental windows: `2026-11-27`, `2026-11-27T08:00:00Z` or an RFC 3339 time
    /// with an offset. Default: now. Recorded in the plan's bounds.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Render a plan as a tree: waves, exports, columns and types, chunks and key ranges.
    Show {
        plan: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Compare two plans. Exit 0 when equivalent, 2 when different, 1 on error.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The sealed plan made by `rivet plan` — or a config (`.yaml`/`.yml`), which is
    /// planned and applied in one step like `rivet run` (the plan is kept beside the
    /// state database).
    pub plan: PathBuf,
    /// Run only the chunks of this plan that are not committed yet. With a config:
    /// finish the latest run that did not succeed, from its kept plan (like `rivet run
    /// --resume`).
    #[arg(long)]
    pub resume: bool,
    /// State database (default: .rivet_state.db beside the plan).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// With a config instead of a plan: the reference time (see `rivet plan --help`).
    #[command(flatten)]
    pub as_of: AsOfArg,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Where an apply writes its metrics when it ends (success or failure).
#[derive(Debug, Args, Default)]
pub struct MetricsArgs {
    /// Write the run's metrics in the Prometheus text format (rows, bytes, retries,
    /// chunk latency histogram, longest statement, last success per export) — for the
    /// node exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Write the same metrics as JSON.
    #[arg(long, value_name = "FILE")]
    pub metrics_json: Option<PathBuf>,
    /// Append OpenLineage run events (START, then COMPLETE or FAIL) as JSON lines:
    /// input dataset = source table, output dataset = destination, with schema and
    /// row-count facets.
    #[arg(long, value_name = "FILE")]
    pub openlineage_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// Finish the latest run that did not succeed: apply its kept plan (from
    /// `.rivet_plans/`) again, skipping the chunks it committed — no new plan is made.
    #[arg(long)]
    pub resume: bool,
    /// State database (default: .rivet_state.db beside the config).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub as_of: AsOfArg,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StateArgs {
    #[command(subcommand)]
    pub action: Option<StateAction>,
    /// State database (default: ./.rivet_state.db).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// How many recent runs to list.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also ask the source this config names, read-only, how far each `cdc` export's
    /// log has moved past its committed position (slot lag and retained WAL, binary log
    /// after the position and whether it is still on the server, SQL Server's max LSN).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Forget an incremental export's committed position, so that its next plan starts
    /// from the beginning (window 1). Files already written are not touched.
    ResetCursor {
        /// Export name.
        export: String,
        /// State database (default: ./.rivet_state.db).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Forget the columns an export's earlier runs wrote (its schema-drift history),
    /// so that its next apply compares with nothing. Files are not touched.
    ResetShape {
        /// Export name.
        export: String,
        /// State database (default: ./.rivet_state.db).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct JournalArgs {
    /// Run id (default: the most recent run).
    pub run_id: Option<String>,
    /// State database (default: ./.rivet_state.db).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}
