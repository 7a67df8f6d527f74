//! The composed path: the same (simplified) formula as a chain of candle
//! tensor ops, one op per IR node, differentiated by candle's autograd. It is
//! the baseline of the benchmarks and the oracle of the fused op's tests.

use candle_core::Tensor;

use crate::diff::Function;
use crate::ir::{Graph, Id, Node, Op};
use crate::simplify::interval;

/// The longest chain of candle ops the composed path builds for an input
/// that autograd tracks. candle's graph walk in `backward` and the drop of
/// the recorded graph recurse once per op; on a 2 MiB thread stack they
/// overflowed at about 10,000 chained ops here, so deeper formulas are an
/// error with a tracked input (the fused path has no such limit).
pub const MAX_TRACKED_DEPTH: usize = 2_000;

/// A formula evaluated op by op with candle.
#[derive(Clone)]
pub struct ComposedActivation {
    formula: String,
    function: Function,
    /// Per node of the function's graph: may its value be NaN? (Where
    /// candle's `maximum`/`minimum` need help to follow PRIMITIVES.md.)
    may_be_nan: Vec<bool>,
    /// candle ops on the longest path of the formula.
    depth: usize,
}

/// A node's value: a tensor, or a scalar constant not yet broadcast.
#[derive(Clone)]
enum Val {
    T(Tensor),
    S(f64),
}

impl ComposedActivation {
    pub fn new(formula: &str) -> crate::Result<ComposedActivation> {
        Ok(ComposedActivation::from_function(
            formula,
            Function::new(&crate::ir::parse(formula)?),
        ))
    }

    pub fn from_function(formula: &str, function: Function) -> ComposedActivation {
        let may_be_nan = interval::of_graph(&function.graph, &[function.f])
            .iter()
            .map(|iv| iv.nan)
            .collect();
        let depth = candle_depth(&function.graph, function.f);
        ComposedActivation {
            formula: formula.to_string(),
            function,
            may_be_nan,
            depth,
        }
    }

    /// candle ops on the longest path of the formula (at most
    /// [`MAX_TRACKED_DEPTH`] for an input that autograd tracks).
    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn formula(&self) -> &str {
        &self.formula
    }

    pub fn function(&self) -> &Function {
        &self.function
    }

    /// `f(x)` as candle ops (autograd gives the backward). An error if `x`
    /// is tracked and the formula is deeper than [`MAX_TRACKED_DEPTH`].
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.track_op() && self.depth > MAX_TRACKED_DEPTH {
            candle_core::bail!(
                "the formula is {} candle ops deep; the composed path supports at most {MAX_TRACKED_DEPTH} under autograd (candle recurses once per op); use the fused activation",
                self.depth
            );
        }
        let g = &self.function.graph;
        let root = self.function.f;
        let mut vals: Vec<Option<Val>> = vec![None; g.len()];
        for id in g.reachable(&[root]) {
            let v = match *g.node(id) {
                Node::X => Val::T(x.clone()),
                Node::Const(b) => Val::S(f64::from_bits(b)),
                Node::App(op, a) => {
                    let args: Vec<Val> = a[..op.arity()]
                        .iter()
                        .map(|c| vals[c.index()].clone().expect("topological order"))
                        .collect();
                    let k = if op == Op::Pow {
                        g.const_value(a[1])
                    } else {
                        None
                    };
                    let mut may_be_nan = [false; 3];
                    for (m, c) in may_be_nan.iter_mut().zip(&a[..op.arity()]) {
                        *m = self.may_be_nan[c.index()];
                    }
                    apply(op, &args, x, k, may_be_nan)?
                }
            };
            vals[id.index()] = Some(v);
        }
        match vals[root.index()].take().expect("root evaluated") {
            Val::T(t) => Ok(t),
            Val::S(c) => Tensor::full(c as f32, x.shape(), x.device())?.to_dtype(x.dtype()),
        }
    }
}

/// An upper bound on the candle ops one IR op lowers to, in sequence.
fn ops_in_sequence(op: Op) -> usize {
    match op {
        Op::Sigmoid => 4,
        Op::Max | Op::Min => 3,
        Op::Clamp => 6,
        // Square-and-multiply up to k = 64, then a reciprocal.
        Op::Pow => 15,
        Op::Tan | Op::Log1p | Op::Div | Op::Where => 2,
        Op::Lt | Op::Gt | Op::Le | Op::Ge => 2,
        _ => 1,
    }
}

/// candle ops on the longest path to `root`.
fn candle_depth(g: &Graph, root: Id) -> usize {
    let mut depth = vec![0usize; g.len()];
    for id in g.reachable(&[root]) {
        let node = g.node(id);
        let inner = node.args().iter().map(|a| depth[a.index()]).max();
        depth[id.index()] = inner.unwrap_or(0) + node.op().map_or(0, ops_in_sequence);
    }
    depth[root.index()]
}

fn tensor(v: &Val, like: &Tensor) -> candle_core::Result<Tensor> {
    match v {
        Val::T(t) => Ok(t.clone()),
        Val::S(c) => Tensor::full(*c as f32, like.shape(), like.device())?.to_dtype(like.dtype()),
    }
}

/// 0/1 in the tensor's dtype from a u8 mask.
fn bool_to(mask: Tensor, like: &Tensor) -> candle_core::Result<Tensor> {
    mask.to_dtype(like.dtype())
}

fn sigmoid(t: &Tensor) -> candle_core::Result<Tensor> {
    // 1 / (1 + e^-t): e^-t may overflow to inf, whose reciprocal is 0.
    (t.neg()?.exp()? + 1.0)?.recip()
}

/// Integer powers by repeated multiplication (as the kernels do), else powf.
fn pow(t: &Tensor, k: f64) -> candle_core::Result<Tensor> {
    if k == k.trunc() && k.abs() <= 64.0 {
        let mut n = k.abs() as u32;
        let mut base = t.clone();
        let mut acc: Option<Tensor> = None;
        while n > 0 {
            if n & 1 == 1 {
                acc = Some(match acc {
                    None => base.clone(),
                    Some(a) => (a * &base)?,
                });
            }
            n >>= 1;
            if n > 0 {
                base = base.sqr()?;
            }
        }
        let acc = match acc {
            Some(a) => a,
            None => t.ones_like()?,
        };
        return if k < 0.0 { acc.recip() } else { Ok(acc) };
    }
    t.powf(k)
}

/// `max`/`min` as IEEE maxNum/minNum (PRIMITIVES.md): a NaN operand
/// yields the other one. On the CPU candle's `maximum`/`minimum` return
/// the first operand when it is NaN (`if a < b { b } else { a }`), so a
/// first operand that may be NaN (by the interval analysis) is replaced by
/// the second where it is. A NaN second operand already yields the first
/// on every backend (CUDA's are `fmaxf`/`fminf`).
fn extremum(max: bool, p: Tensor, q: &Val, p_may_be_nan: bool) -> candle_core::Result<Tensor> {
    use Val::{S, T};
    let m = match q {
        S(c) if max => p.maximum(*c)?,
        S(c) => p.minimum(*c)?,
        T(q) if max => p.maximum(q)?,
        T(q) => p.minimum(q)?,
    };
    if !p_may_be_nan {
        return Ok(m);
    }
    p.ne(&p)?.where_cond(&tensor(q, &p)?, &m)
}

fn apply(
    op: Op,
    a: &[Val],
    x: &Tensor,
    k: Option<f64>,
    may_be_nan: [bool; 3],
) -> candle_core::Result<Val> {
    use Val::{S, T};
    let un = |f: fn(&Tensor) -> candle_core::Result<Tensor>| -> candle_core::Result<Val> {
        match &a[0] {
            T(t) => Ok(T(f(t)?)),
            S(c) => Ok(S(op.info().f64.call(&[*c, 0.0, 0.0]))),
        }
    };
    Ok(match op {
        Op::Neg => un(|t| t.neg())?,
        Op::Abs => un(|t| t.abs())?,
        Op::Exp => un(|t| t.exp())?,
        Op::Log => un(|t| t.log())?,
        Op::Log1p => un(|t| (t + 1.0)?.log())?,
        Op::Sqrt => un(|t| t.sqrt())?,
        Op::Sin => un(|t| t.sin())?,
        Op::Cos => un(|t| t.cos())?,
        Op::Tan => un(|t| t.sin()? / t.cos()?)?,
        Op::Tanh => un(|t| t.tanh())?,
        Op::Erf => un(|t| t.erf())?,
        Op::Sigmoid => un(sigmoid)?,
        Op::Pow => match (&a[0], k) {
            (T(t), Some(k)) => T(pow(t, k)?),
            _ => S(op
                .info()
                .f64
                .call(&[scalar(&a[0]), k.unwrap_or(f64::NAN), 0.0])),
        },
        Op::Add => match (&a[0], &a[1]) {
            (T(t), S(c)) | (S(c), T(t)) => T((t + *c)?),
            (T(p), T(q)) => T((p + q)?),
            (S(p), S(q)) => S(p + q),
        },
        Op::Sub => match (&a[0], &a[1]) {
            (T(t), S(c)) => T((t - *c)?),
            (S(c), T(t)) => T(t.affine(-1.0, *c)?),
            (T(p), T(q)) => T((p - q)?),
            (S(p), S(q)) => S(p - q),
        },
        Op::Mul => match (&a[0], &a[1]) {
            (T(t), S(c)) | (S(c), T(t)) => T((t * *c)?),
            (T(p), T(q)) => T((p * q)?),
            (S(p), S(q)) => S(p * q),
        },
        Op::Div => match (&a[0], &a[1]) {
            (T(t), S(c)) => T((t / *c)?),
            (S(c), T(t)) => T((t.recip()? * *c)?),
            (T(p), T(q)) => T((p / q)?),
            (S(p), S(q)) => S(p / q),
        },
        Op::Max | Op::Min => T(extremum(
            op == Op::Max,
            tensor(&a[0], x)?,
            &a[1],
            may_be_nan[0],
        )?),
        Op::Clamp => {
            // min(max(a, lo), hi); max(a, lo) is NaN only if both are.
            let m = extremum(true, tensor(&a[0], x)?, &a[1], may_be_nan[0])?;
            T(extremum(false, m, &a[2], may_be_nan[0] && may_be_nan[1])?)
        }
        Op::Where => {
            let c = tensor(&a[0], x)?.ne(0.0)?;
            T(c.where_cond(&tensor(&a[1], x)?, &tensor(&a[2], x)?)?)
        }
        Op::Lt | Op::Gt | Op::Le | Op::Ge => {
            let (p, q) = (tensor(&a[0], x)?, tensor(&a[1], x)?);
            let m = match op {
                Op::Lt => p.lt(&q)?,
                Op::Gt => p.gt(&q)?,
                Op::Le => p.le(&q)?,
                _ => p.ge(&q)?,
            };
            T(bool_to(m, x)?)
        }
    })
}

fn scalar(v: &Val) -> f64 {
    match v {
        Val::S(c) => *c,
        Val::T(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn composed_matches_the_reference() {
        let c = ComposedActivation::new("gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0)) + safe_div(x, x - 1) + clamp(x, -1, 2) ^ 3").unwrap();
        let xs: Vec<f32> = (0..101).map(|i| i as f32 * 0.1 - 5.03).collect();
        let x = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let y: Vec<f32> = c.forward(&x).unwrap().to_vec1().unwrap();
        for (i, &xv) in xs.iter().enumerate() {
            let want = c.function().value(xv as f64);
            assert!(
                (y[i] as f64 - want).abs() <= 1e-4 * want.abs() + 1e-4,
                "x={xv}: {} vs {want}",
                y[i]
            );
        }
    }
}
