//! Crash safety, proven by killing `rivet apply` with SIGKILL at random moments and
//! resuming: after every trial the output equals the source exactly (every cell), no
//! file under a final name is partial, and nothing temporary is left.
//!
//! `RIVET_CRASH_TRIALS` sets the number of trials (default 10; the heavy variant is
//! `RIVET_CRASH_TRIALS=100`). `RIVET_CRASH_SEED` replays a run; the seed is printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
pub(crate) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn check_no_partial_files(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") {
            let f = std::fs::File::open(out.join(&name)).unwrap();
            parquet::file::reader::SerializedFileReader::new(f).unwrap_or_else(|e| {
                panic!("{name} under its final name is not a complete Parquet file: {e}")
            });
        }
    }
}

#[test]
fn random_sigkills_then_resume_always_give_exactly_the_source_rows() {
    let url = require_pg!();
    let mut client = crate::common::connect(&url);
    chunked_trials(&url, "postgres", &mut |_, out| {
        let batch = concat(&read_export_parquet(out));
        assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
    });
}

/// Applies a chunked export of `big_gappy` (11 chunks, 2 workers), kills it with
/// SIGKILL after a random delay, checks that no partial file carries a final name,
/// resumes, checks that no temporary file is left and `_SUCCESS` exists, then hands
/// the output directory to `check` (trial number, directory).
fn chunked_trials(url: &str, kind: &str, check: &mut dyn FnMut(u32, &Path)) {
    let (trials, mut rng) = trial_count();
    let cfg = format!("source:\n  type: {kind}\n  url_env: DATABASE_URL\nexports:\n  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 20000\n    tuning: {{ batch_size: 2000, parallelism: 2 }}\n    destination: {{ type: local, path: out }}\n");
    // One uninterrupted run tells how long a whole apply takes here.
    let probe = tempfile::tempdir().unwrap();
    write(probe.path(), "rivet.yaml", &cfg);
    rivet(probe.path(), url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    let started = Instant::now();
    rivet(probe.path(), url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let full = started.elapsed().as_millis().max(50) as u64;
    let mut kills_before_end = 0;
    for trial in 0..trials {
        let p = Project::new(url);
        p.config(&cfg);
        std::fs::copy(probe.path().join("plan.json"), p.path("plan.json")).unwrap();
        let delay = Duration::from_millis(rng.next() % full);
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("rivet"))
            .current_dir(p.dir())
            .env("DATABASE_URL", url)
            .args(["apply", "plan.json"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            kills_before_end += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
        let out = p.path("out");
        check_no_partial_files(&out);
        rivet(p.dir(), url)
            .args(["apply", "plan.json", "--resume"])
            .assert()
            .success();
        let leftovers: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".rivet-tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "trial {trial}: temporary files left: {leftovers:?}"
        );
        assert!(
            out.join("_SUCCESS").exists(),
            "trial {trial}: no _SUCCESS after resume"
        );
        check(trial, &out);
        eprintln!(
            "trial {trial}: killed after {} ms, resumed, exact",
            delay.as_millis()
        );
    }
    assert!(
        kills_before_end > 0 || trials == 0,
        "no trial killed apply before it finished"
    );
}

/// A test's own copy of `big_gappy` that grows between windows, on either engine.
trait Table {
    fn exec(&mut self, sql: &str);
    fn ids(&mut self, filter: &str) -> Vec<i64>;
    /// The table's name as the config writes it.
    fn name(&self) -> String;
}

struct PgTable(postgres::Client, String);

impl Table for PgTable {
    fn exec(&mut self, sql: &str) {
        self.0
            .batch_execute(&sql.replace("T.", &format!("\"{}\".", self.1)))
            .unwrap();
    }
    fn ids(&mut self, filter: &str) -> Vec<i64> {
        let sql = format!(
            "SELECT id FROM \"{}\".events WHERE {filter} ORDER BY id",
            self.1
        );
        self.0
            .query(sql.as_str(), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
    fn name(&self) -> String {
        format!("{}.events", self.1)
    }
}

impl Drop for PgTable {
    fn drop(&mut self) {
        let _ = self
            .0
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.1));
    }
}

struct MyTable(mysql::Conn, String);

impl Table for MyTable {
    fn exec(&mut self, sql: &str) {
        use mysql::prelude::Queryable;
        self.0
            .query_drop(sql.replace("T.", &format!("`{}`.", self.1)))
            .unwrap();
    }
    fn ids(&mut self, filter: &str) -> Vec<i64> {
        use mysql::prelude::Queryable;
        self.0
            .query(format!(
                "SELECT id FROM `{}`.{} WHERE {filter} ORDER BY id",
                self.1,
                if self.1 == "rivet_fixture" {
                    "big_gappy"
                } else {
                    "events"
                }
            ))
            .unwrap()
    }
    fn name(&self) -> String {
        format!("{}.events", self.1)
    }
}

impl Drop for MyTable {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        if self.1 == "rivet_fixture" {
            return;
        }
        let _ = self
            .0
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.1));
    }
}

pub(crate) fn trial_count() -> (u32, Rng) {
    let trials: u32 = std::env::var("RIVET_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("RIVET_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash trials: {trials}, RIVET_CRASH_SEED={seed}");
    (trials, Rng(seed))
}

/// The committed position of export `events`, read straight from the state database.
pub(crate) fn committed_position(dir: &Path) -> Option<(String, i64)> {
    let conn = rusqlite::Connection::open(dir.join(".rivet_state.db")).ok()?;
    conn.query_row(
        "SELECT position, seq FROM cursors WHERE export = 'events'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// Every id in one window directory (which must be complete).
fn window_ids(dir: &Path) -> Vec<i64> {
    use arrow::array::AsArray;
    let mut ids: Vec<i64> = read_export_parquet(dir)
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Kills `apply plan` after a random delay, checks that the committed cursor is never
/// ahead of complete files, then resumes.
pub(crate) fn kill_check_resume(
    dir: &Path,
    url: &str,
    plan: &str,
    rng: &mut Rng,
    full_ms: u64,
) -> bool {
    let delay = Duration::from_millis(rng.next() % full_ms.max(1));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .args(["apply", plan])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    if let Some((position, seq)) = committed_position(dir) {
        let window = dir.join(format!("out/window-{seq:05}"));
        assert!(
            window.join("_SUCCESS").exists(),
            "cursor committed at {position} (window {seq}) but the window has no _SUCCESS"
        );
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("out")) {
        for e in entries {
            check_no_partial_files(&e.unwrap().path());
        }
    }
    rivet(dir, url)
        .args(["apply", plan, "--resume"])
        .assert()
        .success();
    killed
}

/// Two incremental windows over a growing table, each applied with a SIGKILL at a
/// random moment and resumed: every row lands in exactly one window, and the cursor is
/// never ahead of the files.
fn incremental_trials(url: &str, table: &mut dyn Table, kind: &str) {
    let (trials, mut rng) = trial_count();
    let cfg = format!(
        "source:\n  type: {kind}\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}\n    mode: incremental\n    cursor_column: id\n    tuning: {{ batch_size: 2000 }}\n    destination: {{ type: local, path: out }}\n",
        table.name()
    );
    let mut full_ms = 0;
    let mut kills = 0;
    for trial in 0..trials {
        table.exec("DELETE FROM T.events");
        table.exec("INSERT INTO T.events SELECT id, n, label FROM rivet_fixture.big_gappy WHERE id <= 60000");
        let p = Project::new(url);
        p.config(&cfg);
        rivet(p.dir(), url)
            .args(["plan", "-c", "rivet.yaml", "-o", "p1.json"])
            .assert()
            .success();
        if full_ms == 0 {
            // The first trial's window 1 runs uninterrupted to learn how long it takes.
            let probe = tempfile::tempdir().unwrap();
            write(probe.path(), "rivet.yaml", &cfg);
            std::fs::copy(p.path("p1.json"), probe.path().join("p1.json")).unwrap();
            let started = Instant::now();
            rivet(probe.path(), url)
                .args(["apply", "p1.json"])
                .assert()
                .success();
            full_ms = started.elapsed().as_millis().max(50) as u64;
        }
        kills += u32::from(kill_check_resume(
            p.dir(),
            url,
            "p1.json",
            &mut rng,
            full_ms,
        ));
        assert_eq!(
            window_ids(&p.path("out/window-00001")),
            table.ids("id <= 60000"),
            "trial {trial}: window 1"
        );
        table.exec("INSERT INTO T.events SELECT id, n, label FROM rivet_fixture.big_gappy WHERE id > 60000 AND id <= 130000");
        rivet(p.dir(), url)
            .args(["plan", "-c", "rivet.yaml", "-o", "p2.json"])
            .assert()
            .success();
        kills += u32::from(kill_check_resume(
            p.dir(),
            url,
            "p2.json",
            &mut rng,
            full_ms,
        ));
        assert_eq!(
            window_ids(&p.path("out/window-00002")),
            table.ids("id > 60000"),
            "trial {trial}: window 2"
        );
        assert_eq!(committed_position(p.dir()).map(|p| p.1), Some(2));
        eprintln!("trial {trial}: both windows exact");
    }
    assert!(
        kills > 0 || trials == 0,
        "no trial killed apply before it finished"
    );
}

#[test]
fn postgres_incremental_windows_survive_random_sigkills() {
    let url = require_pg!();
    let schema = format!("t_crash_inc_{}", std::process::id());
    let mut client = crate::common::connect(&url);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\";
             CREATE TABLE \"{schema}\".events (id bigint PRIMARY KEY, n integer, label text);"
        ))
        .unwrap();
    let mut table = PgTable(client, schema);
    incremental_trials(&url, &mut table, "postgres");
}

#[test]
fn mariadb_incremental_windows_survive_random_sigkills() {
    let url = require_mysql!();
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
    let db = format!("rivet_t_crash_inc_{}", std::process::id());
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .unwrap();
    conn.query_drop(format!("CREATE DATABASE `{db}`")).unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.events (id BIGINT PRIMARY KEY, n INT, label VARCHAR(40))"
    ))
    .unwrap();
    let mut table = MyTable(conn, db);
    incremental_trials(&url, &mut table, "mysql");
}

#[test]
fn mariadb_chunked_apply_survives_random_sigkills() {
    let url = require_mysql!();
    let (trials, _) = trial_count();
    let mut source = MyTable(
        mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap(),
        "rivet_fixture".into(),
    );
    chunked_trials(&url, "mysql", &mut |trial, out| {
        // Every trial: the exact key set (nothing lost, nothing twice). Every cell,
        // through PyMySQL, on the last trial (it takes seconds per run).
        let mut ids = window_ids(out);
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "trial {trial}: a row was written twice");
        assert_eq!(ids, source.ids("TRUE"), "trial {trial}: key set differs");
        if trial + 1 == trials {
            crate::common::assert_matches_mysql(out, &url, "rivet_fixture.big_gappy", "id");
        }
    });
}
