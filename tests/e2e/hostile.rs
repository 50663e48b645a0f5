//! Hostile inputs and hostile servers, kept together (issue 14, "nothing silent"): a
//! server that accepts TCP and never answers, passwords spelled to slip past a string
//! match, URLs for the wrong engine, empty variables and files, absurd numbers. Each
//! case must end in a clear message with the key path and the right exit code, never a
//! hang, a leak or a guess.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{self, rivet, write};

/// A TCP server on loopback that accepts every connection and never sends a byte: a
/// stuck proxy or a half-dead host. Connections are held open until the test ends.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// Runs a prepared command, returning (exit code, stderr + stdout, elapsed time).
fn timed(mut cmd: assert_cmd::Command) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = cmd.timeout(Duration::from_secs(60)).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code(), text, started.elapsed())
}

/// Asserts that a command against the silent server gave up after the 2 s limit (not
/// before: the server really was silent; not much after: nothing waited twice), with
/// exit 1 and a message naming the address, the limit and the key.
fn assert_timed_out(what: &str, cmd: assert_cmd::Command, port: u16, password: &str) {
    let (code, text, elapsed) = timed(cmd);
    assert_eq!(code, Some(1), "{what}: {text}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(8),
        "{what}: took {elapsed:?}: {text}"
    );
    for needle in [
        format!("127.0.0.1:{port}"),
        "2 s".to_owned(),
        "source.connect_timeout".to_owned(),
    ] {
        assert!(text.contains(&needle), "{what}: no `{needle}` in: {text}");
    }
    assert!(!text.contains(password), "{what}: password leaked: {text}");
}

fn config(kind: &str, source_tail: &str, exports: &str) -> String {
    format!("source:\n  type: {kind}\n  url_env: DATABASE_URL\n{source_tail}exports:\n{exports}")
}

/// `url` with its `host:port` replaced by the silent server's.
fn pointed_at(url: &str, port: u16) -> String {
    let (head, rest) = url.split_once('@').expect("URL has user@host");
    let tail = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    format!("{head}@127.0.0.1:{port}{tail}")
}

#[test]
fn a_silent_postgres_server_fails_plan_apply_and_doctor_within_connect_timeout() {
    let url = require_pg!();
    let password = std::env::var("RIVET_TEST_PG_PASSWORD").unwrap();
    let port = silent_server();
    let silent = pointed_at(&url, port);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "postgres",
            "  connect_timeout: 2s\n",
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        ),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    let mut cmd = rivet(dir.path(), &silent);
    cmd.args(["plan", "-c", "rivet.yaml", "-o", "again.json"]);
    assert_timed_out("plan", cmd, port, &password);
    let mut cmd = rivet(dir.path(), &silent);
    cmd.args(["apply", "plan.json"]);
    assert_timed_out("apply", cmd, port, &password);
    let mut cmd = rivet(dir.path(), &silent);
    cmd.args(["doctor", "-c", "rivet.yaml"]);
    assert_timed_out("doctor", cmd, port, &password);
}

#[test]
fn a_silent_mysql_server_fails_plan_apply_and_doctor_within_connect_timeout() {
    let url = require_mysql!();
    let password = std::env::var("RIVET_TEST_MYSQL_PASSWORD").unwrap();
    let port = silent_server();
    let silent = pointed_at(&url, port);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "mysql",
            "  connect_timeout: 2000ms\n",
            "  - name: pairs\n    table: composite_pk\n    destination: { type: local, path: out }\n",
        ),
    );
    rivet(dir.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    for args in [
        &["plan", "-c", "rivet.yaml", "-o", "again.json"][..],
        &["apply", "plan.json"][..],
        &["doctor", "-c", "rivet.yaml"][..],
    ] {
        let mut cmd = rivet(dir.path(), &silent);
        cmd.args(args);
        assert_timed_out(args[0], cmd, port, &password);
    }
}

#[test]
fn a_silent_sql_server_fails_plan_and_doctor_within_connect_timeout() {
    // No SQL Server is needed: the silent listener stands in for one that never answers.
    let port = silent_server();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "mssql",
            "  connect_timeout: 2\n",
            "  - name: pairs\n    table: dbo.pairs\n    destination: { type: local, path: out }\n",
        ),
    );
    let url = format!("sqlserver://rivet:S3cretMs1@127.0.0.1:{port}/app");
    for args in [
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"][..],
        &["doctor", "-c", "rivet.yaml"][..],
    ] {
        let mut cmd = rivet(dir.path(), &url);
        cmd.args(args);
        assert_timed_out(args[0], cmd, port, "S3cretMs1");
    }
}

#[test]
fn the_urls_connect_timeout_is_honoured_when_the_config_has_none() {
    let port = silent_server();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rivet.yaml",
        &config(
            "postgres",
            "",
            "  - name: pairs\n    table: pairs\n    destination: { type: local, path: out }\n",
        ),
    );
    let url = format!("postgres://rivet:Pw0rdZ@127.0.0.1:{port}/app?connect_timeout=1");
    let mut cmd = rivet(dir.path(), &url);
    cmd.args(["plan", "-c", "rivet.yaml", "-o", "plan.json"]);
    let (code, text, elapsed) = timed(cmd);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(6),
        "took {elapsed:?}: {text}"
    );
    assert!(
        text.contains("1 s") && text.contains("URL's connect_timeout"),
        "{text}"
    );
    assert!(!text.contains("Pw0rdZ"), "{text}");
}

/// Plans `yaml` in a fresh directory with `DATABASE_URL` set to `url`.
fn plan_in(dir: &Path, yaml: &str, url: &str) -> (Option<i32>, String) {
    write(dir, "rivet.yaml", yaml);
    let out = rivet(dir, url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_inline_password_is_refused_however_it_is_spelled_and_never_reaches_the_plan() {
    let url = require_pg!();
    let password = std::env::var("RIVET_TEST_PG_PASSWORD").unwrap();
    let (userinfo, rest) = url
        .strip_prefix("postgres://")
        .and_then(|r| r.split_once('@'))
        .expect("the test URL is postgres://user:password@host:port/db");
    let user = userinfo.split(':').next().unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let encoded: String = password.bytes().map(|b| format!("%{b:02X}")).collect();
    let spellings = [
        format!("host={host} port={port} user={user} dbname={db} password = {password}"),
        format!("host={host}  password\t=  '{password}' port={port} user={user} dbname={db}"),
        format!("postgres://{user}@{hostport}/{db}?%70assword={password}"),
        format!("postgres://{user}@{hostport}/{db}?application_name=x&%70%61%73%73%77%6F%72%64={encoded}"),
        format!("postgres://{user}:{encoded}@{hostport}/{db}"),
    ];
    for spelled in &spellings {
        // The same string in an environment variable is a working connection: without
        // the check, planning it inline would seal the password into plan.json.
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = plan_in(
            dir.path(),
            &config(
                "postgres",
                "",
                "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
            ),
            spelled,
        );
        assert_eq!(code, Some(0), "{spelled}: {stderr}");
        let plan = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
        assert!(!plan.contains(&password) && !plan.contains(&encoded));
        let dir = tempfile::tempdir().unwrap();
        let inline = format!(
            "source:\n  type: postgres\n  url: {}\nexports:\n  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: {{ type: local, path: out }}\n",
            serde_json::Value::from(spelled.as_str())
        );
        let (code, stderr) = plan_in(dir.path(), &inline, "postgres://unused@127.0.0.1:1/x");
        assert_eq!(code, Some(2), "{spelled}: {stderr}");
        assert!(
            stderr.contains("source.url") && stderr.contains("contains a password"),
            "{spelled}: {stderr}"
        );
        assert!(!stderr.contains(&password), "{stderr}");
        assert!(
            !dir.path().join("plan.json").exists(),
            "{spelled}: a plan was written"
        );
    }
}

#[test]
fn a_url_for_another_engine_is_a_config_error_naming_the_key_and_the_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let exports =
        "  - name: pairs\n    table: pairs\n    destination: { type: local, path: out }\n";
    let (code, stderr) = plan_in(
        dir.path(),
        &config("postgres", "", exports),
        "mysql://rivet:Pw0rdZ@127.0.0.1:1/app",
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needle in [
        "source.url_env",
        "`DATABASE_URL`",
        "postgres://",
        "`mysql://`",
    ] {
        assert!(stderr.contains(needle), "no `{needle}` in: {stderr}");
    }
    assert!(!stderr.contains("Pw0rdZ"), "{stderr}");
    let (code, stderr) = plan_in(
        dir.path(),
        &format!(
            "source:\n  type: mysql\n  url: postgres://rivet@127.0.0.1:1/app\nexports:\n{exports}"
        ),
        "",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("source.url:") && stderr.contains("mysql://"),
        "{stderr}"
    );
}

#[test]
fn an_empty_url_variable_is_named_and_called_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "postgres",
            "",
            "  - name: pairs\n    table: pairs\n    destination: { type: local, path: out }\n",
        ),
        "",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`DATABASE_URL`") && stderr.contains("empty"),
        "{stderr}"
    );
    assert!(!stderr.contains("hostaddr"), "{stderr}");
}

#[test]
fn apply_names_a_missing_variable_once() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "postgres",
            "",
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        ),
        &url,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let out = rivet(dir.path(), &url)
        .env_remove("DATABASE_URL")
        .args(["apply", "plan.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("`DATABASE_URL`").count(),
        1,
        "the sentence is repeated: {stderr}"
    );
}

#[test]
fn mariadb_login_failures_read_as_sentences_not_driver_structs() {
    let url = require_mysql!();
    let password = std::env::var("RIVET_TEST_MYSQL_PASSWORD").unwrap();
    let wrong = url.replace(&password, "Not-The-Pw9");
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "mysql",
            "",
            "  - name: pairs\n    table: composite_pk\n    destination: { type: local, path: out }\n",
        ),
        &wrong,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Access denied") && stderr.contains("MySQL error 1045"),
        "{stderr}"
    );
    assert!(!stderr.contains("MySqlError {"), "{stderr}");
    assert!(!stderr.contains("Not-The-Pw9"), "{stderr}");
}

#[test]
fn an_empty_config_file_says_the_config_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "\n", "# nothing here yet\n"] {
        let (code, stderr) = plan_in(dir.path(), text, "");
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("the config is empty"), "{stderr}");
        assert!(!stderr.contains("null"), "{stderr}");
    }
}

#[test]
fn an_absurd_chunk_size_names_its_key_path_and_the_range_allowed() {
    let dir = tempfile::tempdir().unwrap();
    for (value, says) in [
        ("1e20", "not a whole number from 1 to 18446744073709551615"),
        (
            "100000000000000000000",
            "not a whole number from 1 to 18446744073709551615",
        ),
        ("2.5", "not a whole number from 1 to 18446744073709551615"),
        ("1e3", "plain digits (`1000`)"),
    ] {
        let (code, stderr) = plan_in(
            dir.path(),
            &config(
                "postgres",
                "",
                &format!("  - name: a\n    table: t\n    mode: chunked\n    chunk_size: {value}\n    destination: {{ type: local, path: out }}\n"),
            ),
            "postgres://u@127.0.0.1:1/db",
        );
        assert_eq!(code, Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("exports[0].chunk_size") && stderr.contains(says),
            "{value}: {stderr}"
        );
        assert!(
            !stderr.contains("YAML") && !stderr.contains("u64"),
            "{value}: {stderr}"
        );
    }
}

#[test]
fn every_config_problem_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "\
source:
  type: postgres
  url: \"host=db user=rivet password = 'Hunter2 x'\"
  connect_timeout: 0
tuning: { parallelism: 500 }
exports:
  - name: orders
    table: public.orders
    mode: chunked
    chunk_sise: 10
    chunk_size: 1e20
    format: xlsx
    destination: { type: local, path: out/orders }
  - name: orders
    query_file: missing.sql
    cursor_column: updated_at
    destination: { type: local, path: ./out/orders/ }
  - name: events
    table: events
    mode: cdc
    compression: snappy
    format: csv
    destination: { type: s3, bucket: b, path: x }
";
    let (code, stderr) = plan_in(dir.path(), yaml, "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("Hunter2"), "{stderr}");
    let canonical = dir.path().canonicalize().unwrap();
    insta::assert_snapshot!(stderr.replace(&canonical.display().to_string(), "[DIR]"));
}

#[test]
fn plan_diff_refuses_an_edited_or_corrupt_plan_with_exit_3() {
    let url = require_pg!();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "postgres",
            "",
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        ),
        &url,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let plan = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    write(
        dir.path(),
        "edited.json",
        &plan.replace("\"out\"", "\"elsewhere\""),
    );
    write(dir.path(), "corrupt.json", &plan[..plan.len() / 2]);
    for (file, says) in [
        ("edited.json", "seal mismatch"),
        ("corrupt.json", "not a rivet plan"),
    ] {
        rivet(dir.path(), &url)
            .args(["plan", "diff", "plan.json", file])
            .assert()
            .code(3)
            .stderr(predicates::str::contains(says));
    }
    rivet(dir.path(), &url)
        .args(["plan", "diff", "plan.json", "missing.json"])
        .assert()
        .code(1);
}

/// A PostgreSQL database of its own on the test server (created with the admin URL),
/// holding `rivet_fixture.composite_pk` with the fixture's shape; dropped at the end.
struct OtherPgDatabase {
    admin_url: String,
    name: String,
}

impl OtherPgDatabase {
    fn new(admin_url: &str) -> OtherPgDatabase {
        let name = format!("rivet_t_identity_{}", std::process::id());
        let mut admin = common::connect(admin_url);
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
            format!("GRANT CONNECT ON DATABASE {name} TO rivet_reader"),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let mut other = common::connect(&format!("{base}/{name}"));
        other
            .batch_execute(
                "CREATE SCHEMA rivet_fixture; \
                 CREATE TABLE rivet_fixture.composite_pk (a integer, b text, PRIMARY KEY (a, b)); \
                 INSERT INTO rivet_fixture.composite_pk VALUES (-1, 'not the planned database'); \
                 GRANT USAGE ON SCHEMA rivet_fixture TO rivet_reader; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA rivet_fixture TO rivet_reader; \
                 ANALYZE rivet_fixture.composite_pk",
            )
            .unwrap();
        OtherPgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        }
    }
}

impl Drop for OtherPgDatabase {
    fn drop(&mut self) {
        let mut admin = common::connect(&self.admin_url);
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

#[test]
fn a_plan_applied_to_another_postgres_database_is_refused_naming_what_differs() {
    let url = require_pg!();
    let admin = common::live_env("RIVET_TEST_PG_ADMIN_URL", "PostgreSQL (superuser)").unwrap();
    let other = OtherPgDatabase::new(&admin);
    let (base, _) = url.rsplit_once('/').unwrap();
    let other_url = format!("{base}/{}", other.name);
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "postgres",
            "",
            "  - name: pairs\n    table: rivet_fixture.composite_pk\n    destination: { type: local, path: out }\n",
        ),
        &url,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    let facts = &plan["body"]["source_identity"]["facts"];
    assert_eq!(facts["database"], "rivet_fixture_db");
    assert!(
        facts["system_identifier"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{facts}"
    );
    let out = rivet(dir.path(), &other_url)
        .args(["apply", "plan.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("not the database this plan was made against")
            && stderr.contains(&format!(
                "database: planned `rivet_fixture_db`, now `{}`",
                other.name
            ))
            && stderr.contains("database_oid"),
        "{stderr}"
    );
    // Same cluster, so the system identifier is not among the differences.
    assert!(!stderr.contains("system_identifier"), "{stderr}");
    assert!(!dir.path().join("out").join("part-00001.parquet").exists());
    rivet(dir.path(), &url)
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicates::str::contains("plan_stale"));
    // The planned database itself still applies.
    rivet(dir.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
}

#[test]
fn a_plan_applied_to_another_mariadb_schema_is_refused_naming_what_differs() {
    use mysql::prelude::Queryable;
    let url = require_mysql!();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = plan_in(
        dir.path(),
        &config(
            "mysql",
            "",
            "  - name: pairs\n    table: composite_pk\n    destination: { type: local, path: out }\n",
        ),
        &url,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let db = format!("rivet_t_identity_{}", std::process::id());
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .unwrap();
    conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.composite_pk LIKE rivet_fixture.composite_pk"
    ))
    .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let out = rivet(dir.path(), &format!("{base}/{db}"))
        .args(["apply", "plan.json"])
        .output()
        .unwrap();
    let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("schema: planned `rivet_fixture`, now `{db}`")),
        "{stderr}"
    );
    assert!(!stderr.contains("server_uid"), "{stderr}");
}
