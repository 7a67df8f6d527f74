//! Files of a run directory: atomic replacement (temporary file, fsync,
//! rename), append-only JSONL logs flushed line by line, and CSV tables.
//! A crash leaves either the old or the new version of a file, never half
//! of one, and at most the last partial line of a log (which readers skip).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::safe::{open_append, open_read, open_write};
use crate::error::{Error, Result};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path.display().to_string(), e)
}

/// Replace `path` with `bytes` atomically: write `.NAME.tmp.<pid>` (a new
/// file, never through a link), fsync, rename over `path` (a link there is
/// replaced, not followed), fsync the directory. Errors name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    let written = (|| {
        // A leftover of a killed process with this pid, or a planted link:
        // removed, never written through.
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path.display().to_string(), e));
    }
    sync_dir(path);
    Ok(())
}

/// [`write_atomic`] of a pretty-printed JSON value with a final newline.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Make a rename durable (best effort: not every platform can open a
/// directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// An append-only log of JSON lines; every line is flushed and synced to
/// disk before `append` returns.
pub struct JsonLog {
    path: PathBuf,
    file: File,
}

impl JsonLog {
    /// Open (creating) `path` for appending; a symbolic link there is an
    /// error. A partial last line left by a crash is cut off first, so the
    /// next line starts cleanly.
    pub fn open(path: &Path) -> Result<JsonLog> {
        repair_tail(path)?;
        let file = open_append(path)?;
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn append(&mut self, value: &serde_json::Value) -> Result<()> {
        let mut line = serde_json::to_string(value).expect("JSON values serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(io_err(&self.path))
    }

    /// Append `values`, one line each, in one write: a process killed
    /// while appending them leaves all of them or none (at most a torn
    /// last line, which the next open drops).
    pub fn append_all(&mut self, values: &[serde_json::Value]) -> Result<()> {
        let mut text = String::new();
        for v in values {
            text.push_str(&serde_json::to_string(v).expect("JSON values serialize"));
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(io_err(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Truncate a file after its last newline (drops a torn final line).
fn repair_tail(path: &Path) -> Result<()> {
    let Some(mut f) = open_read(path)? else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(io_err(path))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep < bytes.len() {
        let f = open_write(path)?;
        f.set_len(keep as u64).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
    }
    Ok(())
}

/// Read every complete JSON line of a log; a torn or unparsable line is an
/// error that names the file and line, except a torn *last* line (no
/// newline), which a crash can leave and which is skipped. Only a regular
/// file is read (a link or a FIFO is an error); a missing one has no lines.
pub fn read_json_lines(path: &Path) -> Result<Vec<serde_json::Value>> {
    let Some(f) = open_read(path)? else {
        return Ok(Vec::new());
    };
    let mut reader = BufReader::new(f);
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.ends_with('\n');
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str(text) {
            Ok(v) => out.push(v),
            Err(_) if !complete => break,
            Err(e) => {
                return Err(Error::Input {
                    path: path.display().to_string(),
                    line: Some(line_no),
                    message: format!("not a JSON line: {e}"),
                })
            }
        }
    }
    Ok(out)
}

/// Quote a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV table: a header and rows of fields, written atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for r in rows {
        text.push_str(&r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// The current UTC time as `YYYYmmdd-HHMMSS` (names of run directories).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stamp_of(secs)
}

/// `YYYYmmdd-HHMMSS` of a Unix time (proleptic Gregorian, UTC).
fn stamp_of(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_civil_dates() {
        assert_eq!(super::stamp_of(0), "19700101-000000");
        // 2026-11-29 06:47:40 UTC.
        assert_eq!(super::stamp_of(1_795_934_860), "20261129-064740");
        // A leap day.
        assert_eq!(super::stamp_of(951_782_400), "20000229-000000");
    }

    use super::*;
    use serde_json::json;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("actforge-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = dir("atomic");
        let p = d.join("a.json");
        write_json(&p, &json!({"x": 1})).unwrap();
        write_json(&p, &json!({"x": 2})).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["x"], 2);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_torn_last_line_is_dropped_on_reopen() {
        let d = dir("torn");
        let p = d.join("log.jsonl");
        let mut log = JsonLog::open(&p).unwrap();
        log.append(&json!({"i": 1})).unwrap();
        log.append(&json!({"i": 2})).unwrap();
        drop(log);
        // A crash in the middle of the third line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"i\": 3, \"hal").unwrap();
        drop(f);
        assert_eq!(read_json_lines(&p).unwrap().len(), 2);
        let mut log = JsonLog::open(&p).unwrap();
        log.append(&json!({"i": 4})).unwrap();
        let all = read_json_lines(&p).unwrap();
        assert_eq!(
            all.iter()
                .map(|v| v["i"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 4]
        );
    }

    #[test]
    fn a_corrupt_middle_line_is_located() {
        let d = dir("corrupt");
        let p = d.join("log.jsonl");
        fs::write(&p, "{\"i\":1}\nnot json\n{\"i\":2}\n").unwrap();
        let e = read_json_lines(&p).unwrap_err().to_string();
        assert!(e.contains("log.jsonl:2"), "{e}");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let d = dir("csv");
        let p = d.join("t.csv");
        write_csv(&p, &["f", "v"], &[vec!["max(x, 0)".into(), "1".into()]]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "f,v\n\"max(x, 0)\",1\n");
    }
}
