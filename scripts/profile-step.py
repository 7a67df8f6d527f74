#!/usr/bin/env python3
"""Where a CPU training step's time goes: a `perf` profile of `actforge
train`, its samples sorted into the step's phases and kinds of work.

Runs (or reads) `perf record --call-graph dwarf` of one training run and
reads every sample's call stack. Only samples inside a training step count
(under fitness::run::run, where `Trainer::step` is inlined, and not in
its evaluation or checkpoints: data preparation, tokenizer training and
the final evaluation are left out). Each sample gets

  phase  forward, loss, backward, clip, optimizer (by the frames on the
         stack: `batch_loss` → forward, `masked_cross_entropy` or the fused
         cross-entropy inside it → loss, `Tensor::backward` → backward,
         `clip_factor` → clip, `AdamW::step` → optimizer)
  kind   what the innermost frames do: matmul (gemm), norm, attention
         softmax, cross-entropy, activation, AdamW (the fused ops by their
         names), elementwise / reduction / index / copy (candle's own CPU
         ops), allocation (malloc, free, page faults, zeroing fresh
         buffers), threads (the pool's waits and hand-offs), other

and the script prints a table of the share of samples per kind and phase.

  python3 scripts/profile-step.py --actforge target/release/actforge \\
      --act 'fused:gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))' \\
      --steps 60 --threads 1
  python3 scripts/profile-step.py --perf-data perf.data   # an earlier record

Needs `perf` (linux-tools) and a build with symbols (the release build
keeps them). Nothing in the crate or CI depends on it.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile

QA = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))"

# (substring of a frame, kind), tried from the innermost frame outwards;
# the first frame that matches decides.
KINDS = [
    ("gemm", "matmul"),
    ("op::norm", "norm"),
    ("op::softmax", "attention softmax"),
    ("op::xent", "cross-entropy"),
    ("op::adamw", "AdamW"),
    ("fitness::optim", "AdamW"),
    ("op::fused", "activation"),
    ("ir::eval::Tape", "activation"),
    ("malloc", "allocation"),
    ("_int_free", "allocation"),
    ("cfree", "allocation"),
    ("__libc_free", "allocation"),
    ("realloc", "allocation"),
    ("memset", "allocation"),
    ("page_fault", "allocation"),
    ("clear_page", "allocation"),
    ("do_anonymous_page", "allocation"),
    ("munmap", "allocation"),
    ("mmap", "allocation"),
    ("copy_strided", "copy"),
    ("copy2d", "copy"),
    ("memmove", "copy"),
    ("memcpy", "copy"),
    ("index_select", "index"),
    ("IndexSelect", "index"),
    ("Gather", "index"),
    ("ScatterAdd", "index"),
    ("IndexAdd", "index"),
    ("reduce_op", "reduction"),
    ("ReduceSum", "reduction"),
    ("ReduceIndex", "reduction"),
    ("vec_sum", "reduction"),
    ("binary_map", "elementwise"),
    ("unary_map", "elementwise"),
    ("Affine", "elementwise"),
    ("Map1", "elementwise"),
    ("WCond", "elementwise"),
    ("expf", "elementwise"),
    ("logf", "elementwise"),
    ("powf", "elementwise"),
    ("sqrtf", "elementwise"),
    ("BarrierPool", "threads"),
    ("rayon", "threads"),
    ("futex", "threads"),
    ("sched", "threads"),
]

PHASES = [
    ("fitness::optim::AdamW::step", "optimizer"),
    ("op::adamw", "optimizer"),
    ("fitness::optim::clip_factor", "clip"),
    ("backprop", "backward"),
    ("masked_cross_entropy", "loss"),
    ("op::xent", "loss"),
    ("fitness::run::batch_loss", "forward"),
]

# Trainer::step is inlined into fitness::run::run; evaluation is not a step.
IN_STEP = "fitness::run::run"
NOT_STEP = ("fitness::evaluate", "checkpoint::")


def kind_of(stack):
    for frame in stack:
        for key, kind in KINDS:
            if key in frame:
                return kind
    return "other"


def phase_of(stack):
    for key, phase in PHASES:
        if any(key in f for f in stack):
            return phase
    return "other"


def samples(perf_data):
    """Yield each sample's stack (innermost frame first) as symbol names."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "-F", "ip,sym"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stack = []
    for line in out.splitlines():
        line = line.strip()
        if not line:
            if stack:
                yield stack
            stack = []
            continue
        parts = line.split(None, 1)
        stack.append(parts[1] if len(parts) > 1 else parts[0])
    if stack:
        yield stack


def table(perf_data):
    counts = collections.Counter()
    total = 0
    for stack in samples(perf_data):
        if not any(IN_STEP in f for f in stack):
            continue
        if any(n in f for f in stack for n in NOT_STEP):
            continue
        counts[(kind_of(stack), phase_of(stack))] += 1
        total += 1
    if total == 0:
        sys.exit("no samples inside a training step (is this a profile of `actforge train`?)")
    phases = ["forward", "loss", "backward", "clip", "optimizer", "other"]
    kinds = collections.Counter()
    for (k, _), n in counts.items():
        kinds[k] += n
    head = "| kind | " + " | ".join(phases) + " | all |"
    lines = [head, "|" + "---|" * (len(phases) + 2)]
    for k, n in kinds.most_common():
        cells = [f"{100 * counts[(k, p)] / total:.1f}" for p in phases]
        lines.append(f"| {k} | " + " | ".join(cells) + f" | **{100 * n / total:.1f}** |")
    col = [sum(counts[(k, p)] for k in kinds) for p in phases]
    lines.append(
        "| all | " + " | ".join(f"{100 * c / total:.1f}" for c in col) + " | 100 |"
    )
    lines.append(f"\n{total} samples in training steps (percent of them).")
    return "\n".join(lines)


def record(args, perf_data):
    out = tempfile.mkdtemp(prefix="actforge-profile-")
    cmd = [
        "perf", "record", "--call-graph", "dwarf,32768", "-F", str(args.freq),
        "-o", perf_data, "--",
        args.actforge, "train", "--task", args.task, "--act", args.act,
        "--seeds", "1", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--eval-sentences", "1", "--samples", "0", "--checkpoint-every", "0",
        "--out", os.path.join(out, "run"),
    ]
    if args.preset:
        cmd += ["--preset", args.preset]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    print("$ RAYON_NUM_THREADS=%d %s" % (args.threads, " ".join(cmd)), file=sys.stderr)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actforge", default="target/release/actforge")
    ap.add_argument("--perf-data", help="read this perf.data instead of recording")
    ap.add_argument("--act", default="fused:" + QA)
    ap.add_argument("--task", default="qa")
    ap.add_argument("--preset")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--freq", type=int, default=1000, help="samples per second")
    ap.add_argument("--keep", help="keep the recorded perf.data here")
    args = ap.parse_args()
    if args.perf_data:
        print(table(args.perf_data))
        return
    perf_data = args.keep or os.path.join(tempfile.mkdtemp(), "perf.data")
    record(args, perf_data)
    print(table(perf_data))


if __name__ == "__main__":
    main()
