//! Change capture from the MariaDB binary log: `rivet cdc setup` checks the
//! prerequisites, the first window records where capture starts, the next window holds
//! exactly the changes committed in it (every type, interleaved transactions, a key
//! moved, a truncate), and replaying it by key equals the source table cell for cell
//! through an independent client (PyMySQL). DDL inside a window fails the apply and
//! keeps the position.

use std::path::Path;

use mysql::prelude::Queryable;

use crate::cdc::{ops, replay};
use crate::common::project::Project;
use crate::common::{assert_matches_mysql, live_env};

/// A database of its own, made and dropped by the change-capture user.
struct Binlogged {
    conn: mysql::Conn,
    url: String,
    db: String,
    project: Project,
}

impl Binlogged {
    fn new(name: &str, columns: &str) -> Option<Binlogged> {
        let url = live_env(
            "RIVET_TEST_MYSQL_CDC_URL",
            "MariaDB (binary log capture user)",
        )?;
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
        let db = format!("rivet_t_cdc_{name}_{}", std::process::id());
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
        conn.query_drop(format!("CREATE TABLE `{db}`.t ({columns})"))
            .unwrap();
        let project = Project::new(&url);
        project.config(&format!(
            "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {db}.t\n    mode: cdc\n    cdc: {{ until_current: true }}\n    tuning: {{ batch_size: 1000 }}\n    destination: {{ type: local, path: out }}\n"
        ));
        Some(Binlogged {
            conn,
            url,
            db,
            project,
        })
    }

    fn exec(&mut self, sql: &str) {
        let sql = sql.replace("DB.", &format!("`{}`.", self.db));
        self.conn
            .query_drop(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn window(&self, plan: &str) -> (String, String) {
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.project.path(plan)).unwrap()).unwrap();
        let w = &plan["body"]["exports"][0]["window"];
        (
            w["lower"].as_str().unwrap().to_owned(),
            w["upper"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Binlogged {
    fn drop(&mut self) {
        let _ = self
            .conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.db));
    }
}

/// Writes `batch` as one Parquet file `dir/part-00000.parquet` for the cell checker.
fn write_parquet(dir: &Path, batch: &arrow::record_batch::RecordBatch) {
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::create(dir.join("part-00000.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

const COLUMNS: &str = "id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, su SMALLINT UNSIGNED, \
     mi MEDIUMINT, mu MEDIUMINT UNSIGNED, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, \
     dec1 DECIMAL(20,6), f FLOAT, dbl DOUBLE, b1 BIT(1), b12 BIT(12), \
     c CHAR(5), vc VARCHAR(300), lat VARCHAR(20) CHARACTER SET latin1, txt MEDIUMTEXT, \
     bin BINARY(4), vb VARBINARY(10), bl BLOB, e ENUM('a','b c','it''s'), st SET('x','y','z'), \
     d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(3), y YEAR, doc JSON, g POINT";

#[test]
fn binlog_window_replayed_by_key_equals_the_source_and_ddl_inside_a_window_is_refused() {
    let Some(mut t) = Binlogged::new("replay", COLUMNS) else {
        return;
    };
    t.project
        .rivet()
        .args(["cdc", "setup", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "can be captured from the binary log",
        ));
    t.project
        .rivet()
        .args(["doctor", "-c", "rivet.yaml"])
        .assert()
        .stdout(predicates::str::contains(
            "export changes binary log: ROW, FULL images; log end binlog.",
        ));
    // The first window records where capture starts: it is empty.
    t.exec("INSERT INTO DB.t (id, ti) VALUES (99999, 1)");
    t.project.plan();
    let (lower1, upper1) = t.window("plan.json");
    assert_eq!(
        lower1, upper1,
        "the first window starts and ends at the log's end"
    );
    t.project
        .rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicates::str::contains("binary log as replica"))
        .stdout(predicates::str::contains(format!(
            "cdc from the binary log: transactions from {lower1} to {upper1} (positions between transactions), window 1"
        )));
    t.project.apply("plan.json");
    assert!(t.project.path("out/window-00001/_SUCCESS").exists());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.project.path("out/window-00001/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rows"], 0, "{manifest}");

    // Every type at its edges, then NULLs, in one transaction.
    t.exec(
        "INSERT INTO DB.t VALUES (1, -128, 255, 65535, -8388608, 16777215, 4294967295, \
           -9223372036854775808, 18446744073709551615, -12345678901234.123456, 1.5, -2.5e300, \
           b'1', b'101000000001', 'ab', 'ünï ✓ \"q\" ''s''', 'café €', REPEAT('x', 60000), \
           0x00FF0001, 0x0102, 0xDEADBEEF, 'it''s', 'x,z', '2026-11-27', \
           '2026-11-27 08:00:00.123456', '2026-11-27 08:00:01.5', '-838:59:59.99', 2155, \
           '{\"k\": [1, 2.5, null], \"s\": \"é\"}', ST_GeomFromText('POINT(1 2)')), \
         (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', '', '', '', '', 0x00000000, '', '', \
           'a', '', '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '00:00:00', 1901, \
           '[]', ST_GeomFromText('POINT(0 0)'))",
    );
    t.exec("INSERT INTO DB.t (id) VALUES (3)");
    // A large transaction, a delete of rows inserted in the window, a truncate-free
    // update that moves a key, and interleaved transactions.
    t.exec("INSERT INTO DB.t (id, vc) SELECT seq, CONCAT('row ', seq) FROM seq_10_to_5009");
    t.exec("DELETE FROM DB.t WHERE id BETWEEN 100 AND 199");
    t.exec("UPDATE DB.t SET id = 60000 WHERE id = 10");
    let mut a = mysql::Conn::new(mysql::Opts::from_url(&t.url).unwrap()).unwrap();
    a.query_drop(format!(
        "START TRANSACTION; INSERT INTO `{db}`.t (id, vc) VALUES (70000, 'a'); UPDATE `{db}`.t SET vc = 'by a' WHERE id = 11;",
        db = t.db
    ))
    .unwrap();
    t.exec("UPDATE DB.t SET vc = NULL, e = 'b c' WHERE id = 12");
    a.query_drop(format!(
        "UPDATE `{db}`.t SET vc = 'a again' WHERE id = 13; COMMIT;",
        db = t.db
    ))
    .unwrap();
    t.project.plan_to("plan2.json", &[]);
    let (lower2, upper2) = t.window("plan2.json");
    assert_eq!(lower2, upper1, "window 2 starts where window 1 ended");
    // Changes after planning belong to the next window.
    t.exec("INSERT INTO DB.t (id) VALUES (80000)");
    t.project.apply("plan2.json");
    let changes = t.project.read_export("out/window-00002");
    let counts = ops(&changes);
    assert_eq!(
        counts.get("insert"),
        Some(&(2 + 1 + 5000 + 1)),
        "{counts:?}"
    );
    assert_eq!(counts.get("delete"), Some(&(100 + 1)), "{counts:?}");
    assert_eq!(counts.get("update"), Some(&(1 + 1 + 1 + 1)), "{counts:?}");
    let pos = changes
        .column_by_name("_rivet_pos")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap()
        .clone();
    assert!(pos.iter().all(|p| p.is_some_and(|p| p.len() == 42)));
    // Replayed by key, window 1 + 2 is the table at the window's end: all but the row
    // inserted after planning (and row 99999, written before capture started).
    t.exec("CREATE TABLE DB.at_end AS SELECT * FROM DB.t WHERE id NOT IN (80000, 99999)");
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path(), &replay(&changes));
    assert_matches_mysql(dir.path(), &t.url, &format!("`{}`.at_end", t.db), "id");

    // `rivet state -c` compares it with the log on the server, live.
    t.project
        .rivet()
        .args(["state", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "changes: binary log position {upper2}: "
        )))
        .stdout(predicates::str::contains("of log after it in"));
    // The MCP server compares the committed position with the log on the server.
    let plan2 = t.project.path("plan2.json").display().to_string();
    let report = crate::mcp::mcp_session(
        t.project.dir(),
        &[("DATABASE_URL", &t.url)],
        &[("source_health", serde_json::json!({"plan": plan2}))],
    );
    let health = crate::mcp::json_of(&report, 0);
    let positions = crate::mcp::section(&health, "rivet_binlog_positions");
    assert_eq!(positions["rows"][0]["export"], "changes", "{positions}");
    assert_eq!(
        positions["rows"][0]["position"],
        upper2.as_str(),
        "{positions}"
    );
    assert_eq!(positions["rows"][0]["readable"], true, "{positions}");
    assert!(
        positions["rows"][0]["bytes_after"].as_u64().unwrap() > 0,
        "{positions}"
    );

    // A truncate is an op; DDL inside the next window fails the apply, names the
    // statement, and leaves the position where it was.
    t.exec("TRUNCATE TABLE DB.t");
    t.project.plan_to("plan3.json", &[]);
    t.project.apply("plan3.json");
    let third = t.project.read_export("out/window-00003");
    assert_eq!(ops(&third).get("truncate"), Some(&1), "{:?}", ops(&third));
    assert_eq!(
        ops(&third).get("insert"),
        Some(&1),
        "the row inserted after plan 2"
    );
    t.exec("INSERT INTO DB.t (id) VALUES (1); ALTER TABLE DB.t ADD COLUMN extra INT; INSERT INTO DB.t (id) VALUES (2)");
    t.project.plan_to("plan4.json", &[]);
    t.project
        .rivet()
        .args(["apply", "plan4.json"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("inside the window"));
    assert!(!t.project.path("out/window-00004/_SUCCESS").exists());
    let (lower4, _) = t.window("plan4.json");
    t.project.plan_to("plan5.json", &[]);
    assert_eq!(
        t.window("plan5.json").0,
        lower4,
        "the failed window is planned again"
    );

    // The file holding the committed position is purged (simulated in the state
    // database, so other tests' windows keep their files): plan refuses with the fix,
    // never a window that silently starts later.
    let state = rusqlite::Connection::open(t.project.path(".rivet_state.db")).unwrap();
    let position: String = state
        .query_row(
            "SELECT position FROM cursors WHERE export = 'changes'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let gone = format!("{}.000000:4", position.rsplit_once('.').unwrap().0);
    state
        .execute(
            "UPDATE cursors SET position = ?1 WHERE export = 'changes'",
            [&gone],
        )
        .unwrap();
    drop(state);
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan6.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is no longer on the server"))
        .stderr(predicates::str::contains(
            "rivet state reset-cursor changes",
        ));
}

#[test]
fn binlog_capture_keys_are_checked_per_engine() {
    let Some(t) = Binlogged::new("keys", "id INT PRIMARY KEY, u UUID, t2 TIME(2)") else {
        return;
    };
    t.project.config(&format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {}.t\n    mode: cdc\n    cdc: {{ slot: s }}\n    destination: {{ type: local, path: out }}\n",
        t.db
    ));
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].cdc.slot"));
    // A user without the replica's grants is refused at plan time with the GRANT.
    let reader = crate::common::mysql_url().expect("the MariaDB reader URL");
    t.project.config(&format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {}.t\n    mode: cdc\n    destination: {{ type: local, path: out }}\n",
        t.db
    ));
    t.project
        .rivet()
        .env("DATABASE_URL", &reader)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("REPLICATION SLAVE"));
    // A type the row images are not decoded for is refused at plan time, by name.
    t.project.config(&format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {}.t\n    mode: cdc\n    cdc: {{ server_id: 777001 }}\n    destination: {{ type: local, path: out }}\n",
        t.db
    ));
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`u` (uuid) is not decoded"))
        .stderr(predicates::str::contains("`t2` (time(2)) cannot be read"));
}

#[test]
fn binlog_killed_apply_keeps_the_position_and_resumes_the_same_window() {
    let Some(mut t) = Binlogged::new("crash", "id INT PRIMARY KEY, n INT, txt VARCHAR(100)") else {
        return;
    };
    t.project.plan();
    t.project.apply("plan.json");
    // The server switches to a new binary log file twice inside the window (FLUSH
    // BINARY LOGS, as a restart or max_binlog_size would): the window spans three files.
    let socket = std::env::var("RIVET_TEST_MYSQL_ADMIN_SOCKET")
        .expect("scripts/test-env.sh exports RIVET_TEST_MYSQL_ADMIN_SOCKET");
    let mut admin = mysql::Conn::new(
        mysql::OptsBuilder::new()
            .user(Some("root"))
            .socket(Some(socket)),
    )
    .unwrap();
    for k in 0..4 {
        t.exec(&format!(
            "INSERT INTO DB.t SELECT seq, seq, REPEAT('x', 50) FROM seq_{}_to_{}",
            k * 100_000 + 1,
            (k + 1) * 100_000
        ));
        if k == 1 || k == 2 {
            admin.query_drop("FLUSH BINARY LOGS").unwrap();
        }
    }
    t.exec("UPDATE DB.t SET n = -n WHERE id % 7 = 0");
    t.project.plan_to("plan2.json", &[]);
    let (start, end) = t.window("plan2.json");
    let file_of = |p: &str| p.rsplit_once(':').unwrap().0.to_owned();
    assert_ne!(
        file_of(&start),
        file_of(&end),
        "the window spans binary log files"
    );
    let dir = t.project.path("out/window-00002");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(t.project.dir())
        .env("DATABASE_URL", t.project.url())
        .args(["apply", "plan2.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !crate::cdc::temp_file_in(&dir) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply finished before it could be killed"
        );
        assert!(std::time::Instant::now() < deadline, "apply wrote nothing");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("_SUCCESS").exists());
    let state = rusqlite::Connection::open(t.project.path(".rivet_state.db")).unwrap();
    let (position, seq): (String, i64) = state
        .query_row(
            "SELECT position, seq FROM cursors WHERE export = 'changes'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (position.as_str(), seq),
        (start.as_str(), 1),
        "no position moves without _SUCCESS"
    );
    drop(state);

    t.project
        .rivet()
        .args(["apply", "plan2.json", "--resume"])
        .assert()
        .success();
    assert!(dir.join("_SUCCESS").exists());
    let changes = t.project.read_export("out/window-00002");
    let counts = ops(&changes);
    assert_eq!(counts.get("insert"), Some(&400_000), "{counts:?}");
    assert_eq!(counts.get("update"), Some(&(400_000 / 7)), "{counts:?}");
    let dir2 = tempfile::tempdir().unwrap();
    write_parquet(dir2.path(), &replay(&changes));
    assert_matches_mysql(dir2.path(), &t.url, &format!("`{}`.t", t.db), "id");
    t.project.plan_to("plan3.json", &[]);
    assert_eq!(
        t.window("plan3.json").0,
        end,
        "the next window starts at this one's end"
    );
}

#[test]
fn a_snapshot_and_binlog_windows_planned_together_replay_to_the_table_with_no_gap() {
    let Some(mut t) = Binlogged::new("handoff", "id INT PRIMARY KEY, n INT, s VARCHAR(20)") else {
        return;
    };
    t.exec("INSERT INTO DB.t SELECT seq, seq, 'before' FROM seq_1_to_2000");
    t.project.config(&format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: snap\n    table: {db}.t\n    mode: chunked\n    chunk_size: 500\n    destination: {{ type: local, path: snap }}\n  - name: changes\n    table: {db}.t\n    mode: cdc\n    destination: {{ type: local, path: out }}\n",
        db = t.db
    ));
    t.project.plan();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.project.path("plan.json")).unwrap()).unwrap();
    let exports = plan["body"]["exports"].as_array().unwrap();
    let (snap, changes) = (&exports[0], &exports[1]);
    assert_eq!(
        (snap["wave"].as_u64(), changes["wave"].as_u64()),
        (Some(1), Some(2)),
        "the changes run after the snapshot"
    );
    assert_eq!(snap["handoff"], changes["handoff"]);
    assert_eq!(changes["handoff"]["position"], changes["window"]["lower"]);
    t.project
        .rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "handoff: snapshot by `snap`, continued by the changes of `changes` from binlog.",
        ));
    // Changes between plan and apply: in the snapshot and in the next window (replayed
    // to the same rows), never in neither.
    t.exec("UPDATE DB.t SET s = 'between' WHERE id <= 100; DELETE FROM DB.t WHERE id BETWEEN 1900 AND 1999; INSERT INTO DB.t VALUES (5000, 5000, 'between')");
    t.project.apply("plan.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.project.path("snap/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["handoff"], changes["handoff"],
        "the snapshot's manifest records the handoff"
    );
    t.exec("UPDATE DB.t SET n = -n WHERE id % 3 = 0; DELETE FROM DB.t WHERE id <= 10; INSERT INTO DB.t VALUES (6000, 6000, 'after')");
    t.project.plan_to("plan2.json", &[]);
    t.project.apply("plan2.json");
    // The snapshot's rows, then every change in _rivet_pos order, by key.
    let snapshot = t.project.read_export("snap");
    let windows = [
        t.project.path("out/window-00001"),
        t.project.path("out/window-00002"),
    ];
    let mut batches: Vec<arrow::record_batch::RecordBatch> = Vec::new();
    for w in &windows {
        batches.extend(crate::common::read_export_parquet(w));
    }
    let changes_batch = crate::common::concat(&batches);
    let replayed = crate::cdc::replay_over(&snapshot, &changes_batch);
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path(), &replayed);
    assert_matches_mysql(dir.path(), &t.url, &format!("`{}`.t", t.db), "id");
}

/// The crash harness on binary log windows: per trial, changes of every kind, a window
/// planned, its apply killed at a random moment and resumed; the committed position is
/// never ahead of a window's `_SUCCESS` (checked by the harness), each window holds
/// exactly that trial's changes, and all windows replayed by key are the table.
/// `RIVET_CRASH_TRIALS` (default 10, 100 in the heavy run) and `RIVET_CRASH_SEED` as for
/// the other crash tests.
#[test]
fn binlog_windows_survive_random_sigkills() {
    let Some(mut t) = Binlogged::new("sigkill", "id INT PRIMARY KEY, n INT, s VARCHAR(40)") else {
        return;
    };
    let (trials, mut rng) = crate::crash::trial_count();
    t.project.config(&format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.t\n    mode: cdc\n    tuning: {{ batch_size: 2000 }}\n    destination: {{ type: local, path: out }}\n",
        t.db
    ));
    t.project.plan_to("p0.json", &[]);
    t.project.apply("p0.json");
    let mut full_ms = 0;
    let mut kills = 0;
    for trial in 1..=trials {
        let base = trial * 100_000;
        t.exec(&format!(
            "INSERT INTO DB.t SELECT seq, seq, 'trial {trial}' FROM seq_{}_to_{}",
            base + 1,
            base + 20_000
        ));
        t.exec(&format!(
            "UPDATE DB.t SET n = -n WHERE id % 5 = 0 AND id > {base}"
        ));
        t.exec(&format!(
            "DELETE FROM DB.t WHERE id % 7 = 0 AND id > {base}"
        ));
        let plan = format!("p{trial}.json");
        t.project.plan_to(&plan, &[]);
        if full_ms == 0 {
            // One uninterrupted apply of the same window, elsewhere, to learn its length.
            let probe = tempfile::tempdir().unwrap();
            std::fs::copy(t.project.path(&plan), probe.path().join(&plan)).unwrap();
            std::fs::copy(
                t.project.path(".rivet_state.db"),
                probe.path().join(".rivet_state.db"),
            )
            .unwrap();
            let started = std::time::Instant::now();
            crate::common::rivet(probe.path(), &t.url)
                .args(["apply", &plan])
                .assert()
                .success();
            full_ms = started.elapsed().as_millis().max(50) as u64;
        }
        kills += u32::from(crate::crash::kill_check_resume(
            t.project.dir(),
            &t.url,
            &plan,
            &mut rng,
            full_ms,
        ));
        let window = t
            .project
            .read_export(&format!("out/window-{:05}", trial + 1));
        let counts = ops(&window);
        let ids = base + 1..=base + 20_000;
        let deleted = ids.clone().filter(|i| i % 7 == 0).count();
        let updated = ids.filter(|i| i % 5 == 0).count();
        assert_eq!(
            counts.get("insert"),
            Some(&20_000),
            "trial {trial}: {counts:?}"
        );
        assert_eq!(
            counts.get("update"),
            Some(&updated),
            "trial {trial}: {counts:?}"
        );
        assert_eq!(
            counts.get("delete"),
            Some(&deleted),
            "trial {trial}: {counts:?}"
        );
        assert_eq!(
            crate::crash::committed_position(t.project.dir()).map(|p| p.1),
            Some(i64::from(trial) + 1)
        );
        eprintln!("trial {trial}: window exact");
    }
    let mut batches = Vec::new();
    for w in 2..=trials + 1 {
        batches.extend(crate::common::read_export_parquet(
            &t.project.path(&format!("out/window-{w:05}")),
        ));
    }
    if trials > 0 {
        let dir = tempfile::tempdir().unwrap();
        write_parquet(dir.path(), &replay(&crate::common::concat(&batches)));
        assert_matches_mysql(dir.path(), &t.url, &format!("`{}`.t", t.db), "id");
    }
    assert!(
        kills > 0 || trials == 0,
        "no trial killed apply before it finished"
    );
}

/// Every column of the every-type fixture that binary log capture decodes, through a
/// window of inserts and updates, replayed and compared cell for cell with the table
/// through PyMySQL; the ones it does not decode (UUID, INET4, INET6) are refused by name
/// until left out.
#[test]
fn every_type_of_the_mariadb_fixture_is_captured_from_the_binary_log() {
    let Some(mut t) = Binlogged::new("types", "id INT PRIMARY KEY") else {
        return;
    };
    t.exec("DROP TABLE DB.t; CREATE TABLE DB.t LIKE rivet_types.every_type");
    let all = format!(
        "source:\n  type: mysql\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {}.t\n    mode: cdc\n    destination: {{ type: local, path: out }}\n",
        t.db
    );
    t.project.config(&all);
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`c_inet6` (inet6, read as"))
        .stderr(predicates::str::contains("leave them out with `columns:`"));
    let columns: Vec<String> = {
        let mut c = t.conn.exec_iter(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't' AND DATA_TYPE NOT IN ('uuid', 'inet4', 'inet6') ORDER BY ORDINAL_POSITION",
            (t.db.as_str(),),
        )
        .unwrap();
        c.by_ref()
            .map(|r| mysql::from_row::<String>(r.unwrap()))
            .collect()
    };
    t.project.config(&all.replace(
        "    mode: cdc\n",
        &format!("    mode: cdc\n    columns: [{}]\n", columns.join(", ")),
    ));
    t.project.plan();
    t.project.apply("plan.json");
    t.exec("SET time_zone = '+00:00'; INSERT INTO DB.t SELECT * FROM rivet_types.every_type");
    t.exec("UPDATE DB.t SET c_varchar = CONCAT(c_varchar, ' (updated)'), c_json = JSON_OBJECT('k', id) WHERE id = 1");
    t.project.plan_to("plan2.json", &[]);
    t.project.apply("plan2.json");
    let changes = t.project.read_export("out/window-00002");
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path(), &replay(&changes));
    assert_matches_mysql(dir.path(), &t.url, &format!("`{}`.t", t.db), "id");
}
