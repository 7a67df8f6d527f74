//! AdamW with a state we can checkpoint, the learning-rate schedule
//! (linear warm-up, then cosine decay) and clipping by the global norm.
//!
//! candle-nn's `AdamW` keeps its moments private, so a killed run could
//! not resume to the same result; this one exposes them as named tensors.
//!
//! f32 parameters on the CPU are updated by one in-place pass each
//! ([`crate::op::adamw`], moments in host vectors); others by the composed
//! chain of candle ops below, which defines the arithmetic: both give the
//! same bits (tested).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::op::adamw::{self, AdamWScalars};

/// AdamW hyper-parameters (decoupled weight decay, as in Loshchilov &
/// Hutter; PyTorch's `torch.optim.AdamW` semantics).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One optimised parameter and its two moment estimates.
struct Slot {
    name: String,
    var: Var,
    moments: Moments,
    decay: bool,
}

/// The first and second moment of a parameter.
enum Moments {
    /// Host vectors, updated in place with the parameter (f32 on the CPU).
    Host(Vec<f32>, Vec<f32>),
    /// Tensors on the parameter's device, replaced each step.
    Tensors(Tensor, Tensor),
}

/// How [`AdamW`] updates its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// One in-place pass per parameter where it is f32 on the CPU, the
    /// composed chain elsewhere.
    Fused,
    /// Always the composed chain of candle ops (the oracle of the tests).
    Composed,
}

/// AdamW over a fixed, named set of parameters.
pub struct AdamW {
    slots: Vec<Slot>,
    cfg: AdamWConfig,
    step: u64,
    /// In-place update calls so far ([`AdamW::in_place_updates`]).
    in_place: u64,
}

/// Whether a parameter gets weight decay: matrices do, norms and biases
/// (by name) do not.
pub fn decays(name: &str, var: &Var) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower.contains("norm") || lower.contains("bias") || lower.contains("ln_"))
        && var.dims().iter().filter(|&&d| d > 1).count() >= 2
}

impl AdamW {
    /// Parameters are taken in the given order; the caller passes them
    /// sorted by name so that a checkpoint maps back unambiguously.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> candle_core::Result<AdamW> {
        AdamW::with_update(params, cfg, Update::Fused)
    }

    /// [`AdamW::new`] with the update path chosen.
    pub fn with_update(
        params: Vec<(String, Var)>,
        cfg: AdamWConfig,
        update: Update,
    ) -> candle_core::Result<AdamW> {
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let moments = if update == Update::Fused && adamw::in_place(var.as_tensor()) {
                    let n = var.elem_count();
                    Moments::Host(vec![0.0; n], vec![0.0; n])
                } else {
                    let zeros = var.as_tensor().zeros_like()?;
                    Moments::Tensors(zeros.clone(), zeros)
                };
                Ok(Slot {
                    decay: decays(&name, &var),
                    name,
                    moments,
                    var,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(AdamW {
            slots,
            cfg,
            step: 0,
            in_place: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// In-place update ops run so far (one per parameter and step on the
    /// fused path, one per member and parameter for a population whose
    /// clipping factors differ): candle ops that create no tensor, which
    /// `bench-step` adds to its op counts.
    pub fn in_place_updates(&self) -> u64 {
        self.in_place
    }

    /// One update with learning rate `lr`; `scale` multiplies every
    /// gradient first (the clipping factor). A parameter without a
    /// gradient is left alone, but its moments still decay, as in PyTorch
    /// when a gradient is zero.
    pub fn step(&mut self, grads: &GradStore, lr: f64, scale: f64) -> candle_core::Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            // A gradient may still reference the step's forward graph
            // (candle detaches the gradient flowing backwards, not every
            // sum it stores); without `detach` the moments would chain
            // every step's graph to the next and memory would grow by a
            // whole forward pass per step.
            let g = g.detach();
            let decay = (s.decay && self.cfg.weight_decay > 0.0)
                .then_some(1.0 - lr * self.cfg.weight_decay);
            match &mut s.moments {
                Moments::Host(m, v) => {
                    let k = AdamWScalars::new(scale, (b1, b2), (c1, c2), self.cfg.eps, decay, lr);
                    adamw::step(s.var.as_tensor(), &g, m, v, k)?;
                    self.in_place += 1;
                }
                Moments::Tensors(m, v) => {
                    let g = if scale == 1.0 { g } else { (g * scale)? };
                    *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?.detach();
                    *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach();
                    let m_hat = (&*m / c1)?;
                    let v_hat = (&*v / c2)?;
                    let update = (m_hat / (v_hat.sqrt()? + self.cfg.eps)?)?;
                    let decayed = match decay {
                        Some(d) => (s.var.as_tensor() * d)?,
                        None => s.var.as_tensor().clone(),
                    };
                    s.var.set(&(decayed - (update * lr)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// One update of a lockstep population (every parameter `[P, …]`):
    /// member `p` is updated with its own clipping factor `scales[p]`, or
    /// left alone, parameter and moments, when `scales[p]` is `None` (a
    /// member frozen at its failure). Member `p`'s slice gets exactly the
    /// arithmetic [`AdamW::step`] gives a single model with `scales[p]`.
    pub fn step_members(
        &mut self,
        grads: &GradStore,
        lr: f64,
        scales: &[Option<f64>],
    ) -> candle_core::Result<()> {
        if scales.iter().all(|s| *s == Some(1.0)) {
            return self.step(grads, lr, 1.0);
        }
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        let pop = scales.len();
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            let g = g.detach();
            if s.var.dims().first() != Some(&pop) {
                return Err(candle_core::Error::Msg(format!(
                    "lockstep AdamW: parameter `{}` is {:?}, not [{pop}, …]",
                    s.name,
                    s.var.dims()
                )));
            }
            let decay = (s.decay && self.cfg.weight_decay > 0.0)
                .then_some(1.0 - lr * self.cfg.weight_decay);
            match &mut s.moments {
                Moments::Host(m, v) => {
                    let (eps, betas, cs) = (self.cfg.eps, (b1, b2), (c1, c2));
                    let ks: Vec<Option<AdamWScalars>> = scales
                        .iter()
                        .map(|s| s.map(|s| AdamWScalars::new(s, betas, cs, eps, decay, lr)))
                        .collect();
                    adamw::step_members(s.var.as_tensor(), &g, m, v, &ks)?;
                    self.in_place += 1;
                }
                Moments::Tensors(m, v) => {
                    // One chain over the whole population (one kernel per
                    // op on a GPU): the factors as a [P, 1, …] tensor, the
                    // frozen members put back by a mask.
                    let mut shape = vec![1usize; s.var.rank()];
                    shape[0] = pop;
                    let dev = s.var.device();
                    let f: Vec<f32> = scales.iter().map(|s| s.unwrap_or(0.0) as f32).collect();
                    let factor = Tensor::from_vec(f, shape.as_slice(), dev)?.to_dtype(g.dtype())?;
                    let keep: Vec<u8> = scales.iter().map(|s| s.is_some() as u8).collect();
                    let keep = Tensor::from_vec(keep, shape.as_slice(), dev)?
                        .broadcast_as(s.var.shape())?;
                    let g = g.broadcast_mul(&factor)?;
                    let m_new = ((&*m * b1)? + (&g * (1.0 - b1))?)?.detach();
                    let v_new = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach();
                    let m_hat = (&m_new / c1)?;
                    let v_hat = (&v_new / c2)?;
                    let update = (m_hat / (v_hat.sqrt()? + self.cfg.eps)?)?;
                    let decayed = match decay {
                        Some(d) => (s.var.as_tensor() * d)?,
                        None => s.var.as_tensor().clone(),
                    };
                    let new = (decayed - (update * lr)?)?;
                    let new = keep.where_cond(&new, s.var.as_tensor())?.detach();
                    *m = keep.where_cond(&m_new, m)?.detach();
                    *v = keep.where_cond(&v_new, v)?.detach();
                    s.var.set(&new)?;
                }
            }
        }
        Ok(())
    }

    /// The moments and the step count as named tensors (`adam_m.NAME`,
    /// `adam_v.NAME`, `adam_step`), for a checkpoint.
    pub fn state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let (m, v) = s.moments.tensors(&s.var)?;
            out.insert(format!("adam_m.{}", s.name), m);
            out.insert(format!("adam_v.{}", s.name), v);
        }
        let dev = self
            .slots
            .first()
            .map(|s| s.var.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        // u64 fits exactly in two u32 halves; safetensors has no u64 here.
        let halves = [(self.step >> 32) as u32, self.step as u32];
        out.insert(
            "adam_step".into(),
            Tensor::from_slice(&halves, 2, &candle_core::Device::Cpu)?.to_device(&dev)?,
        );
        Ok(out)
    }

    /// Restore what [`AdamW::state`] saved. Every slot must be present with
    /// its shape: a checkpoint from another model is an error.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<(), String> {
        for s in &mut self.slots {
            let mut loaded = Vec::with_capacity(2);
            for key in ["adam_m", "adam_v"] {
                let name = format!("{key}.{}", s.name);
                let t = state
                    .get(&name)
                    .ok_or_else(|| format!("the checkpoint has no `{name}`"))?;
                if t.dims() != s.var.dims() {
                    return Err(format!(
                        "`{name}` has shape {:?} in the checkpoint, {:?} in the model",
                        t.dims(),
                        s.var.dims()
                    ));
                }
                loaded.push(t);
            }
            s.moments
                .load(loaded[0], loaded[1], &s.var)
                .map_err(|e| e.to_string())?;
        }
        let step = state
            .get("adam_step")
            .ok_or("the checkpoint has no `adam_step`")?
            .to_dtype(DType::U32)
            .and_then(|t| t.to_vec1::<u32>())
            .map_err(|e| e.to_string())?;
        if step.len() != 2 {
            return Err("`adam_step` must hold two u32 halves".into());
        }
        self.step = ((step[0] as u64) << 32) | step[1] as u64;
        Ok(())
    }
}

impl Moments {
    /// Both moments as tensors of the parameter's shape, dtype and device.
    fn tensors(&self, var: &Var) -> candle_core::Result<(Tensor, Tensor)> {
        Ok(match self {
            Moments::Host(m, v) => {
                let t = |x: &[f32]| Tensor::from_slice(x, var.shape(), var.device());
                (t(m)?, t(v)?)
            }
            Moments::Tensors(m, v) => (m.clone(), v.clone()),
        })
    }

    /// Replace both with saved tensors (already checked for shape).
    fn load(&mut self, m: &Tensor, v: &Tensor, var: &Var) -> candle_core::Result<()> {
        match self {
            Moments::Host(hm, hv) => {
                *hm = m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                *hv = v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            }
            Moments::Tensors(tm, tv) => {
                let put = |t: &Tensor| t.to_dtype(var.dtype())?.to_device(var.device());
                *tm = put(m)?;
                *tv = put(v)?;
            }
        }
        Ok(())
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warm-up over
/// `warmup` steps from `peak / warmup` to `peak`, then cosine decay to
/// `peak * min_ratio` at the last step.
pub fn learning_rate(step: u64, total: u64, warmup: u64, peak: f64, min_ratio: f64) -> f64 {
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let done = (step.saturating_sub(warmup) as f64 / span as f64).min(1.0);
    let floor = peak * min_ratio;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
}

/// The global L2 norm of the gradients of `vars` (those that have one),
/// and the factor that brings it down to `max_norm` (1 when it is below;
/// also 1 when `max_norm` is not positive, which turns clipping off).
/// A non-finite norm is returned as is, with factor 1: the caller treats
/// it as a failed step.
pub fn clip_factor(
    grads: &GradStore,
    vars: &[&Var],
    max_norm: f64,
) -> candle_core::Result<(f64, f64)> {
    let mut total: Option<Tensor> = None;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            let s = g.to_dtype(DType::F32)?.sqr()?.sum_all()?;
            total = Some(match total {
                None => s,
                Some(t) => (t + s)?,
            });
        }
    }
    let norm = match total {
        None => 0.0,
        Some(t) => (t.to_scalar::<f32>()? as f64).sqrt(),
    };
    let factor = if max_norm > 0.0 && norm.is_finite() && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    };
    Ok((norm, factor))
}

/// [`clip_factor`] per member of a lockstep population (every gradient
/// `[P, …]`): member `p`'s norm over its slices of the gradients, and its
/// factor.
pub fn clip_factors(
    grads: &GradStore,
    vars: &[&Var],
    max_norm: f64,
    population: usize,
) -> candle_core::Result<Vec<(f64, f64)>> {
    let mut total: Option<Tensor> = None;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            let s = g
                .to_dtype(DType::F32)?
                .sqr()?
                .reshape((population, ()))?
                .sum(1)?;
            total = Some(match total {
                None => s,
                Some(t) => (t + s)?,
            });
        }
    }
    let sums = match total {
        None => vec![0f32; population],
        Some(t) => t.to_vec1::<f32>()?,
    };
    Ok(sums
        .into_iter()
        .map(|s| {
            let norm = (s as f64).sqrt();
            let factor = if max_norm > 0.0 && norm.is_finite() && norm > max_norm {
                max_norm / norm
            } else {
                1.0
            };
            (norm, factor)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The moments hold values, never a graph: with a gradient that still
    /// references its forward pass, a tracked moment would keep every
    /// step's activations alive (memory grew ~29 MB per step on gpt-micro).
    #[test]
    fn moments_do_not_keep_the_graph_alive() {
        let dev = Device::Cpu;
        let w1 = Var::new(&[[1f32, -2.0], [3.0, 4.0]], &dev).unwrap();
        let w2 = Var::new(&[[0.5f32], [-0.25]], &dev).unwrap();
        let x = Tensor::new(&[[1f32, 2.0], [-1.0, 0.5]], &dev).unwrap();
        let mut opt = AdamW::new(
            vec![("w1".into(), w1.clone()), ("w2".into(), w2.clone())],
            AdamWConfig::default(),
        )
        .unwrap();
        for step in 0..3 {
            // w2's gradient is hᵀ·dy with h from the forward pass: candle
            // returns it still attached to that graph.
            let h = x.matmul(w1.as_tensor()).unwrap().relu().unwrap();
            let loss = h
                .matmul(w2.as_tensor())
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            if step == 0 {
                assert!(
                    grads.get(w2.as_tensor()).unwrap().track_op(),
                    "the case this test exists for: a gradient attached to its graph"
                );
            }
            opt.step(&grads, 1e-2, 0.5).unwrap();
        }
        for (name, t) in opt.state().unwrap() {
            assert!(!t.track_op(), "{name} is part of a graph");
        }
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let lr = |s| learning_rate(s, 100, 10, 1.0, 0.1);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(100) - 0.1).abs() < 1e-12);
        assert!(lr(50) < lr(20) && lr(50) > lr(90));
        // No warm-up, one step: the peak.
        assert!((learning_rate(0, 1, 0, 2.0, 0.0) - 2.0).abs() < 1e-12);
    }

    /// One AdamW step by hand: m = (1-b1) g, v = (1-b2) g², the bias
    /// correction makes the first update lr·sign(g) (plus decay).
    #[test]
    fn first_step_matches_the_formula() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0], [3.0, 0.5]], &dev)?)?;
        let loss =
            (w.as_tensor() * Tensor::new(&[[2.0f32, -1.0], [0.5, 4.0]], &dev)?)?.sum_all()?;
        let grads = loss.backward()?;
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg.clone())?;
        opt.step(&grads, 0.01, 1.0)?;
        let got = w.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let start = [1.0f64, -2.0, 3.0, 0.5];
        let g = [2.0f64, -1.0, 0.5, 4.0];
        for i in 0..4 {
            let want = start[i] * (1.0 - 0.01 * 0.1) - 0.01 * g[i] / (g[i].abs() + cfg.eps);
            assert!(
                (got[i] as f64 - want).abs() < 1e-6,
                "{i}: {} vs {want}",
                got[i]
            );
        }
        Ok(())
    }

    #[test]
    fn state_round_trips_and_rejects_other_models() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0, 3.0], &dev)?)?;
        let grads = (w.as_tensor().sqr()?.sum_all()?).backward()?;
        let mut a = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default())?;
        a.step(&grads, 0.1, 1.0)?;
        a.step(&grads, 0.1, 1.0)?;
        let state = a.state()?;
        let w2 = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0, 3.0], &dev)?)?;
        let mut b = AdamW::new(vec![("w".into(), w2)], AdamWConfig::default())?;
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 2);
        let other = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &dev)?)?;
        let mut c = AdamW::new(vec![("w".into(), other)], AdamWConfig::default())?;
        assert!(c.load_state(&state).unwrap_err().contains("shape"));
        let mut d = AdamW::new(
            vec![(
                "u".into(),
                Var::from_tensor(&Tensor::new(&[1.0f32], &dev)?)?,
            )],
            AdamWConfig::default(),
        )?;
        assert!(d.load_state(&state).unwrap_err().contains("adam_m.u"));
        Ok(())
    }

    #[test]
    fn clipping_scales_to_the_max_norm() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[3.0f32, 4.0], &dev)?)?;
        // d/dw of 0.5·|w|² is w: norm 5.
        let grads = ((w.as_tensor().sqr()?.sum_all()? * 0.5)?).backward()?;
        let (norm, f) = clip_factor(&grads, &[&w], 1.0)?;
        assert!((norm - 5.0).abs() < 1e-6 && (f - 0.2).abs() < 1e-6);
        let (_, f) = clip_factor(&grads, &[&w], 10.0)?;
        assert_eq!(f, 1.0);
        let (_, f) = clip_factor(&grads, &[&w], 0.0)?;
        assert_eq!(f, 1.0);
        Ok(())
    }

    /// A population update: member p as a single model with its own
    /// factor, a frozen member (None) untouched, parameter and moments, and
    /// the in-place and composed paths alike; the per-member norms are
    /// each member's own.
    #[test]
    fn members_update_as_single_models_and_frozen_ones_stay() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let start = Tensor::new(
            &[
                [[1.0f32, -2.0], [3.0, 0.5]],
                [[0.1, 0.2], [0.3, 0.4]],
                [[-1.0, 2.0], [0.5, -0.5]],
            ],
            &dev,
        )?;
        let coef = Tensor::new(
            &[
                [[2.0f32, -1.0], [0.5, 4.0]],
                [[1.0, 1.0], [1.0, 1.0]],
                [[-3.0, 0.25], [1.5, 2.0]],
            ],
            &dev,
        )?;
        let scales = [Some(1.0), None, Some(0.5)];
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..Default::default()
        };
        let mut results = Vec::new();
        for update in [Update::Fused, Update::Composed] {
            let w = Var::from_tensor(&start)?;
            let mut opt = AdamW::with_update(vec![("w".into(), w.clone())], cfg.clone(), update)?;
            for _ in 0..3 {
                let grads = (w.as_tensor() * &coef)?.sqr()?.sum_all()?.backward()?;
                let norms = clip_factors(&grads, &[&w], 1e9, 3)?;
                let g = grads.get(w.as_tensor()).unwrap();
                for (p, (n, f)) in norms.iter().enumerate() {
                    let want = g.get(p)?.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64;
                    assert!((n - want).abs() <= 1e-6 * want, "{n} vs {want}");
                    assert_eq!(*f, 1.0);
                }
                opt.step_members(&grads, 0.01, &scales)?;
            }
            let state = opt.state()?;
            results.push((w.as_tensor().clone(), state["adam_m.w"].clone()));
        }
        // Each live member equals a single model trained with its factor.
        for p in [0usize, 2] {
            let w = Var::from_tensor(&start.get(p)?)?;
            let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg.clone())?;
            for _ in 0..3 {
                let grads = (w.as_tensor() * coef.get(p)?)?
                    .sqr()?
                    .sum_all()?
                    .backward()?;
                opt.step(&grads, 0.01, scales[p].unwrap())?;
            }
            for (pop, _) in &results {
                let got = pop.get(p)?.flatten_all()?.to_vec1::<f32>()?;
                let want = w.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                assert_eq!(got, want, "member {p}");
            }
        }
        for (pop, m) in &results {
            let frozen = pop.get(1)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(frozen, start.get(1)?.flatten_all()?.to_vec1::<f32>()?);
            assert_eq!(m.get(1)?.flatten_all()?.to_vec1::<f32>()?, vec![0.0; 4]);
        }
        Ok(())
    }

    #[test]
    fn decay_skips_norms_biases_and_vectors() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let mat = Var::from_tensor(&Tensor::zeros((1, 4, 4), DType::F32, &dev)?)?;
        let vec = Var::from_tensor(&Tensor::zeros((1, 4), DType::F32, &dev)?)?;
        assert!(decays("h.0.mlp.w1", &mat));
        assert!(!decays("h.0.norm1.weight", &mat));
        assert!(!decays("h.0.mlp.b1", &vec));
        Ok(())
    }
}
