//! CUDA C code generation: one fused forward and one fused backward kernel
//! per formula and storage dtype, any number of formulas per module.
//!
//! Storage is f32, bf16 or f16; math is always f32 and rounds once on
//! store. The bf16/f16 conversions are the hardware's (`cvt` through inline
//! PTX in `kernels/act_math.cuh`, with portable C for the host shim and for
//! architectures without the instruction), so the generated source needs no
//! CUDA header and NVRTC compiles it with no include path. Transcendental
//! work that a formula repeats is shared ([`pairs`]), and the math mode
//! ([`MathMode`]) picks libm or the GPU's approximate instructions. Kernel
//! templates live in `kernels/elementwise.cu.tmpl`.
//!
//! The exported ABI (stable):
//!
//! ```text
//! extern "C" __global__ void act_<hash>_fwd_<dtype>(const T* x, T* y, unsigned long long n);
//! extern "C" __global__ void act_<hash>_bwd_<dtype>(const T* x, const T* dy, T* dx, unsigned long long n);
//! ```
//!
//! `<hash>` is the formula's 16-hex-digit canonical hash, so equivalent
//! formulas get the same names and the same source. A dispatch module
//! (a GP generation's) adds `act_dispatch_<dir>_<dtype>(unsigned int id,
//! …)` for one formula of the module and `act_population_<dir>_<dtype>`
//! ([`population_kernel_name`]) for a population: slice `blockIdx.y` of
//! `[slices, n]` applies formula `s.id[blockIdx.y]`. Nothing here calls
//! NVRTC (that is [`crate::runtime`]'s job).

pub mod composed;
pub mod host;
pub mod pairs;
pub mod render;

use std::fmt;

use crate::diff::Function;
use crate::ir::{to_infix_limited, Graph, Id, Op};
use crate::simplify::hash_hex;

/// The device prelude every module starts with.
pub const ACT_MATH: &str = include_str!("../../kernels/act_math.cuh");
/// Kernel templates (forward and backward), `{{KEY}}` placeholders.
pub const ELEMENTWISE_TEMPLATE: &str = include_str!("../../kernels/elementwise.cu.tmpl");
/// Shared math of [`Layout::Dispatch`] modules.
pub const DISPATCH_MATH: &str = include_str!("../../kernels/dispatch.cuh");

/// Storage type of a kernel's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    F32,
    Bf16,
    F16,
}

impl Dtype {
    pub const ALL: [Dtype; 3] = [Dtype::F32, Dtype::Bf16, Dtype::F16];

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }

    /// The element type in generated code.
    pub fn c_type(self) -> &'static str {
        match self {
            Dtype::F32 => "float",
            Dtype::Bf16 => "act_bf16",
            Dtype::F16 => "act_f16",
        }
    }

    /// The CUDA type with the same layout, for users of exported kernels.
    pub fn cuda_type(self) -> &'static str {
        match self {
            Dtype::F32 => "float",
            Dtype::Bf16 => "__nv_bfloat16",
            Dtype::F16 => "__half",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            _ => 2,
        }
    }

    /// Elements per 16-byte vector.
    pub fn vector_width(self) -> usize {
        16 / self.size()
    }

    pub fn parse(s: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Host values as the raw bits of this 16-bit type (rounded to nearest
    /// even); for uploading to 16-bit kernels. F32 is not a 16-bit type.
    pub fn encode16(self, xs: &[f32]) -> Vec<u16> {
        match self {
            Dtype::Bf16 => xs
                .iter()
                .map(|&v| half::bf16::from_f32(v).to_bits())
                .collect(),
            Dtype::F16 => xs
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect(),
            Dtype::F32 => panic!("encode16 on f32"),
        }
    }

    /// The inverse of [`Dtype::encode16`].
    pub fn decode16(self, bits: &[u16]) -> Vec<f32> {
        match self {
            Dtype::Bf16 => bits
                .iter()
                .map(|&b| half::bf16::from_bits(b).to_f32())
                .collect(),
            Dtype::F16 => bits
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f32())
                .collect(),
            Dtype::F32 => panic!("decode16 on f32"),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Fwd,
    Bwd,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Fwd, Direction::Bwd];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Fwd => "fwd",
            Direction::Bwd => "bwd",
        }
    }
}

/// `act_<hash>_<dir>_<dtype>`.
pub fn kernel_name(hash: u64, dir: Direction, dtype: Dtype) -> String {
    format!("act_{}_{}_{}", hash_hex(hash), dir.name(), dtype.name())
}

/// `act_dispatch_<dir>_<dtype>`: the kernel of a [`Layout::Dispatch`]
/// module, for every formula in it.
pub fn dispatch_kernel_name(dir: Direction, dtype: Dtype) -> String {
    format!("act_dispatch_{}_{}", dir.name(), dtype.name())
}

/// `act_population_<dir>_<dtype>`: the kernel of a [`Layout::Dispatch`]
/// module that runs a population, slice `blockIdx.y` with formula
/// `s.id[blockIdx.y]` (see [`population_params`]).
pub fn population_kernel_name(dir: Direction, dtype: Dtype) -> String {
    format!("act_population_{}_{}", dir.name(), dtype.name())
}

/// The most slices one population launch takes: the length of the
/// `act_slices` id array passed by value (1 KB of the 4 KB of kernel
/// parameters). Larger populations take several launches.
pub const MAX_SLICES: usize = 256;

/// The definition of the population kernels' id array, in every dispatch
/// module.
fn slices_struct() -> String {
    format!(
        "#define ACT_MAX_SLICES {MAX_SLICES}\n// Formula (index in this module) of each slice of a population launch.\nstruct act_slices {{ unsigned int id[ACT_MAX_SLICES]; }};\n"
    )
}

/// One kernel of a module.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    pub name: String,
    /// The formula's canonical hash; for a dispatch kernel, which serves
    /// every formula of its module, 0.
    pub hash: u64,
    pub dir: Direction,
    pub dtype: Dtype,
    /// A [`Layout::Dispatch`] kernel: its first parameter is the formula's
    /// index in the module ([`Module::index_of`]).
    pub dispatch: bool,
    /// A population kernel of a [`Layout::Dispatch`] module
    /// ([`population_params`]): one formula index per slice (`blockIdx.y`).
    pub population: bool,
}

/// Which kernels to emit for each formula.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub dtypes: Vec<Dtype>,
    pub directions: Vec<Direction>,
    /// How the kernels reach the formula's device functions.
    pub inlining: Inlining,
    /// Kernels per formula (the exported ABI) or one dispatch kernel per
    /// direction and dtype for the whole module.
    pub layout: Layout,
    /// Approximate hardware math (the default) or libm ("exact").
    pub math: MathMode,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            dtypes: Dtype::ALL.to_vec(),
            directions: Direction::ALL.to_vec(),
            inlining: Inlining::Auto,
            layout: Layout::PerFormula,
            math: MathMode::default(),
        }
    }
}

/// How `exp`, the sigmoid, `tanh` and division are computed.
///
/// `Approx` uses the GPU's approximate instructions (`ex2.approx`,
/// `rcp.approx`, `div.full`) within the error bounds the PTX ISA documents;
/// the host-shim tests run every primitive, both seeds and random formulas
/// with each instruction's error pushed to its bound, in both directions,
/// against the PRIMITIVES.md tolerance. `Exact` uses CUDA's libm and IEEE
/// division, for comparisons. The mode is a `#define` at the top of the
/// source, so it is part of the kernel cache key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MathMode {
    #[default]
    Approx,
    Exact,
}

impl MathMode {
    pub fn name(self) -> &'static str {
        match self {
            MathMode::Approx => "approx",
            MathMode::Exact => "exact",
        }
    }
}

/// The device prelude of a module in math mode `math`: the mode's
/// `#define`, then `kernels/act_math.cuh`.
pub fn prelude(math: MathMode) -> String {
    let flag = u8::from(math == MathMode::Approx);
    format!("#define ACT_APPROX_MATH {flag}\n{ACT_MATH}")
}

/// How a module's kernels are laid out.
///
/// NVRTC's time goes mostly to ptxas, and grows with every kernel and every
/// inlined copy of a math function. `PerFormula` emits the ABI kernels
/// `act_<hash>_{fwd,bwd}_<dtype>` for each formula, each formula with its
/// own inlined math. `Dispatch` is for a module that serves a whole GP
/// generation: the formulas' device functions, one copy of each math
/// function (`kernels/dispatch.cuh`, called instead of inlined) and one
/// kernel per direction and dtype, `act_dispatch_<dir>_<dtype>(unsigned int
/// id, …)`, which calls formula `id` through a uniform `switch`. It costs a
/// switch and a few calls per element on the GPU (not yet measured there)
/// and compiles several times faster per formula (`actforge bench-compile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    PerFormula,
    Dispatch,
}

/// Whether `act_<hash>_f`/`_df` are inlined into every lane of every kernel
/// or called.
///
/// Inlining copies the formula into each of the 4 or 8 unrolled vector
/// lanes and the scalar tail of all kernels. It saves the call ABI (8–15%
/// of the main path per element on the seeds and GELU, `actforge
/// bench-compile --sass --inline`), but NVRTC time grows with every copy of
/// a trig function's large-argument reduction: all six kernels of the Q&A
/// seed took 3.3× as long inlined, the T5 seed 5.8×, GELU (no trig) the
/// same (README, "Call or inline"). `Auto`, the default, therefore inlines
/// a formula unless it (or its derivative) uses `sin`, `cos` or `tan`.
/// Dispatch modules always call (one copy of everything per module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inlining {
    Auto,
    Call,
    Inline,
}

impl Inlining {
    pub fn name(self) -> &'static str {
        match self {
            Inlining::Auto => "auto",
            Inlining::Call => "call",
            Inlining::Inline => "inline",
        }
    }

    /// Whether `f`'s device functions are inlined under this policy.
    pub fn inlines(self, f: &Function, layout: Layout) -> bool {
        match (self, layout) {
            (_, Layout::Dispatch) | (Inlining::Call, _) => false,
            (Inlining::Inline, _) => true,
            (Inlining::Auto, _) => !uses_trig(f),
        }
    }

    /// The qualifier of `f`'s device functions under this policy.
    fn qualifier(self, f: &Function, layout: Layout) -> &'static str {
        if self.inlines(f, layout) {
            "__device__ __forceinline__"
        } else {
            "__device__ __noinline__"
        }
    }
}

/// Whether `f` or its derivative calls `sin`, `cos` or `tan`.
fn uses_trig(f: &Function) -> bool {
    f.graph
        .reachable(&[f.f, f.df])
        .iter()
        .any(|&id| matches!(f.graph.node(id).op(), Some(Op::Sin | Op::Cos | Op::Tan)))
}

struct Entry {
    hash: u64,
    f: String,
    df: String,
    summary: String,
}

/// A CUDA module holding the kernels of one or more formulas (e.g. a GP
/// generation, so one NVRTC compile serves the population).
pub struct Module {
    entries: Vec<Entry>,
    selection: Selection,
}

/// Longest canonical infix quoted in a kernel's comment.
const SUMMARY_CHARS: usize = 160;

impl Module {
    pub fn new(selection: Selection) -> Module {
        Module {
            entries: Vec::new(),
            selection,
        }
    }

    /// A module with every dtype and direction of one formula.
    pub fn single(f: &Function) -> Module {
        let mut m = Module::new(Selection::default());
        m.add(f);
        m
    }

    /// A GP generation's dispatch module of `functions` in `dtypes`
    /// (forward and backward, called math, the fused op's math mode): what
    /// screening compiles and what a lockstep population loads, so that
    /// for the same formulas in the same order both have one source, one
    /// kernel-cache key and one compile.
    pub fn generation<'a>(
        dtypes: Vec<Dtype>,
        functions: impl IntoIterator<Item = &'a Function>,
    ) -> Module {
        let mut m = Module::new(Selection {
            dtypes,
            directions: Direction::ALL.to_vec(),
            inlining: Inlining::Call,
            layout: Layout::Dispatch,
            math: MathMode::default(),
        });
        for f in functions {
            m.add(f);
        }
        m
    }

    /// Add a formula; equivalent formulas (same canonical hash) are added
    /// once. Returns whether it was new.
    pub fn add(&mut self, f: &Function) -> bool {
        if self.entries.iter().any(|e| e.hash == f.hash) {
            return false;
        }
        let h = hash_hex(f.hash);
        let q = self.selection.inlining.qualifier(f, self.selection.layout);
        self.entries.push(Entry {
            hash: f.hash,
            f: render::device_function(q, &format!("act_{h}_f"), &f.graph, f.f),
            df: render::device_function(q, &format!("act_{h}_df"), &f.graph, f.df),
            summary: summary(&f.graph, f.f),
        });
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.hash)
    }

    /// The formula's index in the module: the `id` argument of its
    /// dispatch kernels.
    pub fn index_of(&self, hash: u64) -> Option<u32> {
        self.entries
            .iter()
            .position(|e| e.hash == hash)
            .map(|i| i as u32)
    }

    pub fn layout(&self) -> Layout {
        self.selection.layout
    }

    /// Every kernel the source defines, in source order.
    pub fn kernels(&self) -> Vec<KernelSpec> {
        let mut out = Vec::new();
        if self.selection.layout == Layout::Dispatch {
            for population in [false, true] {
                for &dir in &self.selection.directions {
                    for &dtype in &self.selection.dtypes {
                        let name = match population {
                            false => dispatch_kernel_name(dir, dtype),
                            true => population_kernel_name(dir, dtype),
                        };
                        out.push(KernelSpec {
                            name,
                            hash: 0,
                            dir,
                            dtype,
                            dispatch: !population,
                            population,
                        });
                    }
                }
            }
            return out;
        }
        for e in &self.entries {
            for &dir in &self.selection.directions {
                for &dtype in &self.selection.dtypes {
                    out.push(KernelSpec {
                        name: kernel_name(e.hash, dir, dtype),
                        hash: e.hash,
                        dir,
                        dtype,
                        dispatch: false,
                        population: false,
                    });
                }
            }
        }
        out
    }

    /// The complete CUDA C source: prelude, then per formula its device
    /// functions and kernels. Deterministic, and derived only from the
    /// canonical formulas.
    pub fn source(&self) -> String {
        let dispatch = self.selection.layout == Layout::Dispatch;
        let mut s = String::from("// Generated by actforge. Do not edit.\n\n");
        s.push_str(&prelude(self.selection.math));
        if dispatch {
            s.push('\n');
            s.push_str(DISPATCH_MATH);
        }
        for (i, e) in self.entries.iter().enumerate() {
            let h = hash_hex(e.hash);
            match dispatch {
                true => s.push_str(&format!("\n// ---- [{i}] act_{h} : {}\n\n", e.summary)),
                false => s.push_str(&format!("\n// ---- act_{h} : {}\n\n", e.summary)),
            }
            s.push_str(&e.f);
            s.push('\n');
            s.push_str(&e.df);
            if dispatch {
                continue;
            }
            for &dir in &self.selection.directions {
                for &dtype in &self.selection.dtypes {
                    s.push('\n');
                    s.push_str(&kernel_source(&KernelRef::Formula(e.hash), dir, dtype));
                }
            }
        }
        if dispatch {
            s.push_str("\n// ---- dispatch: formula `id` of the module, in the order above\n\n");
            for (fun, suffix) in [("f", "f"), ("df", "df")] {
                s.push_str(&format!(
                    "__device__ __forceinline__ float act_dispatch_{fun}(unsigned int id, float x)\n{{\n    switch (id) {{\n"
                ));
                for (i, e) in self.entries.iter().enumerate() {
                    s.push_str(&format!(
                        "    case {i}u: return act_{}_{suffix}(x);\n",
                        hash_hex(e.hash)
                    ));
                }
                s.push_str("    default: return __int_as_float(0x7fc00000);\n    }\n}\n\n");
            }
            for &dir in &self.selection.directions {
                for &dtype in &self.selection.dtypes {
                    s.push('\n');
                    s.push_str(&kernel_source(&KernelRef::Dispatch, dir, dtype));
                }
            }
            s.push_str("\n// ---- population: slice blockIdx.y of [slices, n] applies formula s.id[blockIdx.y]\n\n");
            s.push_str(&slices_struct());
            for &dir in &self.selection.directions {
                for &dtype in &self.selection.dtypes {
                    s.push('\n');
                    s.push_str(&kernel_source(&KernelRef::Population, dir, dtype));
                }
            }
        }
        s
    }
}

/// The kernel ABI, spelled in this one place: the parameter list of a
/// forward (`x, y, n`) or backward (`x, dy, dx, n`) kernel over elements
/// of C type `t`, after the formula `id` of a dispatch kernel.
/// `restrict` adds `__restrict__` (the generated definitions carry it;
/// declarations for users need not).
pub fn kernel_params(dir: Direction, t: &str, dispatch: bool, restrict: bool) -> String {
    let id = if dispatch { "unsigned int id, " } else { "" };
    let r = if restrict { " __restrict__" } else { "" };
    match dir {
        Direction::Fwd => format!("{id}const {t}*{r} x, {t}*{r} y, unsigned long long n"),
        Direction::Bwd => {
            format!("{id}const {t}*{r} x, const {t}*{r} dy, {t}*{r} dx, unsigned long long n")
        }
    }
}

/// The parameter list of a population kernel: the slices' formula
/// indices `s` (by value; `s.id[j]` for slice `j` = `blockIdx.y`), then
/// the pointers to the whole `[slices, n]` tensors and `n`, the elements
/// of one slice.
pub fn population_params(dir: Direction, t: &str, restrict: bool) -> String {
    format!("act_slices s, {}", kernel_params(dir, t, false, restrict))
}

impl KernelSpec {
    /// The parameter list, as in the generated source (without
    /// `__restrict__`).
    pub fn params(&self) -> String {
        match self.population {
            true => population_params(self.dir, self.dtype.c_type(), false),
            false => kernel_params(self.dir, self.dtype.c_type(), self.dispatch, false),
        }
    }
}

/// Which formula a kernel computes.
enum KernelRef {
    Formula(u64),
    /// The module's formula `id`.
    Dispatch,
    /// The module's formula `s.id[blockIdx.y]` on slice `blockIdx.y`.
    Population,
}

/// The first lines of a population kernel: slice `blockIdx.y`'s formula,
/// and the pointers moved to its `n` elements.
fn population_prologue(dir: Direction) -> String {
    let ptrs: &[&str] = match dir {
        Direction::Fwd => &["x", "y"],
        Direction::Bwd => &["x", "dy", "dx"],
    };
    let mut s = String::from(
        "    // Slice blockIdx.y: its formula and its n elements.\n    const unsigned int id = s.id[blockIdx.y];\n",
    );
    for p in ptrs {
        s.push_str(&format!("    {p} += (unsigned long long)blockIdx.y * n;\n"));
    }
    s
}

/// One kernel from the template.
fn kernel_source(k: &KernelRef, dir: Direction, dtype: Dtype) -> String {
    let (start, end) = match dir {
        Direction::Fwd => ("// @@FORWARD@@\n", "// @@BACKWARD@@\n"),
        Direction::Bwd => ("// @@BACKWARD@@\n", ""),
    };
    let body = template_section(start, end);
    // `{{F}}(v)` and `{{DF}}(v)` are calls: a dispatch or population
    // kernel adds the id.
    let (f, df) = match *k {
        KernelRef::Formula(hash) => {
            let h = hash_hex(hash);
            (format!("act_{h}_f("), format!("act_{h}_df("))
        }
        KernelRef::Dispatch | KernelRef::Population => (
            "act_dispatch_f(id, ".to_string(),
            "act_dispatch_df(id, ".to_string(),
        ),
    };
    let t = dtype.c_type();
    let (name, params, prologue) = match *k {
        KernelRef::Formula(hash) => (
            kernel_name(hash, dir, dtype),
            kernel_params(dir, t, false, true),
            String::new(),
        ),
        KernelRef::Dispatch => (
            dispatch_kernel_name(dir, dtype),
            kernel_params(dir, t, true, true),
            String::new(),
        ),
        KernelRef::Population => (
            population_kernel_name(dir, dtype),
            population_params(dir, t, true),
            population_prologue(dir),
        ),
    };
    let vec = format!("act_{}_vec", dtype.name());
    body.replace("{{NAME}}", &name)
        .replace("{{PARAMS}}", &params)
        .replace("{{PROLOGUE}}", &prologue)
        .replace("{{T}}", dtype.c_type())
        .replace("{{VEC}}", &vec)
        .replace("{{VW}}", &dtype.vector_width().to_string())
        .replace("{{LD}}", &format!("act_{}_ld", dtype.name()))
        .replace("{{ST}}", &format!("act_{}_st", dtype.name()))
        .replace("{{PACK}}", &format!("act_{}_pack", dtype.name()))
        .replace("{{F}}(", &f)
        .replace("{{DF}}(", &df)
}

fn template_section(start: &str, end: &str) -> &'static str {
    let t = ELEMENTWISE_TEMPLATE;
    let a = t.find(start).expect("template section") + start.len();
    let b = if end.is_empty() {
        t.len()
    } else {
        t.find(end).expect("template section")
    };
    &t[a..b]
}

fn summary(g: &Graph, root: Id) -> String {
    let text = to_infix_limited(g, root, 2_000).unwrap_or_else(|| "(large formula)".into());
    let text = text.replace("*/", "* /");
    if text.chars().count() > SUMMARY_CHARS {
        let cut: String = text.chars().take(SUMMARY_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    #[test]
    fn names_follow_the_abi() {
        assert_eq!(
            kernel_name(0xabc, Direction::Bwd, Dtype::Bf16),
            "act_0000000000000abc_bwd_bf16"
        );
    }

    #[test]
    fn templates_are_fully_substituted() {
        let f = Function::new(&parse("silu(x)").unwrap());
        let src = Module::single(&f).source();
        assert!(!src.contains("{{"), "unsubstituted placeholder");
        assert!(!src.contains("@@"), "template marker leaked");
        assert_eq!(src.matches("extern \"C\" __global__").count(), 6);
    }

    #[test]
    fn equivalent_formulas_share_source_and_names() {
        let a = Module::single(&Function::new(
            &parse("safe_mul(x, sigmoid_like(x))").unwrap(),
        ))
        .source();
        let b = Module::single(&Function::new(&parse("silu(x) * 1.0 + 0").unwrap())).source();
        assert_eq!(a, b);
    }

    #[test]
    fn dispatch_modules_have_one_kernel_per_direction_and_dtype_and_kind() {
        let mut m = Module::new(Selection {
            layout: Layout::Dispatch,
            ..Selection::default()
        });
        for src in ["silu(x)", "gelu(x)", "sin(x) * x", "swish(x)"] {
            m.add(&Function::new(&parse(src).unwrap()));
        }
        assert_eq!(m.len(), 3);
        let ks = m.kernels();
        assert_eq!(ks.len(), 12);
        let (pop, disp): (Vec<_>, Vec<_>) = ks.iter().partition(|k| k.population);
        assert!(disp
            .iter()
            .all(|k| k.dispatch && k.name.starts_with("act_dispatch_")));
        assert!(pop
            .iter()
            .all(|k| !k.dispatch && k.name.starts_with("act_population_")));
        assert_eq!((pop.len(), disp.len()), (6, 6));
        let src = m.source();
        assert!(!src.contains("{{") && !src.contains("@@"));
        assert_eq!(src.matches("extern \"C\" __global__").count(), 12);
        assert_eq!(src.matches("    case ").count(), 2 * 3);
        // Each population kernel moves every pointer to its slice.
        assert_eq!(
            src.matches("const unsigned int id = s.id[blockIdx.y];")
                .count(),
            6
        );
        assert_eq!(
            src.matches("    dx += (unsigned long long)blockIdx.y * n;")
                .count(),
            3
        );
        assert!(ks.iter().any(|k| k.name == "act_population_fwd_f16"
            && k.params() == "act_slices s, const act_f16* x, act_f16* y, unsigned long long n"));
        assert!(src.contains("#define act_sin act_shared_sin"));
        let gelu = Function::new(&parse("gelu(x)").unwrap());
        assert_eq!(m.index_of(gelu.hash), Some(1));
        assert!(ks.iter().any(|k| k.name == "act_dispatch_bwd_bf16"
            && k.params().starts_with("unsigned int id, const act_bf16* x")));
        // The per-formula layout has no shared math and no dispatch.
        let plain = Module::single(&gelu).source();
        assert!(!plain.contains("act_shared_") && !plain.contains("act_dispatch"));
    }

    #[test]
    fn modules_dedupe_by_hash() {
        let mut m = Module::new(Selection::default());
        assert!(m.add(&Function::new(&parse("silu(x)").unwrap())));
        assert!(!m.add(&Function::new(&parse("swish(x)").unwrap())));
        assert!(m.add(&Function::new(&parse("gelu(x)").unwrap())));
        assert_eq!(m.kernels().len(), 12);
    }
}
