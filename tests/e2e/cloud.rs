//! Object-store destinations against real emulators started by `scripts/test-env.sh`:
//! moto (S3 API) and Azurite (Azure Blob), plus `stdout` and `rivet doctor`. GCS has no
//! emulator that object_store's client accepts (see docs/destinations/gcs.md); its
//! builder is tested offline in the executor.

use std::path::Path;

use crate::common::*;
use sha2::Digest;

fn s3_endpoint() -> Option<String> {
    crate::common::live_env("RIVET_TEST_S3_ENDPOINT", "S3 emulator (moto)")
}

fn s3_dest(endpoint: &str, prefix: &str) -> String {
    format!("{{ type: s3, bucket: rivet-test, prefix: {prefix}, endpoint: \"{endpoint}\", path_style: true, access_key_env: TEST_AK, secret_key_env: TEST_SK }}")
}

fn config(exports: &str) -> String {
    format!("source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n{exports}")
}

/// Reads an object back through object_store with the test credentials (None when
/// it does not exist).
fn get(endpoint: &str, key: &str) -> Option<Vec<u8>> {
    use object_store::ObjectStoreExt;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("rivet-test")
        .with_region("us-east-1")
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id("testing-access-key")
        .with_secret_access_key("testing-secret-Kq8")
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match store.get(&object_store::path::Path::from(key)).await {
            Ok(r) => Some(r.bytes().await.unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("GET {key}: {e}"),
        }
    })
}

fn run(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    rivet(dir, url)
        .env("TEST_AK", "testing-access-key")
        .env("TEST_SK", "testing-secret-Kq8")
        .args(args)
        .output()
        .unwrap()
}

/// Writes an object through object_store with the test credentials.
fn put(endpoint: &str, key: &str, body: &[u8]) {
    use object_store::ObjectStoreExt;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("rivet-test")
        .with_region("us-east-1")
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id("testing-access-key")
        .with_secret_access_key("testing-secret-Kq8")
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.put(&object_store::path::Path::from(key), body.to_vec().into()))
        .unwrap();
}

fn manifest(endpoint: &str, prefix: &str) -> serde_json::Value {
    serde_json::from_slice(
        &get(endpoint, &format!("{prefix}/manifest.json")).expect("manifest.json"),
    )
    .unwrap()
}

#[test]
fn s3_small_and_multipart_uploads_are_complete_and_checksummed_with_manifest_then_success() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let p = Project::new(&url);
    let prefix = format!("t{}/a", std::process::id());
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    format: csv\n    destination: {}\n  - name: small\n    table: rivet_fixture.all_types\n    destination: {}\n",
            s3_dest(&endpoint, &format!("{prefix}/big")),
            s3_dest(&endpoint, &format!("{prefix}/small"))
        )),
    );
    let out = run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(p.dir(), &url, &["apply", "plan.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("s3://rivet-test/{prefix}/big")),
        "{stderr}"
    );
    for (export, min_size) in [("big", 9 * 1024 * 1024), ("small", 1)] {
        let p = format!("{prefix}/{export}");
        let m = manifest(&endpoint, &p);
        assert!(get(&endpoint, &format!("{p}/_SUCCESS")).is_some());
        for f in m["files"].as_array().unwrap() {
            let body = get(&endpoint, &format!("{p}/{}", f["path"].as_str().unwrap())).unwrap();
            assert!(body.len() >= min_size, "{export}: {} bytes", body.len());
            assert_eq!(body.len() as u64, f["bytes"].as_u64().unwrap());
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&body)),
                f["sha256"].as_str().unwrap()
            );
        }
    }
    let csv = get(&endpoint, &format!("{prefix}/big/part-00001.csv")).unwrap();
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 205_713 + 1);
    // The secret key never shows up in the plan or the output.
    let plan = std::fs::read_to_string(p.path("plan.json")).unwrap();
    assert!(!plan.contains("testing-secret-Kq8") && !stderr.contains("testing-secret-Kq8"));
    assert!(plan.contains("\"secret_key_env\": \"TEST_SK\""));
}

#[test]
fn s3_throttling_and_connection_resets_are_retried() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let target: std::net::SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let proxy = crate::common::proxy::FaultyHttpProxy::start(target, 2, 2);
    let through = format!("http://127.0.0.1:{}", proxy.port);
    let p = Project::new(&url);
    let prefix = format!("t{}/faults", std::process::id());
    p.config(&config(&format!(
        "  - name: small\n    table: rivet_fixture.all_types\n    destination: {}\n",
        s3_dest(&through, &prefix)
    )));
    assert!(run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"]
    )
    .status
    .success());
    let out = run(p.dir(), &url, &["apply", "plan.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy.seen.load(std::sync::atomic::Ordering::SeqCst) > 4,
        "the faults were hit"
    );
    let m = manifest(&endpoint, &prefix);
    assert_eq!(m["rows"], 10);
}

#[test]
fn a_missing_bucket_fails_fast_naming_the_bucket() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let p = Project::new(&url);
    p.config(&config(&format!(
        "  - name: small\n    table: rivet_fixture.all_types\n    destination: {}\n",
        s3_dest(&endpoint, "x").replace("bucket: rivet-test", "bucket: no-such-bucket-rivet")
    )));
    assert!(run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"]
    )
    .status
    .success());
    let started = std::time::Instant::now();
    let out = run(p.dir(), &url, &["apply", "plan.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("s3://no-such-bucket-rivet/x"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("testing-secret-Kq8"));
    assert!(started.elapsed().as_secs() < 60, "not retried for minutes");
    // doctor says the same, one line per check, with a fix.
    let out = run(p.dir(), &url, &["doctor", "-c", "rivet.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PASS  source: connected"), "{stdout}");
    assert!(
        stdout.contains("PASS  export small: table rivet_fixture.all_types is readable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  export small destination"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: "), "{stdout}");
}

#[test]
fn azure_blob_through_azurite_and_a_wrong_key_is_a_permission_error() {
    let url = require_pg!();
    let Some(endpoint) =
        crate::common::live_env("RIVET_TEST_AZURE_ENDPOINT", "Azure emulator (Azurite)")
    else {
        return;
    };
    let key = std::env::var("RIVET_TEST_AZURE_KEY").unwrap();
    let p = Project::new(&url);
    let prefix = format!("t{}/az", std::process::id());
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    format: csv\n    compression: zstd\n    max_file_size: 2MiB\n    destination: {{ type: azure, account: devstoreaccount1, container: rivet-test, prefix: {prefix}, endpoint: \"{endpoint}\", account_key_env: AZ_KEY }}\n"
        )),
    );
    let ok = p
        .rivet()
        .env("AZ_KEY", &key)
        .args(["run", "-c", "rivet.yaml"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let doctor = p
        .rivet()
        .env("AZ_KEY", &key)
        .args(["doctor", "-c", "rivet.yaml"])
        .output()
        .unwrap();
    assert!(
        doctor.status.success(),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
    // A wrong key: a clear permission error, exit 1, and the key is not echoed.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let bad = p
        .rivet()
        .env("AZ_KEY", wrong)
        .args(["run", "-c", "rivet.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("azure://devstoreaccount1/rivet-test"),
        "{stderr}"
    );
    assert!(
        stderr.contains("permission") || stderr.contains("authentic"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong));
}

#[test]
fn a_killed_upload_leaves_no_partial_object_and_resume_completes_it() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let p = Project::new(&url);
    let prefix = format!("t{}/kill", std::process::id());
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    format: csv\n    tuning: {{ batch_size: 1000 }}\n    destination: {}\n",
            s3_dest(&endpoint, &prefix)
        )),
    );
    assert!(run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"]
    )
    .status
    .success());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rivet"))
        .current_dir(p.dir())
        .env("DATABASE_URL", &url)
        .env("TEST_AK", "testing-access-key")
        .env("TEST_SK", "testing-secret-Kq8")
        .args(["apply", "plan.json"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    child.wait().unwrap();
    let before = get(&endpoint, &format!("{prefix}/part-00001.csv"));
    assert!(get(&endpoint, &format!("{prefix}/_SUCCESS")).is_none());
    let out = run(p.dir(), &url, &["apply", "plan.json", "--resume"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = get(&endpoint, &format!("{prefix}/part-00001.csv")).unwrap();
    if let Some(before) = before {
        assert_eq!(
            before, after,
            "an object visible after the kill was complete"
        );
    }
    let m = manifest(&endpoint, &prefix);
    assert_eq!(
        m["files"][0]["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&after))
    );
}

#[test]
fn stdout_destination_pipes_parquet_and_csv() {
    let url = require_pg!();
    let p = Project::new(&url);
    for (format, check) in [("parquet", 0), ("csv", 1)] {
        p.config(&config(&format!(
                "  - name: piped\n    table: rivet_fixture.all_types\n    format: {format}\n    destination: {{ type: stdout }}\n"
            )),
        );
        let out = p
            .rivet()
            .args(["run", "-c", "rivet.yaml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if check == 0 {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(out.stdout.clone()),
            )
            .unwrap()
            .build()
            .unwrap();
            let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 10);
        } else {
            let mut r = csv::Reader::from_reader(out.stdout.as_slice());
            assert_eq!(r.records().count(), 10);
        }
        assert!(String::from_utf8_lossy(&out.stderr).contains("piped: 10 rows"));
    }
    // Several exports, or chunks, cannot share one stream.
    p.config(&config("  - name: piped\n    table: rivet_fixture.big_gappy\n    mode: chunked\n    destination: { type: stdout }\n"),
    );
    p.rivet()
        .args(["plan", "-c", "rivet.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("exports[0].mode"));
}

#[test]
fn a_read_that_fails_midway_publishes_no_object() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    // The database connection is cut after ~12 MB, once the CSV upload has gone
    // multipart; with no retries the chunk fails and its upload must be aborted.
    let (proxy, through) = crate::common::proxy::CuttingProxy::in_front_of(&url, 12_000_000);
    let p = Project::new(&url);
    let prefix = format!("t{}/cut", std::process::id());
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    format: csv\n    tuning: {{ max_retries: 0 }}\n    destination: {}\n",
            s3_dest(&endpoint, &prefix)
        )),
    );
    assert!(run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"]
    )
    .status
    .success());
    let out = run(p.dir(), &through, &["apply", "plan.json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the connection was cut"
    );
    assert!(
        get(&endpoint, &format!("{prefix}/part-00001.csv")).is_none(),
        "no truncated object"
    );
    assert!(get(&endpoint, &format!("{prefix}/_SUCCESS")).is_none());
}

#[test]
fn validate_reads_objects_back_from_the_store() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let p = Project::new(&url);
    let prefix = format!("t{}/validate", std::process::id());
    p.config(&config(&format!(
        "  - name: small\n    table: rivet_fixture.all_types\n    destination: {}\n",
        s3_dest(&endpoint, &prefix)
    )));
    assert!(run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"]
    )
    .status
    .success());
    assert!(run(p.dir(), &url, &["apply", "plan.json"]).status.success());
    let out = run(p.dir(), &url, &["validate", "plan.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("10 rows at s3://rivet-test/{prefix}")),
        "{stdout}"
    );
    // The same export by URL, with the standard AWS variables.
    let by_url = p
        .rivet()
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing-access-key")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret-Kq8")
        .env("AWS_REGION", "us-east-1")
        .args([
            "validate",
            "--manifest",
            &format!("s3://rivet-test/{prefix}/manifest.json"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&by_url.stdout);
    assert_eq!(
        by_url.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&by_url.stderr)
    );
    assert!(stdout.contains("1 file(s), 10 rows"), "{stdout}");
}

/// GCS has no emulator here (docs/destinations/gcs.md): this runs only against a real
/// bucket, when `RIVET_TEST_GCS_BUCKET` (and `RIVET_TEST_GCS_CREDENTIALS`, a service
/// account key file, or application default credentials) are set; `scripts/test.sh`
/// then passes `--run-ignored all`.
#[test]
#[ignore = "needs a real GCS bucket: set RIVET_TEST_GCS_BUCKET (docs/destinations/gcs.md)"]
fn gcs_live_round_trip_and_validate() {
    let url = require_pg!();
    let bucket = std::env::var("RIVET_TEST_GCS_BUCKET")
        .expect("RIVET_TEST_GCS_BUCKET names the bucket for the live GCS test");
    let creds = std::env::var("RIVET_TEST_GCS_CREDENTIALS")
        .map(|f| format!(", credentials_file: \"{f}\""))
        .unwrap_or_default();
    let p = Project::new(&url);
    let prefix = format!("rivet-test/t{}", std::process::id());
    p.config(&config(&format!(
            "  - name: big\n    table: rivet_fixture.big_gappy\n    format: csv\n    destination: {{ type: gcs, bucket: {bucket}, prefix: {prefix}{creds} }}\n"
        )),
    );
    for args in [
        vec!["doctor", "-c", "rivet.yaml"],
        vec!["plan", "-c", "rivet.yaml", "-o", "plan.json"],
        vec!["apply", "plan.json"],
        vec!["validate", "plan.json"],
    ] {
        let out = run(p.dir(), &url, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Two applies on one object-store prefix: a live lease (created with a conditional
/// write) refuses the second, naming its holder; an expired one is taken over; the
/// lease is gone once the apply ends.
#[test]
fn a_live_lease_refuses_a_second_apply_and_an_expired_one_is_taken_over() {
    let url = require_pg!();
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let p = Project::new(&url);
    let prefix = format!("t{}/leased", std::process::id());
    p.config(&config(&format!(
        "  - name: small\n    table: rivet_fixture.all_types\n    destination: {}\n",
        s3_dest(&endpoint, &prefix)
    )));
    let out = run(
        p.dir(),
        &url,
        &["plan", "-c", "rivet.yaml", "-o", "plan.json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lease = format!("{prefix}/.rivet-lease.json");
    let far = 4_000_000_000u64;
    put(
        &endpoint,
        &lease,
        format!(r#"{{"pid":77,"host":"pod-3","run_id":"run-9-77","since":1764633600,"expires_at":{far}}}"#)
            .as_bytes(),
    );
    let out = run(p.dir(), &url, &["apply", "plan.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another apply holds its lease (pid 77 on pod-3, run run-9-77"),
        "{stderr}"
    );
    assert!(get(&endpoint, &format!("{prefix}/manifest.json")).is_none());
    put(
        &endpoint,
        &lease,
        br#"{"pid":77,"host":"pod-3","run_id":"run-9-77","since":1764633600,"expires_at":1764633700}"#,
    );
    let out = run(p.dir(), &url, &["apply", "plan.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(get(&endpoint, &format!("{prefix}/_SUCCESS")).is_some());
    assert!(get(&endpoint, &lease).is_none(), "the lease is released");
}
