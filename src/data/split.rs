//! Fixed, seeded train/validation/test splits. Pairs are grouped by their
//! normalised source text (case, punctuation and spacing ignored), so a
//! question, or a sentence to translate, never appears in two splits; the
//! groups are ordered by a seeded hash of that text, so a pair's split
//! depends on its text and the seed, not on its position in the file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::corpus::{Corpus, Pair};
use super::hash::{seeded, Fnv};
use crate::error::{Error, Result};

/// The three parts of a corpus, each in the corpus's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
    pub seed: u64,
}

/// The grouping key: lower-case alphanumeric words joined by one space.
pub fn group_key(src: &str) -> String {
    src.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Split `c`: about `valid` and `test` of the pairs (fractions, clamped to
/// [0, 1] and scaled down if they add up to more than 1) go to validation
/// and test, the rest to training. Whole groups move, so the sizes are
/// met to within the size of one group.
pub fn split(c: &Corpus, valid: f64, test: f64, seed: u64) -> Splits {
    let (valid, test) = fractions(valid, test);
    let n = c.pairs.len();
    let mut group_of = Vec::with_capacity(n);
    let mut keys: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for p in &c.pairs {
        let k = group_key(&p.src);
        let next = keys.len();
        let g = *index.entry(k.clone()).or_insert(next);
        if g == next {
            keys.push(k);
        }
        group_of.push(g);
    }
    let mut size = vec![0usize; keys.len()];
    group_of.iter().for_each(|&g| size[g] += 1);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_cached_key(|&g| (seeded(seed, &keys[g]), keys[g].clone()));
    let quota = [
        (test * n as f64).round() as usize,
        (valid * n as f64).round() as usize,
    ];
    let mut part = vec![2u8; keys.len()]; // 0 test, 1 valid, 2 train
    let mut filled = [0usize; 2];
    for g in order {
        if let Some(p) = (0..2).find(|&p| filled[p] < quota[p]) {
            part[g] = p as u8;
            filled[p] += size[g];
        }
    }
    let mut s = Splits {
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
        seed,
    };
    for (p, &g) in c.pairs.iter().zip(&group_of) {
        match part[g] {
            0 => s.test.push(p.clone()),
            1 => s.valid.push(p.clone()),
            _ => s.train.push(p.clone()),
        }
    }
    s
}

fn fractions(valid: f64, test: f64) -> (f64, f64) {
    let clamp = |x: f64| {
        if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let (v, t) = (clamp(valid), clamp(test));
    if v + t > 1.0 {
        (v / (v + t), t / (v + t))
    } else {
        (v, t)
    }
}

/// Stable hash of a list of pairs (16 hex digits when printed).
pub fn pairs_hash(pairs: &[Pair]) -> u64 {
    let mut h = Fnv::new();
    for p in pairs {
        h.str(&p.src);
        h.str(&p.tgt);
    }
    h.finish()
}

impl Splits {
    /// Record the split in a run directory: `split.json` (seed, counts and
    /// the hash of each part) and `train.tsv`, `valid.tsv`, `test.tsv`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let parts = [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ];
        let mut summary = serde_json::Map::new();
        summary.insert("seed".into(), json!(self.seed));
        for (name, pairs) in parts {
            write_tsv(&dir.join(format!("{name}.tsv")), pairs)?;
            summary.insert(
                name.into(),
                json!({"pairs": pairs.len(), "hash": format!("{:016x}", pairs_hash(pairs))}),
            );
        }
        let path = dir.join("split.json");
        let text =
            serde_json::to_string_pretty(&serde_json::Value::Object(summary)).expect("plain JSON");
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(path.display().to_string(), e))
    }
}

/// Pairs as `src<TAB>tgt` lines (tabs and newlines inside a text become
/// spaces, so the file loads back as TSV).
pub fn write_tsv(path: &Path, pairs: &[Pair]) -> Result<()> {
    let err = |e| Error::io(path.display().to_string(), e);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(err)?);
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    for p in pairs {
        writeln!(f, "{}\t{}", clean(&p.src), clean(&p.tgt)).map_err(err)?;
    }
    f.flush().map_err(err)
}
