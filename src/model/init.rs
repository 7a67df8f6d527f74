//! Deterministic parameter initialisation: every parameter is a pure
//! function of (its name, its shape, its scheme, the member's seed).
//!
//! Each parameter of each population member draws from its own SplitMix64
//! stream, keyed by the member's seed and the parameter's name, and normals
//! come from Box-Muller with `libm` (the same bits on every platform). The
//! values are made on the host in f64, rounded to f32 once and then copied
//! to the device, so they depend neither on the activation, nor on the
//! device, nor on the population size, nor on the order in which the model
//! creates its parameters. Nothing here knows about layers.

use candle_core::{Device, Shape, Tensor, Var};
use candle_nn::VarMap;

use crate::Result;

/// How one parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Independent draws from normal(0, std).
    Normal(f64),
    /// Every element equal to the value (norm gains 1, biases 0).
    Const(f64),
}

/// A SplitMix64 stream (Steele, Lea and Flood 2014): small, fast and good
/// enough to draw initial weights.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform on (0, 1]: never 0, so `ln` is finite.
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (Box-Muller, the cosine branch only: one
    /// draw per call keeps the stream position a function of the count).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_open01();
        let u2 = self.next_open01();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2)
    }
}

/// The SplitMix64 output function, also used to combine keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of the name: a stable key for the parameter's stream.
fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The stream of parameter `name` for a member with `seed`.
pub fn stream(seed: u64, name: &str) -> SplitMix64 {
    SplitMix64::new(mix(seed ^ mix(name_key(name))))
}

/// The values of one member's parameter (row-major, `count` elements).
pub fn draw(seed: u64, name: &str, count: usize, init: Init) -> Vec<f32> {
    match init {
        Init::Const(c) => vec![c as f32; count],
        Init::Normal(std) => {
            let mut rng = stream(seed, name);
            (0..count)
                .map(|_| (rng.next_normal() * std) as f32)
                .collect()
        }
    }
}

/// Creates the parameters of a population in a [`VarMap`]: each gets a
/// leading dimension P, member `p` drawn from `seeds[p]`.
pub struct ParamBuilder<'a> {
    varmap: &'a VarMap,
    seeds: &'a [u64],
    device: &'a Device,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(varmap: &'a VarMap, seeds: &'a [u64], device: &'a Device) -> ParamBuilder<'a> {
        ParamBuilder {
            varmap,
            seeds,
            device,
        }
    }

    pub fn population(&self) -> usize {
        self.seeds.len()
    }

    /// The parameter `name` of per-member shape `dims`, as `[P, dims…]`.
    /// Its tensor is the variable's own (the optimizer's updates show).
    pub fn param(&self, name: &str, dims: &[usize], init: Init) -> Result<Tensor> {
        let count: usize = dims.iter().product();
        let data: Vec<f32> = self
            .seeds
            .iter()
            .flat_map(|&s| draw(s, name, count, init))
            .collect();
        let mut shape = vec![self.seeds.len()];
        shape.extend_from_slice(dims);
        let t = Tensor::from_vec(data, Shape::from(shape), self.device)?;
        let var = Var::from_tensor(&t)?;
        let tensor = var.as_tensor().clone();
        let mut vars = self.varmap.data().lock().expect("VarMap lock poisoned");
        if vars.insert(name.to_string(), var).is_some() {
            return Err(crate::Error::Internal(format!(
                "model parameter `{name}` is defined twice"
            )));
        }
        Ok(tensor)
    }
}
