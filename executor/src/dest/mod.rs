//! Where an export's files go: a local directory, an object store (S3, GCS, Azure Blob
//! through `object_store`), or standard output. The executor writes every file through
//! a [`FileSink`] and asks the destination to publish, list and delete files, so the
//! chunk and finalize logic is the same for all of them.
//!
//! Atomicity per destination: locally a file is written under a temporary name and
//! renamed; in an object store a file is one `PUT` when it is small, else a multipart
//! upload that becomes visible only when completed (and is aborted on failure), so an
//! object under a final key is always complete.

mod local;
mod object;
mod stdout;

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use object_store::ObjectStoreExt;
use rivet_schema::config::DestinationKind;
use rivet_schema::plan::{PlannedDestination, PlannedStore};

use crate::durable::write_atomic;
use crate::error::ExecError;

pub use local::LocalSink;
pub use object::{build_store, runtime, ObjectDest, ObjectSink, PART_BYTES};
pub use stdout::StdoutSink;

/// A resolved destination for one export.
pub enum Destination {
    Local(PathBuf),
    Object(ObjectDest),
    Stdout,
}

/// Where one output file's bytes go. `finish` makes the file durable (local: fsync) or
/// visible (object store: the `PUT` or completed multipart upload); dropping a sink
/// without finishing aborts it.
pub trait FileSink: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
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
