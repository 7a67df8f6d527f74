//! Thinning: a sample of a corpus that keeps its statistical structure
//! (the seed's "50% of the data during the search").
//!
//! 1. **Strata** are the joint lengths (source words, target words), each
//!    capped at [`LENGTH_CAP`]; every stratum keeps its share of the sample
//!    (largest remainders decide the rounding), so the length distribution
//!    is kept almost exactly.
//! 2. Inside each stratum the members are drawn at random (seeded).
//! 3. A **swap search** then lowers the unigram divergence: it proposes
//!    exchanging a kept pair for a dropped pair of the same stratum and the
//!    same total length (so the sample's length profile and token total do
//!    not move) and accepts the exchange when the Jensen–Shannon divergence
//!    of the word distribution goes down. The number of proposals is fixed
//!    ([`PROPOSALS_PER_KEPT`] per kept pair), so the result depends only on
//!    the pairs, the fraction and the seed.
//!
//! Both divergences are reported for the sample and for a uniform random
//! sample of the same size drawn with the same seed, so a reader can see
//! what stratification bought. Words are runs of alphanumeric characters,
//! lower-cased, from source and target together; divergences are in bits
//! (base-2 logarithms), so they lie in [0, 1].

use std::collections::HashMap;

use super::corpus::Pair;
use super::rng::Rng;

/// Lengths above this many words share one stratum.
pub const LENGTH_CAP: usize = 64;
/// Swap proposals per kept pair in the unigram search.
pub const PROPOSALS_PER_KEPT: usize = 4;

/// A thinned set and how far it is from the full set.
#[derive(Clone, Debug)]
pub struct Thinned {
    /// The kept pairs, in their original order.
    pub pairs: Vec<Pair>,
    /// JS divergence (bits) of the joint (source, target) length
    /// distribution between the full and the thinned set.
    pub js_length: f64,
    /// JS divergence (bits) of the word unigram distribution.
    pub js_unigram: f64,
    /// The same two for a uniform random sample of the same size.
    pub uniform_js_length: f64,
    pub uniform_js_unigram: f64,
}

/// Jensen–Shannon divergence in bits of two distributions over the same
/// outcomes (each sums to 1; entries may be 0).
pub fn js_divergence(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| js_term(a, b))
        .sum::<f64>()
        .max(0.0)
}

/// One outcome's share of the JS divergence.
fn js_term(p: f64, q: f64) -> f64 {
    let m = 0.5 * (p + q);
    let half = |x: f64| {
        if x > 0.0 {
            0.5 * x * (x / m).log2()
        } else {
            0.0
        }
    };
    half(p) + half(q)
}

/// The words, lengths and strata of a corpus, computed once.
struct Profile {
    words: Vec<Vec<u32>>,
    stratum: Vec<(usize, usize)>,
    total_len: Vec<usize>,
    full_counts: Vec<f64>,
    full_total: f64,
}

pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Profile {
    fn new(pairs: &[Pair]) -> Profile {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut full_counts: Vec<f64> = Vec::new();
        let mut p = Profile {
            words: Vec::with_capacity(pairs.len()),
            stratum: Vec::with_capacity(pairs.len()),
            total_len: Vec::with_capacity(pairs.len()),
            full_counts: Vec::new(),
            full_total: 0.0,
        };
        for pair in pairs {
            let mut intern = |w: String| {
                let next = ids.len() as u32;
                let id = *ids.entry(w).or_insert(next);
                if id == next {
                    full_counts.push(0.0);
                }
                full_counts[id as usize] += 1.0;
                id
            };
            let s: Vec<u32> = words(&pair.src).map(&mut intern).collect();
            let t: Vec<u32> = words(&pair.tgt).map(&mut intern).collect();
            p.stratum
                .push((s.len().min(LENGTH_CAP), t.len().min(LENGTH_CAP)));
            p.total_len.push(s.len() + t.len());
            p.words.push(s.into_iter().chain(t).collect());
        }
        p.full_total = full_counts.iter().sum();
        p.full_counts = full_counts;
        p
    }

    fn js_length(&self, kept: &[usize]) -> f64 {
        let mut full: HashMap<(usize, usize), f64> = HashMap::new();
        for s in &self.stratum {
            *full.entry(*s).or_default() += 1.0;
        }
        let mut thin: HashMap<(usize, usize), f64> = HashMap::new();
        for &i in kept {
            *thin.entry(self.stratum[i]).or_default() += 1.0;
        }
        let (n, k) = (self.stratum.len() as f64, kept.len() as f64);
        let (p, q): (Vec<f64>, Vec<f64>) = full
            .iter()
            .map(|(s, c)| (c / n, thin.get(s).copied().unwrap_or(0.0) / k.max(1.0)))
            .unzip();
        if kept.is_empty() {
            return 1.0;
        }
        js_divergence(&p, &q)
    }

    fn kept_counts(&self, kept: &[usize]) -> Vec<f64> {
        let mut c = vec![0.0; self.full_counts.len()];
        for &i in kept {
            for &w in &self.words[i] {
                c[w as usize] += 1.0;
            }
        }
        c
    }

    fn js_unigram(&self, kept: &[usize]) -> f64 {
        let c = self.kept_counts(kept);
        let t: f64 = c.iter().sum();
        if t == 0.0 || self.full_total == 0.0 {
            return if t == self.full_total { 0.0 } else { 1.0 };
        }
        let p: Vec<f64> = self
            .full_counts
            .iter()
            .map(|x| x / self.full_total)
            .collect();
        let q: Vec<f64> = c.iter().map(|x| x / t).collect();
        js_divergence(&p, &q)
    }
}

/// How many pairs a fraction keeps: `round(fraction · n)`, at least one of
/// a non-empty corpus when `fraction > 0`, all when `fraction ≥ 1`.
pub fn kept_count(n: usize, fraction: f64) -> usize {
    if fraction.is_nan() || fraction <= 0.0 || n == 0 {
        return 0;
    }
    ((fraction.min(1.0) * n as f64).round() as usize).clamp(1, n)
}

/// Stratified sample of `fraction` of `pairs`; see the module docs.
pub fn thin(pairs: &[Pair], fraction: f64, seed: u64) -> Thinned {
    let prof = Profile::new(pairs);
    let k = kept_count(pairs.len(), fraction);
    let mut kept = stratified(&prof, k, &mut Rng::new(seed, 1));
    swap_search(&prof, &mut kept, &mut Rng::new(seed, 2));
    kept.sort_unstable();
    let uniform = uniform(pairs.len(), k, &mut Rng::new(seed, 3));
    Thinned {
        pairs: kept.iter().map(|&i| pairs[i].clone()).collect(),
        js_length: prof.js_length(&kept),
        js_unigram: prof.js_unigram(&kept),
        uniform_js_length: prof.js_length(&uniform),
        uniform_js_unigram: prof.js_unigram(&uniform),
    }
}

fn uniform(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(k);
    all.sort_unstable();
    all
}

/// Each stratum's share of `k` (largest remainders, ties to the smaller
/// stratum key), its members drawn at random.
fn stratified(prof: &Profile, k: usize, rng: &mut Rng) -> Vec<usize> {
    let n = prof.stratum.len();
    let mut members: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (i, s) in prof.stratum.iter().enumerate() {
        members.entry(*s).or_default().push(i);
    }
    let mut strata: Vec<((usize, usize), Vec<usize>)> = members.into_iter().collect();
    strata.sort_unstable_by_key(|(s, _)| *s);
    let f = if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let mut quota: Vec<usize> = strata
        .iter()
        .map(|(_, m)| (f * m.len() as f64).floor() as usize)
        .collect();
    let mut rest: Vec<(f64, usize)> = strata
        .iter()
        .enumerate()
        .map(|(j, (_, m))| (f * m.len() as f64 - quota[j] as f64, j))
        .collect();
    rest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = k - quota.iter().sum::<usize>();
    rest.iter().take(missing).for_each(|&(_, j)| quota[j] += 1);
    let mut kept = Vec::with_capacity(k);
    for ((_, mut m), q) in strata.into_iter().zip(quota) {
        rng.shuffle(&mut m);
        kept.extend_from_slice(&m[..q]);
    }
    kept
}

/// Kept and dropped members of one swap class (same stratum and total).
#[derive(Default)]
struct Class {
    kept: Vec<usize>,
    dropped: Vec<usize>,
}

fn swap_search(prof: &Profile, kept: &mut [usize], rng: &mut Rng) {
    if kept.is_empty() || kept.len() == prof.words.len() {
        return;
    }
    let key = |i: usize| (prof.stratum[i], prof.total_len[i]);
    let mut is_kept = vec![false; prof.words.len()];
    kept.iter().for_each(|&i| is_kept[i] = true);
    let mut index: HashMap<((usize, usize), usize), usize> = HashMap::new();
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of = vec![0usize; prof.words.len()];
    for (i, &kept_i) in is_kept.iter().enumerate() {
        let next = classes.len();
        let c = *index.entry(key(i)).or_insert(next);
        if c == next {
            classes.push(Class::default());
        }
        class_of[i] = c;
        let class = &mut classes[c];
        if kept_i {
            class.kept.push(i)
        } else {
            class.dropped.push(i)
        }
    }
    let mut counts = prof.kept_counts(kept);
    let total: f64 = counts.iter().sum();
    if total == 0.0 {
        return;
    }
    // Where each pair sits: in `kept`, and in its class's kept/dropped list.
    let mut in_kept = vec![usize::MAX; prof.words.len()];
    kept.iter().enumerate().for_each(|(j, &i)| in_kept[i] = j);
    let mut in_class = vec![0usize; prof.words.len()];
    for c in &classes {
        c.kept
            .iter()
            .enumerate()
            .for_each(|(j, &i)| in_class[i] = j);
        c.dropped
            .iter()
            .enumerate()
            .for_each(|(j, &i)| in_class[i] = j);
    }
    let p: Vec<f64> = prof
        .full_counts
        .iter()
        .map(|x| x / prof.full_total)
        .collect();
    let mut change: Vec<(u32, f64)> = Vec::new();
    for _ in 0..kept.len() * PROPOSALS_PER_KEPT {
        let a = kept[rng.below(kept.len())];
        let class = &mut classes[class_of[a]];
        if class.dropped.is_empty() {
            continue;
        }
        let b = class.dropped[rng.below(class.dropped.len())];
        net_change(&prof.words[a], &prof.words[b], &mut change);
        let delta: f64 = change
            .iter()
            .map(|&(w, d)| {
                let (pw, c) = (p[w as usize], counts[w as usize]);
                js_term(pw, (c + d) / total) - js_term(pw, c / total)
            })
            .sum();
        if delta < -1e-15 {
            change.iter().for_each(|&(w, d)| counts[w as usize] += d);
            let (ja, jb) = (in_class[a], in_class[b]);
            class.kept[ja] = b;
            class.dropped[jb] = a;
            in_class.swap(a, b);
            kept[in_kept[a]] = b;
            in_kept[b] = in_kept[a];
            in_kept[a] = usize::MAX;
        }
    }
}

/// Per-word count changes when `out` leaves the sample and `inc` joins it.
fn net_change(out: &[u32], inc: &[u32], change: &mut Vec<(u32, f64)>) {
    change.clear();
    let mut add = |w: u32, d: f64| match change.iter_mut().find(|(x, _)| *x == w) {
        Some(e) => e.1 += d,
        None => change.push((w, d)),
    };
    out.iter().for_each(|&w| add(w, -1.0));
    inc.iter().for_each(|&w| add(w, 1.0));
    change.retain(|&(_, d)| d != 0.0);
}
