//! Paired values: two nodes of one argument whose work the device helpers
//! share, so that the renderer emits one helper call for both.
//!
//! Each rule names an op, the helper in `kernels/act_math.cuh` that returns
//! `act_pair { first, second }`, and how to find the partner node in the
//! graph:
//!
//! * `sigmoid(a)` with `sigmoid(-a)` (every sigmoid derivative): one exp and
//!   one reciprocal (`act_sigmoid_pair`);
//! * `sin(a)` with `cos(a)`: one range reduction (`act_sincos`);
//! * `tanh(a)` with `1 - tanh(a)^2` (the tanh derivative): one exp and one
//!   reciprocal, without the cancellation of `1 - t*t` (`act_tanh_pair`).
//!
//! The sigmoid and sin/cos rules are the CPU tape's (`ir::eval`), so both
//! evaluators share the same work. A pair forms only when both members are
//! needed by the roots being rendered. Must not import `runtime` or above.

use crate::ir::{Graph, Id, Node, Op};

/// How to find a pair: the first member's op, the helper computing both
/// values, and the partner of `op(a)` (the second member), if present.
struct Rule {
    op: Op,
    helper: &'static str,
    partner: fn(&Graph, Id, Id) -> Option<Id>,
}

const RULES: &[Rule] = &[
    Rule {
        op: Op::Sigmoid,
        helper: "act_sigmoid_pair",
        partner: sigmoid_of_negation,
    },
    Rule {
        op: Op::Sin,
        helper: "act_sincos",
        partner: cos_of_same,
    },
    Rule {
        op: Op::Tanh,
        helper: "act_tanh_pair",
        partner: one_minus_square,
    },
];

/// Two nodes computed by one helper call on `arg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub helper: &'static str,
    pub arg: Id,
    /// `[first, second]` as the helper returns them.
    pub members: [Id; 2],
}

/// `sigmoid(-a)` for `sigmoid(a)`; none when `a` is itself a negation (that
/// pair is found from the other member).
fn sigmoid_of_negation(g: &Graph, _id: Id, a: Id) -> Option<Id> {
    if g.node(a).op() == Some(Op::Neg) {
        return None;
    }
    let neg = g.find(&Node::app(Op::Neg, &[a]))?;
    g.find(&Node::app(Op::Sigmoid, &[neg]))
}

fn cos_of_same(g: &Graph, _id: Id, a: Id) -> Option<Id> {
    g.find(&Node::app(Op::Cos, &[a]))
}

/// `1 - t^2` or `1 - t*t` for `t = tanh(a)`.
fn one_minus_square(g: &Graph, t: Id, _a: Id) -> Option<Id> {
    let one = g.find(&Node::constant(1.0))?;
    let squares = [
        g.find(&Node::constant(2.0))
            .and_then(|two| g.find(&Node::app(Op::Pow, &[t, two]))),
        g.find(&Node::app(Op::Mul, &[t, t])),
    ];
    squares
        .into_iter()
        .flatten()
        .find_map(|sq| g.find(&Node::app(Op::Sub, &[one, sq])))
}

/// For every node of `order` (a topological order of what is rendered),
/// the pair it belongs to, if both members are in `order`.
pub fn find_pairs(g: &Graph, order: &[Id]) -> Vec<Option<Pair>> {
    let mut live = vec![false; g.len()];
    for &id in order {
        live[id.index()] = true;
    }
    let mut out = vec![None; g.len()];
    for &id in order {
        let node = g.node(id);
        let (Some(op), [a]) = (node.op(), node.args()) else {
            continue;
        };
        let Some(rule) = RULES.iter().find(|r| r.op == op) else {
            continue;
        };
        let Some(partner) = (rule.partner)(g, id, *a).filter(|p| live[p.index()]) else {
            continue;
        };
        if out[id.index()].is_some() || out[partner.index()].is_some() {
            continue;
        }
        let pair = Pair {
            helper: rule.helper,
            arg: *a,
            members: [id, partner],
        };
        out[id.index()] = Some(pair);
        out[partner.index()] = Some(pair);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Function;
    use crate::ir::parse;

    fn pairs_of(src: &str) -> Vec<&'static str> {
        let f = Function::new(&parse(src).unwrap());
        let order = f.graph.reachable(&[f.df]);
        let mut seen: Vec<Pair> = Vec::new();
        for p in find_pairs(&f.graph, &order).into_iter().flatten() {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        seen.iter().map(|p| p.helper).collect()
    }

    #[test]
    fn derivatives_pair_what_they_repeat() {
        assert_eq!(pairs_of("sigmoid(x)"), ["act_sigmoid_pair"]);
        assert_eq!(pairs_of("sin(x) * x"), ["act_sincos"]);
        assert_eq!(pairs_of("tanh(3 * x)"), ["act_tanh_pair"]);
        let mut qa =
            pairs_of("gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))");
        qa.sort();
        assert_eq!(
            qa,
            [
                "act_sigmoid_pair",
                "act_sigmoid_pair",
                "act_sincos",
                "act_tanh_pair"
            ]
        );
        // Different arguments do not pair.
        assert!(pairs_of("sin(x) + cos(2 * x)").is_empty());
    }

    #[test]
    fn a_pair_needs_both_members() {
        // The forward function of sigmoid(x) has no sigmoid(-x).
        let f = Function::new(&parse("sigmoid(x) + sin(x)").unwrap());
        let order = f.graph.reachable(&[f.f]);
        assert!(find_pairs(&f.graph, &order).iter().all(Option::is_none));
    }
}
