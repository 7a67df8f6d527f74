//! Rendering one IR root as a CUDA C `__device__` function of `float x`.
//!
//! Nodes used more than once become `const float tN = …;` in topological
//! order; nodes used once are inlined into their single user, up to
//! [`MAX_INLINE_DEPTH`] nested ops (a deeper chain is cut into temporaries,
//! so no expression nests deeper than C compilers accept: clang stops at
//! 256 brackets). Temporary numbers follow emission order, so the text
//! depends only on the DAG and is stable across runs (golden-testable).
//! Every op's spelling comes from the op table and is fully parenthesised.
//! Two nodes that one helper computes together ([`super::pairs`]) become
//! `const act_pair tN = helper(a);` and are read as `tN.first` and
//! `tN.second`.

use super::pairs::{find_pairs, Pair};
use crate::ir::ops::MAX_INT_POW;
use crate::ir::{Graph, Id, Node, Op};

/// An f32 literal that round-trips, as C source: `0.7978846f`, `1e-6f`,
/// `(-0.5f)`. Values outside the f32 range become infinities, as the f32
/// evaluation would see them.
pub fn c_float(v: f64) -> String {
    let f = v as f32;
    if f.is_nan() {
        return "__int_as_float(0x7fc00000)".into();
    }
    if f.is_infinite() {
        let bits = if f > 0.0 {
            "0x7f800000"
        } else {
            "(int)0xff800000"
        };
        return format!("__int_as_float({bits})");
    }
    let s = format!("{f:?}");
    let s = if s.contains(['.', 'e']) {
        s
    } else {
        format!("{s}.0")
    };
    if f.is_sign_negative() {
        format!("({s}f)")
    } else {
        format!("{s}f")
    }
}

/// The body of a device function computing `root` from `x`.
pub struct Body {
    /// `const float tN = …;` lines, in order.
    pub temps: Vec<String>,
    /// The returned expression.
    pub result: String,
}

/// Most ops nested in one inlined expression (each op's spelling adds at
/// most two levels of parentheses).
pub const MAX_INLINE_DEPTH: usize = 64;

/// Render `root` of `g`: shared subexpressions, and single-use chains
/// deeper than [`MAX_INLINE_DEPTH`], become temporaries.
pub fn render(g: &Graph, root: Id) -> Body {
    let order = g.reachable(&[root]);
    let mut uses = vec![0u32; g.len()];
    uses[root.index()] += 1;
    for &id in &order {
        for a in g.node(id).args() {
            uses[a.index()] += 1;
        }
    }
    let pairs = find_pairs(g, &order);
    let mut r = Renderer {
        g,
        names: vec![None; g.len()],
        temps: Vec::new(),
    };
    // Ops nested in the text of each node (0 for a leaf or a temporary).
    let mut depth = vec![0usize; g.len()];
    for &id in &order {
        if r.names[id.index()].is_some() {
            continue;
        }
        if let Some(p) = pairs[id.index()] {
            r.pair(&p);
            continue;
        }
        let Node::App(..) = g.node(id) else {
            continue;
        };
        let inner = g.node(id).args().iter().map(|a| depth[a.index()]).max();
        depth[id.index()] = 1 + inner.unwrap_or(0);
        let shared = uses[id.index()] > 1 || depth[id.index()] >= MAX_INLINE_DEPTH;
        if shared && id != root {
            depth[id.index()] = 0;
            let expr = r.expr(id);
            let name = format!("t{}", r.temps.len());
            r.temps.push(format!("const float {name} = {expr};"));
            r.names[id.index()] = Some(name);
        }
    }
    let result = r.expr(root);
    Body {
        temps: r.temps,
        result,
    }
}

struct Renderer<'g> {
    g: &'g Graph,
    names: Vec<Option<String>>,
    temps: Vec<String>,
}

impl Renderer<'_> {
    /// `const act_pair tN = helper(arg);`, naming both members.
    fn pair(&mut self, p: &Pair) {
        let arg = self.expr(p.arg);
        let name = format!("t{}", self.temps.len());
        self.temps
            .push(format!("const act_pair {name} = {}({arg});", p.helper));
        self.names[p.members[0].index()] = Some(format!("{name}.first"));
        self.names[p.members[1].index()] = Some(format!("{name}.second"));
    }

    fn expr(&mut self, id: Id) -> String {
        crate::stack::deep(|| self.expr_node(id))
    }

    fn expr_node(&mut self, id: Id) -> String {
        if let Some(n) = &self.names[id.index()] {
            return n.clone();
        }
        match *self.g.node(id) {
            Node::X => "x".into(),
            Node::Const(b) => c_float(f64::from_bits(b)),
            Node::App(Op::Pow, [a, k, _]) if literal_int_power(self.g, k).is_some() => {
                let k = literal_int_power(self.g, k).expect("checked");
                format!("act_powi<{k}>({})", self.expr(a))
            }
            Node::App(op, a) => {
                let args: Vec<String> = a[..op.arity()].iter().map(|&c| self.expr(c)).collect();
                spell(op.info().cuda, &args)
            }
        }
    }
}

/// The exponent of `a ^ k` when `k` is a literal integer that `act_pow`
/// would square-and-multiply (|k| <= 64): rendered as `act_powi<k>(a)`, so
/// that the multiplications are unrolled whatever the compiler's effort.
fn literal_int_power(g: &Graph, k: Id) -> Option<i32> {
    let k = g.const_value(k)? as f32;
    (k == k.trunc() && k.abs() <= MAX_INT_POW).then_some(k as i32)
}

/// Substitute `{0}`, `{1}`, `{2}` in an op's CUDA spelling.
pub fn spell(template: &str, args: &[String]) -> String {
    let mut out =
        String::with_capacity(template.len() + args.iter().map(String::len).sum::<usize>());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let k = rest.as_bytes()[i + 1] - b'0';
        out.push_str(&args[k as usize]);
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// `QUALIFIERS float NAME(float x) { … }`.
pub fn device_function(qualifiers: &str, name: &str, g: &Graph, root: Id) -> String {
    let body = render(g, root);
    let mut s = format!("{qualifiers} float {name}(float x)\n{{\n");
    if !matches!(g.node(root), Node::X)
        && !g
            .reachable(&[root])
            .iter()
            .any(|&i| matches!(g.node(i), Node::X))
    {
        // Constant function: keep `x` formally used to avoid warnings.
        s.push_str("    (void)x;\n");
    }
    for t in &body.temps {
        s.push_str("    ");
        s.push_str(t);
        s.push('\n');
    }
    s.push_str(&format!("    return {};\n}}\n", body.result));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Function;
    use crate::ir::parse;

    #[test]
    fn literals_round_trip_as_f32() {
        assert_eq!(c_float(1.0), "1.0f");
        assert_eq!(c_float(-0.5), "(-0.5f)");
        assert_eq!(c_float(1e-6), "1e-6f");
        assert_eq!(c_float(0.7978845608028654), "0.7978846f");
        assert_eq!(c_float(1e300), "__int_as_float(0x7f800000)");
    }

    #[test]
    fn shared_nodes_become_temporaries() {
        let f = Function::new(&parse("silu(x)").unwrap());
        let d = device_function("__device__", "g", &f.graph, f.df);
        assert!(
            d.contains("const act_pair t0 = act_sigmoid_pair(x);"),
            "{d}"
        );
        assert_eq!(d.matches("act_sigmoid").count(), 1, "{d}");
    }

    #[test]
    fn single_use_nodes_are_inlined() {
        let f = Function::new(&parse("sin(cos(x))").unwrap());
        let d = device_function("__device__", "g", &f.graph, f.f);
        assert_eq!(
            d,
            "__device__ float g(float x)\n{\n    return act_sin(act_cos(x));\n}\n"
        );
    }

    #[test]
    fn spelling_substitutes_operands() {
        assert_eq!(
            spell(
                "({0} != 0.0f ? {1} : {2})",
                &["c".into(), "a".into(), "b".into()]
            ),
            "(c != 0.0f ? a : b)"
        );
    }
}
