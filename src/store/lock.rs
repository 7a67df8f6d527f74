//! One process per run directory (or per output file): a lock file that
//! holds an exclusive `flock` for as long as its holder lives and says
//! who holds it (`{"pid", "host", "what", "since"}`).
//!
//! * A second process is refused at once, with the holder's pid and host.
//! * A lock left by a process that died (kill -9, a crash, a lost node)
//!   is stale: the kernel released its `flock`, and the next process takes
//!   it over. No pid guessing: a recycled pid cannot block a resume.
//! * Dropping the [`Lock`] removes the file and releases the lock. A
//!   process that opened the file just before it was removed notices that
//!   the path no longer names the file it locked, and tries again.
//!
//! The lock file is opened without following links and close-on-exec, so
//! worker processes the holder starts do not inherit the lock.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::files::utc_stamp;
use crate::error::{Error, Result};

/// The lock file of a run directory.
pub const LOCK_FILE: &str = ".actforge.lock";

/// A held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// This machine's name (for the lock's message).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "this machine".into())
}

impl Lock {
    /// Lock run directory `dir` (its [`LOCK_FILE`]) for `what` (e.g.
    /// "search"); refused while another process holds it.
    pub fn dir(dir: &Path, what: &str) -> Result<Lock> {
        Lock::file(&dir.join(LOCK_FILE), dir, what)
    }

    /// Lock with the lock file `path` on behalf of `guarded` (named in the
    /// refusal).
    pub fn file(path: &Path, guarded: &Path, what: &str) -> Result<Lock> {
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        Error::Input {
                            path: path.display().to_string(),
                            line: None,
                            message: "is a symbolic link, not a lock file (remove it)".into(),
                        }
                    } else {
                        Error::io(path.display().to_string(), e)
                    }
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Err(in_use(&mut file, guarded, path)),
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("{} (locking it)", path.display()), e))
                }
            }
            if !same_file(&file, path) {
                // Its holder removed it between our open and our lock.
                continue;
            }
            let line = json!({
                "pid": std::process::id(),
                "host": host_name(),
                "what": what,
                "since": utc_stamp(),
            });
            let written = file
                .set_len(0)
                .and_then(|_| file.seek(SeekFrom::Start(0)))
                .and_then(|_| writeln!(file, "{line}"))
                .and_then(|_| file.sync_data());
            written.map_err(|e| Error::io(path.display().to_string(), e))?;
            return Ok(Lock {
                file,
                path: path.to_path_buf(),
            });
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder holding the lock file was renamed to `dir` (a new run
    /// directory moved into place): follow it.
    pub fn moved_to(mut self, dir: &Path) -> Lock {
        let name = self
            .path
            .file_name()
            .map(Path::new)
            .unwrap_or(LOCK_FILE.as_ref());
        self.path = dir.join(name);
        self
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove first, then unlock (closing the file): whoever locks the
        // removed file next sees it is gone and tries again.
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The refusal: who holds `path`.
fn in_use(file: &mut File, guarded: &Path, path: &Path) -> Error {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    let holder = match (v["pid"].as_u64(), v["host"].as_str()) {
        (Some(pid), Some(host)) => {
            let what = v["what"].as_str().unwrap_or("actforge");
            let since = v["since"].as_str().unwrap_or("?");
            format!("pid {pid} on {host} ({what}, since {since} UTC)")
        }
        _ => "a process that is still starting".into(),
    };
    Error::Usage(format!(
        "{} is in use by another actforge process: {holder}. One process works in a run directory at a time: wait for it to finish, or stop it (a lock left by a process that died is taken over automatically; the lock file is {})",
        guarded.display(),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("actforge-lock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let d = dir("twice");
        let first = Lock::dir(&d, "search").unwrap();
        let e = Lock::dir(&d, "search").unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        let e = e.to_string();
        assert!(e.contains("is in use"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains(&host_name()), "{e}");
        drop(first);
        assert!(!d.join(LOCK_FILE).exists(), "released locks leave no file");
        let _again = Lock::dir(&d, "search").unwrap();
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let d = dir("stale");
        // What a process killed with SIGKILL leaves: the file, no flock.
        fs::write(
            d.join(LOCK_FILE),
            "{\"pid\": 999999999, \"host\": \"gone\", \"what\": \"search\", \"since\": \"x\"}\n",
        )
        .unwrap();
        let l = Lock::dir(&d, "train").unwrap();
        let text = fs::read_to_string(l.path()).unwrap();
        assert!(
            text.contains(&format!("\"pid\":{}", std::process::id())),
            "{text}"
        );
    }

    #[test]
    fn a_linked_lock_file_is_refused() {
        let d = dir("link");
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join(LOCK_FILE)).unwrap();
        let e = Lock::dir(&d, "search").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!d.join("elsewhere").exists());
    }
}
