//! Fixed, seeded train/validation/test splits without leakage. Pairs are
//! joined into connected components by their normalised source *and*
//! normalised target (two pairs that share a question, or an answer, or a
//! sentence on either side, are in one component), and whole components
//! move: no validation or test pair shares its source or its target with
//! a training pair. The Q&A corpus has several question templates per
//! fact, so grouping by question alone put most validation answers in the
//! training data too. Components are ordered by a seeded hash of their
//! smallest key, so a pair's split depends on the texts and the seed, not
//! on positions in the file.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::corpus::{Corpus, Pair};
use super::hash::{seeded, Fnv};
use crate::error::{Error, Result};

/// The three parts of a corpus, each in the corpus's order, and how they
/// were cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
    pub seed: u64,
    /// Connected components of the corpus, and the pairs in the largest.
    pub components: usize,
    pub largest_component: usize,
}

/// The grouping key: lower-case alphanumeric words joined by one space
/// (case, punctuation and spacing ignored); a text with no letter or digit
/// keys as itself, lower-cased with its whitespace collapsed.
pub fn group_key(src: &str) -> String {
    let words = src
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    if words.is_empty() {
        src.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        words
    }
}

/// Union–find over pair indices.
struct Components(Vec<usize>);

impl Components {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        // The smaller index is the root: the result does not depend on the
        // order of the joins.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.0[hi] = lo;
    }
}

/// The component of every pair (numbered 0.., in order of first pair) and
/// each component's smallest key.
fn components(pairs: &[Pair]) -> (Vec<usize>, Vec<String>) {
    let mut uf = Components((0..pairs.len()).collect());
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut keys = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let (s, t) = (
            format!("s:{}", group_key(&p.src)),
            format!("t:{}", group_key(&p.tgt)),
        );
        for k in [&s, &t] {
            match first.get(k) {
                Some(&j) => uf.join(i, j),
                None => {
                    first.insert(k.clone(), i);
                }
            }
        }
        keys.push((s, t));
    }
    let mut number: HashMap<usize, usize> = HashMap::new();
    let mut smallest: Vec<String> = Vec::new();
    let mut of = Vec::with_capacity(pairs.len());
    for (i, (s, t)) in keys.into_iter().enumerate() {
        let r = uf.root(i);
        let next = smallest.len();
        let c = *number.entry(r).or_insert(next);
        if c == next {
            smallest.push(s.clone());
        }
        let m = &mut smallest[c];
        for k in [s, t] {
            if k < *m {
                *m = k;
            }
        }
        of.push(c);
    }
    (of, smallest)
}

/// Split `c`: about `valid` and `test` of the pairs (fractions, clamped to
/// [0, 1] and scaled down if they add up to more than 1) go to validation
/// and test, the rest to training. Whole components move: a part takes a
/// component while it is below its share and the component fits within a
/// quarter of the share (at least one pair) above it, so the sizes are met
/// closely and a component too large for either part stays in training.
pub fn split(c: &Corpus, valid: f64, test: f64, seed: u64) -> Splits {
    let (valid, test) = fractions(valid, test);
    let n = c.pairs.len();
    let (group_of, keys) = components(&c.pairs);
    let mut size = vec![0usize; keys.len()];
    group_of.iter().for_each(|&g| size[g] += 1);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_cached_key(|&g| (seeded(seed, &keys[g]), keys[g].clone()));
    let quota = [
        (test * n as f64).round() as usize,
        (valid * n as f64).round() as usize,
    ];
    let slack = quota.map(|q| (q / 4).max(1));
    let mut part = vec![2u8; keys.len()]; // 0 test, 1 valid, 2 train
    let mut filled = [0usize; 2];
    for g in order {
        let fits = |p: usize| filled[p] < quota[p] && filled[p] + size[g] <= quota[p] + slack[p];
        if let Some(p) = (0..2).find(|&p| fits(p)) {
            part[g] = p as u8;
            filled[p] += size[g];
        }
    }
    let mut s = Splits {
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
        seed,
        components: keys.len(),
        largest_component: size.iter().copied().max().unwrap_or(0),
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

/// Pairs of a part that share their normalised source, or their
/// normalised target, with a training pair: measured, not assumed (0 by
/// construction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overlap {
    pub source: usize,
    pub target: usize,
}

impl Splits {
    /// The overlap of validation and of test with training.
    pub fn overlap(&self) -> (Overlap, Overlap) {
        let src: HashSet<String> = self.train.iter().map(|p| group_key(&p.src)).collect();
        let tgt: HashSet<String> = self.train.iter().map(|p| group_key(&p.tgt)).collect();
        let count = |part: &[Pair]| Overlap {
            source: part
                .iter()
                .filter(|p| src.contains(&group_key(&p.src)))
                .count(),
            target: part
                .iter()
                .filter(|p| tgt.contains(&group_key(&p.tgt)))
                .count(),
        };
        (count(&self.valid), count(&self.test))
    }

    /// What `split.json` and `data stats` report about the cut: pairs per
    /// part, components, and the measured overlap with training.
    pub fn describe(&self) -> Value {
        let (v, t) = self.overlap();
        json!({
            "seed": self.seed,
            "pairs": {"train": self.train.len(), "valid": self.valid.len(), "test": self.test.len()},
            "components": self.components,
            "largest_component": self.largest_component,
            "grouping": "connected components of normalised source and normalised target (lower-case words of letters and digits)",
            "shared_with_train": {
                "valid": {"source": v.source, "target": v.target},
                "test": {"source": t.source, "target": t.target},
            },
        })
    }
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
    /// the hash of each part, components, the measured overlap with
    /// training) and `train.tsv`, `valid.tsv`, `test.tsv`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let parts = [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ];
        let mut summary = serde_json::Map::new();
        summary.insert("seed".into(), json!(self.seed));
        let d = self.describe();
        for k in [
            "components",
            "largest_component",
            "grouping",
            "shared_with_train",
        ] {
            summary.insert(k.into(), d[k].clone());
        }
        for (name, pairs) in parts {
            write_tsv(&dir.join(format!("{name}.tsv")), pairs)?;
            summary.insert(
                name.into(),
                json!({"pairs": pairs.len(), "hash": format!("{:016x}", pairs_hash(pairs))}),
            );
        }
        let path = dir.join("split.json");
        let text = serde_json::to_string_pretty(&Value::Object(summary)).expect("plain JSON");
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
