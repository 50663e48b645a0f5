//! The rules a JSON Schema cannot express: one way to name the source, what each mode
//! needs, which options go with which format, destination keys per kind. Each problem
//! names its key path; all are collected, none stops the others.

use std::collections::HashSet;

use crate::config::{
    Compression, Consistency, DestinationKind, ExportConfig, ExportMode, Format, SourceConfig,
    SourceKind,
};
use crate::error::ConfigProblem;

/// The rules the schema cannot express, over the parts of the config that read: the
/// source block when it does, and the exports that do, by their index in `exports`
/// (`export_count` of them in the file).
pub(super) fn semantic_problems(
    source: Option<&SourceConfig>,
    exports: &[(usize, ExportConfig)],
    export_count: usize,
) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut push = |path: String, message: &str| {
        problems.push(ConfigProblem {
            path,
            message: message.to_owned(),
        })
    };
    if let Some(s) = source {
        source_problems(s, &mut push);
    }
    let mut names = HashSet::new();
    // Destinations that clash (the same directory spelled two ways, through a symlink,
    // or nested) are found by the planner, which can resolve paths on disk.
    for (i, e) in exports {
        let i = *i;
        let at = |key: &str| format!("exports[{i}].{key}");
        if !names.insert(e.name.as_str()) {
            push(
                at("name"),
                &format!(
                    "duplicate export name `{}`; every export needs its own name",
                    e.name
                ),
            );
        }
        cdc_problems(source, e, &at, &mut push);
        export_problems(e, &at, &mut push);
        if e.consistency == Some(Consistency::Snapshot)
            && source.is_some_and(|s| s.kind != SourceKind::Postgres)
        {
            push(
                at("consistency"),
                "`consistency: snapshot` is supported on PostgreSQL sources only (an exported snapshot that every chunk's connection adopts); remove it, and each chunk reads its own snapshot (docs/execution.md)",
            );
        }
        if e.destination.kind == DestinationKind::Stdout {
            if export_count > 1 {
                push(
                    at("destination.type"),
                    "a `stdout` destination needs a config with exactly one export: the output of several would be interleaved on one stream",
                );
            }
            if e.mode == ExportMode::Chunked {
                push(
                    at("mode"),
                    "a `stdout` destination writes one file, so it cannot take several chunks; use `mode: full` (or `incremental` / `time_window`)",
                );
            }
            if e.max_file_size.is_some() {
                push(
                    at("max_file_size"),
                    "`max_file_size` does not apply to `stdout`: the output is one stream",
                );
            }
        }
    }
    problems
}

/// The rules of `mode: cdc` and its `cdc` block (docs/cdc.md).
fn cdc_problems(
    source: Option<&SourceConfig>,
    e: &ExportConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    if e.mode != ExportMode::Cdc {
        if e.cdc.is_some() {
            push(
                at("cdc"),
                "the `cdc` block applies to `mode: cdc` exports only; remove it or set `mode: cdc`",
            );
        }
        return;
    }
    let kind = source.map(|s| s.kind);
    if e.table.is_none() {
        push(
            at("table"),
            "a `cdc` export captures the changes of one table: give `table`, not `query`/`query_file`",
        );
    }
    if e.destination.kind == DestinationKind::Stdout {
        push(
            at("destination.type"),
            "a `cdc` export writes one `window-NNNNN/` directory per run; use a `local` or object-store destination",
        );
    }
    let Some(c) = &e.cdc else { return };
    if c.checkpoint.is_some() {
        push(
            at("cdc.checkpoint"),
            "not used by this rivet: the committed log position lives in the state database (see `rivet state`) and moves only after a window's `_SUCCESS`; remove the key",
        );
    }
    if c.until_current == Some(false) {
        push(
            at("cdc.until_current"),
            "continuous capture is not offered: every run exports the sealed window up to the log position read at plan time (what `until_current: true` meant); remove the key and schedule `rivet run`",
        );
    }
    let mysql = kind == Some(crate::config::SourceKind::Mysql);
    if c.server_id.is_some() && !mysql {
        push(
            at("cdc.server_id"),
            "`server_id` is the replica id of MySQL/MariaDB binary log capture; PostgreSQL capture uses `cdc.slot` (docs/cdc.md); remove the key",
        );
    }
    if c.server_id == Some(0) {
        push(
            at("cdc.server_id"),
            "a replica id is 1 to 4294967295 (0 means \"not a replica\" to the server)",
        );
    }
    let mssql = kind == Some(crate::config::SourceKind::Mssql);
    if c.capture_instance.is_some() && !mssql {
        push(
            at("cdc.capture_instance"),
            "`capture_instance` names a SQL Server change data capture instance; this source has none (docs/cdc.md); remove the key",
        );
    }
    if mysql || mssql {
        let (what, instead) = if mysql {
            (
                "MySQL/MariaDB capture reads the binary log as a replica",
                "`cdc.server_id` names the replica id",
            )
        } else {
            (
                "SQL Server capture reads a capture instance's change table",
                "`cdc.capture_instance` names the instance",
            )
        };
        for (key, name) in [("cdc.slot", &c.slot), ("cdc.publication", &c.publication)] {
            if name.is_some() {
                push(
                    at(key),
                    &format!("{what} and has no slot or publication; remove the key ({instead})"),
                );
            }
        }
        return;
    }
    for (key, name) in [("cdc.slot", &c.slot), ("cdc.publication", &c.publication)] {
        if let Some(n) = name {
            let ok = !n.is_empty()
                && n.len() <= 63
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                push(
                    at(key),
                    "use 1 to 63 characters from lowercase letters, digits and `_` (PostgreSQL's rule for slot names)",
                );
            }
        }
    }
}

/// The source block's rules: one connection form, a usable timeout, TLS keys that
/// apply.
fn source_problems(s: &SourceConfig, push: &mut dyn FnMut(String, &str)) {
    let structured = s.host.is_some()
        || s.port.is_some()
        || s.user.is_some()
        || s.password_env.is_some()
        || s.database.is_some();
    let forms = [
        s.url.is_some(),
        s.url_env.is_some(),
        s.url_file.is_some(),
        structured,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if forms != 1 {
        push(
            "source".into(),
            "give exactly one of `url`, `url_env`, `url_file`, or the structured keys \
             (`host`, `port`, `user`, `password_env`, `database`)",
        );
    }
    if let Some(Err(m)) = s.connect_timeout.as_ref().map(|t| t.duration()) {
        push("source.connect_timeout".into(), &m);
    }
    if let Some(tls) = &s.tls {
        use crate::config::TlsMode;
        if tls.ca_file.is_some() && !matches!(tls.mode, TlsMode::VerifyCa | TlsMode::VerifyFull) {
            push(
                "source.tls.ca_file".into(),
                "`ca_file` is only used to verify the server (`mode: verify-ca` or `verify-full`); set one of those modes or remove the key",
            );
        }
    }
}

fn export_problems(
    e: &ExportConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    if e.tuning
        .as_ref()
        .is_some_and(|t| t.max_source_connections.is_some())
    {
        push(
            at("tuning.max_source_connections"),
            "`max_source_connections` bounds a whole apply; set it in the top-level `tuning`",
        );
    }
    let query = e.query.as_ref().or(e.query_file.as_ref());
    if e.query.is_some() && e.query_file.is_some() {
        push(
            at("query_file"),
            "give either `query` or `query_file`, not both",
        );
    }
    match (&e.table, query) {
        (Some(_), Some(_)) => push(
            at("table"),
            "give either `table` or `query`/`query_file`, not both",
        ),
        (None, None) => push(
            at("table"),
            "missing `table` (or `query`/`query_file`): what should be exported?",
        ),
        (Some(t), None) if crate::names::split_table_name(t).is_err() => push(
            at("table"),
            "cannot read this table name; write `table` or `schema.table`, quoting a part that \
             contains a dot as \"my.part\"",
        ),
        _ => {}
    }
    if e.mode != ExportMode::Chunked {
        let why = match e.mode {
            ExportMode::Incremental | ExportMode::TimeWindow => {
                "; a window is read as one chunk per run (on PostgreSQL through a server-side cursor fetched in short statements)"
            }
            _ => "",
        };
        for (key, set) in [
            ("chunk_column", e.chunk_column.is_some()),
            ("chunk_size", e.chunk_size.is_some()),
        ] {
            if set {
                push(
                    at(key),
                    &format!("`{key}` only applies to `mode: chunked`{why}; set the mode or remove the key"),
                );
            }
        }
    }
    let incremental = e.mode == ExportMode::Incremental;
    let time_window = e.mode == ExportMode::TimeWindow;
    if incremental && e.cursor_column.is_none() {
        push(
            at("cursor_column"),
            "`mode: incremental` needs `cursor_column`: the column whose growth marks new or changed rows (e.g. `updated_at` or an increasing `id`)",
        );
    }
    if time_window {
        if e.time_column.is_none() {
            push(
                at("time_column"),
                "`mode: time_window` needs `time_column`: the column holding each row's time",
            );
        }
        if e.days_window.is_none() {
            push(
                at("days_window"),
                "`mode: time_window` needs `days_window`: how many days before `--as-of` to export",
            );
        }
    }
    for (key, set, mode_ok, mode) in [
        (
            "cursor_column",
            e.cursor_column.is_some(),
            incremental,
            "incremental",
        ),
        (
            "cursor_fallback_column",
            e.cursor_fallback_column.is_some(),
            incremental,
            "incremental",
        ),
        (
            "settle_lag",
            e.settle_lag.is_some(),
            incremental,
            "incremental",
        ),
        (
            "time_column",
            e.time_column.is_some(),
            time_window,
            "time_window",
        ),
        (
            "time_column_type",
            e.time_column_type.is_some(),
            time_window,
            "time_window",
        ),
        (
            "days_window",
            e.days_window.is_some(),
            time_window,
            "time_window",
        ),
    ] {
        if set && !mode_ok {
            push(
                at(key),
                &format!("`{key}` only applies to `mode: {mode}`; set the mode or remove the key"),
            );
        }
    }
    if let Some(q) = &e.quality {
        for (column, ratio) in q.null_ratio_max.iter().flatten() {
            if !(0.0..=1.0).contains(ratio) {
                push(
                    format!("{}.{column}", at("quality.null_ratio_max")),
                    "a NULL ratio is a share from 0 to 1 (0.05 = 5%)",
                );
            }
        }
        if let (Some(lo), Some(hi)) = (q.row_count_min, q.row_count_max) {
            if lo > hi {
                push(
                    at("quality.row_count_min"),
                    "`row_count_min` is larger than `row_count_max`; no export can pass",
                );
            }
        }
    }
    if let Some(size) = &e.max_file_size {
        match size.bytes() {
            Err(m) => push(at("max_file_size"), &m),
            Ok(n) if n < 1024 * 1024 => push(
                at("max_file_size"),
                "`max_file_size` must be at least 1 MiB; smaller files cost more in per-file overhead than they save",
            ),
            Ok(_) => {}
        }
    }
    if e.mode == ExportMode::Chunked && query.is_some() && e.chunk_column.is_none() {
        push(at("chunk_column"), "a chunked `query` export needs `chunk_column`: the integer column of the query's result to split on");
    }
    if let Some(cols) = &e.columns {
        if cols.is_empty() {
            push(
                at("columns"),
                "an empty column list exports nothing; remove the key to export every column",
            );
        }
        let mut seen = HashSet::new();
        for (j, c) in cols.iter().enumerate() {
            if !seen.insert(c) {
                push(
                    format!("{}[{j}]", at("columns")),
                    &format!("column `{c}` is listed twice"),
                );
            }
        }
    }
    if e.format == Format::Csv
        && matches!(e.compression, Some(Compression::Snappy | Compression::Lz4))
    {
        push(at("compression"), "CSV files can be compressed with `gzip`, `zstd` or `none`; `snappy` and `lz4` apply to Parquet only");
    }
    destination_problems(&e.destination, at, push);
}

/// Which destination keys each kind takes, and the ones it requires.
fn destination_problems(
    d: &crate::config::DestinationConfig,
    at: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(String, &str),
) {
    let set: [(&str, bool); 16] = [
        ("path", d.path.is_some()),
        ("bucket", d.bucket.is_some()),
        ("prefix", d.prefix.is_some()),
        ("region", d.region.is_some()),
        ("endpoint", d.endpoint.is_some()),
        ("path_style", d.path_style.is_some()),
        ("access_key_env", d.access_key_env.is_some()),
        ("secret_key_env", d.secret_key_env.is_some()),
        ("session_token_env", d.session_token_env.is_some()),
        ("credentials_file", d.credentials_file.is_some()),
        ("account", d.account.is_some()),
        ("container", d.container.is_some()),
        ("account_key_env", d.account_key_env.is_some()),
        ("sas_token_env", d.sas_token_env.is_some()),
        ("bearer_token_env", d.bearer_token_env.is_some()),
        ("type", true),
    ];
    let (allowed, required): (&[&str], &[&str]) = match d.kind {
        DestinationKind::Local => (&["path"], &["path"]),
        DestinationKind::S3 => (
            &[
                "bucket",
                "prefix",
                "region",
                "endpoint",
                "path_style",
                "access_key_env",
                "secret_key_env",
                "session_token_env",
            ],
            &["bucket"],
        ),
        DestinationKind::Gcs => (&["bucket", "prefix", "credentials_file"], &["bucket"]),
        DestinationKind::Azure => (
            &[
                "account",
                "container",
                "prefix",
                "endpoint",
                "account_key_env",
                "sas_token_env",
                "bearer_token_env",
            ],
            &["account", "container"],
        ),
        DestinationKind::Stdout => (&[], &[]),
    };
    let kind = crate::variant_name(&d.kind);
    for (key, present) in set {
        if key == "type" {
            continue;
        }
        if present && !allowed.contains(&key) {
            push(
                at(&format!("destination.{key}")),
                &format!(
                    "`{key}` does not apply to a `{kind}` destination (it takes: {})",
                    if allowed.is_empty() {
                        "no other keys".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            );
        }
    }
    for key in required {
        let present = set.iter().any(|(k, p)| k == key && *p);
        let empty = match *key {
            "path" => d.path.as_deref() == Some(""),
            "bucket" => d.bucket.as_deref() == Some(""),
            _ => false,
        };
        if !present || empty {
            push(
                at(&format!("destination.{key}")),
                &format!("a `{kind}` destination needs `{key}`"),
            );
        }
    }
    if d.access_key_env.is_some() != d.secret_key_env.is_some() {
        push(
            at("destination.secret_key_env"),
            "give both `access_key_env` and `secret_key_env`, or neither (to use the standard AWS credential chain)",
        );
    }
    let azure_auth = [&d.account_key_env, &d.sas_token_env, &d.bearer_token_env]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if azure_auth > 1 {
        push(
            at("destination.account_key_env"),
            "give at most one of `account_key_env`, `sas_token_env`, `bearer_token_env`",
        );
    }
    if let Some(p) = &d.prefix {
        if p.split('/').any(|seg| seg == "." || seg == "..") {
            push(
                at("destination.prefix"),
                "a prefix cannot contain `.` or `..` segments",
            );
        }
    }
}
