//! Change capture from PostgreSQL through a logical slot: `rivet cdc setup`, a sealed
//! log window per plan, apply writing exactly the window's changes, the slot confirmed
//! only after `_SUCCESS`, a killed apply resumed, and the oracle "last `_rivet_pos`
//! per key wins" replayed over the window equal to the source table, cell for cell.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::record_batch::RecordBatch;
use postgres::Client;

use crate::common::project::Project;
use crate::common::{assert_matches_source, connect, live_env};

/// A table owned by the change-capture role in a schema of its own, with its slot and
/// publication named after the test; everything is dropped at the end.
struct CdcTable {
    client: Client,
    schema: String,
    slot: String,
    project: Project,
}

impl CdcTable {
    fn new(name: &str, columns: &str) -> Option<CdcTable> {
        let url = live_env("RIVET_TEST_PG_CDC_URL", "PostgreSQL (change capture role)")?;
        Some(CdcTable::reached_through(name, columns, &url, &url))
    }

    /// A table made over `url` whose project (`rivet` itself) reaches the database
    /// through `rivet_url`.
    fn reached_through(name: &str, columns: &str, url: &str, rivet_url: &str) -> CdcTable {
        let schema = format!("cdc_{name}_{}", std::process::id());
        let slot = schema.clone();
        let mut client = connect(url);
        client
            .batch_execute(&format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}';
                 DROP PUBLICATION IF EXISTS {slot};
                 DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.t ({columns});
                 ALTER TABLE {schema}.t REPLICA IDENTITY FULL;"
            ))
            .unwrap();
        let project = Project::new(rivet_url);
        project.config(&format!(
            "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: changes\n    table: {schema}.t\n    mode: cdc\n    cdc: {{ slot: {slot}, until_current: true }}\n    tuning: {{ batch_size: 1000 }}\n    destination: {{ type: local, path: out }}\n"
        ));
        CdcTable {
            client,
            schema,
            slot,
            project,
        }
    }

    /// `rivet cdc setup -c rivet.yaml`, which must succeed.
    fn setup(&self) -> assert_cmd::assert::Assert {
        self.project
            .rivet()
            .args(["cdc", "setup", "-c", "rivet.yaml"])
            .assert()
            .success()
    }

    fn exec(&mut self, sql: &str) {
        let sql = sql.replace("T.", &format!("{}.", self.schema));
        self.client
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn confirmed_flush(&mut self) -> String {
        self.client
            .query_one(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .unwrap()
            .get(0)
    }

    /// Waits until no backend holds the slot: after a SIGKILL, the killed apply's server
    /// backend keeps decoding until it next writes to the dead socket.
    fn wait_until_slot_is_free(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let active: bool = self
                .client
                .query_one(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot],
                )
                .unwrap()
                .get(0);
            if !active {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the killed apply's backend still holds the slot"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
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

impl Drop for CdcTable {
    fn drop(&mut self) {
        let _ = self
            .project
            .rivet()
            .args(["cdc", "teardown", "-c", "rivet.yaml"])
            .ok();
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// Replays a window's change rows by key (`id`): sorted by `_rivet_pos`, the last
/// insert or update of a key is its row, a delete removes it, a truncate removes all.
/// Returns the surviving rows without the change columns.
pub(crate) fn replay(changes: &RecordBatch) -> RecordBatch {
    replay_onto(None, changes)
}

/// [`replay`] over a snapshot: the snapshot's rows count as older than every change.
pub(crate) fn replay_over(snapshot: &RecordBatch, changes: &RecordBatch) -> RecordBatch {
    replay_onto(Some(snapshot), changes)
}

fn replay_onto(snapshot: Option<&RecordBatch>, changes: &RecordBatch) -> RecordBatch {
    let pos = changes
        .column_by_name("_rivet_pos")
        .unwrap()
        .as_string::<i32>()
        .clone();
    let op = changes
        .column_by_name("_rivet_op")
        .unwrap()
        .as_string::<i32>()
        .clone();
    // Rows by key: (from the snapshot?, row index).
    let mut rows: HashMap<String, (bool, usize)> = HashMap::new();
    if let Some(snap) = snapshot {
        let id = snap.column_by_name("id").unwrap().clone();
        for i in 0..snap.num_rows() {
            rows.insert(crate::common::arrow_cell_text(&id, i).unwrap(), (true, i));
        }
    }
    let id = changes.column_by_name("id").unwrap().clone();
    let mut order: Vec<usize> = (0..changes.num_rows()).collect();
    order.sort_by(|a, b| pos.value(*a).cmp(pos.value(*b)));
    for i in order {
        let key = crate::common::arrow_cell_text(&id, i).unwrap_or_default();
        match op.value(i) {
            "insert" | "update" => {
                rows.insert(key, (false, i));
            }
            "delete" => {
                rows.remove(&key);
            }
            "truncate" => rows.clear(),
            other => panic!("unknown _rivet_op {other}"),
        }
    }
    let n = changes.num_columns() - 4;
    let schema = Arc::new(
        changes
            .schema()
            .project(&(0..n).collect::<Vec<_>>())
            .unwrap(),
    );
    let pick = |from_snapshot: bool| {
        UInt32Array::from(
            rows.values()
                .filter(|(s, _)| *s == from_snapshot)
                .map(|(_, i)| *i as u32)
                .collect::<Vec<_>>(),
        )
    };
    let (from_snap, from_changes) = (pick(true), pick(false));
    let cols = (0..n)
        .map(|c| {
            let name = schema.field(c).name();
            let mut parts =
                vec![
                    arrow::compute::take(changes.column(c).as_ref(), &from_changes, None).unwrap(),
                ];
            if let Some(snap) = snapshot {
                let col = snap.column_by_name(name).unwrap();
                parts.push(arrow::compute::take(col.as_ref(), &from_snap, None).unwrap());
            }
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).unwrap()
        })
        .collect();
    RecordBatch::try_new(schema, cols).unwrap()
}

fn without_iv(batch: &RecordBatch) -> RecordBatch {
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| batch.schema().field(*i).name() != "iv")
        .collect();
    batch.project(&keep).unwrap()
}

pub(crate) fn ops(batch: &RecordBatch) -> HashMap<String, usize> {
    let op = batch
        .column_by_name("_rivet_op")
        .unwrap()
        .as_string::<i32>();
    let mut out = HashMap::new();
    for i in 0..op.len() {
        *out.entry(op.value(i).to_owned()).or_insert(0) += 1;
    }
    out
}

const COLUMNS: &str = "id int PRIMARY KEY, n int, txt text, big text, amount numeric(12,2), \
     ts timestamptz, d date, f float8, u uuid, doc jsonb, tags text[], b bytea, iv interval";

#[test]
fn cdc_window_replayed_by_key_equals_the_source_and_the_next_window_starts_where_it_ended() {
    let Some(mut t) = CdcTable::new("replay", COLUMNS) else {
        return;
    };
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("rivet cdc setup"));
    // doctor checks the slot live: missing before setup (exit 1, with the fix) …
    t.project
        .rivet()
        .args(["doctor", "-c", "rivet.yaml"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains(format!(
            "FAIL  export changes slot: slot `{}` does not exist",
            t.slot
        )))
        .stdout(predicates::str::contains("fix: run `rivet cdc setup"));
    t.setup().stdout(predicates::str::contains("created slot"));
    let before = t.confirmed_flush();
    // Rows that are deleted again and a truncate that empties the table.
    t.exec(
        "INSERT INTO T.t (id, n) SELECT i, i FROM generate_series(100001, 100010) i;
            DELETE FROM T.t WHERE id = 100003;
            TRUNCATE T.t;",
    );
    // Every type of the row, then a large transaction.
    t.exec("INSERT INTO T.t VALUES (1, 1, 'a''b \"c\"', NULL, 12.34, '2026-11-27 08:00:00.123456+00', '2026-11-27',
              1.5e300, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2]}', '{x,NULL,\"y z\"}',
              '\\x00ff', '1 year 2 mons 3 days 04:05:06.789');
            INSERT INTO T.t (id, n, txt, amount, ts) SELECT i, i, 'row ' || i, i / 100.0, '2026-01-01'::timestamptz + i * interval '1 second'
              FROM generate_series(2, 20001) i;");
    // A TOASTed value, then an update that leaves it unchanged (pgoutput does not send
    // it again; it must come back from the old row, never as NULL).
    t.exec("UPDATE T.t SET big = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 4000) i) WHERE id = 2;
            UPDATE T.t SET n = -2 WHERE id = 2;");
    // Interleaved transactions: A starts first and commits last.
    let url = std::env::var("RIVET_TEST_PG_CDC_URL").unwrap();
    let mut a = connect(&url);
    a.batch_execute(&format!(
        "BEGIN; INSERT INTO {s}.t (id, n) VALUES (30000, 1); UPDATE {s}.t SET n = 100 WHERE id = 5;",
        s = t.schema
    ))
    .unwrap();
    t.exec("UPDATE T.t SET n = 200, txt = NULL WHERE id = 8; DELETE FROM T.t WHERE id BETWEEN 10 AND 19;");
    a.batch_execute(&format!(
        "UPDATE {s}.t SET n = 300 WHERE id = 6; COMMIT;",
        s = t.schema
    ))
    .unwrap();
    t.exec("UPDATE T.t SET id = 40000 WHERE id = 7;");

    // … and, with changes waiting, its lag and retained WAL.
    t.project
        .rivet()
        .args(["doctor", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::is_match(format!(
            r"PASS  export changes slot: slot `{}` \(wal_status reserved\): [0-9.]+ (MB|kB|B) not yet confirmed \(lag\), [0-9.]+ (MB|kB|B) of WAL retained",
            t.slot
        )).unwrap());
    t.project.plan();
    let (lower, upper) = t.window("plan.json");
    assert_eq!(
        lower, before,
        "the first window starts at the slot's position"
    );
    t.project
        .rivet()
        .args(["plan", "show", "plan.json"])
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "from {lower} (inclusive) to {upper} (exclusive), window 1"
        )))
        .stdout(predicates::str::contains(format!("slot {}", t.slot)));
    // Changes after the plan belong to the next window.
    t.exec("INSERT INTO T.t (id, n) VALUES (50000, 5);");
    t.project.apply("plan.json");
    assert!(t.project.path("out/window-00001/_SUCCESS").exists());
    assert_eq!(
        t.confirmed_flush(),
        upper,
        "the slot is confirmed up to the window's end"
    );

    let changes = t.project.read_export("out/window-00001");
    let counts = ops(&changes);
    assert_eq!(counts.get("truncate"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("delete"), Some(&12), "{counts:?}");
    assert_eq!(counts.get("insert"), Some(&(10 + 20001 + 1)), "{counts:?}");
    // The replay of window 1 is the table as it was at the window's end: everything
    // but the row inserted after planning.
    let replayed = replay(&changes);
    t.exec("CREATE TABLE T.at_end AS SELECT * FROM T.t WHERE id <> 50000; ALTER TABLE T.at_end DROP COLUMN iv;");
    assert_matches_source(
        &mut t.client,
        &format!("{}.at_end", t.schema),
        "\"id\"",
        &without_iv(&replayed),
    );
    // The interval (a struct the cell oracle does not render) of row 1.
    let row1 = crate::common::sort_batch(&replayed, "id");
    assert_eq!(
        crate::common::arrow_cell_text(row1.column_by_name("iv").unwrap(), 0).as_deref(),
        Some("{months: 14, days: 3, microseconds: 14706789000}")
    );

    // The second window starts where the first ended and holds exactly the late row.
    t.project.plan_to("plan2.json", &[]);
    let (lower2, _) = t.window("plan2.json");
    assert_eq!(lower2, upper);
    t.project.apply("plan2.json");
    let second = t.project.read_export("out/window-00002");
    // `rivet state -c` reads the slot live: confirmed up to the window just applied.
    t.project
        .rivet()
        .args(["state", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::is_match(format!(
            r"changes: slot `{}` \(wal_status reserved\): [0-9.]+ MiB not yet confirmed \(lag\), [0-9.]+ MiB of WAL retained",
            t.slot
        )).unwrap());
    assert_eq!(second.num_rows(), 1);
    assert_eq!(ops(&second).get("insert"), Some(&1));
    let schema = changes.schema();
    let both = arrow::compute::concat_batches(&schema, &[changes, second]).unwrap();
    t.exec("ALTER TABLE T.t DROP COLUMN iv;");
    assert_matches_source(
        &mut t.client,
        &format!("{}.t", t.schema),
        "\"id\"",
        &without_iv(&replay(&both)),
    );
}

pub(crate) fn temp_file_in(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".rivet-tmp-"))
    })
}

#[test]
fn cdc_killed_apply_leaves_the_slot_and_position_and_resumes_the_same_window() {
    let Some(mut t) = CdcTable::new("crash", "id int PRIMARY KEY, n int, txt text") else {
        return;
    };
    t.setup();
    for k in 0..4 {
        t.exec(&format!(
            "INSERT INTO T.t SELECT i, i, repeat('x', 50) FROM generate_series({} + 1, {} + 100000) i;",
            k * 100000,
            k * 100000
        ));
    }
    t.exec("UPDATE T.t SET n = -n WHERE id % 7 = 0;");
    t.project.plan();
    let (start, end) = t.window("plan.json");
    let dir = t.project.path("out/window-00001");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(t.project.dir())
        .env("DATABASE_URL", t.project.url())
        .args(["apply", "plan.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !temp_file_in(&dir) {
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
    assert_eq!(
        t.confirmed_flush(),
        start,
        "the slot must not move without _SUCCESS"
    );
    let state = rusqlite::Connection::open(t.project.path(".rivet_state.db")).unwrap();
    let positions: i64 = state
        .query_row("SELECT count(*) FROM cursors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(positions, 0, "no position is committed without _SUCCESS");
    drop(state);

    t.wait_until_slot_is_free();
    t.project
        .rivet()
        .args(["apply", "plan.json", "--resume"])
        .assert()
        .success()
        .stderr(predicates::str::contains("1 chunk(s) run"));
    assert!(dir.join("_SUCCESS").exists());
    assert_eq!(t.confirmed_flush(), end);
    let changes = t.project.read_export("out/window-00001");
    let counts = ops(&changes);
    assert_eq!(counts.get("insert"), Some(&400000), "{counts:?}");
    assert_eq!(counts.get("update"), Some(&(400000 / 7)), "{counts:?}");
    assert_matches_source(
        &mut t.client,
        &format!("{}.t", t.schema),
        "\"id\"",
        &replay(&changes),
    );

    // The applied window cannot be read again: the slot moved past its start.
    t.project
        .rivet()
        .args(["apply", "plan.json"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("past this window's start"));
}

#[test]
fn cdc_prerequisites_are_refused_with_the_fix() {
    let Some(mut t) = CdcTable::new("prereq", "id int PRIMARY KEY, n int") else {
        return;
    };
    // The plain reader has no REPLICATION attribute.
    let reader = std::env::var("RIVET_TEST_PG_URL").unwrap();
    crate::common::rivet(t.project.dir(), &reader)
        .args(["cdc", "setup", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(
            predicates::str::contains("REPLICATION").and(predicates::str::contains("ALTER ROLE")),
        );
    t.setup();
    t.exec("ALTER TABLE T.t REPLICA IDENTITY DEFAULT;");
    t.project
        .rivet()
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("REPLICA IDENTITY FULL;"));
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn cdc_through_a_transaction_pooler_sets_up_reads_and_confirms_a_window() {
    let Some(direct) = live_env("RIVET_TEST_PG_CDC_URL", "PostgreSQL (change capture role)") else {
        return;
    };
    let Some(pooled) = live_env(
        "RIVET_TEST_PGBOUNCER_CDC_URL",
        "pgBouncer (change capture role)",
    ) else {
        return;
    };
    let mut t = CdcTable::reached_through("pooled", COLUMNS, &direct, &pooled);
    crate::common::warm_pool(&pooled, 3);
    t.setup().stdout(predicates::str::contains("created slot"));
    t.exec(
        "INSERT INTO T.t (id, n, txt) SELECT i, i, 'row ' || i FROM generate_series(1, 500) i;
         UPDATE T.t SET n = -n WHERE id <= 100;
         DELETE FROM T.t WHERE id > 450;",
    );
    t.project.plan();
    let (_, upper) = t.window("plan.json");
    t.project.apply("plan.json");
    assert_eq!(
        t.confirmed_flush(),
        upper,
        "the slot is confirmed through the pooler"
    );
    let changes = t.project.read_export("out/window-00001");
    let counts = ops(&changes);
    assert_eq!(counts.get("insert"), Some(&500), "{counts:?}");
    assert_eq!(counts.get("update"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("delete"), Some(&50), "{counts:?}");
    t.exec("ALTER TABLE T.t DROP COLUMN iv;");
    assert_matches_source(
        &mut t.client,
        &format!("{}.t", t.schema),
        "\"id\"",
        &without_iv(&replay(&changes)),
    );
}

#[test]
fn a_column_retyped_inside_the_window_is_never_written_under_the_planned_type() {
    let Some(mut t) = CdcTable::new("retyped", "id int PRIMARY KEY, n int") else {
        return;
    };
    t.setup();
    let before = t.confirmed_flush();
    // Retyped and back: the table has its planned shape again when apply starts, but
    // the log in between carries `real` values for `n` — four bytes, like int4, so a
    // decoder that trusted the plan would write 1.5 as the integer 1069547520.
    t.exec(
        "INSERT INTO T.t VALUES (1, 1);
         ALTER TABLE T.t ALTER COLUMN n TYPE real;
         INSERT INTO T.t VALUES (2, 1.5);
         ALTER TABLE T.t ALTER COLUMN n TYPE int USING round(n)::int;",
    );
    t.project.plan();
    t.project
        .rivet()
        .args(["apply", "plan.json"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("column `n` of "))
        .stderr(predicates::str::contains("changed type inside the window"));
    assert!(!t.project.path("out/window-00001/_SUCCESS").exists());
    assert_eq!(t.confirmed_flush(), before, "the slot did not move");
}

#[test]
fn a_snapshot_and_slot_windows_planned_together_replay_to_the_table_with_no_gap() {
    let Some(mut t) = CdcTable::new("handoff", "id int PRIMARY KEY, n int, s text") else {
        return;
    };
    t.setup();
    t.exec("INSERT INTO T.t SELECT i, i, 'before' FROM generate_series(1, 2000) i;");
    t.project.config(&format!(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: snap\n    table: {s}.t\n    mode: chunked\n    chunk_size: 500\n    destination: {{ type: local, path: snap }}\n  - name: changes\n    table: {s}.t\n    mode: cdc\n    cdc: {{ slot: {slot} }}\n    destination: {{ type: local, path: out }}\n",
        s = t.schema,
        slot = t.slot
    ));
    t.project.plan();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.project.path("plan.json")).unwrap()).unwrap();
    let exports = plan["body"]["exports"].as_array().unwrap();
    assert_eq!(exports[1]["wave"], 2, "the changes run after the snapshot");
    assert_eq!(exports[0]["handoff"], exports[1]["handoff"]);
    assert_eq!(
        exports[1]["handoff"]["position"],
        exports[1]["window"]["lower"]
    );
    // Changes between plan and apply are in the snapshot and in the next window.
    t.exec("UPDATE T.t SET s = 'between' WHERE id <= 100; DELETE FROM T.t WHERE id BETWEEN 1900 AND 1999; INSERT INTO T.t VALUES (5000, 5000, 'between');");
    t.project.apply("plan.json");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.project.path("out/window-00001/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["handoff"], exports[1]["handoff"],
        "the window's manifest records the handoff"
    );
    t.exec("UPDATE T.t SET n = -n WHERE id % 3 = 0; DELETE FROM T.t WHERE id <= 10; INSERT INTO T.t VALUES (6000, 6000, 'after');");
    t.project.plan_to("plan2.json", &[]);
    t.project.apply("plan2.json");
    let snapshot = t.project.read_export("snap");
    let mut batches = crate::common::read_export_parquet(&t.project.path("out/window-00001"));
    batches.extend(crate::common::read_export_parquet(
        &t.project.path("out/window-00002"),
    ));
    let replayed = replay_over(&snapshot, &crate::common::concat(&batches));
    assert_matches_source(
        &mut t.client,
        &format!("{}.t", t.schema),
        "\"id\"",
        &replayed,
    );
}

/// The crash harness on slot windows (see `crash.rs`): per trial, changes of every kind,
/// a window planned, its apply killed at a random moment and resumed; the position is
/// never ahead of a window's `_SUCCESS` (checked by the harness), the slot is confirmed
/// to the window's end only after it, each window holds exactly the trial's changes,
/// and the replay of all windows is the table. The first window runs uninterrupted to
/// learn how long a window takes (a probe elsewhere would confirm the slot).
#[test]
fn slot_windows_survive_random_sigkills() {
    let Some(mut t) = CdcTable::new("sigkill", "id int PRIMARY KEY, n int, s text") else {
        return;
    };
    t.setup();
    let (trials, mut rng) = crate::crash::trial_count();
    // A killed apply's backend holds the slot until it notices: the resume retries.
    t.project.config(&format!(
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: events\n    table: {}.t\n    mode: cdc\n    cdc: {{ slot: {} }}\n    tuning: {{ batch_size: 2000, max_retries: 40, retry_backoff_ms: 250 }}\n    destination: {{ type: local, path: out }}\n",
        t.schema, t.slot
    ));
    let url = t.project.url().to_owned();
    let mut full_ms = 0;
    let mut kills = 0;
    for trial in 0..=trials {
        let base = (trial + 1) * 100_000;
        t.exec(&format!(
            "INSERT INTO T.t SELECT i, i, 'trial {trial}' FROM generate_series({}, {}) i;
             UPDATE T.t SET n = -n WHERE id % 5 = 0 AND id > {base};
             DELETE FROM T.t WHERE id % 7 = 0 AND id > {base};",
            base + 1,
            base + 20_000
        ));
        let plan = format!("p{trial}.json");
        t.project.plan_to(&plan, &[]);
        let (_, end) = t.window(&plan);
        if trial == 0 {
            let started = std::time::Instant::now();
            t.project.apply(&plan);
            full_ms = started.elapsed().as_millis().max(50) as u64;
        } else {
            kills += u32::from(crate::crash::kill_check_resume(
                t.project.dir(),
                &url,
                &plan,
                &mut rng,
                full_ms,
            ));
        }
        assert_eq!(
            t.confirmed_flush(),
            end,
            "trial {trial}: slot confirmed after _SUCCESS"
        );
        let window = t
            .project
            .read_export(&format!("out/window-{:05}", trial + 1));
        let counts = ops(&window);
        let ids = base + 1..=base + 20_000;
        assert_eq!(
            counts.get("insert"),
            Some(&20_000),
            "trial {trial}: {counts:?}"
        );
        assert_eq!(
            counts.get("update"),
            Some(&ids.clone().filter(|i| i % 5 == 0).count()),
            "trial {trial}: {counts:?}"
        );
        assert_eq!(
            counts.get("delete"),
            Some(&ids.filter(|i| i % 7 == 0).count()),
            "trial {trial}: {counts:?}"
        );
        eprintln!("trial {trial}: window exact");
    }
    let mut batches = Vec::new();
    for w in 1..=trials + 1 {
        batches.extend(crate::common::read_export_parquet(
            &t.project.path(&format!("out/window-{w:05}")),
        ));
    }
    assert_matches_source(
        &mut t.client,
        &format!("{}.t", t.schema),
        "\"id\"",
        &replay(&crate::common::concat(&batches)),
    );
    assert!(
        kills > 0 || trials == 0,
        "no trial killed apply before it finished"
    );
}
