//! Where an export's files go: a local directory, an object store (S3, GCS, Azure Blob
//! through `object_store`), or standard output. The executor writes every file through
//! a [`FileSink`] and asks the destination to publish, list and delete files, so the
//! chunk and finalize logic is the same for all of them.
//!
//! Atomicity per destination: locally a file is written under a temporary name and
//! renamed; in an object store a file is one `PUT` when it is small, else a multipart
//! upload that becomes visible only when completed (and is aborted on failure), so an
//! object under a final key is always complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use rivet_schema::config::DestinationKind;
use rivet_schema::plan::{PlannedDestination, PlannedStore};

use crate::error::ExecError;

/// Bytes buffered before an upload switches from one `PUT` to a multipart upload, and
/// the size of each part (S3 needs at least 5 MiB per part).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once per file: bounds memory to about `(2 + 1) × PART_BYTES`.
const PARTS_IN_FLIGHT: usize = 2;

/// A resolved destination for one export.
pub enum Destination {
    Local(PathBuf),
    Object(ObjectDest),
    Stdout,
}

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
    fn key(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn err(&self, export: &str, what: &str, e: &object_store::Error) -> ExecError {
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

/// Where one output file's bytes go. `finish` makes the file durable (local: fsync) or
/// visible (object store: the `PUT` or completed multipart upload); dropping a sink
/// without finishing aborts it.
pub trait FileSink: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// A local temporary file.
pub struct LocalSink(BufWriter<File>);

impl LocalSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(LocalSink(BufWriter::with_capacity(
            1 << 20,
            File::create(path)?,
        )))
    }
}

impl Write for LocalSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileSink for LocalSink {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self.0.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// Standard output (one export, one file).
pub struct StdoutSink(BufWriter<io::Stdout>);

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink(BufWriter::with_capacity(1 << 20, io::stdout()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileSink for StdoutSink {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
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
        .with_connect_timeout(Duration::from_secs(15))
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

impl Destination {
    /// An object-store directory named by URL (`s3://bucket/prefix`, `gs://…`,
    /// `az://container/prefix` with `AZURE_STORAGE_ACCOUNT_NAME`), with credentials,
    /// region and endpoint from the cloud's standard environment variables.
    pub fn from_url(
        export: &str,
        url: &str,
        rt: &tokio::runtime::Handle,
    ) -> Result<Destination, ExecError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| ExecError::Config {
            export: export.to_owned(),
            detail: format!("`{url}` is not a URL (s3://, gs:// or az://)"),
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let kind = match scheme {
            "s3" | "s3a" => DestinationKind::S3,
            "gs" => DestinationKind::Gcs,
            "az" | "azure" | "abfs" | "abfss" => DestinationKind::Azure,
            other => {
                return Err(ExecError::Config {
                    export: export.to_owned(),
                    detail: format!("unknown store scheme `{other}://`; use s3://, gs:// or az://"),
                })
            }
        };
        let store = PlannedStore {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|_| kind == DestinationKind::S3),
            path_style: kind == DestinationKind::S3 && std::env::var("AWS_ENDPOINT_URL").is_ok(),
            account: std::env::var("AZURE_STORAGE_ACCOUNT_NAME")
                .ok()
                .filter(|_| kind == DestinationKind::Azure),
            ..Default::default()
        };
        let planned = PlannedDestination {
            kind,
            path: String::new(),
            store: Some(store),
        };
        Destination::open(export, &planned, rt)
    }

    /// Resolves a planned destination (object stores on the given runtime).
    pub fn open(
        export: &str,
        d: &PlannedDestination,
        rt: &tokio::runtime::Handle,
    ) -> Result<Destination, ExecError> {
        match (d.kind, &d.store) {
            (DestinationKind::Local, _) => Ok(Destination::Local(PathBuf::from(&d.path))),
            (DestinationKind::Stdout, _) => Ok(Destination::Stdout),
            (kind, Some(s)) => Ok(Destination::Object(ObjectDest {
                store: build_store(export, kind, s)?,
                prefix: s.prefix.trim_matches('/').to_owned(),
                display: d.display(),
                kind,
                rt: rt.clone(),
            })),
            (kind, None) => Err(ExecError::Internal(format!(
                "planned {kind:?} destination without a store"
            ))),
        }
    }

    /// Human form for messages.
    pub fn display(&self) -> String {
        match self {
            Destination::Local(p) => p.display().to_string(),
            Destination::Object(o) => o.display.clone(),
            Destination::Stdout => "stdout".into(),
        }
    }

    /// Writes a small file (manifest, `_SUCCESS`, a probe) atomically.
    pub fn put_small(&self, export: &str, name: &str, bytes: &[u8]) -> Result<(), ExecError> {
        match self {
            Destination::Local(dir) => {
                write_atomic(dir, name, bytes).map_err(|e| ExecError::Write {
                    export: export.to_owned(),
                    path: dir.join(name).display().to_string(),
                    detail: e.to_string(),
                })
            }
            Destination::Object(o) => o.put(export, name, bytes.to_vec()),
            Destination::Stdout => Ok(()),
        }
    }

    /// Reads a whole file (None when it does not exist).
    pub fn read(&self, export: &str, name: &str) -> Result<Option<Vec<u8>>, ExecError> {
        match self {
            Destination::Local(dir) => match fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ExecError::Write {
                    export: export.to_owned(),
                    path: dir.join(name).display().to_string(),
                    detail: e.to_string(),
                }),
            },
            Destination::Object(o) => {
                let key = o.key(name);
                let got = o.rt.block_on(async {
                    let r = o.store.get(&key).await?;
                    r.bytes().await
                });
                match got {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(o.err(export, &format!("reading {name}"), &e)),
                }
            }
            Destination::Stdout => Ok(None),
        }
    }

    /// Deletes a file if it exists.
    pub fn remove(&self, export: &str, name: &str) -> Result<(), ExecError> {
        match self {
            Destination::Local(dir) => match fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ExecError::Write {
                    export: export.to_owned(),
                    path: dir.join(name).display().to_string(),
                    detail: e.to_string(),
                }),
                _ => Ok(()),
            },
            Destination::Object(o) => o.delete(export, name),
            Destination::Stdout => Ok(()),
        }
    }

    /// Names of the files directly in the destination.
    pub fn list(&self, export: &str) -> Result<Vec<String>, ExecError> {
        match self {
            Destination::Local(dir) => {
                let werr = |e: io::Error| ExecError::Write {
                    export: export.to_owned(),
                    path: dir.display().to_string(),
                    detail: e.to_string(),
                };
                let mut out = Vec::new();
                for entry in fs::read_dir(dir).map_err(werr)? {
                    out.push(
                        entry
                            .map_err(werr)?
                            .file_name()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
                Ok(out)
            }
            Destination::Object(o) => o.list(export),
            Destination::Stdout => Ok(Vec::new()),
        }
    }
}

impl Destination {
    /// Proves write and delete access: writes a probe file (object) under the
    /// destination, reads back its size, lists, and deletes it. Returns what was done.
    pub fn probe(&self, export: &str) -> Result<String, ExecError> {
        let name = format!(".rivet-doctor-probe-{}", std::process::id());
        match self {
            Destination::Stdout => Ok("standard output needs no access".into()),
            Destination::Local(dir) => {
                fs::create_dir_all(dir).map_err(|e| ExecError::Write {
                    export: export.to_owned(),
                    path: dir.display().to_string(),
                    detail: e.to_string(),
                })?;
                self.put_small(export, &name, b"rivet doctor")?;
                self.remove(export, &name)?;
                Ok(format!(
                    "wrote and deleted a probe file in {}",
                    dir.display()
                ))
            }
            Destination::Object(o) => {
                o.put(export, &name, b"rivet doctor".to_vec())?;
                let size = o.size(export, &name)?;
                o.list(export)?;
                o.delete(export, &name)?;
                if size != 12 {
                    return Err(ExecError::Write {
                        export: export.to_owned(),
                        path: o.display.clone(),
                        detail: format!("the probe object reads back as {size} bytes, not 12"),
                    });
                }
                Ok(format!(
                    "wrote, read, listed and deleted a probe object under {}",
                    o.display
                ))
            }
        }
    }
}

/// Writes `contents` to `dir/name` atomically (temp file, fsync, rename, fsync dir).
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!(
        "{}{name}-{}",
        crate::apply::TEMP_PREFIX,
        std::process::id()
    ));
    let mut f = File::create(&temp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    fs::rename(&temp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
