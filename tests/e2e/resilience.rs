//! Failures the source causes: killed and terminated applies, connections cut mid-chunk or
//! during the staleness check (retried), statement timeouts (permanent).

use predicates::prelude::*;

use crate::common::*;

#[test]
fn killed_apply_resumes_to_exactly_the_source_rows() {
    let url = require_pg!();
    let p = Project::new(&url);
    let cfg = pg_config("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    tuning: { batch_size: 1000 }\n    destination: { type: local, path: out }\n",
    );
    p.config(&cfg);
    p.plan_to("plan.json", &[]);
    crate::common::apply_and_kill_after(p.dir(), &url, 3);
    assert!(
        !p.path("out/_SUCCESS").exists(),
        "a killed run has no _SUCCESS"
    );
    for entry in std::fs::read_dir(p.path("out")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with("part-") {
            // Every file under a final name is a complete Parquet file.
            let f = std::fs::File::open(p.path("out").join(&name)).unwrap();
            parquet::file::reader::SerializedFileReader::new(f)
                .unwrap_or_else(|e| panic!("{name} is partial: {e}"));
        }
    }
    p.rivet()
        .args(["apply", "plan.json", "--resume"])
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped"));
    assert!(std::fs::read_dir(p.path("out")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".rivet-tmp")));
    let mut client = crate::common::connect(&url);
    let batch = concat(&read_export_parquet(&p.path("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
    p.rivet()
        .args(["state"])
        .assert()
        .success()
        .stdout(predicate::str::contains("interrupted").and(predicate::str::contains("succeeded")));
}

#[test]
fn terminated_apply_leaves_no_statement_running_on_the_server() {
    let url = require_pg!();
    // A distinct application_name tells this run's sessions apart from other tests'.
    let sep = if url.contains('?') { '&' } else { '?' };
    let tagged = format!("{url}{sep}application_name=rivet_sigterm_test");
    let p = Project::new(&url);
    let cfg = pg_config("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 5000\n    tuning: { batch_size: 500, parallelism: 2 }\n    destination: { type: local, path: out }\n",
    );
    p.config(&cfg);
    rivet(p.dir(), &tagged)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(p.dir())
        .env("DATABASE_URL", &tagged)
        .args(["apply", "plan.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut client = crate::common::connect(&url);
    let sessions = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rivet_sigterm_test' AND state <> 'idle'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sessions(&mut client) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never reached the server"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply finished before it could be terminated"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    let stopped = std::time::Instant::now();
    while sessions(&mut client) > 0 {
        assert!(
            stopped.elapsed() < std::time::Duration::from_secs(2),
            "a rivet statement was still running on the server 2 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_connection_cut_mid_chunk_is_retried_and_the_export_is_exact() {
    let url = require_pg!();
    let (proxy, through_proxy) = crate::common::proxy::CuttingProxy::in_front_of(&url, 2_000_000);
    let p = Project::new(&url);
    p.config(&pg_config("  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 100000\n    tuning: { retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    p.plan_to("plan.json", &[]);
    rivet(p.dir(), &through_proxy)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    p.rivet()
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("chunk_retry"));
    let mut client = crate::common::connect(&url);
    let batch = concat(&read_export_parquet(&p.path("out")));
    assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
}

#[test]
fn a_statement_timeout_is_permanent_and_fails_fast_without_retries() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config(&pg_config("  - name: big\n    query: SELECT g AS id, pg_sleep(0.01) IS NULL AS slept FROM generate_series(1, 1000) g\n    tuning: { statement_timeout_ms: 50, max_retries: 3, retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    p.plan_to("plan.json", &[]);
    p.rivet()
        .args(["apply", "plan.json"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("statement timeout").and(predicate::str::contains("57014")),
        );
    p.rivet().args(["journal"]).assert().success().stdout(
        predicate::str::contains("chunk_retry")
            .not()
            .and(predicate::str::contains("chunk_failed")),
    );
}

#[test]
fn a_connection_cut_during_the_staleness_check_is_retried() {
    let url = require_pg!();
    // The first connection apply opens is the catalog check; it is cut a few KB in.
    let (proxy, through_proxy) = crate::common::proxy::CuttingProxy::in_front_of(&url, 3_000);
    let p = Project::new(&url);
    p.config(&pg_config("  - name: all\n    table: rivet_fixture.all_types\n    tuning: { retry_backoff_ms: 20 }\n    destination: { type: local, path: out }\n",
        ),
    );
    p.plan_to("plan.json", &[]);
    rivet(p.dir(), &through_proxy)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    p.rivet()
        .args(["journal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("catalog_retry"));
}
