//! The run directory: its file names and `config.json` (the exact command
//! line, every setting, versions, seeds and the checksum of the run's copy
//! of a user's primitives file), which `--resume` reads back and checks.
//! A new run directory is made atomically (`store::NewDir`): a new run
//! never overwrites anything.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{Error, Result, Setting};
use crate::store::checksum_hex;
use crate::store::files::write_json;
use crate::store::safe::read_bounded;

use crate::search::config::{Settings, PRIMITIVES_COPY};
use crate::search::json::{bad, read, Fields};

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
/// The run's report page ([`super::page`]).
pub const REPORT: &str = crate::report::html::FILE_NAME;
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

/// The hint of the error for a run directory (`out`) that is taken.
pub fn taken_hint(dir: &Path) -> String {
    format!(
        "continue it with {} {}, or pick another {}",
        Setting::Resume,
        dir.display(),
        Setting::Out
    )
}

/// The `config.json` of a new run. `primitives` is the text of the user's
/// primitives file (copied into the run as [`PRIMITIVES_COPY`]), whose
/// checksum is recorded.
pub fn config_json(
    settings: &Settings,
    command: &[String],
    extra: Value,
    primitives: Option<&[u8]>,
) -> Value {
    json!({
        "format": CONFIG_FORMAT,
        "version": FORMAT_VERSION,
        "command": command,
        "created_utc": utc_stamp(SystemTime::now()),
        "settings": settings.to_json(),
        "settings_hash": settings.hash_hex(),
        "primitives_checksum": primitives.map(checksum_hex),
        "training_seeds": settings.seed_pool(),
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

/// An error unless `dir` has a `config.json` (checked before a lock file
/// is made in it).
pub fn require_run(dir: &Path) -> Result<()> {
    if dir.join(CONFIG).is_file() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} is not an actforge search run directory: it has no {CONFIG}",
        dir.display()
    )))
}

/// Read and check `config.json` of `dir`: it must be an actforge search
/// run of this format with valid settings (within the limits) whose hash
/// matches, and a user's primitives file copied into the run must have the
/// checksum recorded there.
pub fn read_config(dir: &Path) -> Result<Settings> {
    let path = dir.join(CONFIG);
    let shown = path.display().to_string();
    require_run(dir)?;
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
    if !settings.named_set() {
        check_primitives_copy(dir, f.opt("primitives_checksum"), &shown)?;
    }
    Ok(settings)
}

/// The run's copy of the user's primitives file must have the checksum
/// `config.json` records.
fn check_primitives_copy(dir: &Path, recorded: Option<&Value>, config: &str) -> Result<()> {
    let copy = dir.join(PRIMITIVES_COPY);
    let Some(want) = recorded.and_then(Value::as_str) else {
        return Err(bad(
            config,
            format!("records no checksum of {PRIMITIVES_COPY}, so the run's primitive set cannot be verified"),
        ));
    };
    let bytes = read_bounded(&copy, crate::limits::DATA_FILE_BYTES.max)?.ok_or_else(|| {
        bad(
            &copy.display().to_string(),
            "is missing: the run's primitive set is gone".into(),
        )
    })?;
    let got = checksum_hex(&bytes);
    if got != want {
        return Err(bad(
            &copy.display().to_string(),
            format!("has checksum {got}, but {CONFIG} records {want}: the run's primitive set was edited or replaced"),
        ));
    }
    Ok(())
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
