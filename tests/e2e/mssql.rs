//! Live tests of the SQL Server source against a real server. No SQL Server can run on
//! the development and CI machines, so these are `#[ignore]`d and run when
//! `RIVET_TEST_MSSQL_URL` points at one (`scripts/test.sh` then passes
//! `--run-ignored all`; `RIVET_TEST_REQUIRE_MSSQL=1` makes a missing URL an error).
//! The URL needs rights to create a database, e.g.
//! `sqlserver://sa:Passw0rd!@127.0.0.1:1433` (no database in the path): each test
//! makes its own database, loads `fixtures/mssql/seed.sql` and drops it at the end.
//! How to start SQL Server 2019+ on a laptop: docs/sources/mssql.md.

use std::path::Path;

use crate::common::*;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

const IGNORE: &str = "needs a real SQL Server: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)";

fn server_url() -> String {
    std::env::var("RIVET_TEST_MSSQL_URL").unwrap_or_else(|_| {
        panic!("RIVET_TEST_MSSQL_URL is not set; {IGNORE}");
    })
}

/// A database of its own on the live server, holding the fixture, dropped at the end.
struct Scratch {
    rt: tokio::runtime::Runtime,
    client: Client<Compat<TcpStream>>,
    db: String,
    url: String,
}

fn admin_config(url: &str) -> Config {
    let rest = url
        .strip_prefix("sqlserver://")
        .expect("RIVET_TEST_MSSQL_URL starts with sqlserver://");
    let (userinfo, hostport) = rest
        .trim_end_matches('/')
        .rsplit_once('@')
        .expect("user@host");
    let (user, password) = userinfo.split_once(':').expect("user:password");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "1433"));
    let mut config = Config::new();
    config.host(host);
    config.port(port.parse().expect("port"));
    config.authentication(AuthMethod::sql_server(user, password));
    config.encryption(EncryptionLevel::Required);
    config.trust_cert();
    config
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let url = server_url();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = admin_config(&url);
        let client = rt.block_on(async {
            let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
            Client::connect(config, tcp.compat_write()).await.unwrap()
        });
        let db = format!("rivet_t_{name}_{}", std::process::id());
        let mut s = Scratch {
            rt,
            client,
            db: db.clone(),
            url: format!("{}/{db}", url.trim_end_matches('/')),
        };
        s.exec(&format!(
            "IF DB_ID('{db}') IS NOT NULL DROP DATABASE [{db}]; CREATE DATABASE [{db}]"
        ));
        let seed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mssql/seed.sql"),
        )
        .unwrap();
        for batch in seed.split("\nGO\n").filter(|b| !b.trim().is_empty()) {
            s.exec(&format!("USE [{db}]; {batch}"));
        }
        s
    }

    fn exec(&mut self, sql: &str) {
        let client = &mut self.client;
        self.rt
            .block_on(async { client.simple_query(sql).await?.into_results().await })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let db = self.db.clone();
        let client = &mut self.client;
        let _ = self.rt.block_on(async {
            client
                .simple_query(format!(
                    "USE master; ALTER DATABASE [{db}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [{db}]"
                ))
                .await?
                .into_results()
                .await
        });
    }
}

fn rivet(dir: &Path, url: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("rivet").unwrap();
    cmd.current_dir(dir).env("DATABASE_URL", url);
    cmd
}

fn config(exports: &str) -> String {
    format!("source:\n  type: mssql\n  url_env: DATABASE_URL\n  tls:\n    mode: require\nexports:\n{exports}")
}

#[test]
#[ignore = "needs a real SQL Server: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)"]
fn every_sql_server_fixture_value_round_trips_through_parquet() {
    let s = Scratch::new("types");
    let p = Project::new(&s.url);
    let out = p.path("out");
    p.config(&config(&format!(
            "  - name: all_types\n    table: rivet_fixture.all_types\n    mode: chunked\n    chunk_size: 2\n    destination:\n      type: local\n      path: {}/all_types\n",
            out.display()
        )),
    );
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    rivet(p.dir(), &s.url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let batch =
        crate::common::sort_batch(&concat(&read_export_parquet(&out.join("all_types"))), "id");
    assert_eq!(batch.num_rows(), 4);
    let col = |name: &str| batch.column_by_name(name).unwrap().clone();
    let text = |name: &str, row: usize| col(name).as_string::<i32>().value(row).to_owned();
    assert_eq!(text("c_nvarchar", 0), "héllo wörld 🦀");
    assert_eq!(text("c_nvarchar_max", 0).len(), 10_000);
    assert_eq!(text("c_varchar", 3), "tab\tand \"quotes\", commas");
    assert_eq!(text("c_xml", 0), "<a b=\"1\">text</a>");
    assert_eq!(text("c_hierarchyid", 0), "/1/2/");
    let money = col("c_money");
    let money = money.as_primitive::<Decimal128Type>();
    assert_eq!(money.value(0), 9_223_372_036_854_775_807);
    assert_eq!(money.value(1), -9_223_372_036_854_775_808);
    assert_eq!(
        col("c_bigint").as_primitive::<Int64Type>().value(0),
        i64::MIN
    );
    // datetimeoffset '2024-02-29 18:04:56.1234567 +05:30' is 12:34:56.123456 UTC.
    let dto = col("c_dto");
    let dto = dto.as_primitive::<TimestampMicrosecondType>();
    let day = 19_782i64 * 86_400_000_000;
    let expected = day + (12 * 3600 + 34 * 60 + 56) * 1_000_000 + 123_456;
    assert_eq!(dto.value(0), expected);
    let dt2 = col("c_datetime2");
    assert_eq!(
        dt2.as_primitive::<TimestampMicrosecondType>().value(0),
        expected
    );
    // datetime .997 is 299/300 s.
    let dt = col("c_datetime");
    assert_eq!(
        dt.as_primitive::<TimestampMicrosecondType>().value(0),
        day + (12 * 3600 + 34 * 60 + 56) * 1_000_000 + 996_667
    );
    let guid = col("c_guid");
    assert_eq!(
        hex::encode(guid.as_fixed_size_binary().value(0)),
        "6f9619ff8b86d011b42d00c04fc964ff"
    );
    let wkb = col("c_geography");
    assert_eq!(wkb.as_binary::<i32>().value(0).len(), 21, "a WKB point");
    for name in [
        "c_tinyint",
        "c_money",
        "c_dto",
        "c_guid",
        "c_xml",
        "c_geography",
    ] {
        assert!(col(name).is_null(2), "{name} row 3 is NULL");
    }
}

#[test]
#[ignore = "needs a real SQL Server: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)"]
fn sql_server_chunked_apply_is_exact_stale_plans_are_refused_and_resume_works() {
    let mut s = Scratch::new("chunks");
    let p = Project::new(&s.url);
    let out = p.path("out");
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 20000\n    destination:\n      type: local\n      path: {}/big\n  - name: items\n    table: Sales Data.Order Items\n    destination:\n      type: local\n      path: {}/items\n",
            out.display(),
            out.display()
        )),
    );
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    let again = p.path("plan2.json");
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o"])
        .arg(&again)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(p.path("plan.json")).unwrap(),
        std::fs::read(&again).unwrap(),
        "plans of an unchanged database are byte-identical"
    );
    rivet(p.dir(), &s.url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let big = concat(&read_export_parquet(&out.join("big")));
    assert_eq!(big.num_rows(), 200_000);
    let ids = big.column_by_name("id").unwrap();
    let ids = ids.as_primitive::<arrow::datatypes::Int32Type>();
    let mut seen: Vec<i32> = ids.values().to_vec();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 200_000, "no duplicates");
    assert!(seen.iter().all(|i| i % 3 != 0));
    let items = concat(&read_export_parquet(&out.join("items")));
    assert_eq!(items.num_rows(), 2);
    assert!(items.column_by_name("Line]Note").is_some());

    s.exec(&format!(
        "USE [{}]; ALTER TABLE rivet_fixture.big_gappy ADD extra int NULL",
        s.db
    ));
    rivet(p.dir(), &s.url)
        .args(["apply", "plan.json"])
        .assert()
        .code(3);

    let out2 = p.path("out2");
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    destination:\n      type: local\n      path: {}/big\n",
            out2.display()
        )),
    );
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan3.json"])
        .assert()
        .success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(p.dir())
        .env("DATABASE_URL", &s.url)
        .args(["apply", "plan3.json"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let _ = child.wait();
    rivet(p.dir(), &s.url)
        .args(["apply", "plan3.json", "--resume"])
        .assert()
        .success();
    let big = concat(&read_export_parquet(&out2.join("big")));
    assert_eq!(
        big.num_rows(),
        200_000,
        "resume wrote exactly the source rows"
    );
}

#[test]
#[ignore = "needs a real SQL Server: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)"]
fn sql_server_password_never_appears_in_plan_state_or_output() {
    let s = Scratch::new("secrets");
    let password = admin_password(&s.url);
    let p = Project::new(&s.url);
    let out = p.path("out");
    p.config(&config(&format!(
            "  - name: pk\n    table: rivet_fixture.composite_pk\n    destination:\n      type: local\n      path: {}/pk\n",
            out.display()
        )),
    );
    let plan = rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .output()
        .unwrap();
    let apply = rivet(p.dir(), &s.url)
        .args(["apply", "plan.json"])
        .output()
        .unwrap();
    assert!(apply.status.success());
    let bad = rivet(p.dir(), &s.url.replace("/rivet_t_", "/no_such_db_"))
        .args(["plan", "-c", "rivet.yaml", "-o", "bad.json"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    for (what, bytes) in [
        ("plan stdout", plan.stdout),
        ("plan stderr", plan.stderr),
        ("apply stderr", apply.stderr),
        ("failed plan stderr", bad.stderr),
        ("plan.json", std::fs::read(p.path("plan.json")).unwrap()),
    ] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&password),
            "{what} leaks the password"
        );
    }
}

fn admin_password(url: &str) -> String {
    let rest = url.strip_prefix("sqlserver://").unwrap();
    let userinfo = rest.rsplit_once('@').unwrap().0;
    userinfo.split_once(':').unwrap().1.to_owned()
}

/// Runs everywhere: a SQL Server that does not answer fails `plan` with a message that
/// names the target and what to check, and never the password.
#[test]
fn unreachable_sql_server_fails_clearly_without_the_password() {
    let p = Project::offline();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.config(&config(
        "  - name: a\n    table: dbo.t\n    destination: { type: local, path: out }\n",
    ));
    let out = rivet(
        p.dir(),
        &format!("sqlserver://rivet:s3cr%40t-pw@127.0.0.1:{port}/sales"),
    )
    .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}/sales")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr"), "{stderr}");
    let bad = rivet(
        p.dir(),
        "sqlserver://rivet:s3cr%40t-pw@127.0.0.1:notaport/sales",
    )
    .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(stderr.contains("not a number"), "{stderr}");
    assert!(!stderr.contains("s3cr"), "{stderr}");
}

impl Scratch {
    /// Polls a count until it reaches `want` (the CDC capture job runs every few seconds).
    fn wait_for_count(&mut self, sql: &str, want: i64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let client = &mut self.client;
            let n: i64 = self.rt.block_on(async {
                let row = client
                    .simple_query(sql)
                    .await
                    .unwrap()
                    .into_row()
                    .await
                    .unwrap()
                    .unwrap();
                i64::from(row.get::<i32, _>(0).unwrap())
            });
            if n >= want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql}: {n} of {want} after 90 s (is the SQL Server Agent running?)"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

/// Change capture from a capture instance: setup checks, the first window starts at the
/// oldest change, the next one right after the committed end, each holds exactly its
/// changes (an update as its after image, a moved key as delete + insert).
#[test]
#[ignore = "needs a real SQL Server with the SQL Server Agent running: set RIVET_TEST_MSSQL_URL (docs/sources/mssql.md)"]
fn sql_server_change_tables_are_read_as_sealed_lsn_windows() {
    let mut s = Scratch::new("cdc");
    let db = s.db.clone();
    s.exec(&format!(
        "USE [{db}]; EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.t (id int PRIMARY KEY, n int, s nvarchar(50));
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL;"
    ));
    let p = Project::new(&s.url);
    p.config(&config(
        "  - name: changes\n    table: dbo.t\n    mode: cdc\n    destination: { type: local, path: out }\n",
    ));
    rivet(p.dir(), &s.url)
        .args(["cdc", "setup", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains("capture instance(s) dbo_t"));
    s.exec(&format!(
        "USE [{db}]; INSERT INTO dbo.t VALUES (1, 1, N'a'), (2, 2, N'b'), (3, 3, N'c');
         UPDATE dbo.t SET n = 20 WHERE id = 2; DELETE FROM dbo.t WHERE id = 3;"
    ));
    s.wait_for_count(&format!("SELECT COUNT(*) FROM [{db}].cdc.dbo_t_CT"), 6);
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    rivet(p.dir(), &s.url)
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "change table of capture instance dbo_t",
        ));
    rivet(p.dir(), &s.url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let first = p.read_export("out/window-00001");
    let ops = crate::cdc::ops(&first);
    assert_eq!(
        (ops.get("insert"), ops.get("update"), ops.get("delete")),
        (Some(&3), Some(&1), Some(&1)),
        "{ops:?}"
    );
    s.exec(&format!(
        "USE [{db}]; UPDATE dbo.t SET id = 10 WHERE id = 1; INSERT INTO dbo.t VALUES (4, 4, N'd');"
    ));
    s.wait_for_count(&format!("SELECT COUNT(*) FROM [{db}].cdc.dbo_t_CT"), 6 + 3);
    rivet(p.dir(), &s.url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan2.json"])
        .assert()
        .success();
    rivet(p.dir(), &s.url)
        .args(["apply", "plan2.json"])
        .assert()
        .success();
    let second = p.read_export("out/window-00002");
    let ops = crate::cdc::ops(&second);
    assert_eq!(
        (ops.get("insert"), ops.get("delete")),
        (Some(&2), Some(&1)),
        "{ops:?}"
    );
}
