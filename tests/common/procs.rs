//! Processes as a test sees them: found by their command line, frozen and
//! thawed with signals, so that a test acts at a moment it has checked
//! rather than one it hopes to catch (a frozen process cannot move past
//! it, however fast or loaded the machine is).

use std::process::Command;
use std::time::Duration;

/// A wall-clock backstop that only turns a hang into a failure: far
/// beyond anything load does to the waits it bounds (each takes
/// milliseconds to seconds), so no test depends on the machine's speed.
pub const HANG_BACKSTOP: Duration = Duration::from_secs(600);

/// Pids of this user's processes whose command line (arguments joined by
/// spaces) contains every one of `needles`.
pub fn find(needles: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The one-letter state of `pid` (R, S, D, T, Z, ...), `None` when gone.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Is `pid` a live process (not gone, not a zombie)?
pub fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Send `signal` (a name: "STOP", "CONT", "KILL", "INT") to `pid`;
/// whether it was delivered (false when the process is gone).
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Processes stopped with SIGSTOP until this is dropped (SIGCONT), so a
/// failing assertion never leaves them frozen.
pub struct Frozen(Vec<u32>);

impl Frozen {
    /// Stop every one of `pids` and return once each is stopped (or gone).
    pub fn new(pids: &[u32]) -> Frozen {
        for &pid in pids {
            signal(pid, "STOP");
        }
        for &pid in pids {
            while alive(pid) && state(pid) != Some('T') {
                std::thread::yield_now();
            }
        }
        Frozen(pids.to_vec())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            signal(pid, "CONT");
        }
    }
}
