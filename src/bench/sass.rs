//! SASS roofline report without a GPU: compile formulas with NVRTC (the
//! runtime's options), disassemble the CUBIN (`nvdisasm -json`, registers
//! from `cuobjdump -res-usage`), and count per kernel what one iteration of
//! the unrolled vector loop issues on its main path, per element, against
//! what an H200 can issue and transcendentally compute while it streams the
//! kernel's bytes at copy speed.
//!
//! The main path of the vector loop is the shortest path through its
//! control-flow graph from the loop head to the back edge, with each called
//! function's own shortest path (entry to return) added at each call: slow
//! paths for rare inputs (huge trig arguments, division corner cases) are
//! excluded, everything that every element executes is included. Static
//! sizes are reported alongside. Needs NVRTC, nvdisasm and cuobjdump, not a
//! GPU. Sits above `runtime` and `codegen`; imports nothing above them.

use std::collections::{BinaryHeap, HashMap};

use serde_json::{json, Value};

use crate::codegen::{Direction, Dtype, Inlining, Layout, MathMode, Module, Selection};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::ir::seeds::SEEDS;
use crate::runtime::nvrtc::{compile, CompileOptions};
use crate::runtime::tools::{cuobjdump_res_usage, nvdisasm_json};

/// The H200 figures the budget comes from (issue 14): 132 SMs, 4 warp
/// schedulers each issuing one warp instruction per clock at the 1.98 GHz
/// boost clock, 16 SFU (MUFU) lane operations per SM per clock, and a
/// device-to-device copy at about 4.3 TB/s.
pub const H200: Machine = Machine {
    sms: 132.0,
    schedulers: 4.0,
    clock_hz: 1.98e9,
    sfu_per_sm_clock: 16.0,
    copy_bytes_per_s: 4.3e12,
};

/// The formulas the report and its CI guard cover when none is given:
/// both seeds and GELU, `(label, formula)`.
pub const DEFAULT_FORMULAS: [(&str, &str); 3] = [SEEDS[0], SEEDS[1], ("gelu_like", "gelu_like(x)")];

/// A GPU's throughput figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Machine {
    pub sms: f64,
    pub schedulers: f64,
    pub clock_hz: f64,
    pub sfu_per_sm_clock: f64,
    pub copy_bytes_per_s: f64,
}

impl Machine {
    /// Per-thread instructions and MUFU operations one element may cost
    /// while the kernel still streams `bytes` per element at copy speed
    /// (one warp instruction serves 32 elements).
    pub fn budget(&self, bytes: f64) -> (f64, f64) {
        let elems_per_s = self.copy_bytes_per_s / bytes;
        let issue = self.sms * self.schedulers * self.clock_hz * 32.0;
        let sfu = self.sms * self.sfu_per_sm_clock * self.clock_hz;
        (issue / elems_per_s, sfu / elems_per_s)
    }
}

/// One SASS instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instr {
    /// `@P0`, `@!P1`, … or empty.
    pub predicate: String,
    pub opcode: String,
    pub operands: String,
}

/// One function of a CUBIN, instructions at 16-byte steps from 0.
#[derive(Clone, Debug)]
pub struct SassFunction {
    pub name: String,
    pub instrs: Vec<Instr>,
}

/// Parse `nvdisasm -json` output.
pub fn parse_nvdisasm(text: &str) -> Result<Vec<SassFunction>> {
    let bad = |what: &str| Error::Cuda(format!("unexpected nvdisasm -json output: {what}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let funcs = v
        .get(1)
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no function list"))?;
    funcs
        .iter()
        .map(|f| {
            let name = f["function-name"]
                .as_str()
                .ok_or_else(|| bad("a function without a name"))?;
            let instrs = f["sass-instructions"]
                .as_array()
                .ok_or_else(|| bad("a function without instructions"))?
                .iter()
                .map(|i| Instr {
                    predicate: i["predicate"].as_str().unwrap_or("").to_string(),
                    opcode: i["opcode"].as_str().unwrap_or("").to_string(),
                    operands: i["operands"].as_str().unwrap_or("").to_string(),
                })
                .collect();
            Ok(SassFunction {
                name: name.to_string(),
                instrs,
            })
        })
        .collect()
}

impl Instr {
    fn base(&self) -> &str {
        self.opcode.split('.').next().unwrap_or("")
    }

    fn is_nop(&self) -> bool {
        self.base() == "NOP"
    }

    pub fn is_mufu(&self) -> bool {
        self.base() == "MUFU"
    }

    /// Never executes (`@!PT`).
    fn never(&self) -> bool {
        self.predicate == "@!PT"
    }

    fn conditional(&self) -> bool {
        !self.predicate.is_empty() && self.predicate != "@PT"
    }

    /// The instruction index a `BRA` jumps to.
    fn branch_target(&self) -> Option<usize> {
        if self.base() != "BRA" {
            return None;
        }
        let last = self.operands.rsplit(',').next()?.trim();
        let addr = u64::from_str_radix(last.strip_prefix("0x")?, 16).ok()?;
        Some((addr / 16) as usize)
    }
}

/// Instructions and MUFU operations along a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost {
    pub instrs: u64,
    pub mufu: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            instrs: self.instrs + o.instrs,
            mufu: self.mufu + o.mufu,
        }
    }
}

/// A module's functions by name, with memoised main paths of callees.
pub struct Program<'a> {
    funcs: HashMap<&'a str, &'a SassFunction>,
    callee_cost: std::cell::RefCell<HashMap<String, Option<Cost>>>,
}

impl<'a> Program<'a> {
    pub fn new(funcs: &'a [SassFunction]) -> Program<'a> {
        Program {
            funcs: funcs.iter().map(|f| (f.name.as_str(), f)).collect(),
            callee_cost: Default::default(),
        }
    }

    pub fn function(&self, name: &str) -> Option<&'a SassFunction> {
        self.funcs.get(name).copied()
    }

    /// What executing instruction `i` of `f` costs (a call includes its
    /// callee's main path).
    fn cost_of(&self, f: &SassFunction, i: usize) -> Option<Cost> {
        let ins = &f.instrs[i];
        if ins.is_nop() || ins.never() {
            return Some(Cost::default());
        }
        let own = Cost {
            instrs: 1,
            mufu: u64::from(ins.is_mufu()),
        };
        if ins.base() != "CALL" {
            return Some(own);
        }
        Some(own + self.callee(ins.operands.trim())?)
    }

    /// The main path of a called function (entry to return).
    fn callee(&self, name: &str) -> Option<Cost> {
        if let Some(c) = self.callee_cost.borrow().get(name) {
            return *c;
        }
        // A recursive call (never generated) has no finite main path.
        self.callee_cost.borrow_mut().insert(name.to_string(), None);
        let f = self.function(name)?;
        let c = self.shortest(f, 0, |ins, _| ins.base() == "RET" && !ins.conditional());
        self.callee_cost.borrow_mut().insert(name.to_string(), c);
        c
    }

    /// Successors of instruction `i`.
    fn successors(f: &SassFunction, i: usize) -> Vec<usize> {
        let ins = &f.instrs[i];
        let next = (i + 1 < f.instrs.len()).then_some(i + 1);
        if ins.never() {
            return next.into_iter().collect();
        }
        match ins.base() {
            "EXIT" | "RET" if !ins.conditional() => vec![],
            "BRX" | "JMX" | "JMP" => vec![],
            "BRA" => {
                let mut v: Vec<usize> = ins.branch_target().into_iter().collect();
                if ins.conditional() {
                    v.extend(next);
                }
                v
            }
            _ => next.into_iter().collect(),
        }
    }

    /// Cheapest path from instruction `from` to an instruction satisfying
    /// `sink` (that instruction included), by instruction count, then MUFU.
    fn shortest(
        &self,
        f: &SassFunction,
        from: usize,
        sink: impl Fn(&Instr, usize) -> bool,
    ) -> Option<Cost> {
        let n = f.instrs.len();
        let mut best: Vec<Option<Cost>> = vec![None; n];
        let mut heap = BinaryHeap::new();
        let c0 = self.cost_of(f, from)?;
        best[from] = Some(c0);
        heap.push(std::cmp::Reverse((c0, from)));
        while let Some(std::cmp::Reverse((c, i))) = heap.pop() {
            if best[i].is_some_and(|b| b < c) {
                continue;
            }
            if sink(&f.instrs[i], i) {
                return Some(c);
            }
            for j in Program::successors(f, i) {
                let Some(step) = self.cost_of(f, j) else {
                    continue;
                };
                let cj = c + step;
                if best[j].is_none_or(|b| cj < b) {
                    best[j] = Some(cj);
                    heap.push(std::cmp::Reverse((cj, j)));
                }
            }
        }
        None
    }

    /// The outermost loop that comes first: `(head, latch)` of the backward
    /// branch with the lowest target (the widest on a tie).
    pub fn main_loop(f: &SassFunction) -> Option<(usize, usize)> {
        f.instrs
            .iter()
            .enumerate()
            .filter_map(|(i, ins)| ins.branch_target().filter(|&t| t <= i).map(|t| (t, i)))
            .min_by_key(|&(t, i)| (t, std::cmp::Reverse(i)))
    }

    /// One iteration of `f`'s main loop along its main path.
    pub fn loop_cost(&self, f: &SassFunction) -> Option<Cost> {
        let (head, latch) = Program::main_loop(f)?;
        self.shortest(f, head, |_, i| i == latch)
    }

    /// Static instructions of `f` and every function it calls (each once),
    /// and how many of them are branches.
    pub fn static_size(&self, f: &SassFunction) -> (u64, u64) {
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![f];
        let (mut instrs, mut branches) = (0u64, 0u64);
        while let Some(g) = todo.pop() {
            if !seen.insert(g.name.clone()) {
                continue;
            }
            for ins in live_instrs(g) {
                instrs += 1;
                branches += u64::from(ins.base() == "BRA");
                if ins.base() == "CALL" {
                    todo.extend(self.function(ins.operands.trim()));
                }
            }
        }
        (instrs, branches)
    }
}

/// A function's instructions without the padding: NOPs and the final
/// branch-to-self after the last exit.
fn live_instrs(f: &SassFunction) -> impl Iterator<Item = &Instr> {
    f.instrs.iter().enumerate().filter_map(|(i, ins)| {
        let self_loop = ins.branch_target() == Some(i) && !ins.conditional();
        (!ins.is_nop() && !self_loop).then_some(ins)
    })
}

/// Registers and stack bytes per function, from `cuobjdump -res-usage`.
pub fn parse_res_usage(text: &str) -> HashMap<String, (u32, u32)> {
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("Function ") {
            current = Some(name.trim_end_matches(':').to_string());
            continue;
        }
        let Some(name) = current.take() else {
            continue;
        };
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|t| t.strip_prefix(key))
                .and_then(|v| v.parse::<u32>().ok())
        };
        if let (Some(r), Some(s)) = (field("REG:"), field("STACK:")) {
            out.insert(name, (r, s));
        }
    }
    out
}

/// The report for one kernel.
#[derive(Clone, Debug)]
pub struct KernelReport {
    pub kernel: String,
    pub formula: String,
    pub dir: Direction,
    pub dtype: Dtype,
    /// Elements one vector-loop iteration handles.
    pub elems_per_iter: u32,
    /// One iteration's main path (callees included).
    pub per_iter: Cost,
    pub static_instrs: u64,
    pub static_branches: u64,
    pub registers: Option<u32>,
    pub stack_bytes: Option<u32>,
}

/// Which resource limits a kernel on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Memory,
    Issue,
    Mufu,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::Memory => "memory",
            Bound::Issue => "issue",
            Bound::Mufu => "mufu",
        }
    }
}

impl KernelReport {
    pub fn instrs_per_elem(&self) -> f64 {
        self.per_iter.instrs as f64 / f64::from(self.elems_per_iter)
    }

    pub fn mufu_per_elem(&self) -> f64 {
        self.per_iter.mufu as f64 / f64::from(self.elems_per_iter)
    }

    /// Bytes moved per element: x and y forward, x, dy and dx backward.
    pub fn bytes_per_elem(&self) -> f64 {
        let tensors = match self.dir {
            Direction::Fwd => 2.0,
            Direction::Bwd => 3.0,
        };
        tensors * self.dtype.size() as f64
    }

    /// The limiting resource and its time over the memory time (≤ 1: the
    /// kernel can stream at copy speed).
    pub fn bound(&self, m: &Machine) -> (Bound, f64) {
        let (ib, mb) = m.budget(self.bytes_per_elem());
        let issue = self.instrs_per_elem() / ib;
        let mufu = self.mufu_per_elem() / mb;
        if issue <= 1.0 && mufu <= 1.0 {
            (Bound::Memory, issue.max(mufu))
        } else if issue >= mufu {
            (Bound::Issue, issue)
        } else {
            (Bound::Mufu, mufu)
        }
    }

    pub fn to_json(&self, m: &Machine) -> Value {
        let (ib, mb) = m.budget(self.bytes_per_elem());
        let (bound, ratio) = self.bound(m);
        json!({
            "kernel": self.kernel,
            "formula": self.formula,
            "dir": self.dir.name(),
            "dtype": self.dtype.name(),
            "elems_per_iter": self.elems_per_iter,
            "instrs_per_iter": self.per_iter.instrs,
            "mufu_per_iter": self.per_iter.mufu,
            "instrs_per_elem": round2(self.instrs_per_elem()),
            "mufu_per_elem": round2(self.mufu_per_elem()),
            "budget_instrs_per_elem": round2(ib),
            "budget_mufu_per_elem": round2(mb),
            "bound": bound.name(),
            "bound_over_memory": round2(ratio),
            "static_instrs": self.static_instrs,
            "static_branches": self.static_branches,
            "registers": self.registers,
            "stack_bytes": self.stack_bytes,
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// `act_<hash>_<dir>_<dtype>` → (hash, direction, dtype).
pub fn parse_kernel_name(name: &str) -> Option<(u64, Direction, Dtype)> {
    let rest = name.strip_prefix("act_")?;
    let mut parts = rest.split('_');
    let hash = u64::from_str_radix(parts.next()?, 16).ok()?;
    let dir = match parts.next()? {
        "fwd" => Direction::Fwd,
        "bwd" => Direction::Bwd,
        _ => return None,
    };
    let dtype = Dtype::parse(parts.next()?)?;
    parts.next().is_none().then_some((hash, dir, dtype))
}

/// Analyse every per-formula kernel (`act_<hash>_<dir>_<dtype>`) of a
/// disassembled module; `labels` names formulas by hash (else the hash).
pub fn analyse(
    funcs: &[SassFunction],
    res: &HashMap<String, (u32, u32)>,
    labels: &HashMap<u64, String>,
) -> Result<Vec<KernelReport>> {
    let prog = Program::new(funcs);
    let mut out = Vec::new();
    for f in funcs {
        let Some((hash, dir, dtype)) = parse_kernel_name(&f.name) else {
            continue;
        };
        let per_iter = prog.loop_cost(f).ok_or_else(|| {
            Error::Cuda(format!("no vector loop found in the SASS of {}", f.name))
        })?;
        let (static_instrs, static_branches) = prog.static_size(f);
        let usage = res.get(&f.name);
        out.push(KernelReport {
            kernel: f.name.clone(),
            formula: labels
                .get(&hash)
                .cloned()
                .unwrap_or_else(|| crate::simplify::hash_hex(hash)),
            dir,
            dtype,
            elems_per_iter: dtype.vector_width() as u32,
            per_iter,
            static_instrs,
            static_branches,
            registers: usage.map(|u| u.0),
            stack_bytes: usage.map(|u| u.1),
        });
    }
    out.sort_by_key(|r| {
        let d = Dtype::ALL.iter().position(|&d| d == r.dtype);
        (r.formula.clone(), r.dir, d)
    });
    Ok(out)
}

/// Compile a module's CUDA C source (the runtime's options) and analyse it.
/// Returns the reports and the NVRTC time in ms.
pub fn measure_source(
    source: &str,
    name: &str,
    arch: u32,
    labels: &HashMap<u64, String>,
) -> Result<(Vec<KernelReport>, f64)> {
    let c = compile(source, name, &CompileOptions::cubin(arch))?;
    let funcs = parse_nvdisasm(&nvdisasm_json(&c.image)?)?;
    let res = parse_res_usage(&cuobjdump_res_usage(&c.image)?);
    Ok((
        analyse(&funcs, &res, labels)?,
        c.elapsed.as_secs_f64() * 1e3,
    ))
}

/// What to compile and report.
pub struct SassSpec<'a> {
    /// (label, compiled formula): each gets all six per-formula kernels.
    pub formulas: &'a [(String, Function)],
    pub arch: u32,
    pub math: MathMode,
    pub inlining: Inlining,
}

/// The measurement: one NVRTC compile per formula (the runtime's options),
/// disassembled. Also returns the NVRTC time of each compile, in ms.
pub fn measure(spec: &SassSpec) -> Result<(Vec<KernelReport>, Vec<f64>)> {
    let mut reports = Vec::new();
    let mut times = Vec::new();
    for (label, f) in spec.formulas {
        let mut m = Module::new(Selection {
            inlining: spec.inlining,
            layout: Layout::PerFormula,
            math: spec.math,
            ..Selection::default()
        });
        m.add(f);
        let labels = HashMap::from([(f.hash, label.clone())]);
        let (r, ms) = measure_source(&m.source(), &format!("{label}.cu"), spec.arch, &labels)?;
        times.push(ms);
        reports.extend(r);
    }
    Ok((reports, times))
}

/// The report as a JSON object (`--json`).
pub fn report_json(spec: &SassSpec, reports: &[KernelReport], times: &[f64], m: &Machine) -> Value {
    json!({
        "arch": format!("sm_{}", spec.arch),
        "math": spec.math.name(),
        "inlining": spec.inlining.name(),
        "layout": "per-formula",
        "machine": {"sms": m.sms, "schedulers": m.schedulers, "clock_ghz": m.clock_hz / 1e9,
                    "sfu_per_sm_clock": m.sfu_per_sm_clock, "copy_tb_per_s": m.copy_bytes_per_s / 1e12},
        "compile_ms": times,
        "kernels": reports.iter().map(|r| r.to_json(m)).collect::<Vec<_>>(),
    })
}

/// The report as a table (Markdown).
pub fn report_table(reports: &[KernelReport], m: &Machine) -> String {
    let mut s = String::from(
        "| formula | kernel | instr/elem | MUFU/elem | budget instr / MUFU | bound | static instr (branches) | regs | stack |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let (ib, mb) = m.budget(r.bytes_per_elem());
        let (bound, ratio) = r.bound(m);
        let verdict = match bound {
            Bound::Memory => format!("memory ({:.0}% of budget)", ratio * 100.0),
            b => format!("**{}, {ratio:.2}× the memory time**", b.name()),
        };
        let opt = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
        s.push_str(&format!(
            "| {} | {} {} | {:.1} | {:.2} | {:.0} / {:.1} | {} | {} ({}) | {} | {} |\n",
            r.formula,
            r.dir.name(),
            r.dtype.name(),
            r.instrs_per_elem(),
            r.mufu_per_elem(),
            ib,
            mb,
            verdict,
            r.static_instrs,
            r.static_branches,
            opt(r.registers),
            opt(r.stack_bytes),
        ));
    }
    s
}

/// A committed budget: per (formula label, kernel direction and dtype) the
/// main-path instructions and MUFU per element.
pub fn budget_json(reports: &[KernelReport]) -> Value {
    let rows: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "formula": r.formula,
                "dir": r.dir.name(),
                "dtype": r.dtype.name(),
                "instrs_per_elem": round2(r.instrs_per_elem()),
                "mufu_per_elem": round2(r.mufu_per_elem()),
            })
        })
        .collect();
    json!({ "tolerance": 0.10, "kernels": rows })
}

/// Every kernel whose main path exceeds its committed figure by more than
/// the file's tolerance (or that the file does not list), as messages.
pub fn check_budget(reports: &[KernelReport], committed: &Value) -> Vec<String> {
    let tol = committed["tolerance"].as_f64().unwrap_or(0.10);
    let rows = committed["kernels"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for r in reports {
        let row = rows.iter().find(|row| {
            row["formula"] == r.formula.as_str()
                && row["dir"] == r.dir.name()
                && row["dtype"] == r.dtype.name()
        });
        let Some(row) = row else {
            problems.push(format!(
                "{} {} {}: not in the committed budget",
                r.formula,
                r.dir.name(),
                r.dtype.name()
            ));
            continue;
        };
        for (key, got) in [
            ("instrs_per_elem", r.instrs_per_elem()),
            ("mufu_per_elem", r.mufu_per_elem()),
        ] {
            let want = row[key].as_f64().unwrap_or(0.0);
            if got > want * (1.0 + tol) + 1e-9 {
                problems.push(format!(
                    "{} {} {}: {key} {got:.2} exceeds the committed {want:.2} by more than {:.0}%",
                    r.formula,
                    r.dir.name(),
                    r.dtype.name(),
                    tol * 100.0
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, code: &[(&str, &str, &str)]) -> SassFunction {
        SassFunction {
            name: name.into(),
            instrs: code
                .iter()
                .map(|&(p, o, a)| Instr {
                    predicate: p.into(),
                    opcode: o.into(),
                    operands: a.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn budget_reproduces_the_issue_figures() {
        let (i, m) = H200.budget(12.0);
        assert!((i - 93.0).abs() < 1.0 && (m - 11.7).abs() < 0.3, "{i} {m}");
        let (i, m) = H200.budget(8.0);
        assert!((i - 62.0).abs() < 1.0 && (m - 7.8).abs() < 0.3, "{i} {m}");
    }

    #[test]
    fn main_path_skips_slow_paths_and_adds_callees() {
        // 0: head; 1: rare branch to a slow path at 5; 2: call; 3: MUFU;
        // 4: back edge to 0; 5-7: slow path returning to 2; 8: exit.
        let k = f(
            "k",
            &[
                ("", "FADD", "R0,R0,1"),
                ("@P0", "BRA", "0x50"),
                ("", "CALL.ABS.NOINC", "g"),
                ("", "MUFU.EX2", "R1,R0"),
                ("@P1", "BRA", "0x0"),
                ("", "FMUL", ""),
                ("", "FMUL", ""),
                ("", "BRA", "0x20"),
                ("", "EXIT", ""),
                ("", "BRA", "0x90"),
                ("", "NOP", ""),
            ],
        );
        let g = f(
            "g",
            &[
                ("", "MUFU.RCP", "R2,R1"),
                ("@P2", "BRA", "0x30"),
                ("", "RET.ABS.NODEC", "R20,0x0"),
                ("", "FFMA", ""),
                ("", "RET.ABS.NODEC", "R20,0x0"),
            ],
        );
        let funcs = [k, g];
        let p = Program::new(&funcs);
        assert_eq!(Program::main_loop(&funcs[0]), Some((0, 4)));
        assert_eq!(
            p.loop_cost(&funcs[0]),
            Some(Cost {
                instrs: 5 + 3,
                mufu: 2
            })
        );
        // Static: 9 live instructions in k (NOP and self-loop excluded), 5 in g.
        assert_eq!(p.static_size(&funcs[0]), (9 + 5, 3 + 1));
    }

    #[test]
    fn kernel_names_follow_the_abi() {
        assert_eq!(
            parse_kernel_name("act_00000000000000ab_bwd_bf16"),
            Some((0xab, Direction::Bwd, Dtype::Bf16))
        );
        assert_eq!(parse_kernel_name("act_dispatch_fwd_f32"), None);
        assert_eq!(parse_kernel_name("_Z22act_78be1876ebb2dc03_ff"), None);
    }

    #[test]
    fn res_usage_lines_are_read() {
        let text = " Function act_1_fwd_f32:\n  REG:46 STACK:32 SHARED:0 LOCAL:0 CONSTANT[0]:552 TEXTURE:0\n Function g:\n  REG:0 STACK:0 SHARED:0\n";
        let r = parse_res_usage(text);
        assert_eq!(r["act_1_fwd_f32"], (46, 32));
        assert_eq!(r["g"], (0, 0));
    }
}
