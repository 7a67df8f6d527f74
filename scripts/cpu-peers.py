#!/usr/bin/env python3
"""actforge's CPU training step against PyTorch eager on the same step.

`actforge bench-step --export DIR` writes the model's shape, its initial
weights (seed 1), the optimizer's settings (AdamW, lr 1e-4, clip 1) and
every batch of the benchmark in order. This script builds the same GPT in
PyTorch eager from them, the way a PyTorch user writes it (F.layer_norm,
F.scaled_dot_product_attention with the causal and padding mask,
F.cross_entropy with ignore_index, torch.optim.AdamW with the same decay
groups, clip_grad_norm_), checks that its loss on the first batch equals
actforge's (GELU and the formula), and then times a step side by side:

  actforge   `actforge bench-step --variant gelu --variant fused --json`:
             candle's GELU and the fused formula
  torch      the same rounds in a fresh Python process: F.gelu(tanh) and
             the formula composed of torch ops (one op per primitive, as
             scripts/gpu-peers.py writes it), rounds interleaved likewise

Runs alternate (actforge, torch, actforge, …), each a fresh process with
--iters timed steps after --warmup, for every thread count (candle and
torch both limited to it); the tables give the median over runs of each
run's median step, and the ratio actforge / torch, and beside them the
same of each run's fastest step (on a shared machine other processes
slow some steps of a run, rarely all: the fastest steps compare the two
sides with less of the load in them).

  python3 scripts/cpu-peers.py --actforge target/release/actforge \\
      --threads 1 --threads 2 --runs 5 --iters 20

Needs torch (`pip install torch`); without it the script says so and
exits 2. No test or CI step runs it.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QA = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))"


def need_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        print("cpu-peers.py needs PyTorch: pip install torch "
              "(a CPU wheel is enough); nothing was measured", file=sys.stderr)
        sys.exit(2)
    return sys.modules["torch"]


def gpu_peers():
    """scripts/gpu-peers.py as a module (its formula parser and the
    formula as torch ops)."""
    spec = importlib.util.spec_from_file_location("gpu_peers", os.path.join(HERE, "gpu-peers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def activation(torch, formula):
    if formula == "gelu":
        return lambda x: torch.nn.functional.gelu(x, approximate="tanh")
    peers = gpu_peers()
    fn, _src = peers.eager_function(peers.parse(formula), "act")
    return fn


class Gpt:
    """The exported GPT in PyTorch eager: x · W + b with actforge's
    parameter layout, pre-norm blocks, tied output head."""

    def __init__(self, torch, doc, blob, act):
        F = torch.nn.functional
        self.torch, self.F, self.act = torch, F, act
        self.cfg = doc["model"]
        self.params = {}
        for p in doc["params"]:
            n = 1
            for d in p["shape"]:
                n *= d
            data = blob[p["offset"]:p["offset"] + n].clone().reshape(p["shape"])
            self.params[p["name"]] = torch.nn.Parameter(data)
        c = self.cfg
        self.causal = torch.ones(c["max_len"], c["max_len"], dtype=torch.bool).tril()
        groups = [
            {"params": [self.params[p["name"]] for p in doc["params"] if p["decay"]],
             "weight_decay": doc["optimizer"]["weight_decay"]},
            {"params": [self.params[p["name"]] for p in doc["params"] if not p["decay"]],
             "weight_decay": 0.0},
        ]
        o = doc["optimizer"]
        self.opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
        self.clip = o["clip"]

    def ln(self, x, name):
        p = self.params
        d = self.cfg["d_model"]
        return self.F.layer_norm(x, (d,), p[name + ".weight"][0], p[name + ".bias"][0], self.cfg["eps"])

    def lin(self, x, name):
        return x @ self.params[name + ".weight"] + self.params[name + ".bias"][0]

    def loss(self, b):
        torch, F, p, c = self.torch, self.F, self.params, self.cfg
        ids, pad, target = b["input"], b["pad_mask"], b["target"]
        B, T = ids.shape
        H, D = c["n_head"], c["d_model"]
        pos = (pad.cumsum(1) - pad).long()
        x = p["wte.weight"][ids] + p["wpe.weight"][pos]
        keep = self.causal[:T, :T] & pad.bool()[:, None, None, :]
        for i in range(c["n_layer"]):
            h = self.ln(x, f"h.{i}.ln1")
            q, k, v = (
                self.lin(h, f"h.{i}.attn.{n}").view(B, T, H, D // H).transpose(1, 2)
                for n in "qkv"
            )
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            x = x + self.lin(a.transpose(1, 2).reshape(B, T, D), f"h.{i}.attn.o")
            h = self.ln(x, f"h.{i}.ln2")
            x = x + self.lin(self.act(self.lin(h, f"h.{i}.mlp.w1")), f"h.{i}.mlp.w2")
        logits = self.ln(x, "ln_f") @ p["wte.weight"].t()
        return F.cross_entropy(logits.reshape(B * T, -1), target.reshape(-1), ignore_index=-100)

    def step(self, b):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(b)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.clip)
        self.opt.step()
        return loss


def load(torch, export_dir):
    with open(os.path.join(export_dir, "step.json")) as f:
        doc = json.load(f)
    with open(os.path.join(export_dir, "params.bin"), "rb") as f:
        blob = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    batches = []
    for b in doc["batches"]:
        shape = (b["rows"], b["len"])
        t = lambda k, dt: torch.tensor(b[k], dtype=dt).reshape(shape)  # noqa: E731
        target = t("target", torch.long)
        mask = t("loss_mask", torch.float32)
        batches.append({
            "input": t("input", torch.long),
            "pad_mask": t("pad_mask", torch.float32),
            "target": torch.where(mask > 0, target, torch.full_like(target, -100)),
        })
    return doc, blob, batches


def torch_worker(args):
    """One timing run of PyTorch eager (a fresh process): JSON on stdout."""
    torch = need_torch()
    torch.set_num_threads(args.threads)
    doc, blob, batches = load(torch, args.torch_worker)
    variants = {
        "gelu": Gpt(torch, doc, blob, activation(torch, "gelu")),
        "composed": Gpt(torch, doc, blob, activation(torch, doc["formula"])),
    }
    times = {k: [] for k in variants}
    warmup = doc["warmup"]
    for r, b in enumerate(batches):
        for name, model in variants.items():
            t0 = time.perf_counter()
            model.step(b)
            dt = (time.perf_counter() - t0) * 1e3
            if r >= warmup:
                times[name].append(dt)
    print(json.dumps({"median": {k: statistics.median(v) for k, v in times.items()},
                      "min": {k: min(v) for k, v in times.items()}}))


def check_losses(torch, export_dir):
    """The torch model's loss on the first batch at the initial weights
    against actforge's; a mismatch means the models differ."""
    doc, blob, batches = load(torch, export_dir)
    out = {}
    for key, act in [("gelu", "gelu"), ("fused", doc["formula"])]:
        with torch.no_grad():
            got = float(Gpt(torch, doc, blob, activation(torch, act)).loss(batches[0]))
        want = doc["loss0"][key]
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            sys.exit(f"the PyTorch model is not actforge's: loss {got} vs {want} ({key})")
        out[key] = (got, want)
    return out


def run_actforge(args, export_dir, threads):
    cmd = [args.actforge, "bench-step", "--task", args.task, "--preset", args.preset,
           "--formula", args.formula, "--iters", str(args.iters), "--warmup", str(args.warmup),
           "--variant", "gelu", "--variant", "fused", "--json"]
    if export_dir:
        cmd += ["--export", export_dir]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"actforge bench-step failed:\n{out.stderr}")
    doc = json.loads(out.stdout)
    return {"median": doc["step_ms"], "min": doc["step_ms_min"]}


def run_torch(export_dir, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", export_dir,
           "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the PyTorch run failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--actforge", default="target/release/actforge")
    ap.add_argument("--task", default="qa")
    ap.add_argument("--preset", default="gpt-micro")
    ap.add_argument("--formula", default=QA)
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--runs", type=int, default=5, help="runs of each side per thread count")
    ap.add_argument("--iters", type=int, default=20, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", help="write results.json here")
    ap.add_argument("--torch-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        args.threads = args.threads[0] if args.threads else 1
        return torch_worker(args)
    torch = need_torch()
    threads = args.threads or [1, 2]
    export_dir = tempfile.mkdtemp(prefix="actforge-cpu-peers-")
    run_actforge(args, export_dir, threads[0])
    losses = check_losses(torch, export_dir)
    print(f"same model: first-batch loss torch/actforge  gelu {losses['gelu'][0]:.5f}/{losses['gelu'][1]:.5f}"
          f"  formula {losses['fused'][0]:.5f}/{losses['fused'][1]:.5f}", file=sys.stderr)
    results = {"torch": torch.__version__, "task": args.task, "preset": args.preset,
               "formula": args.formula, "iters": args.iters, "runs": args.runs, "threads": {}}
    for t in threads:
        af, pt = {"gelu": [], "fused": []}, {"gelu": [], "composed": []}
        af_min, pt_min = {"gelu": [], "fused": []}, {"gelu": [], "composed": []}
        for r in range(args.runs):
            a = run_actforge(args, None, t)
            p = run_torch(export_dir, t)
            for k in af:
                af[k].append(a["median"][k])
                af_min[k].append(a["min"][k])
            for k in pt:
                pt[k].append(p["median"][k])
                pt_min[k].append(p["min"][k])
            a, p = a["median"], p["median"]
            print(f"threads {t} run {r + 1}: actforge gelu {a['gelu']:.1f} fused {a['fused']:.1f}"
                  f" | torch gelu {p['gelu']:.1f} composed {p['composed']:.1f} ms", file=sys.stderr)
        med = {f"actforge_{k}": statistics.median(v) for k, v in af.items()}
        med.update({f"torch_{k}": statistics.median(v) for k, v in pt.items()})
        med["ratio_gelu"] = med["actforge_gelu"] / med["torch_gelu"]
        med["ratio_formula"] = med["actforge_fused"] / med["torch_composed"]
        fast = {f"actforge_{k}": statistics.median(v) for k, v in af_min.items()}
        fast.update({f"torch_{k}": statistics.median(v) for k, v in pt_min.items()})
        fast["ratio_gelu"] = fast["actforge_gelu"] / fast["torch_gelu"]
        fast["ratio_formula"] = fast["actforge_fused"] / fast["torch_composed"]
        med["fastest"] = fast
        med["runs"] = {"actforge": af, "torch": pt, "actforge_min": af_min, "torch_min": pt_min}
        results["threads"][str(t)] = med
    print(f"\n{args.task} · {args.preset} · torch {torch.__version__} · medians of {args.runs} runs "
          f"of {args.iters} steps (each run's median step; in brackets each run's fastest step, "
          f"which load disturbs less)\n")
    print("| threads | activation | actforge ms/step | PyTorch eager ms/step | ratio | ratio of fastest steps |")
    print("|---|---|---|---|---|---|")
    for t, m in results["threads"].items():
        f = m["fastest"]
        print(f"| {t} | GELU | {m['actforge_gelu']:.1f} ({f['actforge_gelu']:.1f}) | "
              f"{m['torch_gelu']:.1f} ({f['torch_gelu']:.1f}) | {m['ratio_gelu']:.2f} | {f['ratio_gelu']:.2f} |")
        print(f"| {t} | seed Q&A (actforge fused; torch composed) | {m['actforge_fused']:.1f} "
              f"({f['actforge_fused']:.1f}) | {m['torch_composed']:.1f} ({f['torch_composed']:.1f}) | "
              f"**{m['ratio_formula']:.2f}** | {f['ratio_formula']:.2f} |")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
