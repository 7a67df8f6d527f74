//! The search's random numbers: one small generator of our own whose whole
//! state is four `u64`s, so a checkpoint can store it and a resumed run
//! continues the exact same sequence.
//!
//! [`Prng`] is xoshiro256** (Blackman and Vigna, 2018): 256 bits of state,
//! period 2^256 − 1, and output that passes BigCrush. It implements
//! [`rand::RngCore`], so rand's distributions work on it, but the GP
//! operators draw through [`Draw`], whose methods are defined here on top of
//! `next_u64` alone. The same seed therefore gives the same trees on every
//! machine and with every version of `rand`: nothing depends on the
//! platform's libm (the normal deviates use the `libm` crate) or on rand's
//! sampling algorithms. `tests/gp.rs` holds committed expected sequences.
//!
//! Streams: [`Prng::stream`] derives an independent generator from
//! `(seed, purpose, generation, index)`, so work done in parallel (one
//! stream per candidate, worker or purpose) never shares a stream, and the
//! result does not depend on which worker ran what.
//!
//! Imports nothing from the crate but `error`.

use rand::RngCore;

use crate::error::{Error, Result};

/// xoshiro256**: a fast 64-bit generator with a serializable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prng {
    s: [u64; 4],
}

/// One step of splitmix64: the standard way to expand a 64-bit seed into
/// well-mixed words (and a good 64-bit mixing function).
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Prng {
    /// A generator seeded from one `u64` (expanded with splitmix64).
    pub fn seed(seed: u64) -> Prng {
        let mut x = seed;
        let s = [(); 4].map(|_| splitmix64(&mut x));
        // splitmix64 is a bijection of its counter, so four consecutive
        // outputs are never all zero.
        Prng { s }
    }

    /// An independent stream for one purpose: e.g. `("variation", gen, 0)`
    /// for the offspring of generation `gen`, or `("init", 0, i)` for the
    /// i-th initial tree. Distinct keys give unrelated sequences.
    pub fn stream(seed: u64, purpose: &str, generation: u64, index: u64) -> Prng {
        // FNV-1a over the purpose, then splitmix over every part.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in purpose.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut x = seed;
        let mut key = splitmix64(&mut x);
        for part in [h, generation, index] {
            let mut y = key ^ part;
            key = splitmix64(&mut y);
        }
        Prng::seed(key)
    }

    /// The whole state, for a checkpoint.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// Restore a state saved by [`Prng::state`]. All zeros is not a state
    /// xoshiro can be in (it would output zeros forever).
    pub fn from_state(s: [u64; 4]) -> Result<Prng> {
        if s == [0; 4] {
            return Err(Error::Usage(
                "a generator state of all zeros is invalid (was the checkpoint written by actforge?)"
                    .into(),
            ));
        }
        Ok(Prng { s })
    }

    /// The state as 64 hex digits (JSON-safe: no 64-bit integers).
    pub fn to_hex(&self) -> String {
        self.s.iter().map(|w| format!("{w:016x}")).collect()
    }

    /// Parse [`Prng::to_hex`].
    pub fn from_hex(text: &str) -> Result<Prng> {
        let bad = || {
            Error::Usage(format!(
                "`{text}` is not a generator state (64 hex digits expected)"
            ))
        };
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            *w = u64::from_str_radix(&text[16 * i..16 * (i + 1)], 16).map_err(|_| bad())?;
        }
        Prng::from_state(s)
    }

    /// The next 64 bits (also [`RngCore::next_u64`]; inherent so that no
    /// trait import is needed).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }
}

impl RngCore for Prng {
    fn next_u32(&mut self) -> u32 {
        (Prng::next_u64(self) >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        Prng::next_u64(self)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = Prng::next_u64(self).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl rand::SeedableRng for Prng {
    type Seed = [u8; 32];

    fn from_seed(seed: [u8; 32]) -> Prng {
        let mut s = [0u64; 4];
        for (w, b) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        Prng::from_state(s).unwrap_or_else(|_| Prng::seed(0))
    }

    fn seed_from_u64(seed: u64) -> Prng {
        Prng::seed(seed)
    }
}

/// The draws the GP operators make, defined on `next_u64` alone so that
/// they are the same on every platform and with every version of `rand`.
pub trait Draw: RngCore {
    /// Uniform in `0..n` without bias (Lemire's multiply-and-reject).
    /// `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0): nothing to choose from");
        let n = n as u64;
        let mut m = self.next_u64() as u128 * n as u128;
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = self.next_u64() as u128 * n as u128;
            }
        }
        (m >> 64) as usize
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in [0, 1) with 53 random bits (Python's `random.random()`).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (`unit() < p`, as DEAP writes it).
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A standard normal deviate (Box–Muller, one value per call, with the
    /// `libm` crate so the value is the same on every platform).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2)
    }

    /// An index drawn with probability proportional to `weights` (all
    /// finite and non-negative, at least one positive).
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut r = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        // Rounding left r just above the last positive weight.
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }
}

impl<R: RngCore + ?Sized> Draw for R {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_algorithm() {
        // By hand from the definition: s1 = 2 → ((2·5) rotl 7)·9 = 11520,
        // and after one step s1 = 0.
        let mut r = Prng::from_state([1, 2, 3, 4]).unwrap();
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
    }

    #[test]
    fn state_round_trips() {
        let mut a = Prng::seed(42);
        a.next_u64();
        let b = Prng::from_hex(&a.to_hex()).unwrap();
        assert_eq!(a, b);
        assert_eq!(Prng::from_state(a.state()).unwrap(), a);
        assert!(Prng::from_state([0; 4]).is_err());
        assert!(Prng::from_hex("xyz").is_err());
    }

    #[test]
    fn streams_differ_by_every_part() {
        let base = Prng::stream(1, "variation", 3, 0).next_u64();
        assert_ne!(base, Prng::stream(2, "variation", 3, 0).next_u64());
        assert_ne!(base, Prng::stream(1, "selection", 3, 0).next_u64());
        assert_ne!(base, Prng::stream(1, "variation", 4, 0).next_u64());
        assert_ne!(base, Prng::stream(1, "variation", 3, 1).next_u64());
        assert_eq!(base, Prng::stream(1, "variation", 3, 0).next_u64());
    }

    #[test]
    fn below_is_uniform_enough_and_in_range() {
        let mut r = Prng::seed(9);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = Prng::seed(5);
        let xs: Vec<f64> = (0..50_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }

    #[test]
    fn weighted_skips_zero_weights() {
        let mut r = Prng::seed(1);
        for _ in 0..1000 {
            assert_ne!(r.weighted(&[1.0, 0.0, 2.0]), 1);
        }
    }
}
