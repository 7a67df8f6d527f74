//! What the integration tests that run the binary or read a run directory
//! share: the binary, a fresh scratch path, JSON and JSONL files, the
//! micro search settings and one `without_times`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `actforge` binary of this build.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_actforge"))
}

/// This test binary's scratch folder: `actforge-<test file>-<pid>` under
/// the temporary directory (one per process, so runs never share one).
pub fn root() -> PathBuf {
    std::env::temp_dir().join(format!(
        "actforge-{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ))
}

/// A fresh path `name` under [`root`]: it does not exist, its parent does.
pub fn tmp(name: &str) -> PathBuf {
    let d = root().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.parent().unwrap()).unwrap();
    d
}

/// A JSON file's value.
pub fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A JSONL file's values, one a line (none for a file that is not there).
pub fn lines(path: &Path) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        r => r.unwrap(),
    };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `v` without what differs from run to run of the same search: its
/// `*_seconds` and `seconds` keys (times) and `worker` (which worker
/// evaluated a candidate), at any depth.
pub fn without_times(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.ends_with("_seconds") && k != "seconds" && k != "worker")
                .map(|(k, v)| (k, without_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_times).collect()),
        v => v,
    }
}

/// A micro search: 4 training steps of 8 sequences on a fifth of the Q&A
/// data, population 4, one generation, quiet, no export.
pub const MICRO: &[&str] = &[
    "search",
    "--quiet",
    "--task",
    "qa",
    "--preset",
    "gpt-micro",
    "--steps",
    "4",
    "--batch-size",
    "8",
    "--thin",
    "0.2",
    "--pop",
    "4",
    "--gens",
    "1",
    "--seed",
    "3",
    "--start-with",
    "gelu(ARG0)",
    "--no-export",
];

/// [`MICRO`] with `extra`: a flag that is already there with a value gets
/// `extra`'s value; any other flag or value is appended, in order.
pub fn micro(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = MICRO.iter().map(|s| s.to_string()).collect();
    let mut i = 0;
    while i < extra.len() {
        let pos = args.iter().position(|a| a == extra[i]);
        match (pos, extra.get(i + 1)) {
            (Some(p), Some(v)) if p + 1 < args.len() && !args[p + 1].starts_with("--") => {
                args[p + 1] = v.to_string();
                i += 2;
            }
            _ => {
                args.push(extra[i].to_string());
                i += 1;
            }
        }
    }
    args
}
