//! Symbolic differentiation with respect to `x`.
//!
//! Each op's rule is a formula in the op table (`deriv`), over its operands
//! `a b c`, their derivatives `da db dc` and its own value `y`. Rules are
//! instantiated through the simplifier's smart constructor into the same
//! arena as the forward formula, so the derivative reuses forward nodes
//! (`sigmoid(x)` appears once in `silu` and its derivative) and is simplified
//! as it is built. Values at kinks follow PRIMITIVES.md (`abs'(0) = 0`, ties
//! of `max`/`min` go to the first argument, `clamp'` is 0 at the bounds).

use crate::ir::rule::{rule, Rule};
use crate::ir::{Expr, Graph, Id, Node, Op, RefEval};
use crate::simplify::{simplify_roots, Limits, Rewriter, Simplified, StopReason};

/// What a rule's names stand for in one application.
struct Env {
    args: [Id; 3],
    dargs: [Id; 3],
    y: Id,
    /// The zero tangent: `0 * b` is 0 even where `b` overflows, because the
    /// term stands for "no dependence on x", not for a product evaluated
    /// at run time.
    zero: Id,
}

fn instantiate(rw: &mut Rewriter, r: &Rule, env: &Env) -> Id {
    match r {
        Rule::Const(v) => rw.constant(*v),
        Rule::Operand(i) => env.args[*i],
        Rule::Tangent(i) => env.dargs[*i],
        Rule::Value => env.y,
        Rule::Neg(inner) => {
            let a = instantiate(rw, inner, env);
            if a == env.zero {
                return a;
            }
            rw.mk(Op::Neg, &[a])
        }
        Rule::Binary(op, lhs, rhs) => {
            let a = instantiate(rw, lhs, env);
            let mut b = instantiate(rw, rhs, env);
            let z = env.zero;
            match op {
                Op::Mul if a == z || b == z => return z,
                Op::Div if a == z => return z,
                Op::Add | Op::Sub if b == z => return a,
                Op::Add if a == z => return b,
                Op::Pow => b = force_constant(rw, b),
                _ => {}
            }
            rw.mk(*op, &[a, b])
        }
        Rule::Chain(d, s) => {
            let d = instantiate(rw, d, env);
            if d == env.zero {
                return d;
            }
            let s = instantiate(rw, s, env);
            chain(rw, d, s, env.zero)
        }
        Rule::Call(op, args) => {
            let ids: Vec<Id> = args.iter().map(|a| instantiate(rw, a, env)).collect();
            rw.mk(*op, &ids)
        }
    }
}

/// `chain(d, s)` of a rule: the chain-rule product `d · s` of an incoming
/// derivative `d` and a local factor `s`, but exactly 0 where either
/// factor is 0, so `inf · 0` never makes a finite derivative NaN: a
/// saturated factor (`1 − tanh²` far out) stops an overflowed `d`, and a
/// locally constant argument (`d = 0`) stops a singular factor (`sqrt'` at
/// 0). Each guard is a `where` built only where the other factor may be
/// infinite, in f64 or in f32 (by the interval analysis; the rewriter
/// drops a guard that a later pass finds unneeded).
fn chain(rw: &mut Rewriter, d: Id, s: Id, zero: Id) -> Id {
    let mut p = rw.mk(Op::Mul, &[d, s]);
    if !rw.finite_in_f32_too(d) {
        p = rw.mk(Op::Where, &[s, p, zero]);
    }
    if !rw.finite_in_f32_too(s) {
        p = rw.mk(Op::Where, &[d, p, zero]);
    }
    p
}

/// Exponents in rules are constant expressions (`b - 1`); the rewriter
/// folds them, but with no fuel left they must still become constants.
fn force_constant(rw: &mut Rewriter, id: Id) -> Id {
    if rw.const_of(id).is_some() {
        return id;
    }
    let v = RefEval::new(rw.graph(), &[id]).eval(rw.graph(), 0.0)[0];
    rw.constant(v)
}

/// d(root)/dx, built in `rw`'s arena (which must already hold `root`).
pub fn derivative(rw: &mut Rewriter, root: Id) -> Id {
    let order = rw.graph().reachable(&[root]);
    let mut d: Vec<Id> = vec![Id::NONE; rw.graph().len()];
    let zero = rw.constant(0.0);
    let one = rw.constant(1.0);
    for id in order {
        let node = rw.node(id);
        d[id.index()] = match node {
            Node::X => one,
            Node::Const(_) => zero,
            Node::App(op, a) => {
                let n = op.arity();
                let mut dargs = [zero; 3];
                for i in 0..n {
                    dargs[i] = d[a[i].index()];
                }
                if dargs[..n].iter().all(|&g| g == zero) {
                    zero
                } else {
                    let env = Env {
                        args: a,
                        dargs,
                        y: id,
                        zero,
                    };
                    instantiate(rw, rule(op), &env)
                }
            }
        };
        if d.len() < rw.graph().len() {
            d.resize(rw.graph().len(), Id::NONE);
        }
    }
    d[root.index()]
}

/// A formula ready for evaluation and code generation: simplified, with its
/// derivative, both canonical and sharing one arena.
#[derive(Clone)]
pub struct Function {
    pub graph: Graph,
    /// f(x)
    pub f: Id,
    /// f'(x)
    pub df: Id,
    /// Canonical hash of f (the dedup and kernel-cache key).
    pub hash: u64,
    /// DAG nodes of the formula as written (after inlining definitions).
    pub nodes_before: usize,
    /// DAG nodes of f after simplification.
    pub nodes_after: usize,
    pub stop: StopReason,
    pub rewrites: usize,
}

impl Function {
    pub fn new(e: &Expr) -> Function {
        Function::with_limits(e, Limits::default())
    }

    /// `(x, f(x), f'(x))` at each of `xs`, with the f64 reference
    /// evaluator: what plots draw (over `report::axis::grid`).
    pub fn sample(&self, xs: impl IntoIterator<Item = f64>) -> Vec<(f64, f64, f64)> {
        let mut ev = RefEval::new(&self.graph, &[self.f, self.df]);
        xs.into_iter()
            .map(|x| {
                let v = ev.eval(&self.graph, x);
                (x, v[0], v[1])
            })
            .collect()
    }

    pub fn with_limits(e: &Expr, limits: Limits) -> Function {
        // One rewriting pass builds f, the derivative is built in the same
        // arena, then passes repeat over both until nothing changes. The
        // rewriter is deterministic per node, so f ends in the same
        // canonical form (and hash) as `simplify` alone gives it.
        let mut rw = Rewriter::new(limits);
        let f = rw.rebuild(&e.graph, &[e.root])[0];
        let df = derivative(&mut rw, f);
        let first_stop = rw.stop_reason();
        let first_rewrites = rw.rewrites();
        let rest = Limits {
            fuel: limits.fuel.saturating_sub(first_rewrites),
            ..limits
        };
        let both: Simplified = simplify_roots(rw.graph(), &[f, df], rest);
        Function {
            nodes_before: e.node_count(),
            nodes_after: both.graph.dag_size(&both.roots[..1]),
            hash: both.hashes[0],
            stop: first_stop.map_or(both.stop, |s| worse(s, both.stop)),
            rewrites: first_rewrites + both.rewrites,

            f: both.roots[0],
            df: both.roots[1],
            graph: both.graph,
        }
    }

    /// f(x) by the f64 reference evaluator.
    pub fn value(&self, x: f64) -> f64 {
        crate::ir::eval_f64(&self.graph, self.f, x)
    }

    /// f'(x) by the f64 reference evaluator.
    pub fn derivative(&self, x: f64) -> f64 {
        crate::ir::eval_f64(&self.graph, self.df, x)
    }

    pub fn forward(&self) -> Expr {
        Expr {
            graph: self.graph.clone(),
            root: self.f,
        }
    }
}

fn worse(a: StopReason, b: StopReason) -> StopReason {
    if a == StopReason::Saturated {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{parse, to_infix};

    fn d(src: &str) -> String {
        let f = Function::new(&parse(src).unwrap());
        to_infix(&f.graph, f.df)
    }

    #[test]
    fn textbook_derivatives() {
        assert_eq!(d("x"), "1.0");
        assert_eq!(d("3"), "0.0");
        assert_eq!(d("x * x"), "2.0 * x");
        assert_eq!(d("sin(x)"), "cos(x)");
        assert_eq!(d("exp(x)"), "exp(x)");
        assert_eq!(d("relu(x)"), "0.0 <= x");
    }

    #[test]
    fn derivative_reuses_forward_nodes() {
        let f = Function::new(&parse("silu(x)").unwrap());
        let fwd = f.graph.reachable(&[f.f]);
        let bwd = f.graph.reachable(&[f.df]);
        let sig = fwd
            .iter()
            .find(|&&i| f.graph.node(i).op() == Some(Op::Sigmoid))
            .unwrap();
        assert!(
            bwd.contains(sig),
            "sigmoid(x) is recomputed in the derivative"
        );
    }

    #[test]
    fn kinks_follow_the_contract() {
        let abs = Function::new(&parse("abs(x)").unwrap());
        assert_eq!(abs.derivative(0.0), 0.0);
        let relu = Function::new(&parse("max(x, 0)").unwrap());
        assert_eq!(
            relu.derivative(0.0),
            1.0,
            "a tie sends the gradient to the first argument"
        );
        let clamp = Function::new(&parse("clamp(x, -1, 1)").unwrap());
        assert_eq!(clamp.derivative(1.0), 0.0);
        assert_eq!(clamp.derivative(0.5), 1.0);
        assert_eq!(clamp.derivative(-2.0), 0.0);
    }
}
