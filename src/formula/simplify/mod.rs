//! Sound simplification, canonical form and the canonical hash.
//!
//! Simplification rebuilds a formula bottom-up through a smart constructor,
//! [`Rewriter::mk`], which applies local rewrite rules ([`rules::RULES`]) and
//! orders the operands of commutative ops. Every rule is sound under the
//! safe semantics of PRIMITIVES.md: it never changes the value at a finite
//! input (conditional rules are guarded by the [`interval`] analysis). The
//! tests check every rule against the f64 evaluator.
//!
//! Work is bounded by [`Limits`]; hitting one is a [`StopReason`] in the
//! result, never an error.
//!
//! The canonical hash is a structural 64-bit hash of the simplified,
//! canonically ordered DAG. It mixes op *names* and constant bits, so it is
//! stable across runs, platforms and releases that keep the op names. It is
//! the dedup key of the search and part of the kernel cache key.

pub mod interval;
pub mod rules;

use crate::ir::{Expr, Graph, Id, Node, Op};
use interval::{transfer, Interval};

/// Budgets for one simplification.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Rule applications.
    pub fuel: usize,
    /// Nodes in the output arena.
    pub max_nodes: usize,
    /// Full rebuild passes (a pass that changes nothing ends the run).
    pub max_passes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000,
            max_nodes: 200_000,
            max_passes: 4,
        }
    }
}

/// Why simplification stopped. Only `Saturated` means "no rule applies".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Saturated,
    FuelExhausted,
    NodeLimit,
    PassLimit,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Saturated => "saturated",
            StopReason::FuelExhausted => "fuel exhausted",
            StopReason::NodeLimit => "node limit",
            StopReason::PassLimit => "pass limit",
        }
    }
}

/// Facts about one node of the rewriter's arena.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub iv: Interval,
    /// The value is always exactly 0 or 1.
    pub boolean: bool,
    /// Structural hash of the canonical subtree.
    pub hash: u64,
}

/// The smart constructor: a hash-consed arena whose nodes are built only
/// through rewrite rules and canonical operand order.
pub struct Rewriter {
    g: Graph,
    info: Vec<Info>,
    /// Intervals under f32 evaluation, computed on demand
    /// ([`Rewriter::finite_in_f32_too`]), and the walk's stack.
    f32_iv: Vec<Option<Interval>>,
    f32_stack: Vec<Id>,
    fuel: usize,
    limits: Limits,
    stop: Option<StopReason>,
    applied: usize,
    /// Applications per rule name, for reports and tests.
    pub fired: Vec<(&'static str, usize)>,
}

impl Rewriter {
    pub fn new(limits: Limits) -> Rewriter {
        Rewriter {
            g: Graph::new(),
            info: Vec::new(),
            f32_iv: Vec::new(),
            f32_stack: Vec::new(),
            fuel: limits.fuel,
            limits,
            stop: None,
            applied: 0,
            fired: Vec::new(),
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.g
    }

    pub fn into_graph(self) -> Graph {
        self.g
    }

    pub fn info(&self, id: Id) -> &Info {
        &self.info[id.index()]
    }

    pub fn node(&self, id: Id) -> Node {
        *self.g.node(id)
    }

    pub fn const_of(&self, id: Id) -> Option<f64> {
        self.g.const_value(id)
    }

    pub fn is_const(&self, id: Id, v: f64) -> bool {
        self.const_of(id) == Some(v)
    }

    pub fn x(&mut self) -> Id {
        self.add_raw(Node::X)
    }

    pub fn constant(&mut self, v: f64) -> Id {
        self.add_raw(Node::constant(v))
    }

    /// Is `id` finite (never NaN or infinite) under the f64 reference and
    /// under f32 evaluation? The derivative guards ([`crate::diff`]) hold
    /// in the f32 paths too, where values overflow and underflow sooner
    /// (`(1e-30)²` is 0 in f32).
    pub fn finite_in_f32_too(&mut self, id: Id) -> bool {
        self.info(id).iv.finite() && self.f32_interval(id).finite()
    }

    /// The interval of `id` under f32 evaluation (x any finite f32,
    /// constants and results rounded to f32), computed over the part of
    /// the arena not seen before, without recursion.
    fn f32_interval(&mut self, id: Id) -> Interval {
        if self.f32_iv.len() < self.g.len() {
            self.f32_iv.resize(self.g.len(), None);
        }
        if let Some(iv) = self.f32_iv[id.index()] {
            return iv;
        }
        let mut stack = std::mem::take(&mut self.f32_stack);
        stack.push(id);
        while let Some(&top) = stack.last() {
            if self.f32_iv[top.index()].is_some() {
                stack.pop();
                continue;
            }
            let node = *self.g.node(top);
            let before = stack.len();
            stack.extend(
                node.args()
                    .iter()
                    .filter(|a| self.f32_iv[a.index()].is_none()),
            );
            if stack.len() > before {
                continue;
            }
            let iv = match node {
                Node::X => Interval::FINITE_F32,
                Node::Const(b) => Interval::point(f64::from_bits(b) as f32 as f64),
                Node::App(op, a) => {
                    let mut args = [Interval::ALL; 3];
                    for (i, c) in a[..op.arity()].iter().enumerate() {
                        args[i] = self.f32_iv[c.index()].expect("arguments first");
                    }
                    let k = (op == Op::Pow).then(|| self.const_of(a[1])).flatten();
                    transfer(op, &args[..op.arity()], k).in_f32()
                }
            };
            self.f32_iv[top.index()] = Some(iv);
            stack.pop();
        }
        self.f32_stack = stack;
        self.f32_iv[id.index()].expect("computed above")
    }

    /// `op(args)`, rewritten and canonically ordered.
    pub fn mk(&mut self, op: Op, args: &[Id]) -> Id {
        let mut a = [Id::NONE; 3];
        a[..args.len()].copy_from_slice(args);
        if op.info().commutative && self.order_key(a[1]) < self.order_key(a[0]) {
            a.swap(0, 1);
        }
        let args = &a[..op.arity()];
        let node = Node::app(op, args);
        // A node already in the arena was built here, after the rules had
        // declined it: nothing new can apply.
        if let Some(id) = self.g.find(&node) {
            return id;
        }
        let iv = self.interval_of(op, args);
        if self.fuel == 0 {
            self.stop.get_or_insert(StopReason::FuelExhausted);
        } else if let Some(v) = iv.as_point() {
            // The analysis pins the value (decided comparisons, finite·0,
            // where on a decided condition): fold it.
            self.fired_rule("fold-known-value");
            return self.constant(v);
        } else if let Some((name, id)) = rules::apply(self, op, args) {
            self.fired_rule(name);
            return id;
        }
        self.add_analysed(node, Some(iv))
    }

    fn fired_rule(&mut self, name: &'static str) {
        self.fuel -= 1;
        self.applied += 1;
        self.count(name);
    }

    /// The interval of `op(args)` from its arguments' intervals.
    fn interval_of(&self, op: Op, args: &[Id]) -> Interval {
        let mut ivs = [Interval::ALL; 3];
        for (i, a) in args.iter().enumerate() {
            ivs[i] = self.info[a.index()].iv;
        }
        let k = if op == Op::Pow {
            self.const_of(args[1])
        } else {
            None
        };
        transfer(op, &ivs[..args.len()], k)
    }

    fn count(&mut self, name: &'static str) {
        match self.fired.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.fired.push((name, 1)),
        }
    }

    /// Constants first, then `x`, then by structural hash: deterministic and
    /// independent of arena layout.
    fn order_key(&self, id: Id) -> (u8, u64) {
        let rank = match self.g.node(id) {
            Node::Const(_) => 0,
            Node::X => 1,
            Node::App(..) => 2,
        };
        (rank, self.info[id.index()].hash)
    }

    /// Add a node without rewriting (its arguments are already canonical).
    fn add_raw(&mut self, node: Node) -> Id {
        self.add_analysed(node, None)
    }

    fn add_analysed(&mut self, node: Node, iv: Option<Interval>) -> Id {
        let id = self.g.add(node);
        if id.index() == self.info.len() {
            let info = self.analyse(&node, iv);
            self.info.push(info);
            if self.g.len() > self.limits.max_nodes {
                self.fuel = 0;
                self.stop.get_or_insert(StopReason::NodeLimit);
            }
        }
        id
    }

    fn analyse(&self, node: &Node, iv: Option<Interval>) -> Info {
        match *node {
            Node::X => Info {
                iv: Interval::FINITE,
                boolean: false,
                hash: mix(SEED, b"x"),
            },
            Node::Const(b) => {
                let v = f64::from_bits(b);
                Info {
                    iv: Interval::point(v),
                    boolean: v == 0.0 || v == 1.0,
                    hash: mix64(mix(SEED, b"const"), b),
                }
            }
            Node::App(op, _) => {
                let args = node.args();
                let iv = iv.unwrap_or_else(|| self.interval_of(op, args));
                let boolean = op.is_comparison()
                    || (op == Op::Mul && args.iter().all(|a| self.info[a.index()].boolean))
                    || (op == Op::Where && args[1..].iter().all(|a| self.info[a.index()].boolean))
                    || iv.as_point().is_some_and(|v| v == 0.0 || v == 1.0);
                let hash = args.iter().fold(mix(SEED, op.name().as_bytes()), |h, a| {
                    mix64(h, self.info[a.index()].hash)
                });
                Info { iv, boolean, hash }
            }
        }
    }

    /// Rebuild the expressions under `roots` of `src` through [`Rewriter::mk`].
    pub fn rebuild(&mut self, src: &Graph, roots: &[Id]) -> Vec<Id> {
        let mut map = vec![Id::NONE; src.len()];
        self.g.reserve(2 * src.len());
        self.info.reserve(2 * src.len());

        for id in src.reachable(roots) {
            let new = match *src.node(id) {
                Node::X => self.x(),
                Node::Const(b) => self.constant(f64::from_bits(b)),
                Node::App(op, mut a) => {
                    for c in &mut a[..op.arity()] {
                        *c = map[c.index()];
                    }
                    self.mk(op, &a[..op.arity()])
                }
            };
            map[id.index()] = new;
        }
        roots.iter().map(|r| map[r.index()]).collect()
    }

    /// Rule applications so far.
    pub fn rewrites(&self) -> usize {
        self.applied
    }

    /// The limit hit so far, if any.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    pub fn hash_of(&self, id: Id) -> u64 {
        self.info[id.index()].hash
    }

    fn take_stop(&mut self) -> Option<StopReason> {
        self.stop.take()
    }
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn mix(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Mix a 64-bit word (splitmix64 finaliser over FNV state).
fn mix64(h: u64, v: u64) -> u64 {
    let mut z = (h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The result of simplifying one or more roots in a shared graph.
pub struct Simplified {
    pub graph: Graph,
    pub roots: Vec<Id>,
    pub stop: StopReason,
    /// Rule applications, summed over passes.
    pub rewrites: usize,
    pub passes: usize,
    /// Canonical hash of each root.
    pub hashes: Vec<u64>,
    pub fired: Vec<(&'static str, usize)>,
}

impl Simplified {
    pub fn expr(&self) -> Expr {
        Expr {
            graph: self.graph.clone(),
            root: self.roots[0],
        }
    }

    pub fn hash(&self) -> u64 {
        self.hashes[0]
    }
}

/// Simplify one formula with default limits.
pub fn simplify(e: &Expr) -> Simplified {
    simplify_roots(&e.graph, &[e.root], Limits::default())
}

/// Simplify several roots together (they keep sharing nodes), repeating
/// whole passes until one changes nothing or a limit is hit.
pub fn simplify_roots(g: &Graph, roots: &[Id], limits: Limits) -> Simplified {
    let mut graph = g.clone();
    let mut roots = roots.to_vec();
    let mut rewrites = 0;
    let mut fired: Vec<(&'static str, usize)> = Vec::new();
    let mut fuel = limits.fuel;
    let mut last: Option<Vec<u64>> = None;
    for pass in 1..=limits.max_passes {
        let mut rw = Rewriter::new(Limits { fuel, ..limits });
        let new_roots = rw.rebuild(&graph, &roots);
        let used = rw.applied;
        fuel = fuel.saturating_sub(used);

        rewrites += used;
        for (n, c) in &rw.fired {
            match fired.iter_mut().find(|(m, _)| m == n) {
                Some((_, k)) => *k += c,
                None => fired.push((n, *c)),
            }
        }
        let hashes: Vec<u64> = new_roots.iter().map(|r| rw.hash_of(*r)).collect();
        let stop = rw.take_stop();
        let unchanged = used == 0 && last.as_ref() == Some(&hashes);
        let (new_graph, new_roots) = compact(rw.into_graph(), &new_roots);
        graph = new_graph;
        roots = new_roots;
        let stop = match stop {
            Some(s) => Some(s),
            None if used == 0 || unchanged => Some(StopReason::Saturated),
            None if pass == limits.max_passes => Some(StopReason::PassLimit),
            None => None,
        };
        last = Some(hashes.clone());
        if let Some(stop) = stop {
            return Simplified {
                graph,
                roots,
                stop,
                rewrites,
                passes: pass,
                hashes,
                fired,
            };
        }
    }
    unreachable!("the last pass always returns")
}

/// Keep only what the roots reach.
fn compact(g: Graph, roots: &[Id]) -> (Graph, Vec<Id>) {
    let mut out = Graph::new();
    let new_roots = out.import(&g, roots);
    (out, new_roots)
}

/// Canonical hash of a formula as a 16-digit hex string.
pub fn hash_hex(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{parse, to_infix};

    fn simp(src: &str) -> String {
        let s = simplify(&parse(src).unwrap());
        to_infix(&s.graph, s.roots[0])
    }

    fn hash(src: &str) -> u64 {
        simplify(&parse(src).unwrap()).hash()
    }

    #[test]
    fn folds_and_identities() {
        assert_eq!(simp("1 + 2 * 3"), "7.0");
        assert_eq!(simp("x * 1 + 0"), "x");
        assert_eq!(simp("safe_div(x, 1)"), "x");
        assert_eq!(simp("safe_div(x, x)"), "1.0");
        assert_eq!(simp("sin(x) - sin(x)"), "0.0");
        assert_eq!(simp("relu(relu(x))"), "max(x, 0.0)");
        assert_eq!(simp("abs(sigmoid(x))"), "sigmoid(x)");
        assert_eq!(simp("log1p_safe(log1p_safe(x))"), "log1p(log1p(abs(x)))");
    }

    #[test]
    fn protected_points_survive() {
        // safe_div(0, b) is 1 at b = 0, so it must not become 0.
        assert_ne!(simp("safe_div(0, x)"), "0.0");
        // ... but with a divisor that is never near zero it may.
        assert_eq!(simp("safe_div(0, 2 + abs(x))"), "0.0");
    }

    #[test]
    fn commutation_gives_equal_hashes() {
        assert_eq!(hash("sin(x) + cos(x)"), hash("cos(x) + sin(x)"));
        assert_eq!(hash("safe_mul(x, sigmoid(x))"), hash("silu(x)"));
        assert_eq!(hash("x * 1 + 0"), hash("x"));
        assert_ne!(hash("sin(x)"), hash("cos(x)"));
    }

    #[test]
    fn fuel_exhaustion_is_a_stop_reason() {
        let e = parse("safe_div(x, 1) + safe_div(x, 1) * 1 + 0").unwrap();
        let s = simplify_roots(
            &e.graph,
            &[e.root],
            Limits {
                fuel: 1,
                ..Limits::default()
            },
        );
        assert_eq!(s.stop, StopReason::FuelExhausted);
        assert_eq!(s.rewrites, 1);
    }
}
