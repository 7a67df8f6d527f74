//! The corpus types: pairs, their kind, the file formats, skipped-record
//! warnings and the loaded corpus. Plain data: the loaders (`load`,
//! `builtin`) build it and `open` picks the loader.

use std::fmt;
use std::path::PathBuf;

use super::hash::Fnv;

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
