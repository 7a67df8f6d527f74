//! Making a new run directory atomically: its first files are written
//! into a hidden sibling folder (`.NAME.new-PID-N`, locked), which is then
//! renamed into place. The rename succeeds only while the target does not
//! exist or is an empty folder, so of two processes creating the same
//! directory exactly one wins and the other is refused; and a failure
//! before the rename leaves nothing at the target (the sibling is removed).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::lock::{Lock, LOCK_FILE};
use crate::error::{Error, Result};

/// A new run directory being prepared; see the module docs.
pub struct NewDir {
    staging: PathBuf,
    target: PathBuf,
    lock: Option<Lock>,
    /// Says what to do when the target is taken (a hint for the user).
    hint: String,
}

/// Whether `dir` is an empty folder (a missing one counts as empty).
fn empty_or_missing(dir: &Path) -> Result<bool> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(dir.display().to_string(), e)),
        Ok(m) if !m.is_dir() => Ok(false),
        Ok(_) => Ok(fs::read_dir(dir)
            .map_err(|e| Error::io(dir.display().to_string(), e))?
            .next()
            .is_none()),
    }
}

impl NewDir {
    /// Begin the run directory `target` for `what` (e.g. "search"): it
    /// must not exist or be an empty folder (else a setting error that ends
    /// with `hint`, which names settings as [`crate::error::Setting`]s, so
    /// that the command line shows them as flags). Missing parent folders are created.
    pub fn begin(target: &Path, what: &str, hint: &str) -> Result<NewDir> {
        let taken = || {
            Error::setting(format!(
                "{} already exists and is not empty: a new run never writes into an existing directory ({hint})",
                target.display()
            ))
        };
        if !empty_or_missing(target)? {
            return Err(taken());
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| Error::io(parent.display().to_string(), e))?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{} is not a folder name", target.display())))?
            .to_string_lossy()
            .into_owned();
        let prefix = format!(".{name}.new-");
        remove_stale_siblings(&parent, &prefix);
        static N: AtomicU64 = AtomicU64::new(0);
        let staging = loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let staging = parent.join(format!("{prefix}{}-{n}", std::process::id()));
            match fs::create_dir(&staging) {
                Ok(()) => break staging,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(staging.display().to_string(), e)),
            }
        };
        let mut new = NewDir {
            staging,
            target: target.to_path_buf(),
            lock: None,
            hint: hint.to_string(),
        };
        new.lock = Some(Lock::dir(&new.staging, what)?);
        Ok(new)
    }

    /// Where to write the first files.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The directory it becomes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Move the folder into place; its lock now guards the target.
    pub fn commit(mut self) -> Result<Lock> {
        match fs::rename(&self.staging, &self.target) {
            Ok(()) => {
                let lock = self.lock.take().expect("locked").moved_to(&self.target);
                Ok(lock)
            }
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOTDIR)) =>
            {
                Err(Error::setting(format!(
                    "{} already exists and is not empty (another process made it first): a new run never writes into an existing directory ({})",
                    self.target.display(),
                    self.hint
                )))
            }
            Err(e) => Err(Error::io(self.target.display().to_string(), e)),
        }
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        if self.lock.is_some() {
            // Not committed: nothing reaches the target.
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Remove `.NAME.new-*` folders in `parent` left by processes that died
/// while preparing (their lock is free).
fn remove_stale_siblings(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if !name.starts_with(prefix) || !path.join(LOCK_FILE).exists() {
            continue;
        }
        if let Ok(lock) = Lock::dir(&path, "cleanup") {
            drop(lock);
            let _ = fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("actforge-newdir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn of_two_creators_exactly_one_wins() {
        let b = base("race");
        let target = b.join("runs/search-1");
        let a = NewDir::begin(&target, "search", "pick another --out").unwrap();
        let c = NewDir::begin(&target, "search", "pick another --out").unwrap();
        fs::write(a.path().join("config.json"), "{\"a\": 1}").unwrap();
        let lock = a.commit().unwrap();
        assert!(target.join(LOCK_FILE).exists());
        assert_eq!(lock.path(), target.join(LOCK_FILE));
        let e = c.commit().unwrap_err();
        // A taken directory is a refused setting (exit 2), its hint naming
        // settings as the caller wrote them.
        assert!(matches!(e, Error::Setting(_)), "{e:?}");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(
            fs::read_to_string(target.join("config.json")).unwrap(),
            "{\"a\": 1}"
        );
        drop(lock);
        // Nothing else is left beside it.
        let names: Vec<_> = fs::read_dir(b.join("runs")).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn an_abandoned_new_dir_leaves_nothing_and_an_empty_target_is_taken() {
        let b = base("abandon");
        let target = b.join("out");
        {
            let n = NewDir::begin(&target, "train", "x").unwrap();
            fs::write(n.path().join("config.json"), "{}").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(&b).unwrap().count(), 0);
        fs::create_dir(&target).unwrap();
        let n = NewDir::begin(&target, "train", "x").unwrap();
        fs::write(n.path().join("config.json"), "{}").unwrap();
        let _lock = n.commit().unwrap();
        assert!(target.join("config.json").exists());
        fs::write(b.join("file"), "").unwrap();
        let e = NewDir::begin(&b.join("file"), "train", "pick another --out")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("pick another --out"), "{e}");
    }
}
