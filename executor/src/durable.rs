//! Durable local writes: a file reaches its final name only complete and fsynced, and
//! the rename itself is made durable by syncing the directory. Used for manifests,
//! `_SUCCESS`, plan files written by the CLI, and chunk files after their encoder
//! finished.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rivet_schema::layout::temp_file_name;

/// Writes `contents` to `dir/name` atomically: temporary file, fsync, rename, fsync of
/// the directory. A crash leaves either the old file, the new one, or a temporary file
/// the next apply removes — never a partial file under `name`.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let temp = dir.join(temp_file_name(name));
    let written = (|| {
        let mut f = File::create(&temp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        // Best effort: the temporary name is swept by the next apply anyway.
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Makes renames and creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Creates a destination directory (and its parents), saying plainly when a file is in
/// the way instead of the OS's "File exists".
pub fn create_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) => {
            let blocker = dir
                .ancestors()
                .find(|a| a.exists() && !a.is_dir())
                .map(Path::to_path_buf);
            match blocker {
                Some(file) => Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is a file, not a directory; remove it or choose another destination.path",
                        file.display()
                    ),
                )),
                None => Err(e),
            }
        }
    }
}
