//! Exclusive locks so that two applies never work on the same state database or the
//! same destination at once (they would delete each other's temporary files, and one
//! plan's finalize would sweep the other's parts as stale).
//!
//! - The state database and local destinations use an OS file lock (`flock`) on a lock
//!   file: the kernel releases it when the holder exits, however it exits, so a lock
//!   that is held always belongs to a live process and there are no stale locks to
//!   break. The lock file names the holder (pid, host, run id, since) for messages.
//! - Object-store destinations use a lease object created with a conditional write
//!   (`If-None-Match: *`), renewed while the apply runs and deleted at its end. A lease
//!   whose holder stopped renewing expires and is taken over with a conditional update
//!   (`If-Match` on its ETag), so two processes cannot both break it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::dest::{Destination, ObjectDest};
use crate::error::ExecError;

/// The lock file beside a state database.
pub fn state_lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

/// The lock file inside a local destination directory.
pub const LOCAL_LOCK_FILE: &str = ".rivet-lock";
/// The lease object under an object-store destination prefix.
pub const LEASE_OBJECT: &str = ".rivet-lease.json";
/// How long a lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(120);
/// How often a held lease is renewed.
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(30);

/// Who holds a lock, as written into the lock file or lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_id: String,
    /// When the lock was taken, seconds since 1970-01-01 UTC.
    pub since: u64,
    /// A lease only: when it expires unless renewed, seconds since 1970-01-01 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".into())
}

impl Holder {
    /// This process, for `run_id`.
    pub fn me(run_id: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            run_id: run_id.to_owned(),
            since: now_secs(),
            expires_at: None,
        }
    }

    fn describe(&self) -> String {
        let since = chrono::DateTime::from_timestamp(self.since as i64, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| self.since.to_string());
        format!(
            "pid {} on {}, run {}, since {since}",
            self.pid, self.host, self.run_id
        )
    }
}

/// An exclusive `flock` on a lock file, released when dropped (or when the process
/// exits).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the lock on `path` or says who holds it. A lock held by a live process is
/// retried for a moment, so a read command probing it does not make an apply fail.
fn lock_file(path: &Path, holder: &Holder, what: &str) -> Result<FileLock, ExecError> {
    let io = |e: std::io::Error| ExecError::Locked {
        what: what.to_owned(),
        detail: format!("cannot open the lock file {}: {e}", path.display()),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let mut attempts = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let held_by = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| serde_json::from_str::<Holder>(&text).ok())
                    .map_or_else(|| "another process".to_owned(), |h| h.describe());
                return Err(ExecError::Locked {
                    what: what.to_owned(),
                    detail: format!(
                        "another apply holds it ({held_by}); wait for it to finish. The lock is the operating system's lock on {} and ends with that process, so it is never stale",
                        path.display()
                    ),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let text = serde_json::to_string(holder).expect("a holder always serializes");
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(io)?;
    Ok(FileLock { _file: file })
}

/// Locks the state database at `state` for one apply.
pub fn lock_state(state: &Path, holder: &Holder) -> Result<FileLock, ExecError> {
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::durable::create_dir(dir).map_err(|e| ExecError::State {
            path: state.display().to_string(),
            detail: e.to_string(),
        })?;
    }
    lock_file(
        &state_lock_path(state),
        holder,
        &format!("state database {}", state.display()),
    )
}

/// Who holds the state database's lock, if anyone (without taking it: a shared lock
/// is tried and released at once). Read commands use this to tell a run that is still
/// going from one whose process died.
pub fn state_holder(state: &Path) -> Option<Holder> {
    let path = state_lock_path(state);
    let mut file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => {
            let mut text = String::new();
            file.read_to_string(&mut text).ok()?;
            serde_json::from_str(&text).ok()
        }
    }
}

/// A lease on an object-store prefix.
struct Lease {
    dest: ObjectDest,
    key: ObjectPath,
    holder: Holder,
    version: Mutex<UpdateVersion>,
}

impl Lease {
    fn body(&self) -> PutPayload {
        let mut h = self.holder.clone();
        h.expires_at = Some(now_secs() + LEASE_TTL.as_secs());
        PutPayload::from(serde_json::to_vec(&h).expect("a holder always serializes"))
    }

    fn put(&self, mode: PutMode) -> Result<UpdateVersion, object_store::Error> {
        let put = self.dest.rt.block_on(self.dest.store.put_opts(
            &self.key,
            self.body(),
            PutOptions::from(mode),
        ))?;
        Ok(put.into())
    }

    /// Renews the lease; an error means it is no longer ours.
    fn renew(&self) -> Result<(), String> {
        let mut version = self.version.lock().unwrap_or_else(|p| p.into_inner());
        match self.put(PutMode::Update(version.clone())) {
            Ok(v) => {
                *version = v;
                Ok(())
            }
            Err(e) => Err(format!(
                "the lease {}/{LEASE_OBJECT} could not be renewed ({e}); another apply may have taken it over",
                self.dest.display
            )),
        }
    }

    /// Deletes the lease if it is still ours.
    fn release(&self) {
        let current = self
            .dest
            .rt
            .block_on(async { self.dest.store.get(&self.key).await?.bytes().await });
        let ours = current
            .ok()
            .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
            .is_some_and(|h| h.run_id == self.holder.run_id);
        if ours {
            if let Err(e) = self.dest.rt.block_on(self.dest.store.delete(&self.key)) {
                tracing::warn!(lease = %self.key, error = %e, "could not delete the destination lease; it expires on its own");
            }
        }
    }
}

fn acquire_lease(
    export: &str,
    dest: &ObjectDest,
    holder: &Holder,
    is_dead: &dyn Fn(&Holder) -> bool,
) -> Result<Lease, ExecError> {
    let locked = |detail: String| ExecError::Locked {
        what: format!("destination {} (export {export})", dest.display),
        detail,
    };
    let lease = Lease {
        dest: dest.clone(),
        key: dest.key(LEASE_OBJECT),
        holder: holder.clone(),
        version: Mutex::new(UpdateVersion {
            e_tag: None,
            version: None,
        }),
    };
    match lease.put(PutMode::Create) {
        Ok(v) => {
            *lease.version.lock().unwrap_or_else(|p| p.into_inner()) = v;
            return Ok(lease);
        }
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
        Err(object_store::Error::NotImplemented { .. }) => {
            return Err(locked(
                "the store does not support conditional writes (If-None-Match), which the destination lease needs; AWS S3, GCS and Azure Blob support them, as do current MinIO and Cloudflare R2".into(),
            ))
        }
        Err(e) => return Err(locked(format!("cannot create the lease {LEASE_OBJECT}: {e}"))),
    }
    // A lease exists: take it over only if it expired.
    let got = dest
        .rt
        .block_on(async {
            let r = dest.store.get(&lease.key).await?;
            let meta = r.meta.clone();
            Ok::<_, object_store::Error>((meta, r.bytes().await?))
        })
        .map_err(|e| {
            locked(format!(
                "cannot read the existing lease {LEASE_OBJECT}: {e}"
            ))
        })?;
    let (meta, bytes) = got;
    let other: Holder = serde_json::from_slice(&bytes).map_err(|e| {
        locked(format!(
            "{LEASE_OBJECT} is not a Rivet lease ({e}); if no apply is running, delete it"
        ))
    })?;
    let now = now_secs();
    let dead = is_dead(&other);
    if other.expires_at.is_some_and(|t| t > now) && !dead {
        return Err(locked(format!(
            "another apply holds its lease ({}, expires in {} s unless renewed); wait for it to finish",
            other.describe(),
            other.expires_at.unwrap_or(now) - now
        )));
    }
    if dead {
        tracing::warn!(export, holder = %other.describe(), "taking over the lease of a run of this state database that ended without releasing it (killed)");
    } else {
        tracing::warn!(export, holder = %other.describe(), "taking over an expired destination lease");
    }
    match lease.put(PutMode::Update(UpdateVersion {
        e_tag: meta.e_tag,
        version: meta.version,
    })) {
        Ok(v) => {
            *lease.version.lock().unwrap_or_else(|p| p.into_inner()) = v;
            Ok(lease)
        }
        Err(e) => Err(locked(format!(
            "the expired lease ({}) was taken over by another apply at the same moment ({e}); try again",
            other.describe()
        ))),
    }
}

/// The locks an apply holds on its destinations, with the leases' renewal thread.
pub struct DestinationLocks {
    _files: Vec<FileLock>,
    leases: Arc<Vec<Lease>>,
    lost: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl DestinationLocks {
    /// Locks every destination (by export name); stdout needs none. `is_dead` tells
    /// whether a lease's holder is known to have ended (a run of the caller's state
    /// database, whose lock the caller holds), so its lease can be taken over at once
    /// instead of waiting for it to expire.
    pub fn acquire<'a>(
        dests: impl IntoIterator<Item = (&'a str, &'a Destination)>,
        holder: &Holder,
        is_dead: &dyn Fn(&Holder) -> bool,
    ) -> Result<DestinationLocks, ExecError> {
        let mut files = Vec::new();
        let mut leases = Vec::new();
        for (export, dest) in dests {
            match dest {
                Destination::Local(dir) => {
                    crate::durable::create_dir(dir).map_err(|e| ExecError::Write {
                        export: export.to_owned(),
                        path: dir.display().to_string(),
                        detail: e.to_string(),
                    })?;
                    files.push(lock_file(
                        &dir.join(LOCAL_LOCK_FILE),
                        holder,
                        &format!("destination {} (export {export})", dir.display()),
                    )?);
                }
                Destination::Object(o) => leases.push(acquire_lease(export, o, holder, is_dead)?),
                Destination::Stdout => {}
            }
        }
        let leases = Arc::new(leases);
        let lost = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = (!leases.is_empty()).then(|| {
            let (leases, lost, stop) = (leases.clone(), lost.clone(), stop.clone());
            std::thread::spawn(move || {
                let step = Duration::from_millis(200);
                let mut waited = Duration::ZERO;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited < LEASE_RENEW_EVERY {
                        continue;
                    }
                    waited = Duration::ZERO;
                    for lease in leases.iter() {
                        if let Err(e) = lease.renew() {
                            tracing::error!("{e}");
                            *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        }
                    }
                }
            })
        });
        Ok(DestinationLocks {
            _files: files,
            leases,
            lost,
            stop,
            renewer,
        })
    }

    /// An error once a lease could not be renewed: nothing more may be committed.
    pub fn check(&self) -> Result<(), ExecError> {
        match self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            None => Ok(()),
            Some(detail) => Err(ExecError::Locked {
                what: "a destination".into(),
                detail,
            }),
        }
    }
}

impl Drop for DestinationLocks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.renewer.take() {
            let _ = r.join();
        }
        for lease in self.leases.iter() {
            lease.release();
        }
    }
}
