//! The hash-consed arena: formulas as DAGs of [`Node`]s addressed by
//! [`Id`]. Children are always added before their parents, so the arena
//! order is a topological order and every pass is a loop, not a recursion.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::ops::Op;

/// A handle into a [`Graph`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u32);

impl Id {
    /// Filler for unused argument slots.
    pub const NONE: Id = Id(u32::MAX);

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One node. Constants are stored as f64 bits so nodes hash and compare
/// exactly (and `-0.0` stays distinct from `0.0`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Node {
    /// The input variable (`x`, alias `ARG0`).
    X,
    Const(u64),
    /// An intrinsic applied to `op.arity()` arguments; the rest are
    /// [`Id::NONE`].
    App(Op, [Id; 3]),
}

impl Node {
    pub fn constant(v: f64) -> Node {
        Node::Const(v.to_bits())
    }

    pub fn app(op: Op, args: &[Id]) -> Node {
        debug_assert_eq!(args.len(), op.arity(), "{op} takes {}", op.arity());
        let mut a = [Id::NONE; 3];
        a[..args.len()].copy_from_slice(args);
        Node::App(op, a)
    }

    pub fn args(&self) -> &[Id] {
        match self {
            Node::App(op, a) => &a[..op.arity()],
            _ => &[],
        }
    }

    pub fn as_const(&self) -> Option<f64> {
        match self {
            Node::Const(b) => Some(f64::from_bits(*b)),
            _ => None,
        }
    }

    pub fn op(&self) -> Option<Op> {
        match self {
            Node::App(op, _) => Some(*op),
            _ => None,
        }
    }
}

/// A fast non-cryptographic hasher for small keys (the Fx scheme: rotate,
/// xor, multiply per word). Hash-consing hashes every node it builds, so
/// SipHash's DoS resistance would cost more than everything else.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

/// A hash-consed arena of nodes: adding a node that exists returns its id.
#[derive(Clone, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    memo: HashMap<Node, Id, FxBuild>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Add (or find) a node. Its arguments must already be in the graph.
    pub fn add(&mut self, node: Node) -> Id {
        if let Some(&id) = self.memo.get(&node) {
            return id;
        }
        debug_assert!(node.args().iter().all(|a| a.index() < self.nodes.len()));
        // Ids are u32 and `Id::NONE` is reserved: never wrap silently.
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i != Id::NONE.0)
            .map(Id)
            .expect("a graph holds at most 2^32 - 1 nodes");
        self.nodes.push(node);
        self.memo.insert(node, id);
        id
    }

    /// The id of `node` if it is already in the arena.
    pub fn find(&self, node: &Node) -> Option<Id> {
        self.memo.get(node).copied()
    }

    /// Make room for `n` more nodes.
    pub fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
        self.memo.reserve(n);
    }

    pub fn x(&mut self) -> Id {
        self.add(Node::X)
    }

    pub fn constant(&mut self, v: f64) -> Id {
        self.add(Node::constant(v))
    }

    pub fn app(&mut self, op: Op, args: &[Id]) -> Id {
        self.add(Node::app(op, args))
    }

    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn const_value(&self, id: Id) -> Option<f64> {
        self.node(id).as_const()
    }

    /// Every node, in arena (topological) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The ids reachable from `roots`, children before parents.
    pub fn reachable(&self, roots: &[Id]) -> Vec<Id> {
        let mut seen = vec![false; self.nodes.len()];
        for r in roots {
            seen[r.index()] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if seen[i] {
                for a in self.nodes[i].args() {
                    seen[a.index()] = true;
                }
            }
        }
        (0..self.nodes.len() as u32)
            .filter(|&i| seen[i as usize])
            .map(Id)
            .collect()
    }

    /// Number of distinct nodes reachable from `roots` (DAG size).
    pub fn dag_size(&self, roots: &[Id]) -> usize {
        self.reachable(roots).len()
    }

    /// Number of nodes of the expression tree under `root` (shared nodes
    /// counted once per use), saturating at `u64::MAX`.
    pub fn tree_size(&self, root: Id) -> u64 {
        let mut size = vec![0u64; root.index() + 1];
        for i in self.reachable(&[root]) {
            let node = self.node(i);
            size[i.index()] = node
                .args()
                .iter()
                .fold(1u64, |s, a| s.saturating_add(size[a.index()]));
        }
        size[root.index()]
    }

    /// Height of the expression under `root` (a leaf is 1).
    pub fn depth(&self, root: Id) -> usize {
        let mut depth = vec![0usize; root.index() + 1];
        for i in self.reachable(&[root]) {
            let d = self.node(i).args().iter().map(|a| depth[a.index()]).max();
            depth[i.index()] = 1 + d.unwrap_or(0);
        }
        depth[root.index()]
    }

    /// Copy the expressions under `roots` from `other` into this graph.
    pub fn import(&mut self, other: &Graph, roots: &[Id]) -> Vec<Id> {
        let mut map = vec![Id::NONE; other.len()];
        for id in other.reachable(roots) {
            let node = match *other.node(id) {
                Node::App(op, mut args) => {
                    for a in &mut args[..op.arity()] {
                        *a = map[a.index()];
                    }
                    Node::App(op, args)
                }
                n => n,
            };
            map[id.index()] = self.add(node);
        }
        roots.iter().map(|r| map[r.index()]).collect()
    }

    /// Do the expressions `a` (in `self`) and `b` (in `other`) have the
    /// same structure? Constants compare by their exact bits.
    pub fn same_expr(&self, a: Id, other: &Graph, b: Id) -> bool {
        let mut scratch = other.clone();
        let mapped = scratch.import(self, &[a])[0];
        mapped == b
    }
}

/// A formula in its own graph: the unit that most passes take and return.
#[derive(Clone)]
pub struct Expr {
    pub graph: Graph,
    pub root: Id,
}

impl Expr {
    pub fn node_count(&self) -> usize {
        self.graph.dag_size(&[self.root])
    }

    /// Structural equality (exact constants), independent of arena layout.
    pub fn same_as(&self, other: &Expr) -> bool {
        self.graph.same_expr(self.root, &other.graph, other.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_consing_shares_nodes() {
        let mut g = Graph::new();
        let x = g.x();
        let s1 = g.app(Op::Sin, &[x]);
        let s2 = g.app(Op::Sin, &[x]);
        assert_eq!(s1, s2);
        let m = g.app(Op::Mul, &[s1, s2]);
        assert_eq!(g.dag_size(&[m]), 3);
        assert_eq!(g.tree_size(m), 5);
        assert_eq!(g.depth(m), 3);
    }

    #[test]
    fn same_expr_ignores_arena_layout() {
        let mut g1 = Graph::new();
        let one = g1.constant(1.0);
        let x = g1.x();
        let a = g1.app(Op::Add, &[x, one]);
        let mut g2 = Graph::new();
        let x2 = g2.x();
        let one2 = g2.constant(1.0);
        let b = g2.app(Op::Add, &[x2, one2]);
        assert!(g1.same_expr(a, &g2, b));
        let c = g2.app(Op::Add, &[one2, x2]);
        assert!(!g1.same_expr(a, &g2, c));
    }
}
