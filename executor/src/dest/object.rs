//! Object stores (S3 and S3-compatible, GCS, Azure Blob) through `object_store`: the
//! client built from a planned store (credentials by reference), small files in one
//! `PUT`, large ones as multipart uploads that become visible only when completed and
//! are aborted on failure, and error messages that name the bucket and the likely fix.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use rivet_schema::config::DestinationKind;
use rivet_schema::plan::PlannedStore;

use super::FileSink;
use crate::error::ExecError;

/// Bytes buffered before an upload switches from one `PUT` to a multipart upload, and
/// the size of each part (S3 needs at least 5 MiB per part).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once per file: bounds memory to about `(2 + 1) × PART_BYTES`.
const PARTS_IN_FLIGHT: usize = 2;

/// An object-store prefix and the runtime its client runs on.
#[derive(Clone)]
pub struct ObjectDest {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
    /// `s3://bucket/prefix`-style name for messages.
    pub display: String,
    pub kind: DestinationKind,
    pub rt: tokio::runtime::Handle,
}

/// Why a destination failed, with the fix a user most likely needs.
fn store_error(dest: &str, kind: DestinationKind, what: &str, e: &object_store::Error) -> String {
    use object_store::Error as E;
    let fix = match (e, kind) {
        (E::NotFound { .. }, DestinationKind::S3 | DestinationKind::Gcs) => {
            " — the bucket does not exist or these credentials cannot see it; check `bucket` (and `region`/`endpoint`)"
        }
        (E::NotFound { .. }, DestinationKind::Azure) => {
            " — the container does not exist or these credentials cannot see it; check `account` and `container`"
        }
        (E::PermissionDenied { .. } | E::Unauthenticated { .. }, DestinationKind::S3) => {
            " — the credentials lack permission: Rivet needs s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on the prefix (docs/destinations/s3.md)"
        }
        (E::PermissionDenied { .. } | E::Unauthenticated { .. }, DestinationKind::Gcs) => {
            " — the credentials lack permission: Rivet needs storage.objects.create, .get, .delete and .list on the bucket (docs/destinations/gcs.md)"
        }
        (E::PermissionDenied { .. } | E::Unauthenticated { .. }, DestinationKind::Azure) => {
            " — the credentials lack permission: Rivet needs read, write, delete and list on the container (role Storage Blob Data Contributor; docs/destinations/azure.md)"
        }
        _ => "",
    };
    format!("{what} at {dest}: {e}{fix}")
}

impl ObjectDest {
    pub(crate) fn key(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    pub(super) fn err(&self, export: &str, what: &str, e: &object_store::Error) -> ExecError {
        ExecError::Write {
            export: export.to_owned(),
            path: self.display.clone(),
            detail: store_error(&self.display, self.kind, what, e),
        }
    }

    /// Writes a small object in one `PUT`.
    pub fn put(&self, export: &str, name: &str, bytes: Vec<u8>) -> Result<(), ExecError> {
        let key = self.key(name);
        self.rt
            .block_on(self.store.put(&key, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.err(export, &format!("writing {name}"), &e))
    }

    /// Deletes an object; a missing one is fine.
    pub fn delete(&self, export: &str, name: &str) -> Result<(), ExecError> {
        let key = self.key(name);
        match self.rt.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(export, &format!("deleting {name}"), &e)),
        }
    }

    /// Names of the objects directly under the prefix.
    pub fn list(&self, export: &str) -> Result<Vec<String>, ExecError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| self.err(export, "listing", &e))?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(str::to_owned))
            .collect())
    }

    /// Size of an object as the store reports it.
    pub fn size(&self, export: &str, name: &str) -> Result<u64, ExecError> {
        let key = self.key(name);
        self.rt
            .block_on(self.store.head(&key))
            .map(|m| m.size)
            .map_err(|e| self.err(export, &format!("checking {name}"), &e))
    }
}

/// An object upload: bytes are buffered until [`PART_BYTES`]; a file that stays smaller
/// goes up in one `PUT` at `finish`, a larger one as a multipart upload whose parts are
/// sent while the file is being written (at most [`PARTS_IN_FLIGHT`] at once).
pub struct ObjectSink {
    dest: ObjectDest,
    key: ObjectPath,
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
}

impl ObjectSink {
    pub fn new(dest: &ObjectDest, name: &str) -> Self {
        ObjectSink {
            key: dest.key(name),
            dest: dest.clone(),
            buffer: Vec::new(),
            upload: None,
        }
    }

    /// A store error as an I/O error whose text names the destination and the fix.
    fn io_err(&self, e: object_store::Error) -> io::Error {
        let name = self.key.filename().unwrap_or_default();
        io::Error::other(store_error(
            &self.dest.display,
            self.dest.kind,
            &format!("uploading {name}"),
            &e,
        ))
    }

    fn start_multipart(&mut self) -> io::Result<()> {
        let upload = self
            .dest
            .rt
            .block_on(self.dest.store.put_multipart(&self.key))
            .map_err(|e| self.io_err(e))?;
        self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        Ok(())
    }
}

impl Write for ObjectSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Part uploads are spawned onto the runtime as buffers fill.
        let rt = self.dest.rt.clone();
        let _context = rt.enter();
        match &mut self.upload {
            None => {
                self.buffer.extend_from_slice(buf);
                if self.buffer.len() >= PART_BYTES {
                    self.start_multipart()?;
                    let pending = std::mem::take(&mut self.buffer);
                    let upload = self.upload.as_mut().expect("just started");
                    upload.write(&pending);
                }
            }
            Some(upload) => {
                // Waits until fewer than PARTS_IN_FLIGHT parts are uploading, so memory
                // stays bounded whatever the file size.
                if let Err(e) = rt.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT)) {
                    return Err(self.io_err(e));
                }
                upload.write(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileSink for ObjectSink {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let rt = self.dest.rt.clone();
        let _context = rt.enter();
        match self.upload.take() {
            None => {
                let bytes = std::mem::take(&mut self.buffer);
                rt.block_on(self.dest.store.put(&self.key, PutPayload::from(bytes)))
                    .map_err(|e| self.io_err(e))?;
            }
            Some(upload) => {
                rt.block_on(upload.finish()).map_err(|e| self.io_err(e))?;
            }
        }
        Ok(())
    }
}

impl Drop for ObjectSink {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            let _context = self.dest.rt.enter();
            // Not finished: abort, so no parts linger (best effort; a killed process
            // leaves them to the bucket's lifecycle rule, see docs/destinations/).
            let _ = self.dest.rt.block_on(upload.abort());
        }
    }
}

/// The tokio runtime object-store clients run on, shared by every export of an apply.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExecError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rivet-io")
        .enable_all()
        .build()
        .map_err(|e| ExecError::Internal(format!("cannot start the upload runtime: {e}")))
}

fn env(export: &str, key: &str, var: &str) -> Result<String, ExecError> {
    std::env::var(var).map_err(|_| ExecError::Config {
        export: export.to_owned(),
        detail: format!(
            "environment variable `{var}` (named by destination.{key}) is not set; export it before running rivet"
        ),
    })
}

/// Builds the object-store client for a planned store. Credentials come from the
/// environment variables the plan names, or from each cloud's standard chain.
pub fn build_store(
    export: &str,
    kind: DestinationKind,
    s: &PlannedStore,
) -> Result<Arc<dyn ObjectStore>, ExecError> {
    let retry = RetryConfig {
        max_retries: 8,
        retry_timeout: Duration::from_secs(180),
        ..Default::default()
    };
    let options = object_store::ClientOptions::new()
        .with_allow_http(
            s.endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
        )
        // The same limit on connecting (TCP and TLS) as a database connection's default.
        .with_connect_timeout(rivet_sources::connection::DEFAULT_CONNECT_TIMEOUT)
        .with_timeout(Duration::from_secs(300));
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match kind {
        DestinationKind::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(&s.bucket)
                .with_retry(retry)
                .with_client_options(options);
            if let Some(r) = &s.region {
                b = b.with_region(r);
            } else if std::env::var("AWS_REGION").is_err()
                && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                b = b.with_region("us-east-1");
            }
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e);
            }
            if s.path_style {
                b = b.with_virtual_hosted_style_request(false);
            }
            if let (Some(a), Some(k)) = (&s.access_key_env, &s.secret_key_env) {
                b = b
                    .with_access_key_id(env(export, "access_key_env", a)?)
                    .with_secret_access_key(env(export, "secret_key_env", k)?);
            }
            if let Some(t) = &s.session_token_env {
                b = b.with_token(env(export, "session_token_env", t)?);
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        DestinationKind::Gcs => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&s.bucket)
                .with_retry(retry)
                .with_client_options(options);
            if let Some(f) = &s.credentials_file {
                b = b.with_service_account_path(f);
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        DestinationKind::Azure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(&s.bucket)
                .with_retry(retry)
                .with_client_options(options);
            if let Some(a) = &s.account {
                b = b.with_account(a);
            }
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if let Some(k) = &s.account_key_env {
                b = b.with_access_key(env(export, "account_key_env", k)?);
            }
            if let Some(t) = &s.bearer_token_env {
                b = b.with_bearer_token_authorization(env(export, "bearer_token_env", t)?);
            }
            if let Some(v) = &s.sas_token_env {
                let sas = env(export, "sas_token_env", v)?;
                let pairs = sas
                    .trim_start_matches('?')
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect::<Vec<_>>();
                b = b.with_sas_authorization(pairs);
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        DestinationKind::Local | DestinationKind::Stdout => {
            return Err(ExecError::Internal(
                "build_store called for a non-object destination".into(),
            ))
        }
    };
    built.map_err(|e| ExecError::Config {
        export: export.to_owned(),
        detail: format!("cannot set up the {kind:?} client: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivet_schema::plan::PlannedDestination;

    #[test]
    fn gcs_client_builds_from_a_service_account_file_without_network() {
        // No GCS emulator works with object_store (docs/destinations/gcs.md), so the
        // config-to-client mapping is checked offline with a service account that
        // points at a local endpoint and needs no OAuth.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sa.json");
        std::fs::write(
            &key,
            r#"{"private_key": "", "private_key_id": "", "client_email": "",
                "gcs_base_url": "http://127.0.0.1:1", "disable_oauth": true}"#,
        )
        .unwrap();
        let store = PlannedStore {
            bucket: "analytics".into(),
            prefix: "exports/orders".into(),
            credentials_file: Some(key.display().to_string()),
            ..Default::default()
        };
        let built = build_store("orders", DestinationKind::Gcs, &store).unwrap();
        assert!(built.to_string().contains("analytics"), "{built}");
        let planned = PlannedDestination {
            kind: DestinationKind::Gcs,
            path: String::new(),
            store: Some(store),
        };
        assert_eq!(planned.display(), "gs://analytics/exports/orders");
    }

    #[test]
    fn a_missing_credential_variable_is_named_not_echoed() {
        let store = PlannedStore {
            bucket: "b".into(),
            access_key_env: Some("RIVET_TEST_SURELY_UNSET_AK".into()),
            secret_key_env: Some("RIVET_TEST_SURELY_UNSET_SK".into()),
            ..Default::default()
        };
        let err = build_store("orders", DestinationKind::S3, &store)
            .expect_err("unset variables are an error")
            .to_string();
        assert!(err.contains("RIVET_TEST_SURELY_UNSET_AK"), "{err}");
        assert!(err.contains("destination.access_key_env"), "{err}");
    }

    #[test]
    fn store_errors_name_the_destination_and_the_likely_fix() {
        let e = object_store::Error::NotFound {
            path: "x".into(),
            source: "NoSuchBucket".into(),
        };
        let text = store_error(
            "s3://nope/x",
            DestinationKind::S3,
            "uploading part-00001.csv",
            &e,
        );
        assert!(
            text.starts_with("uploading part-00001.csv at s3://nope/x"),
            "{text}"
        );
        assert!(text.contains("bucket does not exist"), "{text}");
        let e = object_store::Error::PermissionDenied {
            path: "x".into(),
            source: "AccessDenied".into(),
        };
        let text = store_error("s3://b/p", DestinationKind::S3, "listing", &e);
        assert!(text.contains("s3:PutObject"), "{text}");
    }
}
