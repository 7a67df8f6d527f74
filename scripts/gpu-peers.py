#!/usr/bin/env python3
"""actforge's exported fused kernels against what a PyTorch user has already.

For each formula (default: the two seed formulas and gelu_like(x)), size,
dtype and direction (fwd: y = f(x); fwdbwd: y = f(x) and dx = dy * f'(x)
through autograd) this times, side by side on one device:

  actforge      the kernels of the `actforge export` package, loaded through
                CuPy RawModule exactly as the package's README.md shows
                (its Python block is executed as written; bf16 applies the
                README's own note: the _bf16 kernels and n // 8 blocks)
  eager         the formula as PyTorch ops, one op per node of the DEAP
                primitives (the generated source is written to the output
                folder), autograd for the backward
  compile       torch.compile of that same function (Inductor); the first
                call of each (size, dtype, direction) is reported separately
                as compile_s
  builtin-gelu  torch.nn.functional.gelu(x, approximate="tanh")
  copy          a device-to-device copy of the same number of bytes: the
                bandwidth ceiling

Every variant's output and gradient is checked against a float64 reference
(the formula evaluated in float64 by a separate interpreter, gradients by
float64 autograd) before anything is timed; a mismatch is a failure.

Imported only on the GPU machine and by tests/gpu_peers.rs on CPU torch; no
part of the crate or of CI depends on it.
"""

import argparse
import ast
import importlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

SEEDS = {
    "qa": "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))",
    "t5": "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))",
    "gelu": "gelu_like(x)",
}
VARIANTS = ["actforge", "eager", "compile", "builtin-gelu", "copy"]
CUDA_ONLY = {"actforge", "copy"}
DIRECTIONS = ["fwd", "fwdbwd"]
# Elements moved per element of x: fwd reads x, writes y; the backward also
# reads x and dy and writes dx.
TRAFFIC = {"fwd": 2, "fwdbwd": 5}
GELU_LIKE = "gelu_like(x)"

EPILOG = """\
examples:
  # on a GPU machine (what scripts/gpu-check.sh runs):
  python3 scripts/gpu-peers.py --actforge target/release/actforge --out peers --budget 240
  # an export package made before, only the Q&A seed, f32, 16M elements:
  python3 scripts/gpu-peers.py --export-dir exports --formula qa --dtypes f32 --sizes 16777216
  # on a CPU (tiny size; CuPy kernel and copy are skipped with a message):
  python3 scripts/gpu-peers.py --device cpu --sizes 4099 --iters 5 --out /tmp/peers

formulas: --formula takes qa, t5, gelu (the seeds and gelu_like) or any
formula in DEAP call syntax over the named primitives of PRIMITIVES.md
(name(args), x or ARG0, numbers); repeat it for several.

JSON lines (stdout and OUT/peers.jsonl), one per (formula, size, dtype,
direction, variant):
  {"formula_key", "formula", "elems", "dtype", "direction", "variant",
   "ms" (median), "gbps", "pct_of_copy", "cpu_ms" (median host time to issue
   one call), "iters", "timer" ("cuda-events" or "wall-clock"),
   "verified": {"y_max_err_ratio", "dx_max_err_ratio", "compared", "class"},
   "compile_s" (compile only: the first call, compiling included),
   "module" (actforge only: cubin or ptx), "copied_elems" (copy only)}
  or the same keys up to "variant" with "skipped": REASON or "failed": REASON.
  Other lines: {"event": "env", ...}, {"event": "package", ...} (export
  package checks), {"event": "budget", ...}, {"event": "done", ...}.
  gbps counts the minimal traffic of the direction (fwd: 2 elements per
  element, fwdbwd: 5), for every variant; pct_of_copy = copy time / variant
  time for the same bytes.
  The markdown table is OUT/peers.md, rewritten after every (size, dtype,
  formula), so a stopped run still leaves one.

exit status: 0 all verified (skips are not failures), 1 a verification or
run failure, 2 bad arguments or formula, 3 the environment lacks torch or
(with --device cuda) a CUDA device.
"""


# ----------------------------------------------------------------------------
# Formulas: DEAP call syntax


class FormulaError(Exception):
    pass


TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<sym>[(),]))")


def tokenize(text):
    """[(kind, value, offset)], ending with ("end", None, len(text))."""
    out, pos = [], 0
    while True:
        m = TOKEN.match(text, pos)
        if not m:
            rest = text[pos:]
            if rest.strip() == "":
                out.append(("end", None, len(text)))
                return out
            at = pos + len(rest) - len(rest.lstrip())
            raise formula_error(text, at, f"unexpected `{text[at]}`: the peers script reads DEAP call syntax only (name(args), x, ARG0, numbers)")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()


def formula_error(text, at, msg):
    return FormulaError(f"{msg}\n  {text}\n  {' ' * at}^ (offset {at})")


def parse(text):
    """AST: ("x",), ("num", float), ("call", name, [args])."""
    toks = tokenize(text)
    node, i = parse_expr(text, toks, 0)
    if toks[i][0] != "end":
        raise formula_error(text, toks[i][2], f"unexpected `{toks[i][1]}` after a complete formula")
    return node


def parse_expr(text, toks, i):
    kind, val, at = toks[i]
    if kind == "num":
        return ("num", float(val)), i + 1
    if kind == "sym" and val == "(":
        node, i = parse_expr(text, toks, i + 1)
        return node, expect(text, toks, i, ")")
    if kind != "name":
        raise formula_error(text, at, "expected a name, x, ARG0 or a number" if kind != "end" else "the formula ends too early")
    if val in ("x", "ARG0"):
        return ("x",), i + 1
    if val not in PRIMS:
        raise formula_error(text, at, f"unknown primitive `{val}` (known: {', '.join(sorted(PRIMS))})")
    i = expect(text, toks, i + 1, "(")
    args = []
    while True:
        arg, i = parse_expr(text, toks, i)
        args.append(arg)
        if toks[i][1] != ",":
            break
        i += 1
    i = expect(text, toks, i, ")")
    arity = PRIMS[val][0]
    if len(args) != arity:
        raise formula_error(text, at, f"`{val}` takes {arity} argument(s), got {len(args)}")
    return ("call", val, args), i


def expect(text, toks, i, sym):
    kind, val, at = toks[i]
    if val != sym:
        got = "the end" if kind == "end" else f"`{val}`"
        raise formula_error(text, at, f"expected `{sym}`, found {got}")
    return i + 1


# ----------------------------------------------------------------------------
# Primitives: (arity, eager torch template, float64 reference)
#
# The eager template is the primitive written with torch ops as a DEAP
# primitive set on tensors would write it: one torch op per operation, each
# a kernel in eager mode. The reference is written separately, in the terms
# of PRIMITIVES.md, and notes the distance of every where/clamp/max/min/abs
# argument to its switching point so those points can be left out.


def ref_prims():
    import torch

    def sw(rec, d):
        rec.append(d.detach().abs())

    def safe_div(r, a, b):
        sw(r, b.abs() - 1e-6)
        big = b.abs() > 1e-6
        return torch.where(big, a / torch.where(big, b, torch.ones_like(b)), torch.ones_like(a))

    def absr(r, a):
        sw(r, a)
        return torch.abs(a)

    def clampr(r, a, lo, hi):
        sw(r, torch.minimum((a - lo).abs(), (a - hi).abs()))
        return torch.clamp(a, lo, hi)

    def relur(r, a):
        sw(r, a)
        return torch.clamp_min(a, 0.0)

    def sig(a):
        return 1.0 / (1.0 + torch.exp(-a))

    def gelu_tanh(a):
        return 0.5 * a * (1.0 + torch.tanh(0.7978845608028654 * (a + 0.044715 * a * a * a)))

    def softplus(r, a):
        return relur(r, a) + torch.log1p(torch.exp(-absr(r, a)))

    return {
        "safe_add": lambda r, a, b: a + b,
        "safe_sub": lambda r, a, b: a - b,
        "safe_mul": lambda r, a, b: a * b,
        "safe_div": safe_div,
        "log1p_safe": lambda r, a: torch.log1p(absr(r, a)),
        "sin": lambda r, a: torch.sin(a),
        "safe_sin": lambda r, a: torch.sin(a),
        "cos": lambda r, a: torch.cos(a),
        "safe_cos": lambda r, a: torch.cos(a),
        "safe_tan": lambda r, a: torch.tan(clampr(r, a, -1.5, 1.5)),
        "sigmoid_like": lambda r, a: sig(a),
        "sigmoid_boost": lambda r, a: 2.0 * sig(a) - 1.0,
        "softsign": lambda r, a: a / (1.0 + absr(r, a)),
        "relu_like": relur,
        "relu": relur,
        "gelu_like": lambda r, a: gelu_tanh(a),
        "gelu_tanh": lambda r, a: gelu_tanh(a),
        "gelu": lambda r, a: 0.5 * a * (1.0 + torch.erf(a / math.sqrt(2.0))),
        "gated_gate": lambda r, a, b: a * sig(b),
        "silu": lambda r, a: a * sig(a),
        "swish": lambda r, a: a * sig(a),
        "softplus": softplus,
        "mish": lambda r, a: a * torch.tanh(softplus(r, a)),
    }


_GELU_TANH = "0.5 * {0} * (1 + torch.tanh(0.7978845608028654 * ({0} + 0.044715 * {0} ** 3)))"
_SOFTPLUS = "(torch.relu({0}) + torch.log1p(torch.exp(-torch.abs({0}))))"
PRIMS = {
    "safe_add": (2, "{0} + {1}"),
    "safe_sub": (2, "{0} - {1}"),
    "safe_mul": (2, "{0} * {1}"),
    "safe_div": (2, "torch.where(torch.abs({1}) > 1e-6, {0} / {1}, 1.0)"),
    "log1p_safe": (1, "torch.log1p(torch.abs({0}))"),
    "sin": (1, "torch.sin({0})"),
    "safe_sin": (1, "torch.sin({0})"),
    "cos": (1, "torch.cos({0})"),
    "safe_cos": (1, "torch.cos({0})"),
    "safe_tan": (1, "torch.tan(torch.clamp({0}, -1.5, 1.5))"),
    "sigmoid_like": (1, "torch.sigmoid({0})"),
    "sigmoid_boost": (1, "2 * torch.sigmoid({0}) - 1"),
    "softsign": (1, "{0} / (1 + torch.abs({0}))"),
    "relu_like": (1, "torch.relu({0})"),
    "relu": (1, "torch.relu({0})"),
    "gelu_like": (1, _GELU_TANH),
    "gelu_tanh": (1, _GELU_TANH),
    "gelu": (1, "0.5 * {0} * (1 + torch.erf({0} * 0.7071067811865476))"),
    "gated_gate": (2, "{0} * torch.sigmoid({1})"),
    "silu": (1, "{0} * torch.sigmoid({0})"),
    "swish": (1, "{0} * torch.sigmoid({0})"),
    "softplus": (1, _SOFTPLUS),
    "mish": (1, "{0} * torch.tanh(" + _SOFTPLUS + ")"),
}


def eager_source(node, fname):
    """Python source of `def fname(x)`: one line per primitive call."""
    lines, consts = [], {}

    def emit(n):
        if n[0] == "x":
            return "x"
        if n[0] == "num":
            if n[1] not in consts:
                consts[n[1]] = f"c{len(consts)}"
                lines.append(f"    {consts[n[1]]} = torch.full_like(x, {n[1]!r})")
            return consts[n[1]]
        args = [emit(a) for a in n[2]]
        name = f"t{len(lines)}"
        lines.append(f"    {name} = " + PRIMS[n[1]][1].format(*args))
        return name

    out = emit(node)
    body = "\n".join(lines) if lines else ""
    return f"def {fname}(x):\n{body}\n    return {out}\n" if body else f"def {fname}(x):\n    return {out}\n"


def eager_function(node, fname):
    import torch

    src = eager_source(node, fname)
    scope = {"torch": torch}
    exec(compile(src, f"<eager {fname}>", "exec"), scope)
    return scope[fname], src


def reference(node, x64, dy64):
    """(y, dx, switch distance per element) in float64."""
    import torch

    prims, rec = ref_prims(), []
    xr = x64.detach().clone().requires_grad_(True)

    def ev(n):
        if n[0] == "x":
            return xr
        if n[0] == "num":
            return torch.full_like(xr, n[1])
        return prims[n[1]](rec, *[ev(a) for a in n[2]])

    y = ev(node)
    (dx,) = torch.autograd.grad(y, xr, dy64)
    dist = torch.full_like(x64, math.inf)
    for d in rec:
        dist = torch.minimum(dist, d)
    return y.detach(), dx.detach(), dist


# ----------------------------------------------------------------------------
# Verification

F32_RTOL, F32_ATOL = 1e-4, 1e-5  # PRIMITIVES.md "Numerical contract"
SWITCH_GAP = 1e-3
BF16_ULP = 2.0 ** -7  # one bf16 ulp is at most this fraction of |value|
# Variants that compute in f32 and round once to bf16 on store.
ROUND_ONCE = {"actforge", "builtin-gelu"}
# Variants that round every op's result to bf16 (eager) or whatever
# Inductor stores between its kernels (compile): a cancellation after a
# rounded op (1 + tanh(-3) in gelu_like) leaves an error of the order of an
# ulp of the operands, not of the result, so the bound is COMPOSED_ULPS ulps
# of |ref| + the largest |ref| on the probe. Eager bf16 on CPU torch 2.11,
# 1M elements: at most 1.7 such ulps (t5's gradient), 1.1 elsewhere.
COMPOSED_ULPS = 4


def tolerance(dtype_name, cls, ref, got, scale):
    """Per-element allowed |got - ref_rounded|."""
    f32 = F32_RTOL * ref.abs() + F32_ATOL
    if dtype_name == "f32":
        return f32
    if cls == "round-once":
        return BF16_ULP * ref.abs().maximum(got.abs()) + f32
    return COMPOSED_ULPS * BF16_ULP * (ref.abs() + scale) + f32


def compare(dtype_name, cls, got, ref, mask):
    """max |err| / tolerance over the compared elements (<= 1 passes)."""
    import torch

    got = got.detach().to(torch.float64)
    if dtype_name != "f32":
        ref = ref.to(torch.bfloat16).to(torch.float64)
    scale = ref[mask].abs().max() if mask.any() else torch.tensor(0.0, dtype=torch.float64)
    tol = tolerance(dtype_name, cls, ref, got, scale)
    err = (got - ref).abs()
    finite = torch.isfinite(ref)
    if (finite & ~torch.isfinite(got)).any():
        return math.inf
    ratio = (err / tol)[mask & finite]
    return float(ratio.max()) if ratio.numel() else 0.0


def variant_class(variant):
    return "round-once" if variant in ROUND_ONCE else "composed"


# ----------------------------------------------------------------------------
# The export package (actforge export)

SIG = re.compile(r'extern "C" __global__ void (act_[0-9a-f]{16}_(fwd|bwd)_(f32|bf16|f16))\(([^)]*)\);')
PY_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
ENTRY = re.compile(r"\.visible \.entry (\w+)\(([^)]*)\)")


def package_dir(args, key, text):
    """The package folder for one formula: made with --actforge, or found in --export-dir."""
    if args.export_dir:
        d = os.path.join(args.export_dir, key)
        if not os.path.isfile(os.path.join(d, "README.md")):
            raise RuntimeError(f"no export package for `{key}` in {args.export_dir} (expected {d}/README.md)")
        return d
    if not args.actforge:
        raise RuntimeError("no export package: pass --actforge BIN or --export-dir DIR (no actforge found beside this script, in target/release or on PATH)")
    if not (os.path.isfile(args.actforge) and os.access(args.actforge, os.X_OK)):
        raise RuntimeError(f"--actforge {args.actforge}: not an executable file")
    d = os.path.join(args.out, "export", key)
    shutil.rmtree(d, ignore_errors=True)
    cmd = [args.actforge, "export", text, "--out", d, "--name", key, "--arch", args.arch]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=nvrtc_env())
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({p.returncode}): {p.stderr.strip()}")
    return d


def nvrtc_env():
    """The environment for `actforge export`: ACTFORGE_NVRTC, if unset, from
    the CUDA toolkit or the NVRTC wheel that CUDA builds of torch install."""
    env = dict(os.environ)
    if env.get("ACTFORGE_NVRTC"):
        return env
    cands = ["/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13"]
    try:
        import nvidia

        cands += [os.path.join(p, "cu13", "lib", "libnvrtc.so.13") for p in nvidia.__path__]
    except ImportError:
        pass
    found = next((c for c in cands if os.path.isfile(c)), None)
    if found:
        env["ACTFORGE_NVRTC"] = found
    return env


def read_package(d, key):
    """Kernel names from the README's signatures, checked against the PTX; the README's Python block."""
    readme = read_text(os.path.join(d, "README.md"))
    kernels = {}
    for name, direction, dtype, params in SIG.findall(readme):
        want = 3 if direction == "fwd" else 4
        if len(params.split(",")) != want:
            raise RuntimeError(f"{d}/README.md: `{name}` is documented with {params!r}, expected {want} parameters")
        kernels[(direction, dtype)] = name
    missing = [f"{a}_{b}" for a in ("fwd", "bwd") for b in ("f32", "bf16") if (a, b) not in kernels]
    if missing:
        raise RuntimeError(f"{d}/README.md documents no kernel for {', '.join(missing)}")
    blocks = PY_BLOCK.findall(readme)
    if len(blocks) != 1:
        raise RuntimeError(f"{d}/README.md: expected one ```python block, found {len(blocks)}")
    ast.parse(blocks[0], filename=f"{d}/README.md (python block)")
    ptx_path, cubin_path = os.path.join(d, f"{key}.ptx"), os.path.join(d, f"{key}.cubin")
    if not os.path.isfile(ptx_path) or not os.path.isfile(cubin_path):
        raise RuntimeError(f"{d}: no {key}.ptx/{key}.cubin (NVRTC was missing when it was exported?)")
    entries = {n: len([p for p in ps.split(",") if ".param" in p]) for n, ps in ENTRY.findall(read_text(ptx_path))}
    for (direction, _), name in kernels.items():
        want = 3 if direction == "fwd" else 4
        if entries.get(name) != want:
            raise RuntimeError(f"{ptx_path}: kernel `{name}` has {entries.get(name)} parameters in the PTX, the README documents {want}")
    ast.parse(readme_for_dtype(blocks[0], kernels, "bf16"), filename=f"{d}/README.md (python block, bf16)")
    return {"dir": d, "kernels": kernels, "python": blocks[0], "entries": len(entries)}


def read_text(path):
    with open(path) as f:
        return f.read()


def readme_for_dtype(src, kernels, dtype_name):
    """The README's Python block adapted as its own note says for 16-bit tensors."""
    if dtype_name == "f32":
        return src
    edits = [
        (kernels[("fwd", "f32")], kernels[("fwd", dtype_name)]),
        (kernels[("bwd", "f32")], kernels[("bwd", dtype_name)]),
        ("n // 4", "n // 8"),
        ('torch.randn(4096, device="cuda")', 'torch.randn(4096, device="cuda", dtype=torch.bfloat16)'),
    ]
    for old, new in edits:
        if old not in src:
            raise RuntimeError(f"the export README's Python block no longer contains `{old}`; update gpu-peers.py")
        src = src.replace(old, new)
    return src


def load_actforge(pkg, dtype_name):
    """Execute the README's Python block in the package folder; returns (Act, module kind)."""
    src = readme_for_dtype(pkg["python"], pkg["kernels"], dtype_name)
    here = os.getcwd()
    os.chdir(pkg["dir"])
    try:
        scope = {"__name__": "actforge_readme"}
        try:
            exec(compile(src, os.path.join(pkg["dir"], "README.md"), "exec"), scope)
            kind = "cubin"
        except Exception as e:  # a CUBIN for another arch: the README's own alternative
            if ".cubin" not in src:
                raise
            scope = {"__name__": "actforge_readme"}
            exec(compile(src.replace(".cubin", ".ptx"), os.path.join(pkg["dir"], "README.md"), "exec"), scope)
            kind = f"ptx (cubin failed: {str(e).splitlines()[0]})"
    finally:
        os.chdir(here)
    return scope["Act"], kind


# ----------------------------------------------------------------------------
# Timing


class Timer:
    """Median device time per call: CUDA events around each call after an L2
    flush and a GPU sleep long enough for the host to queue the whole call,
    so host overhead is not counted (it is reported as cpu_ms). On CPU,
    wall-clock time per call."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device == "cuda"
        if self.cuda:
            self.flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
            self.cycles_per_ms = self.calibrate()

    def calibrate(self):
        t = self.torch
        if not hasattr(t.cuda, "_sleep"):
            return None
        s, e = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
        t.cuda._sleep(50_000_000)  # clocks up from idle first
        s.record()
        t.cuda._sleep(20_000_000)
        e.record()
        t.cuda.synchronize()
        return 20_000_000 / max(s.elapsed_time(e), 1e-3)

    def run(self, fn, iters, warmup):
        """(median ms, median host ms to issue one call)."""
        for _ in range(warmup):
            fn()
        if not self.cuda:
            return self.wall(fn, iters)
        t = self.torch
        t.cuda.synchronize()
        probe = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            probe.append(time.perf_counter() - t0)
        t.cuda.synchronize()
        sleep_ms = max(0.2, 5e3 * max(probe))
        starts = [t.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [t.cuda.Event(enable_timing=True) for _ in range(iters)]
        issue = []
        for i in range(iters):
            self.flush.zero_()
            if self.cycles_per_ms:
                t.cuda._sleep(int(sleep_ms * self.cycles_per_ms))
            starts[i].record()
            t0 = time.perf_counter()
            fn()
            issue.append(time.perf_counter() - t0)
            ends[i].record()
        t.cuda.synchronize()
        ms = [s.elapsed_time(e) for s, e in zip(starts, ends)]
        return statistics.median(ms), statistics.median(issue) * 1e3

    def wall(self, fn, iters):
        ms = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ms), statistics.median(ms)


# ----------------------------------------------------------------------------
# Variants: each gives (fwd(), fwdbwd()) closures over fixed tensors


class Skip(Exception):
    pass


def calls(apply, x, dy):
    """fwd: apply(x) without autograd; fwdbwd: apply on a leaf, then autograd.grad."""
    import torch

    xr = x.detach().clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return apply(x)

    def fwdbwd():
        y = apply(xr)
        (dx,) = torch.autograd.grad(y, xr, dy)
        return y, dx

    return fwd, fwdbwd


class Run:
    """The state of one invocation: arguments, output files, results."""

    def __init__(self, args, torch):
        self.args, self.torch = args, torch
        self.rows, self.failed = [], False
        self.start = time.monotonic()
        self.timer = Timer(torch, args.device)
        self.compiled = {}
        self.packages = {}
        os.makedirs(args.out, exist_ok=True)
        self.jsonl = open(os.path.join(args.out, "peers.jsonl"), "w")

    def emit(self, obj):
        line = json.dumps(finite(obj), allow_nan=False)
        print(line, flush=True)
        self.jsonl.write(line + "\n")
        self.jsonl.flush()
        if "variant" in obj:
            self.rows.append(obj)
            self.failed |= "failed" in obj

    def left(self):
        return self.args.budget - (time.monotonic() - self.start) if self.args.budget > 0 else math.inf


def env_line(run):
    t, a = run.torch, run.args
    e = {"event": "env", "python": sys.version.split()[0], "torch": t.__version__, "device": a.device}
    if a.device == "cuda":
        p = t.cuda.get_device_properties(0)
        e.update(gpu=p.name, sms=p.multi_processor_count, cuda=t.version.cuda, capability=f"{p.major}.{p.minor}")
        e["sleep_calibrated"] = run.timer.cycles_per_ms is not None
    try:
        import cupy

        e["cupy"] = cupy.__version__
    except Exception as ex:  # missing or broken: the actforge variant says so
        e["cupy"] = f"unavailable: {str(ex).splitlines()[0] if str(ex) else type(ex).__name__}"
    return e


def make_variant(run, name, x, dy, key, dtype_name):
    """(fwd, fwdbwd, extra JSON fields: {direction: {...}} or {"all": {...}}) or raise Skip(reason)."""
    torch, a = run.torch, run.args
    if name in CUDA_ONLY and a.device != "cuda":
        raise Skip(f"CUDA only: needs a CUDA device (this run is --device {a.device})")
    if name == "eager":
        fn = run.eager[key]
        return (*calls(fn, x, dy), {})
    if name == "compile":
        if key not in run.compiled:
            run.compiled[key] = torch.compile(run.eager[key], dynamic=False)
        return (*calls(run.compiled[key], x, dy), {})
    if name == "builtin-gelu":
        import torch.nn.functional as F

        return (*calls(lambda t: F.gelu(t, approximate="tanh"), x, dy), {})
    if name == "copy":
        return copy_calls(run, x)
    if name == "actforge":
        return actforge_calls(run, key, dtype_name, x, dy)
    raise ValueError(name)


def copy_calls(run, x):
    torch = run.torch
    bufs = {}
    for d in DIRECTIONS:
        m = (TRAFFIC[d] * x.numel() + 1) // 2
        bufs[d] = (torch.empty(m, dtype=x.dtype, device=x.device), torch.empty(m, dtype=x.dtype, device=x.device))

    def go(d):
        src, dst = bufs[d]
        return lambda: dst.copy_(src)

    return go("fwd"), go("fwdbwd"), {d: {"copied_elems": bufs[d][0].numel()} for d in DIRECTIONS}


def actforge_calls(run, key, dtype_name, x, dy):
    pkg = run.packages.get(key)
    if isinstance(pkg, Exception):
        raise pkg
    try:
        importlib.import_module("cupy")  # the README's block imports it
    except Exception as e:
        raise Skip(f"CuPy is not importable: {first_line(e)}")
    Act, kind = load_actforge(pkg, dtype_name)
    return (*calls(Act.apply, x, dy), {"all": {"module": kind}})


def finite(v):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def first_line(e):
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


# ----------------------------------------------------------------------------
# One unit: a formula at one size and dtype


def inputs(torch, n, dtype, device):
    i = torch.arange(n, dtype=torch.float64, device=device)
    x = (torch.frac(i * 0.6180339887498949) * 8.0 - 4.0).to(dtype)
    dy = (1.0 - torch.remainder(i, 7.0) * 0.1).to(dtype)
    return x, dy


def unit(run, key, text, node, n, dtype_name):
    """Verify every variant against float64, then time the ones that passed; emit their rows."""
    torch, a = run.torch, run.args
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    x, dy = inputs(torch, n, dtype, a.device)
    base = {"formula_key": key, "formula": text, "elems": n, "dtype": dtype_name}
    rows = {(d, v): {**base, "direction": d, "variant": v} for v in a.variants for d in DIRECTIONS}
    ready = verify_all(run, node, dtype_name, x, dy, rows)
    if a.device == "cuda":
        torch.cuda.empty_cache()  # the float64 references are gone
    for v, (fwd, fwdbwd) in ready.items():
        for d, fn in (("fwd", fwd), ("fwdbwd", fwdbwd)):
            rows[(d, v)].update(time_one(run, fn))
    bandwidth(rows, n, 4 if dtype_name == "f32" else 2)
    for d in DIRECTIONS:
        for v in a.variants:
            run.emit(rows[(d, v)])


def verify_all(run, node, dtype_name, x, dy, rows):
    """{variant: (fwd, fwdbwd)} of the variants that loaded and passed; the others' rows say why."""
    torch, a = run.torch, run.args
    ref = reference(node, x.to(torch.float64), dy.to(torch.float64))
    gelu_ref = None
    ready = {}
    for v in a.variants:
        if v == "compile" and run.left() < a.reserve:
            mark(rows, v, {"skipped": "time budget: not enough left to compile"})
            continue
        try:
            fwd, fwdbwd, extra = make_variant(run, v, x, dy, rows[("fwd", v)]["formula_key"], dtype_name)
        except Skip as e:
            mark(rows, v, {"skipped": str(e)})
            continue
        except Exception as e:
            mark(rows, v, {"failed": f"loading: {first_line(e)}"})
            continue
        for d in DIRECTIONS:
            rows[(d, v)].update(extra.get(d, extra.get("all", {})))
        if v == "copy":
            mark(rows, v, {"verified": {"class": "none: copies bytes"}})
            ready[v] = (fwd, fwdbwd)
            continue
        if v == "builtin-gelu" and gelu_ref is None:
            gelu_ref = reference(parse(GELU_LIKE), x.to(torch.float64), dy.to(torch.float64))
        outcome = verify_one(run, v, dtype_name, fwd, fwdbwd, gelu_ref if v == "builtin-gelu" else ref)
        for d, seconds in outcome.pop("compile_s", {}).items():
            rows[(d, v)]["compile_s"] = seconds
        mark(rows, v, outcome)
        if "verified" in outcome and "failed" not in outcome:
            ready[v] = (fwd, fwdbwd)
    return ready


def mark(rows, v, fields):
    """The same fields in both directions' rows of variant v."""
    for d in DIRECTIONS:
        rows[(d, v)].update(fields)


def verify_one(run, v, dtype_name, fwd, fwdbwd, ref):
    """The first call of each direction (compiling, for torch.compile), compared with the reference."""
    torch, a = run.torch, run.args
    y_ref, dx_ref, dist = ref
    mask = dist >= SWITCH_GAP
    first = {}
    try:
        t0 = time.perf_counter()
        y0 = fwd()
        sync(torch, a.device)
        first["fwd"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        y1, dx = fwdbwd()
        sync(torch, a.device)
        first["fwdbwd"] = time.perf_counter() - t0
    except Exception as e:
        if v == "compile":  # it compiles on the first call: a host that cannot (no C++ compiler, no Triton) is a skip
            return {"skipped": f"torch.compile is not available here: {first_line(e)}"}
        return {"failed": f"verification run: {first_line(e)}"}
    cls = variant_class(v)
    ver = {
        "y_max_err_ratio": max(compare(dtype_name, cls, y0, y_ref, mask), compare(dtype_name, cls, y1, y_ref, mask)),
        "dx_max_err_ratio": compare(dtype_name, cls, dx, dx_ref, mask),
        "compared": int(mask.sum()),
        "class": cls,
    }
    out = {"verified": ver}
    if v == "compile":
        out["compile_s"] = first
    if not (ver["y_max_err_ratio"] <= 1.0 and ver["dx_max_err_ratio"] <= 1.0):
        out["failed"] = "verification: error above tolerance (ratio > 1)"
    return out


def time_one(run, fn):
    a = run.args
    try:
        ms, cpu_ms = run.timer.run(fn, a.iters, a.warmup)
    except Exception as e:
        return {"failed": f"timing: {first_line(e)}"}
    return {"ms": ms, "gbps": None, "pct_of_copy": None, "cpu_ms": cpu_ms, "iters": a.iters, "timer": "cuda-events" if a.device == "cuda" else "wall-clock"}


def bandwidth(measured, n, size):
    """gbps of every timed row (the direction's minimal traffic; the copy's own bytes), then pct_of_copy."""
    for (d, v), row in measured.items():
        if row.get("ms"):
            moved = 2 * row["copied_elems"] * size if v == "copy" else TRAFFIC[d] * n * size
            row["gbps"] = moved / (row["ms"] * 1e-3) / 1e9
    for (d, v), row in measured.items():
        copy = measured.get((d, "copy"), {}).get("gbps")
        if row.get("gbps") and copy:
            row["pct_of_copy"] = 100.0 * row["gbps"] / copy


def sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------
# The markdown table

LABELS = {"fwd": "forward", "fwdbwd": "forward + backward"}


def count(n):
    """16M for 16777216, else the number."""
    return f"{n >> 20}M" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,}"


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def table(run, formulas, stopped):
    a, rows = run.args, run.rows
    by = {(r["formula_key"], r["elems"], r["dtype"], r["direction"], r["variant"]): r for r in rows}
    env = run.env
    lines = ["# actforge fused kernels vs PyTorch", ""]
    where = env.get("gpu", "CPU")
    lines.append(f"{where}, torch {env['torch']}, CuPy {env.get('cupy')}, Python {env['python']}. "
                 f"Median ms per call over {a.iters} calls after {a.warmup} warm-up "
                 + ("(CUDA events; L2 flushed and the host given time to queue each call, so host overhead is excluded: see cpu_ms in peers.jsonl)."
                    if a.device == "cuda" else "(wall clock on the CPU; the CuPy kernel and the copy are CUDA-only and were skipped)."))
    lines.append("`×` = that variant's time / actforge's (above 1: actforge is faster). `% copy`: bandwidth as a share of a device-to-device copy of the same bytes "
                 "(fwd moves 2 elements per element, fwd+bwd 5). Every variant was verified against a float64 reference before timing.")
    lines.append("")
    for key, text in formulas:
        lines.append(f"- `{key}`: `{text}`")
    lines.append("")
    for n in a.sizes:
        for dt in a.dtypes:
            for d in DIRECTIONS:
                lines += section(by, formulas, n, dt, d)
    if stopped:
        lines += ["", f"Stopped by the time budget (--budget {a.budget:g} s): {stopped}."]
    skips = sorted({f"{r['variant']}: {r['skipped']}" for r in rows if "skipped" in r})
    fails = sorted({f"{r['formula_key']} {r['elems']} {r['dtype']} {r['direction']} {r['variant']}: {r['failed']}" for r in rows if "failed" in r})
    if skips:
        lines += ["", "Skipped:", ""] + [f"- {s}" for s in skips]
    if fails:
        lines += ["", "FAILED:", ""] + [f"- {s}" for s in fails]
    with open(os.path.join(a.out, "peers.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def section(by, formulas, n, dt, d):
    copies = [by[(k, n, dt, d, "copy")]["gbps"] for k, _ in formulas if by.get((k, n, dt, d, "copy"), {}).get("gbps")]
    bw = f" (copy: {statistics.median(copies):.0f} GB/s)" if copies else ""
    head = (f"### {LABELS[d]}, {dt}, {count(n)} elements{bw}", "",
            "| formula | actforge ms | % copy | eager ms | × | torch.compile ms | × | compile s | F.gelu tanh ms | × | copy ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|")
    out = list(head)
    for key, _ in formulas:
        g = {v: by.get((key, n, dt, d, v), {}) for v in VARIANTS}
        if any("ms" in r for r in g.values()):
            out.append(table_row(key, g))
    return out + [""] if len(out) > len(head) else []


def table_row(key, g):
    """One formula's cells: time, then its ratio to actforge's time."""
    af = g["actforge"].get("ms")

    def cell(v):
        ms = g[v].get("ms")
        if ms is None:
            return "failed" if "failed" in g[v] else "–"
        return f"{ms:.3f}"

    def ratio(v):
        ms = g[v].get("ms")
        return f"{ms / af:.2f}" if ms is not None and af else "–"

    return (f"| `{key}` | {cell('actforge')} | {fmt(g['actforge'].get('pct_of_copy'), '.0f')} | {cell('eager')} | {ratio('eager')} | "
            f"{cell('compile')} | {ratio('compile')} | {fmt(g['compile'].get('compile_s'), '.1f')} | {cell('builtin-gelu')} | {ratio('builtin-gelu')} | {cell('copy')} |")


# ----------------------------------------------------------------------------
# Main


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="gpu-peers.py",
        description="Time actforge's exported fused activation kernels (through CuPy, as the export "
        "README shows) against PyTorch eager, torch.compile, F.gelu(approximate='tanh') and a "
        "device-to-device copy; every variant verified against float64 first.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--formula", action="append", metavar="F", help="qa, t5, gelu or a formula (repeatable; default: qa, t5, gelu)")
    p.add_argument("--sizes", default="16777216,67108864", help="elements per tensor, comma-separated (default: 16M,64M)")
    p.add_argument("--dtypes", default="f32,bf16", help="f32 and/or bf16 (default: both)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    p.add_argument("--iters", type=int, default=20, help="timed calls per row; the median is reported (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cuda (default) or cpu (tiny sizes; CUDA-only variants skipped)")
    p.add_argument("--out", default="gpu-peers-out", help="folder for peers.jsonl, peers.md, eager sources, export packages")
    p.add_argument("--export-dir", help="folder holding one `actforge export --name KEY` package per formula (KEY/README.md, KEY.cubin, ...)")
    p.add_argument("--actforge", help="actforge binary: export the packages into OUT/export/KEY first "
                   "(default: bin/actforge beside this script, then target/release/actforge, then PATH)")
    p.add_argument("--arch", help="--arch for actforge export (default: the GPU's sm_XY, sm_90 on CPU)")
    p.add_argument("--budget", type=float, default=0, help="seconds; stop before a new (size, dtype, formula) once spent and still write the table (default: none)")
    p.add_argument("--reserve", type=float, default=20, help="seconds of budget a torch.compile needs to be started (default 20)")
    p.add_argument("--self-test", action="store_true", help="check on tiny tensors that the verifier rejects wrong results, then exit")
    a = p.parse_args(argv)
    try:
        a.sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {a.sizes!r}")
    if not a.sizes or min(a.sizes) < 1:
        p.error("--sizes: give at least one positive size")
    a.dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    if not a.dtypes or any(d not in ("f32", "bf16") for d in a.dtypes):
        p.error(f"--dtypes: expected f32 and/or bf16, got {','.join(a.dtypes)!r}")
    a.variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown or not a.variants:
        p.error(f"--variants: unknown {','.join(unknown)!r}; choose from {','.join(VARIANTS)}")
    if a.iters < 1 or a.warmup < 0:
        p.error("--iters must be >= 1 and --warmup >= 0")
    if a.export_dir and a.actforge:
        p.error("give --export-dir or --actforge, not both")
    if not a.export_dir and not a.actforge:
        a.actforge = default_actforge()
    return a


def default_actforge():
    """bin/actforge beside this script (the gpu-pack.sh layout), the repository's release build, or PATH."""
    here = os.path.dirname(os.path.abspath(__file__))
    for c in (os.path.join(here, "bin", "actforge"), os.path.join(here, "..", "target", "release", "actforge")):
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.normpath(c)
    return shutil.which("actforge")


def formulas_of(a):
    out = []
    for f in a.formula or list(SEEDS):
        key = f if f in SEEDS else f"f{len(out) + 1}"
        text = SEEDS.get(f, f)
        out.append((key, text, parse(text)))
    return out


def self_test(torch):
    """The verifier accepts the reference rounded once and rejects small errors; t5's switch points are left out."""
    node = parse(SEEDS["qa"])
    x, dy = inputs(torch, 4099, torch.float32, "cpu")
    y, _, dist = reference(node, x.double(), dy.double())
    mask = dist >= SWITCH_GAP
    checks = []
    for dt, cls, off in (("f32", "round-once", 3e-4), ("bf16", "round-once", 0.1), ("bf16", "composed", 0.1)):
        store = torch.float32 if dt == "f32" else torch.bfloat16
        checks.append((f"{dt} {cls}: accepts the reference rounded once", compare(dt, cls, y.to(store), y, mask) <= 1.0))
        checks.append((f"{dt} {cls}: rejects the reference times {1 + off:g}", compare(dt, cls, (y * (1 + off)).to(store), y, mask) > 1.0))
        checks.append((f"{dt} {cls}: rejects one NaN", compare(dt, cls, torch.where(torch.arange(y.numel()) == 17, torch.nan, y).to(store), y, mask) > 1.0))
    t5_dist = reference(parse(SEEDS["t5"]), x.double(), dy.double())[2]
    checks.append(("t5: the points where log1p_safe's abs switches are left out", bool((t5_dist < SWITCH_GAP).any())))
    rows = {("fwd", "copy"): {"ms": 1.0, "copied_elems": 1000}, ("fwd", "eager"): {"ms": 2.0},
            ("fwdbwd", "copy"): {"ms": 2.5, "copied_elems": 2500}, ("fwdbwd", "eager"): {"ms": 5.0}}
    bandwidth(rows, 1000, 4)
    pct = [rows[(d, v)].get("pct_of_copy") for d in DIRECTIONS for v in ("copy", "eager")]
    checks.append(("bandwidth: half the copy's GB/s is 50 % in both directions", pct == [100.0, 50.0, 100.0, 50.0]))
    for name, ok in checks:
        print(json.dumps({"event": "self-test", "check": name, "ok": ok}))
    return all(ok for _, ok in checks)


def main(argv):
    a = parse_args(argv)
    try:
        formulas = formulas_of(a)
    except FormulaError as e:
        print(f"gpu-peers: bad formula: {e}", file=sys.stderr)
        return 2
    try:
        import torch
    except Exception as e:
        print(f"gpu-peers: skipped: torch is not importable ({first_line(e)})", file=sys.stderr)
        return 3
    if a.self_test:
        return 0 if self_test(torch) else 1
    if a.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu-peers: skipped: torch {torch.__version__} sees no CUDA device (use --device cpu to run the CPU checks)", file=sys.stderr)
        return 3
    if not a.arch:
        a.arch = "sm_{}{}".format(*torch.cuda.get_device_capability(0)) if a.device == "cuda" else "sm_90"
    dyn = torch._dynamo.config
    for limit in ("cache_size_limit", "recompile_limit"):
        if hasattr(dyn, limit):
            setattr(dyn, limit, 64)
    run = Run(a, torch)
    run.env = env_line(run)
    run.emit(run.env)
    run.eager = {}
    for key, text, node in formulas:
        fn, src = eager_function(node, f"eager_{key}")
        run.eager[key] = fn
        with open(os.path.join(a.out, f"eager_{key}.py"), "w") as f:
            f.write(f"# {text}\nimport torch\n\n\n{src}")
    if "actforge" in a.variants:
        prepare_packages(run, formulas)
    stopped = ""
    plan = [(n, dt, f) for n in a.sizes for dt in a.dtypes for f in formulas]
    for i, (n, dt, (key, text, node)) in enumerate(plan):
        if run.left() <= 0:
            rest = [f"{k} {m} {d}" for m, d, (k, _, _) in plan[i:]]
            stopped = f"{len(rest)} of {len(plan)} (size, dtype, formula) not measured: {', '.join(rest)}"
            run.emit({"event": "budget", "budget_s": a.budget, "not_measured": rest})
            break
        try:
            unit(run, key, text, node, n, dt)
        except Exception as e:  # out of memory, a broken reference: say so and go on
            run.emit({"formula_key": key, "formula": text, "elems": n, "dtype": dt, "direction": "all", "variant": "all", "failed": first_line(e)})
        if a.device == "cuda":
            torch.cuda.empty_cache()
        table(run, [(k, t) for k, t, _ in formulas], stopped)
    table(run, [(k, t) for k, t, _ in formulas], stopped)
    run.emit({"event": "done", "seconds": round(time.monotonic() - run.start, 1), "failed": run.failed, "table": os.path.join(a.out, "peers.md")})
    run.jsonl.close()
    return 1 if run.failed else 0


def prepare_packages(run, formulas):
    """Export (or find) each formula's package and check it without a GPU."""
    for key, text, _ in formulas:
        try:
            pkg = read_package(package_dir(run.args, key, text), key)
            run.packages[key] = pkg
            run.emit({"event": "package", "formula_key": key, "dir": pkg["dir"], "kernels": sorted(pkg["kernels"].values()), "ptx_entries": pkg["entries"], "readme_python": "parses"})
        except Exception as e:
            run.packages[key] = RuntimeError(f"no usable export package: {first_line(e)}")
            run.emit({"event": "package", "formula_key": key, "error": first_line(e)})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
