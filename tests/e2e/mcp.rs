//! `rivet-mcp` driven by a real MCP client (the Python `mcp` SDK that
//! `scripts/test-env.sh` installs): handshake, tool list, and every tool called against
//! the live PostgreSQL and MariaDB, with the credentials only in the environment.

use std::io::Write;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::common::*;

/// The client script, run by the test environment's Python.
const CLIENT: &str = include_str!("mcp_client.py");

/// Runs one MCP session: starts `rivet-mcp` in `dir` with `env` as its whole extra
/// environment, makes `calls` in order, and returns the client's JSON report.
pub(crate) fn mcp_session(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    calls: &[(&str, Value)],
) -> Value {
    let python = live_env("RIVET_TEST_PYTHON", "the Python MCP client").unwrap_or_else(|| {
        panic!("RIVET_TEST_PYTHON is not set: eval \"$(scripts/test-env.sh env)\" first")
    });
    let server = assert_cmd::cargo::cargo_bin("rivet-mcp");
    assert!(
        server.exists(),
        "{} is not built: build the workspace (cargo build --workspace, or cargo nextest run --workspace)",
        server.display()
    );
    let env: serde_json::Map<String, Value> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let spec = json!({
        "command": server,
        "cwd": dir,
        "env": env,
        "calls": calls.iter().map(|(n, a)| json!({"name": n, "arguments": a})).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", CLIENT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python MCP client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the MCP client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The `i`-th call's first text block as JSON (tools answer JSON unless they render).
pub(crate) fn json_of(report: &Value, i: usize) -> Value {
    let call = &report["calls"][i];
    assert_eq!(call["is_error"], false, "{call}");
    serde_json::from_str(call["texts"][0].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {call}"))
}

fn text_of(report: &Value, i: usize, block: usize) -> String {
    report["calls"][i]["texts"][block]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn section<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no section {name} in {health}"))
}

/// Everything every tool printed, for the "never a password" check.
fn all_text(report: &Value) -> String {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["texts"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `sql` (a count) says something is true, at most ten seconds.
fn wait_until(client: &mut postgres::Client, sql: &str) {
    for _ in 0..100 {
        let n: i64 = client.query_one(sql, &[]).unwrap().get(0);
        if n > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for: {sql}");
}

#[test]
fn an_mcp_client_calls_every_tool_against_postgres() {
    let url = require_pg!();
    let mut s = Scratch::new(&url, "mcp");
    s.exec(
        "CREATE TABLE SCHEMA.orders (id int PRIMARY KEY, note text);
         INSERT INTO SCHEMA.orders SELECT g, 'n' || g FROM generate_series(1, 1000) g;
         ANALYZE SCHEMA.orders;
         CREATE TABLE SCHEMA.hot (id int);",
    );
    let p = Project::new(&url);
    let cfg = format!(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: orders\n    table: {}.orders\n    mode: chunked\n    chunk_size: 250\n    destination: {{ type: local, path: out/orders }}\n",
        s.schema
    );
    p.config(&cfg);
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    s.exec("INSERT INTO SCHEMA.orders SELECT g, 'n' || g FROM generate_series(1001, 2000) g; ANALYZE SCHEMA.orders;");
    p.plan_to("p2.json", &[]);
    // The same source through a URL whose password is wrong: the error must not echo it.
    let wrong_pw = "wr0ng-S3cret-pw";
    let wrong_url = {
        let mut u = url.clone();
        let at = u.rfind('@').expect("the test URL has credentials");
        let colon = u[..at].rfind(':').unwrap();
        u.replace_range(colon + 1..at, wrong_pw);
        u
    };
    p.write(
        "wrong.yaml",
        &cfg.replace("url_env: DATABASE_URL", "url_env: WRONG_URL"),
    );

    // Activity to find: one session holds a lock and sits idle in its transaction,
    // another waits for that lock.
    let mut holder = connect(&url);
    holder
        .batch_execute(&format!(
            "SET application_name = 'rivet_mcp_holder'; BEGIN; LOCK TABLE \"{}\".hot IN ACCESS EXCLUSIVE MODE",
            s.schema
        ))
        .unwrap();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let waiter_url = url.clone();
    let hot = format!("\"{}\".hot", s.schema);
    let waiter = std::thread::spawn(move || {
        let mut c = connect(&waiter_url);
        c.batch_execute("SET application_name = 'rivet_mcp_waiter'")
            .unwrap();
        c.query_one(&format!("SELECT count(*) FROM {hot}"), &[])
            .map(|r| r.get::<_, i64>(0))
    });
    let mut watcher = connect(&url);
    wait_until(
        &mut watcher,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE {holder_pid} = ANY(pg_blocking_pids(pid))"
        ),
    );

    let planned: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("p.json")).unwrap()).unwrap();
    let chunks = planned["body"]["exports"][0]["chunks"]
        .as_array()
        .unwrap()
        .len();
    assert!(chunks >= 4, "{chunks}");
    let plan = p.path("p.json").display().to_string();
    let plan2 = p.path("p2.json").display().to_string();
    let report = mcp_session(
        p.dir(),
        &[("DATABASE_URL", &url), ("WRONG_URL", &wrong_url)],
        &[
            ("source_health", json!({"config": "rivet.yaml"})),
            ("plan_show", json!({"plan": plan})),
            ("plan_diff", json!({"old": plan, "new": plan2})),
            ("state_summary", json!({"plan": plan})),
            ("validate", json!({"plan": plan})),
            (
                "explain_chunk",
                json!({"plan": plan, "export": "orders", "chunk": "orders/00002"}),
            ),
            ("safe_to_apply", json!({"plan": plan})),
            ("source_health", json!({"config": "wrong.yaml"})),
            ("explain_chunk", json!({"plan": plan, "export": "nope"})),
            ("source_health", json!({})),
        ],
    );
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), 0);

    // Handshake and tool list.
    assert_eq!(report["server"], "rivet-mcp", "{report}");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "source_health",
        "plan_show",
        "plan_diff",
        "state_summary",
        "validate",
        "explain_chunk",
        "safe_to_apply",
    ] {
        assert!(tools.contains(&name), "{name} missing from {tools:?}");
    }
    assert_eq!(tools.len(), 7, "{tools:?}");
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["read_only"] == true),
        "every tool is marked read-only: {}",
        report["tools"]
    );

    // source_health: read-only session, our lock wait and idle transaction.
    let health = json_of(&report, 0);
    assert_eq!(health["engine"], "postgres");
    assert_eq!(health["read_only_session"], true, "{health}");
    let waits = section(&health, "lock_waits");
    assert!(
        waits["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["blocking_pid"] == holder_pid),
        "{waits}"
    );
    let idle = section(&health, "idle_in_transaction");
    assert!(
        idle["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["pid"] == holder_pid && r["application_name"] == "rivet_mcp_holder"),
        "{idle}"
    );
    assert!(
        health["pressure"]["lock_waits"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert!(health["pressure"]["idle_in_transaction"].as_u64().unwrap() >= 1);
    assert_eq!(section(&health, "replication_slots")["available"], true);
    // pg_stat_statements: read when the extension is installed, said so when not.
    let pgss = section(&health, "top_io_statements");
    let installed: i64 = watcher
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
            &[],
        )
        .unwrap()
        .get(0);
    if installed == 1 {
        assert_eq!(pgss["available"], true, "{pgss}");
        assert!(!pgss["rows"].as_array().unwrap().is_empty(), "{pgss}");
    } else {
        assert_eq!(pgss["available"], false, "{pgss}");
        assert!(
            pgss["note"].as_str().unwrap().contains("not installed"),
            "{pgss}"
        );
    }
    let checkpoints = section(&health, "checkpoints");
    assert_eq!(checkpoints["available"], true, "{checkpoints}");
    assert!(
        checkpoints["rows"][0]["requested_share"].is_number(),
        "{checkpoints}"
    );

    // plan_show and plan_diff: the planner's own renderings.
    assert!(
        text_of(&report, 1, 0).contains("orders"),
        "{}",
        text_of(&report, 1, 0)
    );
    let shown: Value = serde_json::from_str(&text_of(&report, 1, 1)).unwrap();
    assert_eq!(shown, rivet_planner_show_json(&p, "p.json"));
    let diff: Value = serde_json::from_str(&text_of(&report, 2, 1)).unwrap();
    assert_eq!(diff["same"], false, "{diff}");

    // state_summary: the apply's run and its chunks.
    let state = json_of(&report, 3);
    assert_eq!(state["runs"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["exports"][0]["export"], "orders");
    assert_eq!(state["exports"][0]["chunks_committed"], chunks, "{state}");

    // validate: what the apply wrote checks out.
    let valid = json_of(&report, 4);
    assert_eq!(valid["valid"], true, "{valid}");
    assert_eq!(valid["exports"][0]["rows"], 1000, "{valid}");

    // explain_chunk: the executor's SELECT for chunk 2, and PostgreSQL's plan of it.
    let explain = json_of(&report, 5);
    let sql = explain["sql"].as_str().unwrap();
    assert!(
        sql.starts_with("SELECT \"id\", \"note\" FROM")
            && sql.contains(&format!("\"{}\".\"orders\"", s.schema))
            && sql.contains("\"id\" >= "),
        "{sql}"
    );
    let plan_text: String = explain["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan_text.contains("Scan"), "{plan_text}");
    assert_eq!(explain["chunk"], "orders/00002");

    // safe_to_apply: the lock wait is a reason for caution.
    let verdict = json_of(&report, 6);
    assert_ne!(verdict["verdict"], "safe", "{verdict}");
    assert!(
        verdict["reasons"].to_string().contains("waiting on locks"),
        "{verdict}"
    );
    assert_eq!(verdict["planned_load"]["chunks"], chunks, "{verdict}");

    // Errors are tool errors with reasons, and never echo a password.
    let bad = &report["calls"][7];
    assert_eq!(bad["is_error"], true, "{bad}");
    assert!(bad.to_string().contains("cannot connect"), "{bad}");
    assert!(!bad.to_string().contains(wrong_pw), "{bad}");
    let nope = &report["calls"][8];
    assert_eq!(nope["is_error"], true);
    assert!(nope.to_string().contains("has no export `nope`"), "{nope}");
    assert!(report["calls"][9]["is_error"] == true);
    let everything = all_text(&report);
    if let Some(pw) = std::env::var("RIVET_TEST_PG_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        assert!(!everything.contains(&pw), "a tool echoed the password");
    }
    assert!(!everything.contains(wrong_pw));
}

/// `rivet plan show --json` of a plan, for comparing with the tool's JSON.
fn rivet_planner_show_json(p: &Project, plan: &str) -> Value {
    let out = p
        .rivet()
        .args(["plan", "show", plan, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_mcp_client_reads_mariadb_health_and_explains_a_chunk() {
    let url = require_mysql!();
    let p = Project::new(&url);
    p.config(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: big\n    table: big_gappy\n    mode: chunked\n    chunk_size: 40000\n    destination: { type: local, path: out/big }\n",
    );
    p.plan_to("p.json", &[]);
    let plan = p.path("p.json").display().to_string();
    let report = mcp_session(
        p.dir(),
        &[("DATABASE_URL", &url)],
        &[
            ("source_health", json!({"plan": plan})),
            ("explain_chunk", json!({"plan": plan, "export": "big"})),
            ("safe_to_apply", json!({"plan": plan})),
        ],
    );
    let health = json_of(&report, 0);
    assert_eq!(health["engine"], "mariadb", "{health}");
    assert_eq!(health["read_only_session"], true, "{health}");
    for name in ["active_queries", "connections"] {
        assert_eq!(
            section(&health, name)["available"],
            true,
            "{name}: {health}"
        );
    }
    // The test reader has SELECT only: what needs PROCESS is reported missing, with the
    // server's reason, never as an empty (healthy-looking) list.
    for name in ["lock_waits", "idle_in_transaction"] {
        let s = section(&health, name);
        assert_eq!(s["available"], false, "{name}: {s}");
        assert!(
            s["note"].as_str().unwrap().contains("PROCESS"),
            "{name}: {s}"
        );
    }
    let binlog = section(&health, "binlog_retention");
    assert_eq!(binlog["rows"][0]["log_bin"], "ON", "{binlog}");
    assert_eq!(binlog["rows"][0]["binlog_format"], "ROW", "{binlog}");
    assert!(
        binlog["note"].as_str().unwrap().contains("BINLOG MONITOR"),
        "{binlog}"
    );
    let explain = json_of(&report, 1);
    let sql = explain["sql"].as_str().unwrap();
    assert!(
        sql.contains("FROM `") && sql.contains("`big_gappy`") && sql.contains("?"),
        "{sql}"
    );
    assert!(
        !explain["parameters"].as_array().unwrap().is_empty(),
        "{explain}"
    );
    assert!(
        explain["plan"][0]["table"]
            .as_str()
            .is_some_and(|t| t.contains("big_gappy")),
        "{explain}"
    );
    let verdict = json_of(&report, 2);
    assert_eq!(verdict["verdict"], "caution", "{verdict}");
    assert!(
        verdict["reasons"]
            .to_string()
            .contains("could not read lock_waits, idle_in_transaction"),
        "{verdict}"
    );
    if let Some(pw) = std::env::var("RIVET_TEST_MYSQL_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        assert!(
            !all_text(&report).contains(&pw),
            "a tool echoed the password"
        );
    }
}

#[test]
fn source_health_through_pgbouncer_shows_its_pools() {
    let direct = require_pg!();
    let Some(pooled) = live_env("RIVET_TEST_PGBOUNCER_URL", "pgBouncer") else {
        return;
    };
    crate::common::warm_pool(&pooled, 3);
    let p = Project::new(&pooled);
    p.config(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: orders\n    table: rivet_fixture.no_pk\n    destination: { type: local, path: out/orders }\n",
    );
    let report = mcp_session(
        p.dir(),
        &[("DATABASE_URL", pooled.as_str())],
        &[("source_health", json!({"config": "rivet.yaml"}))],
    );
    let health = json_of(&report, 0);
    let pooler = section(&health, "pooler");
    assert_eq!(pooler["available"], true, "{pooler}");
    let ours = pooler["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["database"] == "rivet_fixture_db" && r["user"] == "rivet_reader")
        .unwrap_or_else(|| panic!("no pool of rivet_reader in {pooler}"));
    assert_eq!(ours["pool_mode"], "transaction", "{ours}");
    assert!(ours["cl_waiting"].is_i64(), "{ours}");
    assert!(
        ours["sv_active"].as_i64().unwrap()
            + ours["sv_idle"].as_i64().unwrap()
            + ours["sv_used"].as_i64().unwrap()
            >= 1,
        "{ours}"
    );
    assert!(
        !all_text(&report).contains("rivet-test-pw"),
        "a password was echoed"
    );
    // Directly, the section says there is no pooler on the path.
    let d = Project::new(&direct);
    d.config(&std::fs::read_to_string(p.path("rivet.yaml")).unwrap());
    let report = mcp_session(
        d.dir(),
        &[("DATABASE_URL", direct.as_str())],
        &[("source_health", json!({"config": "rivet.yaml"}))],
    );
    let health = json_of(&report, 0);
    let pooler = section(&health, "pooler");
    assert_eq!(pooler["available"], false, "{pooler}");
    assert!(
        pooler["note"]
            .as_str()
            .unwrap()
            .contains("no transaction pooler"),
        "{pooler}"
    );
}

/// SQL Server through MCP: health from the DMVs, and `explain_chunk` with the estimated
/// plan (SHOWPLAN_XML) of a chunk's batch. Needs a real server, like tests/e2e/mssql.rs.
#[test]
#[ignore = "needs a real SQL Server: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)"]
fn an_mcp_client_reads_sql_server_health_and_its_estimated_plan() {
    let url = std::env::var("RIVET_TEST_MSSQL_URL")
        .expect("RIVET_TEST_MSSQL_URL is not set (docs/sources/mssql.md)");
    let p = Project::new(&url);
    p.config(
        "source:\n  type: mssql\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: objects\n    query: SELECT object_id, name FROM sys.objects\n    destination: { type: local, path: out/objects }\n",
    );
    p.plan_to("p.json", &[]);
    let plan = p.path("p.json").display().to_string();
    let report = mcp_session(
        p.dir(),
        &[("DATABASE_URL", url.as_str())],
        &[
            ("source_health", json!({"plan": plan})),
            ("explain_chunk", json!({"plan": plan, "export": "objects"})),
        ],
    );
    let health = json_of(&report, 0);
    assert_eq!(health["engine"], "mssql", "{health}");
    assert_eq!(
        section(&health, "connections")["available"],
        true,
        "{health}"
    );
    let explain = json_of(&report, 1);
    let xml = explain["plan"][0]["showplan_xml"]
        .as_str()
        .unwrap_or_default();
    assert!(xml.contains("<ShowPlanXML"), "{explain}");
    assert!(
        explain["sql"].as_str().unwrap().contains("sys"),
        "{explain}"
    );
}
