//! The AdamW update as one in-place CPU pass over a parameter, its
//! gradient and its two moments (decoupled weight decay, bias correction
//! and the clipping factor included), in the f32 arithmetic of the
//! composed chain of `fitness::optim` operation for operation, so both give
//! the same bits. The parameter is updated inside its candle storage (an
//! in-place op, no new tensor); the moments live in host vectors.

use std::cell::RefCell;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor};

use super::cpu::{f32s, msg, simd_fn};

/// The scalars of one step, as the composed chain rounds them to f32
/// (candle's `t * s` is `affine(s, 0)`, `t / s` is `affine(1 / s, 0)`,
/// `t + s` is `affine(1, s)`, each scalar rounded to the tensor's dtype).
#[derive(Clone, Copy, Debug)]
pub struct AdamWScalars {
    /// The clipping factor, when it is not 1.
    pub scale: Option<f32>,
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `1 / (1 − β₁ᵗ)` and `1 / (1 − β₂ᵗ)`.
    pub inv_c1: f32,
    pub inv_c2: f32,
    pub eps: f32,
    /// `1 − lr · weight_decay` for a decayed parameter.
    pub decay: Option<f32>,
    pub lr: f32,
}

impl AdamWScalars {
    /// From the f64 settings, rounded as the composed chain rounds them.
    pub fn new(
        scale: f64,
        betas: (f64, f64),
        (c1, c2): (f64, f64),
        eps: f64,
        decay: Option<f64>,
        lr: f64,
    ) -> AdamWScalars {
        AdamWScalars {
            scale: (scale != 1.0).then_some(scale as f32),
            beta1: betas.0 as f32,
            one_minus_beta1: (1.0 - betas.0) as f32,
            beta2: betas.1 as f32,
            one_minus_beta2: (1.0 - betas.1) as f32,
            inv_c1: (1.0 / c1) as f32,
            inv_c2: (1.0 / c2) as f32,
            eps: eps as f32,
            decay: decay.map(|d| d as f32),
            lr: lr as f32,
        }
    }
}

simd_fn! {
    /// The update of every element, in the composed chain's order.
    fn update(k: AdamWScalars, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((pi, &g), mi), vi) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = match k.scale {
                Some(s) => g * s + 0.0,
                None => g,
            };
            *mi = (*mi * k.beta1 + 0.0) + (gi * k.one_minus_beta1 + 0.0);
            *vi = (*vi * k.beta2 + 0.0) + ((gi * gi) * k.one_minus_beta2 + 0.0);
            let m_hat = *mi * k.inv_c1 + 0.0;
            let v_hat = *vi * k.inv_c2 + 0.0;
            let u = m_hat / (v_hat.sqrt() * 1.0 + k.eps);
            let decayed = match k.decay {
                Some(d) => *pi * d + 0.0,
                None => *pi,
            };
            *pi = decayed - (u * k.lr + 0.0);
        }
    }
}

/// The in-place op: the parameter is the destination, the gradient the
/// source, the moments ride along.
struct Update<'a> {
    /// The scalars of each of the parameter's equal slices along its first
    /// dimension (one for a single model; a population's members, `None`
    /// for a member left alone).
    ks: Vec<Option<AdamWScalars>>,
    moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "actforge-adamw"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<()> {
        let g = f32s(self.name(), gs, gl)?;
        let CpuStorage::F32(p) = dst else {
            return Err(msg(format!(
                "AdamW: the parameter is {:?}, not f32",
                dst.dtype()
            )));
        };
        let Some((a, b)) = dst_l.contiguous_offsets() else {
            return Err(msg("AdamW: the parameter is not contiguous"));
        };
        let mut mv = self.moments.borrow_mut();
        let (m, v) = &mut *mv;
        let p = &mut p[a..b];
        if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
            return Err(msg(
                "AdamW: the gradient or the moments do not match the parameter",
            ));
        }
        let per = p.len() / self.ks.len().max(1);
        if per * self.ks.len() != p.len() {
            return Err(msg(format!(
                "AdamW: {} elements do not split into {} members",
                p.len(),
                self.ks.len()
            )));
        }
        for (i, k) in self.ks.iter().enumerate() {
            if let Some(k) = *k {
                let r = i * per..(i + 1) * per;
                update(
                    k,
                    &mut p[r.clone()],
                    &g[r.clone()],
                    &mut m[r.clone()],
                    &mut v[r],
                );
            }
        }
        Ok(())
    }
}

/// Can `param` be updated in place (f32, contiguous, on the CPU)?
pub fn in_place(param: &Tensor) -> bool {
    super::fusable(param) && param.is_contiguous()
}

/// One AdamW step of `param` (in place) and its moments `m`, `v` (host,
/// as many elements as the parameter) from `grad`.
pub fn step(
    param: &Tensor,
    grad: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
    k: AdamWScalars,
) -> candle_core::Result<()> {
    if grad.dims() != param.dims() {
        return Err(msg(format!(
            "AdamW: the gradient is {:?} but the parameter is {:?}",
            grad.dims(),
            param.dims()
        )));
    }
    step_members(param, grad, m, v, &[Some(k)])
}

/// One AdamW step of a population's parameter `[P, …]` (in place) and its
/// moments: member `p`'s slice with `ks[p]` (its own clipping factor),
/// or left alone, moments too, when `ks[p]` is `None`. One op for all
/// members; each slice gets exactly what [`step`] gives a single model.
pub fn step_members(
    param: &Tensor,
    grad: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
    ks: &[Option<AdamWScalars>],
) -> candle_core::Result<()> {
    if grad.dims() != param.dims() {
        return Err(msg(format!(
            "AdamW: the gradient is {:?} but the parameter is {:?}",
            grad.dims(),
            param.dims()
        )));
    }
    if param.dims().first() != Some(&ks.len()) && ks.len() != 1 {
        return Err(msg(format!(
            "AdamW: {} members for a parameter of shape {:?}",
            ks.len(),
            param.dims()
        )));
    }
    let op = Update {
        ks: ks.to_vec(),
        moments: RefCell::new((m, v)),
    };
    param.inplace_op2(grad, &op)
}
