//! The population activation: one candle op over `[P, …]` whose slice `p`
//! applies member `p`'s formula, forward and backward, fused (a lockstep
//! population of candidates, each with its own activation).
//!
//! [`PopulationActivation`] holds the distinct formulas of its members in
//! first-appearance order (the order of their generation's dispatch
//! module, [`PopulationActivation::module`]) and each member's index in
//! that list. On the CPU slice `p` is the fused evaluator of its formula
//! (the same tape as [`FusedActivation`], so each slice equals the single
//! op bit for bit), with the work split into fixed blocks of every slice
//! on candle's pool: threads go across slices as well as within them. The
//! bias of an MLP (`f(x + b)`, `b [P, 1, F]`) is folded in as the single
//! op folds it. On CUDA it is the population kernel of the dispatch module
//! (`act_population_<dir>_<dtype>`): one launch per direction for up to
//! [`MAX_SLICES`] slices ([`launches`]).
//!
//! A search registers each generation's formulas in screening's order
//! ([`register_generation`]): a population whose formulas are all in a
//! registered generation takes that generation's list as its module
//! (ids index into it), so on CUDA it loads the very module screening
//! compiled (same source, one kernel-cache key, one compile a generation).
//!
//! Not every activation fits: composed ones keep a chain of candle ops per
//! member ([`PopulationActivation::of`] says `None`); GELU joins as the
//! fused `gelu_like(x)` (candle's formula, as on the CPU for one model).

#[cfg(feature = "cuda")]
mod cuda;

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::cpu::{filled, Shared};
use super::dtype::unsupported;
use super::fused::{contiguous_cpu, mismatch, shift, with_sums, Inner, PAR_BLOCK};
use super::{Activation, FusedActivation};
use crate::codegen::{Dtype, Module, MAX_SLICES};
use crate::diff::Function;
use crate::ir::{Lane, Shift, Tape};

/// The members' formulas (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct PopulationActivation {
    inner: Arc<Members>,
}

pub(crate) struct Members {
    /// Distinct formulas (by canonical hash), in first-appearance order.
    formulas: Vec<Arc<Inner>>,
    /// Per member: its formula's index in `formulas`.
    ids: Vec<u32>,
}

/// Generations registered by a search, newest last (at most
/// [`KEEP_GENERATIONS`]): each its formulas in screening's order.
fn generations() -> &'static Mutex<Vec<Arc<Vec<FusedActivation>>>> {
    static GENERATIONS: OnceLock<Mutex<Vec<Arc<Vec<FusedActivation>>>>> = OnceLock::new();
    GENERATIONS.get_or_init(Default::default)
}

/// Generations kept: the current one and a few before (a rung trains
/// candidates of earlier generations).
pub const KEEP_GENERATIONS: usize = 4;

/// Register a generation's formulas in the order screening compiled them
/// (its dispatch module, `search::compile::generation_module`): a
/// population whose formulas are all among them uses this list as its
/// module (see the module docs). Results do not depend on it: slice `p`
/// always applies member `p`'s formula.
pub fn register_generation(formulas: Vec<FusedActivation>) {
    let mut g = generations().lock().expect("generations");
    if g.len() >= KEEP_GENERATIONS {
        g.remove(0);
    }
    g.push(Arc::new(formulas));
}

/// The newest registered generation that holds every formula of
/// `members`, if any.
fn registered_for(members: &[FusedActivation]) -> Option<Arc<Vec<FusedActivation>>> {
    let g = generations().lock().expect("generations");
    g.iter()
        .rev()
        .find(|gen| {
            members.iter().all(|m| {
                gen.iter()
                    .any(|f| f.inner.function.hash == m.inner.function.hash)
            })
        })
        .cloned()
}

fn msg(e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl PopulationActivation {
    /// Member `p` applies `members[p]`; equivalent formulas (same
    /// canonical hash) share one entry of the module. At least one member.
    pub fn new(members: &[FusedActivation]) -> crate::Result<PopulationActivation> {
        PopulationActivation::in_module(members, &[])
    }

    /// Member `p` applies `members[p]`, with `module`'s formulas first in
    /// the module, in their order (equivalent ones once), then the
    /// members' that are not among them: for members drawn from a
    /// generation in screening's order, the module is screening's. At
    /// least one member.
    pub fn in_module(
        members: &[FusedActivation],
        module: &[FusedActivation],
    ) -> crate::Result<PopulationActivation> {
        if members.is_empty() {
            return Err(crate::Error::Usage(
                "a population activation needs at least one member".into(),
            ));
        }
        let mut formulas: Vec<Arc<Inner>> = Vec::new();
        for m in module {
            if !formulas
                .iter()
                .any(|f| f.function.hash == m.inner.function.hash)
            {
                formulas.push(m.inner.clone());
            }
        }
        let mut ids = Vec::with_capacity(members.len());
        for m in members {
            let hash = m.inner.function.hash;
            let id = match formulas.iter().position(|f| f.function.hash == hash) {
                Some(i) => i,
                None => {
                    formulas.push(m.inner.clone());
                    formulas.len() - 1
                }
            };
            ids.push(id as u32);
        }
        Ok(PopulationActivation {
            inner: Arc::new(Members { formulas, ids }),
        })
    }

    /// The population of `acts` when every member can join one (fused
    /// formulas and GELU, as `gelu_like(x)`); `None` when one is composed.
    /// Its module is the newest registered generation that holds all its
    /// formulas ([`register_generation`]), else its own formulas.
    pub fn of(acts: &[Activation]) -> Option<PopulationActivation> {
        let members = acts
            .iter()
            .map(|a| match a {
                Activation::Fused(f) => Some(f.clone()),
                Activation::Gelu => Some(super::cpu_gelu().clone()),
                Activation::Composed(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        match registered_for(&members) {
            Some(gen) => PopulationActivation::in_module(&members, &gen).ok(),
            None => PopulationActivation::new(&members).ok(),
        }
    }

    /// P, the number of members (slices).
    pub fn size(&self) -> usize {
        self.inner.ids.len()
    }

    /// Each member's index in [`PopulationActivation::functions`].
    pub fn ids(&self) -> &[u32] {
        &self.inner.ids
    }

    /// The distinct formulas, in the module's order.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.inner.formulas.iter().map(|f| &f.function)
    }

    /// The generation's dispatch module of the members' formulas in
    /// `dtypes` ([`Module::generation`]): what the CUDA path compiles.
    /// When the members are a whole generation in screening's order, this
    /// is screening's module (same source, one compile).
    pub fn module(&self, dtypes: Vec<Dtype>) -> Module {
        Module::generation(dtypes, self.functions())
    }

    fn check(&self, x: &Tensor) -> candle_core::Result<()> {
        match x.dims().first() {
            Some(&p) if p == self.size() => Ok(()),
            _ => Err(msg(format!(
                "population activation of {} members applied to a tensor of shape {:?} (its first dimension must be the population)",
                self.size(),
                x.dims()
            ))),
        }
    }

    /// Slice `p` of `x [P, …]` through member `p`'s formula, differentiable
    /// (the backward is the population's fused derivative).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.check(x)?;
        x.apply_op1(self.clone())
    }

    /// `f_p(x + b)` for `x [P, N, F]` and a bias `b [P, 1, F]`: on the CPU
    /// the bias add is folded into the fused pass (forward and backward),
    /// as [`FusedActivation::forward_bias`] does; elsewhere candle's
    /// `broadcast_add` comes first.
    pub fn forward_bias(&self, x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        self.check(x)?;
        let (p, _, f) = x.dims3()?;
        if x.device().is_cpu() && b.dims() == [p, 1, f] && x.elem_count() > 0 {
            return x.apply_op2(b, PopulationBias(self.inner.clone()));
        }
        self.forward(&x.broadcast_add(b)?)
    }

    /// `dy · f_p'(x)` slice by slice directly (what autograd runs), for
    /// benchmarks and tests.
    pub fn backward(&self, x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        self.check(x)?;
        x.apply_op2_no_bwd(dy, &PopulationBackward(self.inner.clone()))
    }
}

/// The slices of a population and their launches: slices `range` of
/// `[P, n]` in one launch of the population kernel, with `ids` the
/// formula of each (by value; entries past the range are unused). At most
/// `max` (≤ [`MAX_SLICES`]) slices a launch; the CUDA path uses
/// [`MAX_SLICES`].
pub fn launches(ids: &[u32], max: usize) -> Vec<(Range<usize>, [u32; MAX_SLICES])> {
    let max = max.clamp(1, MAX_SLICES);
    (0..ids.len())
        .step_by(max)
        .map(|start| {
            let end = (start + max).min(ids.len());
            let mut s = [0u32; MAX_SLICES];
            s[..end - start].copy_from_slice(&ids[start..end]);
            (start..end, s)
        })
        .collect()
}

/// Runs `f(scratch, formula, start, block)` over `out` (`P` slices of
/// `per` elements) in fixed blocks of at most [`PAR_BLOCK`] elements per
/// slice, on candle's CPU pool when there is more than one block; `start`
/// is the block's first element in the whole tensor, `formula` the
/// slice's. Each task reuses its scratch while the formula stays the same.
fn par_slices<T: Send>(
    m: &Members,
    pass: Pass,
    per: usize,
    out: &mut [MaybeUninit<T>],
    f: impl Fn(&mut [f32], usize, usize, &mut [MaybeUninit<T>]) + Sync,
) {
    if per == 0 {
        return;
    }
    let per_slice = per.div_ceil(PAR_BLOCK);
    let tasks = m.ids.len() * per_slice;
    let shared = Shared::new(out);
    let run = |range: Range<usize>| {
        let mut scratch: Option<(usize, Vec<f32>)> = None;
        for t in range {
            let (p, b) = (t / per_slice, t % per_slice);
            let formula = m.ids[p] as usize;
            let start = p * per + b * PAR_BLOCK;
            let len = PAR_BLOCK.min(per - b * PAR_BLOCK);
            if scratch.as_ref().map(|(k, _)| *k) != Some(formula) {
                scratch = Some((formula, m.tape(pass, formula).scratch()));
            }
            let s = &mut scratch.as_mut().expect("set above").1;
            // SAFETY: task t owns elements start..start + len of slice p,
            // disjoint from every other task's, and each task runs once.
            f(s, formula, start, unsafe {
                shared.slice(start..start + len)
            });
        }
    };
    if tasks == 1 {
        return run(0..1);
    }
    candle_core::utils::barrier_pool().execute_chunked(tasks, run);
}

/// Which tape of a formula a pass runs.
#[derive(Clone, Copy)]
enum Pass {
    Fwd,
    Bwd,
}

impl Members {
    fn tape(&self, pass: Pass, formula: usize) -> &Tape {
        match pass {
            Pass::Fwd => &self.formulas[formula].fwd,
            Pass::Bwd => &self.formulas[formula].bwd,
        }
    }

    /// Elements per slice of a tensor of `n` elements.
    fn per(&self, n: usize, shape: &Shape) -> candle_core::Result<usize> {
        let p = self.ids.len();
        match shape.dims().first() {
            Some(&d) if d == p => Ok(n / p),
            _ => Err(msg(format!(
                "population activation of {p} members on a tensor of shape {shape:?}"
            ))),
        }
    }

    /// `y = f_p(x (+ shift))` slice by slice.
    fn map<T: Lane>(&self, x: &[T], per: usize, sh: Option<&Shift<T>>) -> Vec<T> {
        filled(x.len(), |y| {
            par_slices(self, Pass::Fwd, per, y, |s, k, start, yc| {
                let xc = &x[start..start + yc.len()];
                self.tape(Pass::Fwd, k)
                    .map_shifted_into(s, xc, sh.map(|sh| (sh, start)), yc);
            })
        })
    }

    /// `dx = dy · f_p'(x (+ shift))` slice by slice.
    fn map_mul<T: Lane>(&self, x: &[T], per: usize, sh: Option<&Shift<T>>, dy: &[T]) -> Vec<T> {
        assert_eq!(x.len(), dy.len(), "lengths differ");
        filled(x.len(), |dx| {
            par_slices(self, Pass::Bwd, per, dx, |s, k, start, dc| {
                let r = start..start + dc.len();
                let shf = sh.map(|sh| (sh, start));
                self.tape(Pass::Bwd, k)
                    .map_mul_shifted_into(s, &x[r.clone()], shf, &dy[r], dc);
            })
        })
    }
}

impl CustomOp1 for PopulationActivation {
    fn name(&self) -> &'static str {
        "actforge-population"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let m = &*self.inner;
        let mut keep = None;
        let (s, a, b) = contiguous_cpu(storage, layout, &mut keep)?;
        let per = m.per(b - a, layout.shape())?;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(m.map(&v[a..b], per, None)),
            CpuStorage::BF16(v) => CpuStorage::BF16(m.map(&v[a..b], per, None)),
            CpuStorage::F16(v) => CpuStorage::F16(m.map(&v[a..b], per, None)),
            other => return Err(unsupported(other.dtype())),
        };
        Ok((out, layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(&self.inner, storage, layout)
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dx = arg.apply_op2_no_bwd(grad_res, &PopulationBackward(self.inner.clone()))?;
        Ok(Some(dx))
    }
}

/// The population's backward: `(x, grad_out) → grad_out · f_p'(x)` on
/// slice `p`.
struct PopulationBackward(Arc<Members>);

impl CustomOp2 for PopulationBackward {
    fn name(&self) -> &'static str {
        "actforge-population-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            return Err(msg(format!(
                "population backward: x is {:?} but the gradient is {:?}",
                l1.shape(),
                l2.shape()
            )));
        }
        let m = &*self.0;
        let (mut k1, mut k2) = (None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (g, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let per = m.per(b1 - a1, l1.shape())?;
        let out = match (x, g) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => {
                CpuStorage::F32(m.map_mul(&x[a1..b1], per, None, &g[a2..b2]))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(g)) => {
                CpuStorage::BF16(m.map_mul(&x[a1..b1], per, None, &g[a2..b2]))
            }
            (CpuStorage::F16(x), CpuStorage::F16(g)) => {
                CpuStorage::F16(m.map_mul(&x[a1..b1], per, None, &g[a2..b2]))
            }
            (x, g) => return Err(mismatch("population backward", x.dtype(), g.dtype())),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::backward(&self.0, s1, l1, s2, l2)
    }
}

/// `(x [P, N, F], b [P, 1, F]) → f_p(x + b)` on the CPU; its backward is
/// [`PopulationBiasBackward`].
struct PopulationBias(Arc<Members>);

/// `(x, b, dy) → [dz, db]` flat: `dz = dy · f_p'(x + b)` followed by the
/// bias's gradient, `dz` summed over the rows of each member (in row
/// order, as the single op sums them).
struct PopulationBiasBackward(Arc<Members>);

impl CustomOp2 for PopulationBias {
    fn name(&self) -> &'static str {
        "actforge-population-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let m = &*self.0;
        let (mut k1, mut k2) = (None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (b, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let per = m.per(b1 - a1, l1.shape())?;
        let out = match (x, b) {
            (CpuStorage::F32(x), CpuStorage::F32(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F32(m.map(&x[a1..b1], per, Some(&sh)))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::BF16(m.map(&x[a1..b1], per, Some(&sh)))
            }
            (CpuStorage::F16(x), CpuStorage::F16(b)) => {
                let sh = shift(&b[a2..b2], l1)?;
                CpuStorage::F16(m.map(&x[a1..b1], per, Some(&sh)))
            }
            (x, b) => return Err(mismatch("population bias activation", x.dtype(), b.dtype())),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (p, n, f) = x.dims3()?;
        let op = PopulationBiasBackward(self.0.clone());
        let packed = x.apply_op3_no_bwd(b, grad_res, &op)?;
        let dx = packed.narrow(0, 0, p * n * f)?.reshape((p, n, f))?;
        let db = packed.narrow(0, p * n * f, p * f)?.reshape((p, 1, f))?;
        Ok((Some(dx), Some(db)))
    }
}

impl CustomOp3 for PopulationBiasBackward {
    fn name(&self) -> &'static str {
        "actforge-population-bias-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l3.shape() {
            return Err(msg(format!(
                "population backward: x is {:?} but the gradient is {:?}",
                l1.shape(),
                l3.shape()
            )));
        }
        let m = &*self.0;
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let (x, a1, b1) = contiguous_cpu(s1, l1, &mut k1)?;
        let (b, a2, b2) = contiguous_cpu(s2, l2, &mut k2)?;
        let (g, a3, b3) = contiguous_cpu(s3, l3, &mut k3)?;
        let per = m.per(b1 - a1, l1.shape())?;
        let out = match (x, b, g) {
            (CpuStorage::F32(x), CpuStorage::F32(b), CpuStorage::F32(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                let dz = m.map_mul(&x[a1..b1], per, Some(&sh), &g[a3..b3]);
                CpuStorage::F32(with_sums(dz, &sh))
            }
            (CpuStorage::BF16(x), CpuStorage::BF16(b), CpuStorage::BF16(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                let dz = m.map_mul(&x[a1..b1], per, Some(&sh), &g[a3..b3]);
                CpuStorage::BF16(with_sums(dz, &sh))
            }
            (CpuStorage::F16(x), CpuStorage::F16(b), CpuStorage::F16(g)) => {
                let sh = shift(&b[a2..b2], l1)?;
                let dz = m.map_mul(&x[a1..b1], per, Some(&sh), &g[a3..b3]);
                CpuStorage::F16(with_sums(dz, &sh))
            }
            (x, _, g) => return Err(mismatch("population bias backward", x.dtype(), g.dtype())),
        };
        let (p, n, f) = l1.shape().dims3()?;
        Ok((out, Shape::from(p * n * f + p * f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    const FORMULAS: [&str; 4] = [
        "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))",
        "tanh(x) + 0.1 * x",
        "x * sigmoid_like(x)",
        "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))",
    ];

    fn fused(i: usize) -> FusedActivation {
        FusedActivation::new(FORMULAS[i]).unwrap()
    }

    /// Deterministic values over about [-6, 6] (specials included).
    fn values(n: usize, salt: f64) -> Vec<f32> {
        (0..n)
            .map(|i| match i % 17 {
                3 => 0.0,
                11 => -40.0,
                _ => (-6.0 + 12.0 * ((i as f64 + salt) * 0.618_033_988_75).fract()) as f32,
            })
            .collect()
    }

    fn tensor(v: Vec<f32>, dims: &[usize], dtype: DType) -> Tensor {
        Tensor::from_vec(v, dims, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
            .collect()
    }

    /// Output, dx and db of `y = act(x [+ b])` under the loss `Σ y · w`.
    fn run(
        apply: &dyn Fn(&Tensor, Option<&Tensor>) -> candle_core::Result<Tensor>,
        x: &Tensor,
        b: Option<&Tensor>,
        w: &Tensor,
    ) -> (Tensor, Tensor, Option<Tensor>) {
        let xv = Var::from_tensor(x).unwrap();
        let bv = b.map(|b| Var::from_tensor(b).unwrap());
        let y = apply(xv.as_tensor(), bv.as_ref().map(|v| v.as_tensor())).unwrap();
        let g = (&y * w).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = g.get(xv.as_tensor()).unwrap().clone();
        let db = bv.map(|v| g.get(v.as_tensor()).unwrap().clone());
        (y, dx, db)
    }

    /// Each slice of the population op equals member p's single fused op
    /// on that slice alone, bit for bit: values, dx and (with a bias) db,
    /// for every dtype, with slices longer than one parallel block and
    /// repeated formulas.
    fn equals_single_ops(dtype: DType, ids: &[usize], (n, f): (usize, usize), bias: bool) {
        let p = ids.len();
        let members: Vec<FusedActivation> = ids.iter().map(|&i| fused(i)).collect();
        let pop = PopulationActivation::new(&members).unwrap();
        let x = tensor(values(p * n * f, 0.0), &[p, n, f], dtype);
        let w = tensor(values(p * n * f, 0.37), &[p, n, f], dtype);
        let b = tensor(values(p * f, 0.71), &[p, 1, f], dtype);
        let b = bias.then_some(&b);
        let (y, dx, db) = run(
            &|x, b| match b {
                Some(b) => pop.forward_bias(x, b),
                None => pop.forward(x),
            },
            &x,
            b,
            &w,
        );
        for (j, m) in members.iter().enumerate() {
            let one = |t: &Tensor| t.narrow(0, j, 1).unwrap().contiguous().unwrap();
            let (y1, dx1, db1) = run(
                &|x, b| match b {
                    Some(b) => m.forward_bias(x, b),
                    None => m.forward(x),
                },
                &one(&x),
                b.map(one).as_ref(),
                &one(&w),
            );
            let ctx = format!("{dtype:?} slice {j} ({}) bias {bias}", m.formula());
            assert_eq!(bits(&one(&y)), bits(&y1), "{ctx}: values");
            assert_eq!(bits(&one(&dx)), bits(&dx1), "{ctx}: dx");
            if let (Some(db), Some(db1)) = (&db, &db1) {
                assert_eq!(bits(&one(db)), bits(db1), "{ctx}: db");
            }
        }
    }

    #[test]
    fn every_slice_equals_its_single_op_in_every_dtype() {
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            for bias in [false, true] {
                equals_single_ops(dtype, &[2, 0, 2, 3, 1], (7, 13), bias);
            }
        }
        // Slices of more than one parallel block (PAR_BLOCK elements).
        let big = (PAR_BLOCK + 1000).div_ceil(97);
        equals_single_ops(DType::F32, &[1, 3, 0], (big, 97), true);
        equals_single_ops(DType::BF16, &[3, 1], (big, 97), false);
    }

    /// A population drawn from a registered generation takes the
    /// generation's module (the formulas in screening's order, so the same
    /// CUDA source and kernel-cache key as screening's compile), and its
    /// values are the same bits as with a module of its own.
    #[test]
    fn a_population_of_a_registered_generation_loads_its_module() {
        // Formulas no other test of this file uses (the registry is
        // process-wide).
        let texts = [
            "x - 0.25 * tanh(x)",
            "x * 0.5 + sin(x)",
            "softsign(x) + x * x",
        ];
        let gen: Vec<FusedActivation> = texts
            .iter()
            .map(|t| FusedActivation::new(t).unwrap())
            .collect();
        let acts = [
            Activation::Fused(gen[2].clone()),
            Activation::Fused(gen[0].clone()),
        ];
        let own = PopulationActivation::of(&acts).unwrap();
        assert_eq!(own.ids(), [0, 1]);
        register_generation(gen.clone());
        let pop = PopulationActivation::of(&acts).unwrap();
        assert_eq!(pop.ids(), [2, 0]);
        let want = Module::generation(vec![Dtype::F32], gen.iter().map(|f| f.function()));
        assert_eq!(pop.module(vec![Dtype::F32]).source(), want.source());
        assert_ne!(own.module(vec![Dtype::F32]).source(), want.source());
        let x = tensor(values(2 * 300, 0.5), &[2, 300], DType::F32);
        let dy = tensor(values(2 * 300, 1.5), &[2, 300], DType::F32);
        assert_eq!(
            bits(&pop.forward(&x).unwrap()),
            bits(&own.forward(&x).unwrap())
        );
        assert_eq!(
            bits(&pop.backward(&x, &dy).unwrap()),
            bits(&own.backward(&x, &dy).unwrap())
        );
        // A member outside every registered generation: its own module.
        let outside = FusedActivation::new("x * 0.75 + cos(x) * 0.125").unwrap();
        let mixed = PopulationActivation::of(&[acts[0].clone(), Activation::Fused(outside)]);
        assert_eq!(mixed.unwrap().ids(), [0, 1]);
    }

    #[test]
    fn members_share_formulas_and_composed_ones_do_not_join() {
        let acts = [
            Activation::Fused(fused(1)),
            Activation::Gelu,
            Activation::Fused(fused(1)),
            Activation::parse("fused:gelu_like(x)").unwrap(),
            Activation::Fused(fused(0)),
        ];
        let pop = PopulationActivation::of(&acts).unwrap();
        assert_eq!(pop.size(), 5);
        // GELU is gelu_like(x): the fourth member shares its formula.
        assert_eq!(pop.ids(), [0, 1, 0, 1, 2]);
        assert_eq!(pop.functions().count(), 3);
        let m = pop.module(vec![Dtype::F32]);
        assert_eq!(m.len(), 3);
        assert_eq!(m.index_of(fused(0).function().hash), Some(2));
        let composed = Activation::parse(&format!("composed:{}", FORMULAS[1])).unwrap();
        assert!(PopulationActivation::of(&[acts[0].clone(), composed]).is_none());
        assert!(PopulationActivation::new(&[]).is_err());
        // The first dimension must be the population.
        let x = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
        let e = pop.forward(&x).unwrap_err().to_string();
        assert!(e.contains("5 members") && e.contains("[4, 3]"), "{e}");
    }

    #[test]
    fn launches_cover_every_slice_in_order_at_most_max_each() {
        let ids: Vec<u32> = (0..600).map(|i| (i * 7 % 5) as u32).collect();
        let l = launches(&ids, MAX_SLICES);
        assert_eq!(
            l.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
            [0..256, 256..512, 512..600]
        );
        for (r, s) in &l {
            assert_eq!(&s[..r.len()], &ids[r.clone()]);
        }
        assert_eq!(launches(&ids[..3], 2).len(), 2);
        assert!(launches(&[], MAX_SLICES).is_empty());
    }
}
