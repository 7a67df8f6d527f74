//! Writing inside a run directory without leaving it: appends and plain
//! writes that never follow a symbolic link (`O_NOFOLLOW`), folders that
//! must be real folders, whole files or folders made by another library
//! (plots, safetensors, tokenizers) in a fresh private folder and renamed
//! into place, and the check that a file name read from a run directory is
//! a bare name inside it.
//!
//! The rule: actforge writes into a run directory only through these
//! functions and [`super::files`]. A symbolic link planted where actforge
//! appends or makes a folder is an error that names it; a link where a
//! whole file is replaced is replaced itself (a rename never follows it).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path.display().to_string(), e)
}

/// The error for a symbolic link where actforge writes.
fn link_error(path: &Path) -> Error {
    Error::Input {
        path: path.display().to_string(),
        line: None,
        message: "is a symbolic link: actforge never writes through a link in a run directory (remove it)".into(),
    }
}

/// Map `ELOOP` (what `O_NOFOLLOW` gives for a link) to [`link_error`].
fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        link_error(path)
    } else {
        Error::io(path.display().to_string(), e)
    }
}

/// Whether `path` is a symbolic link (a missing path is not).
pub fn is_link(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Refuse a symbolic link at `path` (a missing path is fine).
pub fn refuse_link(path: &Path) -> Result<()> {
    if is_link(path) {
        return Err(link_error(path));
    }
    Ok(())
}

/// A regular file opened with `options` and `O_NOFOLLOW | O_NONBLOCK`: a
/// link is an error, and so is anything but a regular file (a FIFO or a
/// device would block or never end).
fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File> {
    let f = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(Error::Input {
            path: path.display().to_string(),
            line: None,
            message: "is not a regular file".into(),
        });
    }
    Ok(f)
}

/// Open `path` for appending (created if missing); never through a link.
pub fn open_append(path: &Path) -> Result<File> {
    open_regular(path, OpenOptions::new().create(true).append(true))
}

/// Open an existing `path` for writing in place (no truncation); never
/// through a link.
pub fn open_write(path: &Path) -> Result<File> {
    open_regular(path, OpenOptions::new().write(true))
}

/// Open `path` for reading; never through a link, only a regular file.
/// `Ok(None)` when it does not exist.
pub fn open_read(path: &Path) -> Result<Option<File>> {
    match open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => Ok(Some(f)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read all of `path` (a regular file, not a link), refusing more than
/// `limit` bytes. `Ok(None)` when it does not exist.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let Some(f) = open_read(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Usage(format!(
            "{} is larger than the limit of {limit} bytes",
            path.display()
        )));
    }
    Ok(Some(bytes))
}

/// Write `bytes` to `path` in place (created or truncated); never through
/// a link. For whole files that must survive a crash, use
/// [`super::files::write_atomic`].
pub fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = open_regular(
        path,
        OpenOptions::new().create(true).write(true).truncate(true),
    )?;
    f.write_all(bytes).map_err(io_err(path))
}

/// Make sure `path` is a real folder: create it (and missing parents) if
/// it does not exist; a symbolic link or a file there is an error.
pub fn real_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(link_error(path)),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Input {
            path: path.display().to_string(),
            line: None,
            message: "is not a folder".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(io_err(path))?;
            // Someone may have raced a link in; check what was made.
            real_dir(path)
        }
        Err(e) => Err(Error::io(path.display().to_string(), e)),
    }
}

/// Whether `name` (read from a file of a run directory) is a bare file
/// name: not empty, not `.` or `..`, no `/` and no NUL, so that joining
/// it to the directory stays inside.
pub fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// `dir/name` for a `name` read from `source` (a file of `dir`); an
/// absolute path or one with a folder part is an error naming `source`.
pub fn join_bare(dir: &Path, name: &str, source: &Path) -> Result<PathBuf> {
    if !is_bare_name(name) {
        return Err(Error::Input {
            path: source.display().to_string(),
            line: None,
            message: format!(
                "names the file {name:?}, which is not a bare file name inside {}: a run directory's files name only files in their own folder",
                dir.display()
            ),
        });
    }
    Ok(dir.join(name))
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A fresh private folder next to `target` (`.NAME.tmp-PID-N`), created
/// now, so nothing can have been planted in it.
fn private_dir(target: &Path) -> Result<PathBuf> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy());
    loop {
        let dir = parent.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(target.display().to_string(), e)),
        }
    }
}

/// Make the file `target` with `make`, which writes a file at the path it
/// is given (inside a fresh private folder); the file is then renamed
/// over `target` (a link there is replaced, never followed). For writers
/// of other libraries that take a path.
pub fn write_with<T>(target: &Path, make: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = private_dir(target)?;
    let tmp = dir.join(target.file_name().unwrap_or("out".as_ref()));
    let made = make(&tmp).and_then(|v| {
        if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Input {
                path: target.display().to_string(),
                line: None,
                message: "is a folder where a file belongs".into(),
            });
        }
        fs::rename(&tmp, target).map_err(io_err(target))?;
        Ok(v)
    });
    let _ = fs::remove_dir_all(&dir);
    made
}

/// Make the folder `target` with `make` (given a path where it creates
/// the folder, inside a fresh private folder), then put it in place of
/// `target`: an old folder there is removed first (a link there is
/// removed, never followed).
pub fn write_dir_with<T>(target: &Path, make: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = private_dir(target)?;
    let tmp = dir.join(target.file_name().unwrap_or("out".as_ref()));
    let made = make(&tmp).and_then(|v| {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(target).map_err(io_err(target))?,
            Ok(_) => fs::remove_file(target).map_err(io_err(target))?,
            Err(_) => {}
        }
        fs::rename(&tmp, target).map_err(io_err(target))?;
        Ok(v)
    });
    let _ = fs::remove_dir_all(&dir);
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("actforge-safe-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn appends_and_plain_writes_never_follow_a_link() {
        let d = dir("links");
        let victim = d.join("victim.txt");
        fs::write(&victim, "keep").unwrap();
        let link = d.join("worker-0.log");
        symlink(&victim, &link).unwrap();
        let e = open_append(&link).unwrap_err().to_string();
        assert!(
            e.contains("worker-0.log") && e.contains("symbolic link"),
            "{e}"
        );
        let e = write_plain(&link, b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        // A link to a folder is not a folder to write in.
        let elsewhere = d.join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, d.join("workers")).unwrap();
        assert!(real_dir(&d.join("workers"))
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
        real_dir(&d.join("fresh/deeper")).unwrap();
        // A whole-file write replaces the link itself.
        write_with(&link, |p| {
            fs::write(p, "new").map_err(|e| Error::io(p.display().to_string(), e))
        })
        .unwrap();
        assert!(!is_link(&link));
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        // Only the target remains: no private folder is left behind.
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "elsewhere",
                "fresh",
                "victim.txt",
                "worker-0.log",
                "workers"
            ]
        );
    }

    #[test]
    fn a_fifo_is_not_a_file_to_read() {
        let d = dir("fifo");
        let fifo = d.join("data.tsv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_bounded(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let f = d.join("big");
        fs::write(&f, "0123456789a").unwrap();
        assert!(read_bounded(&f, 10)
            .unwrap_err()
            .to_string()
            .contains("limit of 10"));
        assert_eq!(read_bounded(&f, 11).unwrap().unwrap().len(), 11);
        assert!(read_bounded(&d.join("none"), 1).unwrap().is_none());
    }

    #[test]
    fn only_bare_names_join() {
        for good in ["weights-3.safetensors", "a..b", ".hidden"] {
            assert!(is_bare_name(good), "{good}");
        }
        for bad in ["", ".", "..", "../x", "/etc/passwd", "a/b", "a\0b"] {
            assert!(!is_bare_name(bad), "{bad:?}");
        }
        let e = join_bare(
            Path::new("run/ck"),
            "../../x",
            Path::new("run/ck/checkpoint.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("run/ck/checkpoint.json") && e.contains("bare file name"),
            "{e}"
        );
    }

    #[test]
    fn a_folder_is_replaced_whole() {
        let d = dir("folder");
        let target = d.join("split");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.tsv"), "old").unwrap();
        write_dir_with(&target, |p| {
            fs::create_dir(p).unwrap();
            fs::write(p.join("train.tsv"), "new").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(!target.join("old.tsv").exists());
        assert_eq!(fs::read_to_string(target.join("train.tsv")).unwrap(), "new");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }
}
