//! The corpus types and `open`: a built-in name or a file in one of three
//! formats (detected when not given).

use std::fmt;
use std::path::{Path, PathBuf};

use super::hash::Fnv;
use super::{builtin, load};
use crate::error::{Error, Result};

/// One training pair: source and target text (translation: English source,
/// German target; Q&A: question and answer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    pub src: String,
    pub tgt: String,
}

impl Pair {
    pub fn new(src: impl Into<String>, tgt: impl Into<String>) -> Pair {
        Pair {
            src: src.into(),
            tgt: tgt.into(),
        }
    }
}

/// What the pairs are: it decides the decoder layout (`SEP` or `Q`/`A`
/// markers) and how splits group questions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorpusKind {
    Translation,
    Qa,
}

impl CorpusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CorpusKind::Translation => "translation",
            CorpusKind::Qa => "qa",
        }
    }
}

/// A skipped record: its first line (1-based) and why it was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub reason: String,
}

/// The file formats a user's data can come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tatoeba's sentence-pair export: `id<TAB>text<TAB>id<TAB>text`.
    Tatoeba,
    /// `source<TAB>target`, one pair a line.
    Tsv,
    /// Q&A: blocks of `Q: …` / `A: …` lines separated by blank lines, or
    /// JSONL objects `{"q": …, "a": …}` (detected from the first line).
    Qa,
}

impl Format {
    /// `tatoeba`, `tsv` or `qa`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "tatoeba" => Some(Format::Tatoeba),
            "tsv" => Some(Format::Tsv),
            "qa" => Some(Format::Qa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tatoeba => "tatoeba",
            Format::Tsv => "tsv",
            Format::Qa => "qa",
        }
    }

    pub fn kind(self) -> CorpusKind {
        match self {
            Format::Qa => CorpusKind::Qa,
            Format::Tatoeba | Format::Tsv => CorpusKind::Translation,
        }
    }
}

/// A loaded corpus: its pairs, and what was skipped on the way.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// `builtin:NAME` or the path as given.
    pub name: String,
    pub kind: CorpusKind,
    pub pairs: Vec<Pair>,
    /// Records skipped as malformed (each has a warning).
    pub skipped: usize,
    pub warnings: Vec<Warning>,
    /// The file it came from (`None` for built-in corpora).
    pub path: Option<PathBuf>,
}

impl Corpus {
    /// Stable 64-bit hash of the content (kind and pairs, in order): the
    /// same data gives the same hash on every machine and version. Print it
    /// with [`Corpus::hash_hex`].
    pub fn hash(&self) -> u64 {
        let mut h = Fnv::new();
        h.str(self.kind.as_str());
        for p in &self.pairs {
            h.str(&p.src);
            h.str(&p.tgt);
        }
        h.finish()
    }

    /// [`Corpus::hash`] as 16 hex digits.
    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash())
    }

    /// A warning as `file:line: reason`.
    pub fn located(&self, w: &Warning) -> String {
        format!("{}:{}: {}", self.name, w.line, w.reason)
    }
}

impl fmt::Display for CorpusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Open `builtin:NAME` (see [`super::BUILTIN_NAMES`]) or a file. `format`
/// `None` detects it from the file (see [`load::detect`]). Malformed records
/// are skipped with located warnings; a file more than half malformed, or
/// with no pair at all, is an error.
pub fn open(spec: &str, format: Option<Format>) -> Result<Corpus> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        if format.is_some_and(|f| f != Format::Tsv) {
            return Err(Error::Usage(format!(
                "--format does not apply to the built-in corpus {spec}"
            )));
        }
        return builtin::builtin(name);
    }
    let path = Path::new(spec);
    let bytes = read_data_file(path, spec)?;
    let mut c = load::load_bytes(&bytes, format, spec)?;
    c.path = Some(path.to_path_buf());
    Ok(c)
}

/// The bytes of a data file: a regular file (a FIFO would block the open or
/// the read, a device such as `/dev/zero` would never end) of at most
/// [`crate::limits::DATA_FILE_BYTES`].
fn read_data_file(path: &Path, spec: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let limit = crate::limits::DATA_FILE_BYTES;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(spec, e))?;
    let meta = f.metadata().map_err(|e| Error::io(spec, e))?;
    if !meta.is_file() {
        return Err(Error::Input {
            path: spec.to_string(),
            line: None,
            message: "is not a regular file (a FIFO, device or folder): give a data file".into(),
        });
    }
    let too_big = |n: u64| {
        Error::Usage(format!(
            "the data file {spec} has {n} bytes, above the limit of {} ({})",
            limit.max, limit.what
        ))
    };
    if meta.len() > limit.max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit.max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(spec, e))?;
    if bytes.len() as u64 > limit.max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}
