//! Crash safety, proven by killing `rivet apply` with SIGKILL at random moments and
//! resuming: after every trial the output equals the source exactly (every cell), no
//! file under a final name is partial, and nothing temporary is left.
//!
//! `RIVET_CRASH_TRIALS` sets the number of trials (default 10; the heavy variant is
//! `RIVET_CRASH_TRIALS=100`). `RIVET_CRASH_SEED` replays a run; the seed is printed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_matches_source, concat, read_export_parquet, rivet, write};

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

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
    let mut rng = Rng(seed);
    let cfg = "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n  - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 20000\n    tuning: { batch_size: 2000, parallelism: 2 }\n    destination: { type: local, path: out }\n";
    // One uninterrupted run tells how long a whole apply takes here.
    let probe = tempfile::tempdir().unwrap();
    write(probe.path(), "rivet.yaml", cfg);
    rivet(probe.path(), &url)
        .args(["plan", "-c", "rivet.yaml", "-o", "plan.json"])
        .assert()
        .success();
    let started = Instant::now();
    rivet(probe.path(), &url)
        .args(["apply", "plan.json"])
        .assert()
        .success();
    let full = started.elapsed().as_millis().max(50) as u64;
    let mut client = common::connect(&url);
    let mut kills_before_end = 0;
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "rivet.yaml", cfg);
        std::fs::copy(probe.path().join("plan.json"), dir.path().join("plan.json")).unwrap();
        let delay = Duration::from_millis(rng.next() % full);
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("rivet"))
            .current_dir(dir.path())
            .env("DATABASE_URL", &url)
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
        let out = dir.path().join("out");
        check_no_partial_files(&out);
        rivet(dir.path(), &url)
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
        let batch = concat(&read_export_parquet(&out));
        assert_matches_source(&mut client, "rivet_fixture.big_gappy", "\"id\"", &batch);
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
