//! Evaluators.
//!
//! * [`RefEval`]: the f64 reference, node by node, one point at a time. It
//!   is the oracle every other path is compared with.
//! * [`Tape`]: the fast f32 evaluator. It compiles the DAG into register
//!   instructions and runs them over cache-sized chunks of the input, so the
//!   whole formula is one pass over memory with no full-size temporaries.
//!   Storage may be f32, bf16 or f16 ([`Lane`]); math is always f32.
//! * [`eval_per_node`]: the naive baseline, one full-length loop and one
//!   full-size temporary per node (what a chain of framework ops does).
//!
//! Non-finite results are data: evaluators report how many outputs were
//! NaN or infinite, they never fail.

use std::mem::MaybeUninit;

use super::fastmath;
use super::graph::{Graph, Id, Node};
use super::ops::{apply_chunk_f32, pow_f32, Op};

/// Lanes per chunk (the longest; see [`Tape::lanes`]): a few slots of this
/// size stay in L1/L2.
pub const CHUNK: usize = 512;

/// f64 reference evaluation of several roots sharing one graph.
pub struct RefEval {
    order: Vec<Id>,
    roots: Vec<Id>,
    slots: Vec<f64>,
}

impl RefEval {
    pub fn new(graph: &Graph, roots: &[Id]) -> RefEval {
        RefEval {
            order: graph.reachable(roots),
            roots: roots.to_vec(),
            slots: vec![0.0; graph.len()],
        }
    }

    /// The value of each root at `x`.
    pub fn eval(&mut self, graph: &Graph, x: f64) -> Vec<f64> {
        for &id in &self.order {
            let v = match graph.node(id) {
                Node::X => x,
                Node::Const(b) => f64::from_bits(*b),
                Node::App(op, a) => {
                    let args = [a[0], a[1], a[2]]
                        .map(|i| self.slots.get(i.index()).copied().unwrap_or(0.0));
                    op.info().f64.call(&args)
                }
            };
            self.slots[id.index()] = v;
        }
        self.roots.iter().map(|r| self.slots[r.index()]).collect()
    }
}

/// Evaluate one root at one point in f64 (convenience for tests and CLI).
pub fn eval_f64(graph: &Graph, root: Id, x: f64) -> f64 {
    RefEval::new(graph, &[root]).eval(graph, x)[0]
}

/// A storage type for the chunked evaluator: loads widen to f32, stores
/// round once.
pub trait Lane: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Lane for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Lane for half::bf16 {
    const NAME: &'static str = "bf16";
    #[inline]
    fn to_f32(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
}

impl Lane for half::f16 {
    const NAME: &'static str = "f16";
    #[inline]
    fn to_f32(self) -> f32 {
        self.to_f32()
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
}

/// A chunk-sized scratch slot. As wide as a node id: a tape has at most
/// one slot per node, so no index can wrap (a `u16` did, past 65,535).
type Slot = u32;

#[derive(Clone, Debug)]
enum Instr {
    /// `out = op(args…)`.
    Op { op: Op, args: [Slot; 3], out: Slot },
    /// `out = a ^ k` with a loop-invariant exponent.
    Pow { a: Slot, k: f32, out: Slot },
    /// Two values of one argument in one pass, sharing their work.
    Pair {
        kind: PairKind,
        a: Slot,
        out: [Slot; 2],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PairKind {
    /// `[sigmoid(a), sigmoid(-a)]` (the pair in every sigmoid derivative):
    /// one exp instead of two.
    Sigmoid,
    /// `[sin(a), cos(a)]`: one range reduction.
    SinCos,
}

/// Nodes that are computed together: for every member of a pair, the pair
/// (kind, argument, [first value, second value]). Both values must be
/// reachable from the roots.
fn find_pairs(graph: &Graph, order: &[Id], reach: &[bool]) -> Vec<Option<(PairKind, Id, [Id; 2])>> {
    let mut pair = vec![None; graph.len()];
    let live = |n: Option<Id>| n.filter(|id| reach[id.index()]);
    for &id in order {
        let node = graph.node(id);
        let (Some(op), [a]) = (node.op(), node.args()) else {
            continue;
        };
        let a = *a;
        let found = match op {
            Op::Sin => {
                live(graph.find(&Node::app(Op::Cos, &[a]))).map(|c| (PairKind::SinCos, [id, c]))
            }
            Op::Sigmoid if graph.node(a).op() != Some(Op::Neg) => {
                live(graph.find(&Node::app(Op::Neg, &[a])))
                    .and_then(|n| graph.find(&Node::app(Op::Sigmoid, &[n])))
                    .and_then(|m| live(Some(m)))
                    .map(|m| (PairKind::Sigmoid, [id, m]))
            }
            _ => None,
        };
        if let Some((kind, ids)) = found {
            for m in ids {
                pair[m.index()] = Some((kind, a, ids));
            }
        }
    }
    pair
}

/// A bias added to the input before the formula (an MLP's `f(x·W + b)`):
/// the input is `[P, N, width]` with `per = N · width` elements per
/// member, and element `e` gets `bias[(e / per) · width + e % width]`
/// (`bias` is `[P, width]`).
#[derive(Clone, Copy, Debug)]
pub struct Shift<'a, T> {
    pub bias: &'a [T],
    pub width: usize,
    pub per: usize,
}

/// A compiled formula for chunked f32 evaluation.
#[derive(Clone, Debug)]
pub struct Tape {
    instrs: Vec<Instr>,
    consts: Vec<(Slot, f32)>,
    /// `None` for a formula that does not read `x`.
    x_slot: Option<Slot>,
    outputs: Vec<Slot>,
    n_slots: usize,
    /// Lanes per chunk (the stride of a slot in scratch), at most
    /// [`CHUNK`]: formulas with very many live values use shorter chunks
    /// so that scratch stays near [`SCRATCH_BYTES`].
    lanes: usize,
}

/// Scratch memory a tape aims for (slots × lanes × 4 bytes). Up to 512
/// slots keep the full [`CHUNK`]; beyond, chunks shrink.
pub const SCRATCH_BYTES: usize = 1 << 20;

/// The shortest chunk (a multiple of every SIMD width).
pub const MIN_LANES: usize = 16;

/// Lanes per chunk for a tape of `n_slots` slots.
fn lanes_for(n_slots: usize) -> usize {
    let fit = SCRATCH_BYTES / (4 * n_slots.max(1));
    (fit / MIN_LANES * MIN_LANES).clamp(MIN_LANES, CHUNK)
}

/// What an evaluation saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalReport {
    /// Outputs that were NaN or ±inf.
    pub nonfinite: usize,
}

impl EvalReport {
    pub fn complete(&self) -> bool {
        self.nonfinite == 0
    }
}

/// Slot allocation by liveness: a free list plus a per-slot flag, so
/// releasing is O(1) however many values are live.
#[derive(Default)]
struct Slots {
    free: Vec<Slot>,
    is_free: Vec<bool>,
}

impl Slots {
    fn alloc(&mut self) -> Slot {
        if let Some(s) = self.free.pop() {
            self.is_free[s as usize] = false;
            return s;
        }
        // At most one slot per graph node, and node ids are u32.
        let s = Slot::try_from(self.is_free.len()).expect("more slots than graph nodes");
        self.is_free.push(false);
        s
    }

    fn release(&mut self, s: Slot) {
        if !std::mem::replace(&mut self.is_free[s as usize], true) {
            self.free.push(s);
        }
    }

    fn count(&self) -> usize {
        self.is_free.len()
    }
}

/// Where each reachable node is last read (by position in `order`; roots
/// never die) and how often it is read.
struct Liveness {
    last_use: Vec<usize>,
    uses: Vec<usize>,
    reach: Vec<bool>,
}

impl Liveness {
    fn new(graph: &Graph, order: &[Id], roots: &[Id]) -> Liveness {
        let mut l = Liveness {
            last_use: vec![0; graph.len()],
            uses: vec![0; graph.len()],
            reach: vec![false; graph.len()],
        };
        for (pos, &id) in order.iter().enumerate() {
            l.reach[id.index()] = true;
            for a in graph.node(id).args() {
                l.last_use[a.index()] = pos;
                l.uses[a.index()] += 1;
            }
        }
        for r in roots {
            l.last_use[r.index()] = usize::MAX;
            l.uses[r.index()] += 1;
        }
        l
    }
}

/// The state of [`Tape::new`].
struct Compiler<'g> {
    graph: &'g Graph,
    live: Liveness,
    pairs: Vec<Option<(PairKind, Id, [Id; 2])>>,
    /// Nodes never computed on their own (a `-a` needed only by a pair).
    skip: Vec<bool>,
    slot_of: Vec<Option<Slot>>,
    slots: Slots,
    tape: Tape,
}

impl<'g> Compiler<'g> {
    fn new(graph: &'g Graph, order: &[Id], roots: &[Id]) -> Compiler<'g> {
        let live = Liveness::new(graph, order, roots);
        let pairs = find_pairs(graph, order, &live.reach);
        let mut skip = vec![false; graph.len()];
        for p in pairs.iter().flatten() {
            if p.0 == PairKind::Sigmoid {
                let neg = graph.node(p.2[1]).args()[0];
                skip[neg.index()] = live.uses[neg.index()] == 1;
            }
        }
        Compiler {
            graph,
            live,
            pairs,
            skip,
            slot_of: vec![None; graph.len()],
            slots: Slots::default(),
            tape: Tape {
                instrs: Vec::new(),
                consts: Vec::new(),
                x_slot: None,
                outputs: Vec::new(),
                n_slots: 0,
                lanes: CHUNK,
            },
        }
    }

    /// Pinned values (x, constants) get their own slots up front: constant
    /// slots are filled once before any instruction runs, so no temporary
    /// may ever have used them.
    fn pin_leaves(&mut self, order: &[Id]) {
        for &id in order {
            let s = match *self.graph.node(id) {
                Node::X => *self.tape.x_slot.get_or_insert_with(|| self.slots.alloc()),
                Node::Const(b) => {
                    let s = self.slots.alloc();
                    self.tape.consts.push((s, f64::from_bits(b) as f32));
                    s
                }
                Node::App(..) => continue,
            };
            self.slot_of[id.index()] = Some(s);
        }
    }

    fn slot(&self, id: Id) -> Slot {
        self.slot_of[id.index()].expect("arguments are computed first")
    }

    /// Release the slots of the arguments of `id` read for the last time
    /// at position `pos` (pinned leaves are never released).
    fn release_args(&mut self, id: Id, pos: usize) {
        for &a in self.graph.node(id).args() {
            let pinned = matches!(self.graph.node(a), Node::X | Node::Const(_));
            if let (false, true, Some(s)) = (
                pinned,
                self.live.last_use[a.index()] == pos,
                self.slot_of[a.index()],
            ) {
                self.slots.release(s);
            }
        }
    }

    /// Emit the instruction computing node `id` at position `pos`.
    fn emit(&mut self, id: Id, pos: usize) {
        if self.skip[id.index()] || self.slot_of[id.index()].is_some() {
            // Not needed, or already computed with its pair partner.
            return self.release_args(id, pos);
        }
        // The result never shares a slot with its own arguments (they are
        // released after it is allocated), so loops need no aliasing.
        let out = self.slots.alloc();
        self.slot_of[id.index()] = Some(out);
        if let Some((kind, a, ids)) = self.pairs[id.index()] {
            let other = if ids[0] == id { ids[1] } else { ids[0] };
            let second = self.slots.alloc();
            self.slot_of[other.index()] = Some(second);
            let out = if ids[0] == id {
                [out, second]
            } else {
                [second, out]
            };
            self.release_args(id, pos);
            let a = self.slot(a);
            return self.tape.instrs.push(Instr::Pair { kind, a, out });
        }
        self.release_args(id, pos);
        let node = *self.graph.node(id);
        let (op, args) = (node.op().expect("app"), node.args());
        let k = (op == Op::Pow)
            .then(|| self.graph.const_value(args[1]))
            .flatten();
        let instr = match k {
            Some(k) => Instr::Pow {
                a: self.slot(args[0]),
                k: k as f32,
                out,
            },
            None => {
                let mut s = [0 as Slot; 3];
                for (i, a) in args.iter().enumerate() {
                    s[i] = self.slot(*a);
                }
                Instr::Op { op, args: s, out }
            }
        };
        self.tape.instrs.push(instr);
    }

    fn finish(mut self, roots: &[Id]) -> Tape {
        self.tape.outputs = roots.iter().map(|r| self.slot(*r)).collect();
        self.tape.n_slots = self.slots.count().max(1);
        self.tape.lanes = lanes_for(self.tape.n_slots);
        self.tape
    }
}

impl Tape {
    /// Compile `roots` of `graph`. Temporaries are register-allocated by
    /// liveness, so slots are reused as soon as a value is dead. Any graph
    /// compiles: slot indices are as wide as node ids, and a formula with
    /// very many live values runs in shorter chunks ([`Tape::lanes`]).
    pub fn new(graph: &Graph, roots: &[Id]) -> Tape {
        let order = graph.reachable(roots);
        let mut c = Compiler::new(graph, &order, roots);
        c.pin_leaves(&order);
        for (pos, &id) in order.iter().enumerate() {
            if matches!(graph.node(id), Node::App(..)) {
                c.emit(id, pos);
            }
        }
        c.finish(roots)
    }

    /// Lanes per chunk: [`CHUNK`] unless the formula needs more than
    /// [`SCRATCH_BYTES`] of scratch at that length.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Number of chunk-sized scratch slots an evaluation uses.
    pub fn slots(&self) -> usize {
        self.n_slots
    }

    pub fn instructions(&self) -> usize {
        self.instrs.len()
    }

    /// Scratch space for [`Tape::run_chunk`].
    pub fn scratch(&self) -> Vec<f32> {
        let w = self.lanes;
        let mut s = vec![0.0f32; self.n_slots * w];
        for &(slot, v) in &self.consts {
            s[slot as usize * w..][..w].fill(v);
        }
        s
    }

    /// Run the program on `n <= self.lanes` lanes whose x values are already in
    /// the x slot of `scratch`: with AVX2 where the CPU has it (8 lanes per
    /// instruction instead of SSE2's 4). Both builds of the loop perform the
    /// same IEEE operations in the same order (Rust never contracts a·b + c
    /// into an FMA), so the results are bit-identical.
    fn run_chunk(&self, scratch: &mut [f32], n: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            match simd_level() {
                // SAFETY: the CPU supports these features (checked by simd_level).
                Simd::Avx512 => return unsafe { self.run_chunk_avx512(scratch, n) },
                // SAFETY: as above, AVX2 and FMA (checked by simd_level).
                Simd::Avx2 => return unsafe { self.run_chunk_avx2(scratch, n) },
                Simd::Base => {}
            }
        }
        self.run_chunk_portable(scratch, n)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_chunk_avx2(&self, scratch: &mut [f32], n: usize) {
        self.run_chunk_portable(scratch, n)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    unsafe fn run_chunk_avx512(&self, scratch: &mut [f32], n: usize) {
        self.run_chunk_portable(scratch, n)
    }

    #[inline(always)]
    fn run_chunk_portable(&self, scratch: &mut [f32], n: usize) {
        let w = self.lanes;
        for ins in &self.instrs {
            match *ins {
                Instr::Op { op, args, out } => {
                    let (lo, hi) = scratch.split_at_mut(out as usize * w);
                    let (dst, rest) = hi.split_at_mut(w);
                    let mut srcs: [&[f32]; 3] = [&[], &[], &[]];
                    for (i, &a) in args[..op.arity()].iter().enumerate() {
                        srcs[i] = slot_in(lo, rest, a, out, n, w);
                    }
                    apply_chunk_f32(op, &srcs, &mut dst[..n]);
                }
                Instr::Pow { a, k, out } => {
                    let (src, dst) = two_slots(scratch, a, out, w);
                    pow_chunk(&src[..n], &mut dst[..n], k);
                }
                Instr::Pair { kind, a, out } => {
                    let at = |s: Slot| s as usize * w..s as usize * w + n;
                    let [src, p, q] = scratch
                        .get_disjoint_mut([at(a), at(out[0]), at(out[1])])
                        .expect("pair slots are distinct");
                    match kind {
                        PairKind::Sigmoid => fastmath::sigmoid_pair_slice(src, p, q),
                        PairKind::SinCos => fastmath::sin_cos_slice(src, p, q),
                    }
                }
            }
        }
    }

    /// Widen `x` into the x slot (a formula without `x` has none).
    fn load_x<T: Lane>(&self, scratch: &mut [f32], x: &[T]) {
        let Some(slot) = self.x_slot else {
            return;
        };
        let dst = &mut scratch[slot as usize * self.lanes..][..x.len()];
        for (d, v) in dst.iter_mut().zip(x) {
            *d = v.to_f32();
        }
    }

    /// Widen `x + shift` into the x slot, `x` starting at element `start`
    /// of the shifted tensor; the sum is rounded to `T` as a candle
    /// `broadcast_add` in `T` would.
    fn load_shifted<T: Lane>(&self, scratch: &mut [f32], x: &[T], shift: &Shift<T>, start: usize) {
        let Some(slot) = self.x_slot else {
            return;
        };
        let dst = &mut scratch[slot as usize * self.lanes..][..x.len()];
        // Row by row (a row never spans two members: `per` is a multiple
        // of `width`), so the inner loop is a plain vectorizable add.
        let mut done = 0;
        while done < x.len() {
            let e = start + done;
            let col = e % shift.width;
            let len = (shift.width - col).min(x.len() - done);
            let bias = &shift.bias[e / shift.per * shift.width + col..][..len];
            let (d, v) = (&mut dst[done..done + len], &x[done..done + len]);
            for ((d, v), b) in d.iter_mut().zip(v).zip(bias) {
                *d = T::from_f32(v.to_f32() + b.to_f32()).to_f32();
            }
            done += len;
        }
    }

    /// `out[i] = f(x[i])` for the first root. Panics if lengths differ.
    pub fn map<T: Lane>(&self, x: &[T], out: &mut [T]) -> EvalReport {
        let mut scratch = self.scratch();
        self.map_with(&mut scratch, x, out)
    }

    /// [`Tape::map`] with caller-provided scratch (from [`Tape::scratch`]).
    pub fn map_with<T: Lane>(&self, scratch: &mut [f32], x: &[T], out: &mut [T]) -> EvalReport {
        self.map_into(scratch, x, as_uninit(out))
    }

    /// [`Tape::map_with`] into memory that need not be initialised (every
    /// element is written), so a fresh output buffer costs no zeroing pass.
    pub fn map_into<T: Lane>(
        &self,
        scratch: &mut [f32],
        x: &[T],
        out: &mut [MaybeUninit<T>],
    ) -> EvalReport {
        self.map_shifted_into(scratch, x, None, out)
    }

    /// `out[i] = f(x[i] + shift)` (see [`Shift`]; `None`: no shift), into
    /// memory that need not be initialised.
    pub fn map_shifted_into<T: Lane>(
        &self,
        scratch: &mut [f32],
        x: &[T],
        shift: Option<(&Shift<T>, usize)>,
        out: &mut [MaybeUninit<T>],
    ) -> EvalReport {
        assert_eq!(x.len(), out.len(), "input and output lengths differ");
        let mut report = EvalReport::default();
        let y = self.outputs[0] as usize * self.lanes;
        for (c, (xc, oc)) in x
            .chunks(self.lanes)
            .zip(out.chunks_mut(self.lanes))
            .enumerate()
        {
            let n = xc.len();
            match shift {
                Some((sh, start)) => self.load_shifted(scratch, xc, sh, start + c * self.lanes),
                None => self.load_x(scratch, xc),
            }
            self.run_chunk(scratch, n);
            for (o, &v) in oc.iter_mut().zip(&scratch[y..y + n]) {
                o.write(T::from_f32(v));
                report.nonfinite += usize::from(!v.is_finite());
            }
        }
        report
    }

    /// `dx[i] = dy[i] * f(x[i])` for the first root (the fused backward
    /// when the root is the derivative).
    pub fn map_mul<T: Lane>(&self, x: &[T], dy: &[T], dx: &mut [T]) -> EvalReport {
        let mut scratch = self.scratch();
        self.map_mul_with(&mut scratch, x, dy, dx)
    }

    pub fn map_mul_with<T: Lane>(
        &self,
        scratch: &mut [f32],
        x: &[T],
        dy: &[T],
        dx: &mut [T],
    ) -> EvalReport {
        self.map_mul_into(scratch, x, dy, as_uninit(dx))
    }

    /// [`Tape::map_mul_with`] into memory that need not be initialised.
    pub fn map_mul_into<T: Lane>(
        &self,
        scratch: &mut [f32],
        x: &[T],
        dy: &[T],
        dx: &mut [MaybeUninit<T>],
    ) -> EvalReport {
        self.map_mul_shifted_into(scratch, x, None, dy, dx)
    }

    /// `dx[i] = dy[i] * f(x[i] + shift)` (see [`Tape::map_shifted_into`]).
    pub fn map_mul_shifted_into<T: Lane>(
        &self,
        scratch: &mut [f32],
        x: &[T],
        shift: Option<(&Shift<T>, usize)>,
        dy: &[T],
        dx: &mut [MaybeUninit<T>],
    ) -> EvalReport {
        assert!(x.len() == dy.len() && x.len() == dx.len(), "lengths differ");
        let mut report = EvalReport::default();
        let w = self.lanes;
        let d = self.outputs[0] as usize * w;
        for (c, ((xc, gc), oc)) in x
            .chunks(w)
            .zip(dy.chunks(w))
            .zip(dx.chunks_mut(w))
            .enumerate()
        {
            let n = xc.len();
            match shift {
                Some((sh, start)) => self.load_shifted(scratch, xc, sh, start + c * w),
                None => self.load_x(scratch, xc),
            }
            self.run_chunk(scratch, n);
            for ((o, &v), g) in oc.iter_mut().zip(&scratch[d..d + n]).zip(gc) {
                let r = g.to_f32() * v;
                o.write(T::from_f32(r));
                report.nonfinite += usize::from(!r.is_finite());
            }
        }
        report
    }

    /// Every root at once: `outs[r][i] = root_r(x[i])`.
    pub fn map_all(&self, x: &[f32], outs: &mut [Vec<f32>]) -> EvalReport {
        assert_eq!(outs.len(), self.outputs.len());
        let mut scratch = self.scratch();
        let mut report = EvalReport::default();
        for o in outs.iter_mut() {
            o.resize(x.len(), 0.0);
        }
        let w = self.lanes;
        for (c, xc) in x.chunks(w).enumerate() {
            let n = xc.len();
            self.load_x(&mut scratch, xc);
            self.run_chunk(&mut scratch, n);
            for (r, &s) in self.outputs.iter().enumerate() {
                let src = &scratch[s as usize * w..][..n];
                outs[r][c * w..c * w + n].copy_from_slice(src);
                report.nonfinite += src.iter().filter(|v| !v.is_finite()).count();
            }
        }
        report
    }
}

/// An initialised slice seen as possibly-uninitialised memory (only ever
/// written through, with initialised values).
fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout; the callers only write
    // initialised values, so the slice stays initialised for its owner.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// The SIMD builds of the CPU loops (the evaluator's chunk loop and the
/// row kernels of `op`).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Simd {
    Base,
    Avx2,
    Avx512,
}

/// The widest build of the chunk loop this CPU supports.
#[cfg(target_arch = "x86_64")]
fn simd_supported() -> Simd {
    use std::is_x86_feature_detected as has;
    if !(has!("avx2") && has!("fma")) {
        Simd::Base
    } else if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
        Simd::Avx512
    } else {
        Simd::Avx2
    }
}

/// The build of the chunk loop to run: the widest supported, capped by
/// `ACTFORGE_SIMD=avx2` or `=base` (for comparisons).
#[cfg(target_arch = "x86_64")]
pub fn simd_level() -> Simd {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("ACTFORGE_SIMD").as_deref() {
            Ok("base") => Simd::Base,
            Ok("avx2") => Simd::Avx2,
            _ => Simd::Avx512,
        };
        simd_supported().min(cap)
    })
}

/// `dst[i] = pow_f32(src[i], k)` with the square-and-multiply loop turned
/// inside out for integer `k` (the bit loop outside, lanes inside), so it
/// vectorizes; the operations per lane are exactly pow_f32's.
#[inline(always)]
fn pow_chunk(src: &[f32], dst: &mut [f32], k: f32) {
    if !(k == k.trunc() && k.abs() <= crate::ir::ops::MAX_INT_POW) {
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = pow_f32(v, k);
        }
        return;
    }
    let n = k.abs() as u32;
    // Small powers (x², x³ of GELU and its derivative): the same
    // multiplications per lane in one unrolled pass.
    match n {
        0 => pow_lanes::<0>(src, dst),
        1 => pow_lanes::<1>(src, dst),
        2 => pow_lanes::<2>(src, dst),
        3 => pow_lanes::<3>(src, dst),
        4 => pow_lanes::<4>(src, dst),
        _ => pow_passes(src, dst, n),
    }
    if k < 0.0 {
        for o in dst.iter_mut() {
            *o = 1.0 / *o;
        }
    }
}

/// `dst[i] = src[i]^n` for n > 4: the square-and-multiply loop with the
/// bit loop outside and the lanes inside.
#[inline(always)]
fn pow_passes(src: &[f32], dst: &mut [f32], mut n: u32) {
    let mut base = [0.0f32; CHUNK];
    let base = &mut base[..src.len()];
    base.copy_from_slice(src);
    dst.fill(1.0);
    while n > 0 {
        if n & 1 == 1 {
            for (o, &b) in dst.iter_mut().zip(base.iter()) {
                *o *= b;
            }
        }
        for b in base.iter_mut() {
            *b *= *b;
        }
        n >>= 1;
    }
}

/// `dst[i] = src[i]^N` by the same square-and-multiply, per lane.
#[inline(always)]
fn pow_lanes<const N: u32>(src: &[f32], dst: &mut [f32]) {
    for (o, &v) in dst.iter_mut().zip(src) {
        let (mut r, mut b, mut m) = (1.0f32, v, N);
        while m > 0 {
            if m & 1 == 1 {
                r *= b;
            }
            b *= b;
            m >>= 1;
        }
        *o = r;
    }
}

#[inline(always)]
fn slot_in<'a>(
    lo: &'a [f32],
    rest: &'a [f32],
    a: Slot,
    out: Slot,
    n: usize,
    w: usize,
) -> &'a [f32] {
    let a = a as usize;
    let out = out as usize;
    if a < out {
        &lo[a * w..][..n]
    } else {
        &rest[(a - out - 1) * w..][..n]
    }
}

#[inline(always)]
fn two_slots(scratch: &mut [f32], src: Slot, dst: Slot, w: usize) -> (&[f32], &mut [f32]) {
    let (s, d) = (src as usize, dst as usize);
    if s < d {
        let (lo, hi) = scratch.split_at_mut(d * w);
        (&lo[s * w..][..w], &mut hi[..w])
    } else {
        let (lo, hi) = scratch.split_at_mut(s * w);
        (&hi[..w], &mut lo[d * w..][..w])
    }
}

/// The naive baseline: one full-length pass and one full-size temporary
/// per node, like a chain of unfused framework ops.
pub fn eval_per_node(graph: &Graph, root: Id, x: &[f32]) -> Vec<f32> {
    let mut vals: Vec<Option<Vec<f32>>> = vec![None; graph.len()];
    for id in graph.reachable(&[root]) {
        let node = graph.node(id);
        let v = match *node {
            Node::X => x.to_vec(),
            Node::Const(b) => vec![f64::from_bits(b) as f32; x.len()],
            Node::App(op, _) => {
                let mut out = vec![0.0f32; x.len()];
                let mut srcs: [&[f32]; 3] = [&[], &[], &[]];
                for (i, a) in node.args().iter().enumerate() {
                    srcs[i] = vals[a.index()].as_deref().expect("child evaluated");
                }
                apply_chunk_f32(op, &srcs, &mut out);
                out
            }
        };
        vals[id.index()] = Some(v);
    }
    vals[root.index()].take().expect("root evaluated")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Library;

    /// The chunked integer powers (unrolled for |k| ≤ 4, passes beyond)
    /// give pow_f32's bits, specials included.
    #[test]
    fn chunked_integer_powers_are_pow_f32_bit_for_bit() {
        let mut xs: Vec<f32> = (0..200).map(|i| i as f32 * 0.37 - 37.0).collect();
        xs.extend([
            0.0,
            -0.0,
            1e-40,
            -1e-40,
            3e38,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        let mut out = vec![0.0f32; xs.len()];
        for k in -7..=7 {
            pow_chunk(&xs, &mut out, k as f32);
            for (&x, &y) in xs.iter().zip(&out) {
                let want = crate::ir::ops::pow_f32(x, k as f32);
                assert_eq!(y.to_bits(), want.to_bits(), "{x}^{k}: {y} vs {want}");
            }
        }
    }

    #[test]
    fn tape_matches_reference_across_chunk_boundaries() {
        let e = Library::standard()
            .parse("gated_gate(safe_sin(relu_like(sigmoid_like(x))), gelu_like(x)) + x * x - safe_div(x, x - 1)")
            .unwrap();
        let tape = Tape::new(&e.graph, &[e.root]);
        let xs: Vec<f32> = (0..CHUNK * 2 + 37)
            .map(|i| i as f32 * 0.013 - 7.0)
            .collect();
        let mut out = vec![0.0f32; xs.len()];
        let rep = tape.map(&xs, &mut out);
        assert!(rep.complete());
        let naive = eval_per_node(&e.graph, e.root, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = eval_f64(&e.graph, e.root, x as f64);
            assert!(
                (out[i] as f64 - want).abs() <= 1e-4 * want.abs() + 1e-5,
                "x={x}: {} vs {want}",
                out[i]
            );
            assert_eq!(
                out[i].to_bits(),
                naive[i].to_bits(),
                "tape and per-node disagree at x={x}"
            );
        }
    }

    /// Paired instructions (sigmoid(a) with sigmoid(-a), sin with cos) give
    /// bit for bit what the per-node loop gives, whatever the order of the
    /// partners, whether `-a` is needed elsewhere, and with several roots.
    #[test]
    fn paired_instructions_equal_the_per_node_values() {
        let cases = [
            // (formula, pairs expected in the tape)
            ("sigmoid(x) * sigmoid(-x)", 1),
            ("sigmoid(-x) + 2 * sigmoid(x)", 1),
            ("sigmoid(-x) * sigmoid(x) + -x", 1),
            ("sin(x * x) * cos(x * x) + sin(x)", 1),
            ("cos(x) - sin(x) + sigmoid(sin(x)) * sigmoid(-sin(x))", 2),
            ("sigmoid(x) + sin(x)", 0),
        ];
        let xs: Vec<f32> = (0..CHUNK + 61)
            .map(|i| (i as f32 - 300.0) * 0.07 + if i % 97 == 0 { 9000.0 } else { 0.0 })
            .collect();
        for (src, want_pairs) in cases {
            let e = Library::standard().parse(src).unwrap();
            let tape = Tape::new(&e.graph, &[e.root]);
            let pairs = tape
                .instrs
                .iter()
                .filter(|i| matches!(i, Instr::Pair { .. }))
                .count();
            assert_eq!(pairs, want_pairs, "{src}: {:?}", tape.instrs);
            let mut out = vec![0.0f32; xs.len()];
            tape.map(&xs, &mut out);
            let naive = eval_per_node(&e.graph, e.root, &xs);
            for (i, x) in xs.iter().enumerate() {
                assert!(
                    out[i].to_bits() == naive[i].to_bits()
                        || (out[i].is_nan() && naive[i].is_nan()),
                    "{src} at x={x}: {} vs {}",
                    out[i],
                    naive[i]
                );
            }
        }
        // Several roots, among them a pair member and the `-a` of a pair.
        let mut g = Graph::new();
        let x = g.x();
        let nx = g.app(Op::Neg, &[x]);
        let sp = g.app(Op::Sigmoid, &[x]);
        let sn = g.app(Op::Sigmoid, &[nx]);
        let prod = g.app(Op::Mul, &[sp, sn]);
        let roots = [prod, nx, sn];
        let tape = Tape::new(&g, &roots);
        let mut outs = vec![Vec::new(); roots.len()];
        tape.map_all(&xs, &mut outs);
        for (r, &root) in roots.iter().enumerate() {
            let naive = eval_per_node(&g, root, &xs);
            assert!(outs[r]
                .iter()
                .zip(&naive)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// The AVX2 and AVX-512 builds of the chunk loop and the portable one
    /// agree bit for bit (no FMA contraction, same operation order).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_and_portable_paths_agree_bitwise() {
        let supported = simd_supported();
        if supported < Simd::Avx2 {
            eprintln!("SKIPPED: no AVX2 on this CPU");
            return;
        }
        let avx512 = supported == Simd::Avx512;
        if !avx512 {
            eprintln!("note: no AVX-512 on this CPU; only the AVX2 build is compared");
        }
        let srcs = [
            "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))",
            "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))",
            "mish(x) + safe_div(x ^ 3, exp(x) - 2) + erf(x) * sqrt(abs(x)) + tanh(x) / log(x * x + 1)",
            // NaN (log of a negative) through maxNum/minNum, clamp, where.
            "max(log(x), 0.5) + min(0.5, log(x)) + clamp(log(x), -1, 1) * where(log(x), x, 2) + (log(x) < 1)",
        ];
        for src in srcs {
            let e = Library::standard().parse(src).unwrap();
            let tape = Tape::new(&e.graph, &[e.root]);
            let xs: Vec<f32> = (0..CHUNK)
                .map(|i| (i as f32 - 256.0) * 0.037 + if i % 50 == 0 { 9000.0 } else { 0.0 })
                .collect();
            let mut a = tape.scratch();
            tape.load_x(&mut a, &xs);
            tape.run_chunk_portable(&mut a, CHUNK);
            let mut builds: Vec<(&str, Vec<f32>)> = Vec::new();
            let mut b = tape.scratch();
            tape.load_x(&mut b, &xs);
            // SAFETY: this test runs only where the CPU has AVX2 and FMA.
            unsafe { tape.run_chunk_avx2(&mut b, CHUNK) };
            builds.push(("avx2", b));
            if avx512 {
                let mut c = tape.scratch();
                tape.load_x(&mut c, &xs);
                // SAFETY: `avx512` says the CPU has AVX-512F.
                unsafe { tape.run_chunk_avx512(&mut c, CHUNK) };
                builds.push(("avx512", c));
            }
            for (name, b) in &builds {
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    assert!(
                        p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                        "{src} ({name}): slot value {i}: {p} vs {q}"
                    );
                }
            }
        }
    }

    /// Up to 512 slots the chunk is CHUNK lanes; beyond, it shrinks (to
    /// multiples of MIN_LANES) so scratch stays near SCRATCH_BYTES.
    #[test]
    fn chunks_shrink_with_many_slots() {
        assert_eq!(lanes_for(1), CHUNK);
        assert_eq!(lanes_for(512), CHUNK);
        assert_eq!(lanes_for(513), 496);
        assert_eq!(lanes_for(70_000), MIN_LANES);
        for n in [600, 4_000, 16_000] {
            let l = lanes_for(n);
            assert!(
                l.is_multiple_of(MIN_LANES) && n * l * 4 <= SCRATCH_BYTES,
                "{n}: {l}"
            );
        }
    }

    #[test]
    fn nonfinite_outputs_are_counted_not_raised() {
        let e = Library::standard().parse("log(x)").unwrap();
        let tape = Tape::new(&e.graph, &[e.root]);
        let xs = [-1.0f32, 0.0, 1.0];
        let mut out = [0.0f32; 3];
        let rep = tape.map(&xs, &mut out);
        assert_eq!(rep.nonfinite, 2);
        assert_eq!(out[2], 0.0);
    }

    #[test]
    fn constant_formulas_need_no_input() {
        let e = Library::standard().parse("1 + 2").unwrap();
        let tape = Tape::new(&e.graph, &[e.root]);
        let mut out = [0.0f32; 5];
        tape.map(&[0.0f32; 5], &mut out);
        assert_eq!(out, [3.0; 5]);
    }
}
