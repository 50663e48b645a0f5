//! `rivet validate` finds missing, corrupt and unlisted files.

use crate::common::*;

#[test]
fn validate_catches_missing_corrupt_and_extra_files() {
    let url = require_pg!();
    let p = Project::new(&url);
    p.config("source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n\
         \x20 - name: big\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    chunk_size: 50000\n    destination: { type: local, path: out/big }\n\
         \x20 - name: gz\n    table: rivet_fixture.all_types\n    format: csv\n    compression: gzip\n    destination: { type: local, path: out/gz }\n",
    );
    p.plan_to("p.json", &[]);
    p.apply("p.json");
    let ok = p.rivet().args(["validate", "p.json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("OK    export big:") && stdout.contains("205713 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK    export gz: 1 file(s), 10 rows"),
        "{stdout}"
    );
    p.rivet()
        .args(["validate", "-c", "rivet.yaml"])
        .assert()
        .success()
        .stdout(predicates::str::contains("OK    export big:"));
    let out = p.path("out/big");
    // Delete one file, flip one byte of another, add an unlisted one.
    std::fs::remove_file(out.join("part-00002.parquet")).unwrap();
    let mut bytes = std::fs::read(out.join("part-00003.parquet")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(out.join("part-00003.parquet"), bytes).unwrap();
    std::fs::write(out.join("part-00099.parquet"), b"stray").unwrap();
    let bad = p
        .rivet()
        .args(["validate", "p.json", "--json"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(4));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let problems: Vec<String> = report["exports"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["location"].as_str().unwrap(),
                p["problem"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00002.parquet listed in manifest.json but missing")));
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00003.parquet sha256")));
    assert!(problems
        .iter()
        .any(|p| p.contains("part-00099.parquet not listed")));
    // The same through --manifest, for one directory.
    p.rivet()
        .args(["validate", "--manifest", "out/gz/manifest.json"])
        .assert()
        .success();
    // Re-applying the plan repairs it.
    p.apply("p.json");
    std::fs::remove_file(out.join("part-00099.parquet")).ok();
    p.rivet().args(["validate", "p.json"]).assert().success();
}
