//! The run directory: its file names, its creation (a new run never
//! overwrites anything) and `config.json` (the exact command line, every
//! setting, versions and seeds), which `--resume` reads back and checks.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::files::write_json;

use super::config::Settings;
use super::json::{bad, read, Fields};

pub const CONFIG: &str = "config.json";
pub const CHECKPOINT: &str = "checkpoint.json";
pub const EVALUATIONS: &str = "evaluations.jsonl";
pub const MERGES: &str = "merges.jsonl";
pub const LOGBOOK_JSONL: &str = "logbook.jsonl";
pub const LOGBOOK_CSV: &str = "logbook.csv";
pub const HALL_OF_FAME: &str = "hall_of_fame.json";
pub const PARETO: &str = "pareto.json";
pub const PARETO_PNG: &str = "pareto.png";
pub const FITNESS_PNG: &str = "fitness.png";
/// PNGs of the hall of fame (`hof-1.png`, …).
pub const HOF_PLOTS: &str = "hall_of_fame";
/// The exported kernel package of the best formula.
pub const BEST_KERNEL: &str = "best_kernel";
pub const FINAL: &str = "final.json";
/// Folder the final retrain may fill.
pub const FINAL_DIR: &str = "final";
/// NVRTC logs of candidates whose kernels did not compile.
pub const COMPILE_LOGS: &str = "compile_failures";

/// What `config.json` says a run directory is.
pub const CONFIG_FORMAT: &str = "actforge-search-run";
pub const FORMAT_VERSION: u64 = 1;

/// `runs/search-YYYYMMDD-HHMMSS` (UTC) under `base`, with `-2`, `-3`, …
/// appended if that exists.
pub fn default_dir(base: &Path) -> PathBuf {
    let stamp = utc_stamp(SystemTime::now());
    let first = base.join(format!("search-{stamp}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| base.join(format!("search-{stamp}-{i}")))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Create `dir` for a new run: it must not exist, or be an empty folder.
pub fn create(dir: &Path) -> Result<()> {
    let shown = dir.display().to_string();
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .map_err(|e| Error::io(&shown, e))?
                .next()
                .is_none();
        if !empty {
            return Err(Error::Usage(format!(
                "{shown} already exists and is not empty: a new search never overwrites a directory (continue it with --resume {shown}, or pick another --out)"
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(&shown, e))
}

/// The `config.json` of a new run.
pub fn config_json(settings: &Settings, command: &[String], extra: Value) -> Value {
    json!({
        "format": CONFIG_FORMAT,
        "version": FORMAT_VERSION,
        "command": command,
        "created_utc": utc_stamp(SystemTime::now()),
        "settings": settings.to_json(),
        "settings_hash": settings.hash_hex(),
        "training_seeds": settings.training_seeds(),
        "retrain_seeds": settings.retrain_seed_list(),
        "versions": {
            "actforge": env!("CARGO_PKG_VERSION"),
            "candle-core": "0.11.1",
            "config_format": FORMAT_VERSION,
        },
        "details": extra,
    })
}

pub fn write_config(dir: &Path, config: &Value) -> Result<()> {
    write_json(&dir.join(CONFIG), config)
}

/// Read and check `config.json` of `dir`: it must be an actforge search
/// run of this format with valid settings whose hash matches.
pub fn read_config(dir: &Path) -> Result<Settings> {
    let path = dir.join(CONFIG);
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{} is not an actforge search run directory: it has no {CONFIG}",
            dir.display()
        )));
    }
    let v = read(&path)?;
    let f = Fields::of(&v, &shown, "the configuration")?;
    if f.opt("format").and_then(Value::as_str) != Some(CONFIG_FORMAT) {
        return Err(bad(
            &shown,
            format!("not the configuration of an actforge search run (its \"format\" is not \"{CONFIG_FORMAT}\")"),
        ));
    }
    let version = f.u64("version")?;
    if version != FORMAT_VERSION {
        return Err(bad(
            &shown,
            format!("written in run format {version}; this actforge reads format {FORMAT_VERSION}"),
        ));
    }
    let settings = Settings::from_json(f.get("settings")?, &shown)?;
    if f.str("settings_hash")? != settings.hash_hex() {
        return Err(bad(
            &shown,
            "the settings do not match their recorded hash (the file was edited)".into(),
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_are_calendar_dates() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400 + 3661);
        assert_eq!(utc_stamp(t), "20000229-010101");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101-000000");
    }
}
