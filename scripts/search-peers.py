#!/usr/bin/env python3
"""Search throughput: `actforge search` against DEAP + PyTorch eager at
identical settings, in trained candidates per hour.

  actforge  `actforge search --pop P --lambda P --gens G --steps S
            --workers 1 --retrain-top 0 --no-export --no-racing --json`
            (one seed per candidate, as DEAP trains; μ + λ, dedup by
            meaning, screening); candidates per hour = trained candidates
            over the wall time of the generations (what the README's search
            table reports), and the same with every offspring counted.
  deap      DEAP's eaMuPlusLambda over the same primitives, population and
            generations: every individual is compiled to torch ops (one op
            per primitive, scripts/gpu-peers.py's spelling) and trained for
            S steps of the same recipe on the same model and batches
            (exported by `actforge bench-step --export`, thinned data,
            AdamW, linear warm-up and cosine decay, clipping), then scored
            by teacher-forced validation loss on two batches (no greedy
            generation, which actforge's evaluation also runs: DEAP's side
            is flattered). No cache: DEAP trains every individual it
            evaluates.

  python3 scripts/search-peers.py --actforge target/release/actforge \\
      --pop 8 --gens 2 --steps 150

Both run one training at a time on one thread (RAYON_NUM_THREADS=1,
torch.set_num_threads(1)). Needs torch and deap (pip install torch deap);
without them the script says so and exits 2. No test or CI step runs it.
"""

import argparse
import functools
import json
import math
import operator
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def need(mod):
    try:
        return __import__(mod)
    except ImportError:
        print(f"search-peers.py needs {mod}: pip install torch deap; nothing was measured",
              file=sys.stderr)
        sys.exit(2)


def cpu_peers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_peers", os.path.join(HERE, "cpu-peers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lr_at(step, total, warmup, peak, min_ratio):
    """actforge's schedule (fitness::optim::learning_rate)."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    done = min(max(step - warmup, 0) / span, 1.0)
    floor = peak * min_ratio
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * done))


def run_actforge(args):
    out = tempfile.mkdtemp(prefix="actforge-search-peers-")
    cmd = [args.actforge, "search", "--task", "qa", "--pop", str(args.pop), "--lambda", str(args.pop),
           "--gens", str(args.gens), "--steps", str(args.steps), "--workers", "1",
           "--retrain-top", "0", "--no-export", "--seed", "0", "--json", "--quiet",
           "--no-racing", "--out", os.path.join(out, "run")]
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"actforge search failed:\n{res.stderr}")
    # Trained: evaluations that were not screened out (a training that
    # failed numerically was still trained). The wall time of the
    # generations is the logbook's `seconds`.
    trained = evaluated = 0
    with open(os.path.join(out, "run", "evaluations.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            evaluated += 1
            trained += int(e.get("screened") is None)
    gen_wall = 0.0
    with open(os.path.join(out, "run", "logbook.jsonl")) as f:
        for line in f:
            gen_wall += json.loads(line).get("seconds", 0.0)
    offspring = args.pop * (args.gens + 1)
    return {"trained": trained, "evaluations": evaluated, "offspring": offspring,
            "wall_s": wall, "generations_wall_s": gen_wall}


def erc(rng):
    return round(rng.uniform(-2, 2), 3)


def run_deap(args, export_dir):
    torch = need("torch")
    deap = need("deap")
    from deap import algorithms, base, creator, gp, tools  # noqa: F401

    torch.set_num_threads(1)
    cp = cpu_peers()
    peers = cp.gpu_peers()
    doc, blob, batches = cp.load(torch, export_dir)
    train, valid = batches[: args.steps], batches[args.steps: args.steps + 2]
    pset = gp.PrimitiveSet("MAIN", 1)
    for name, (arity, _) in peers.PRIMS.items():
        pset.addPrimitive(getattr(operator, "add"), arity, name=name)  # placeholders: only names and arities matter
    pset.addEphemeralConstant("erc", functools.partial(erc, random))
    pset.renameArguments(ARG0="x")
    creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
    creator.create("Individual", gp.PrimitiveTree, fitness=creator.FitnessMin)
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=1, max_=4)
    tb.register("individual", tools.initIterate, creator.Individual, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("select", tools.selTournament, tournsize=3)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genFull, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=8)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    counts = {"trained": 0, "train_s": 0.0}

    def evaluate(ind):
        text = str(ind)
        try:
            act = cp.activation(torch, text)
        except Exception:  # a formula the torch spelling cannot express
            return (float("inf"),)
        t0 = time.perf_counter()
        model = cp.Gpt(torch, doc, blob, act)
        for g in model.opt.param_groups:
            g["lr"] = args.lr
        total, warm = len(train), round(0.05 * len(train))
        loss = torch.tensor(float("nan"))
        for s, b in enumerate(train):
            for g in model.opt.param_groups:
                g["lr"] = lr_at(s, total, warm, args.lr, 0.1)
            loss = model.step(b)
            if not torch.isfinite(loss):
                break
        with torch.no_grad():
            v = sum(float(model.loss(b)) for b in valid) / len(valid)
        counts["trained"] += 1
        counts["train_s"] += time.perf_counter() - t0
        return (v if math.isfinite(v) else float("inf"),)

    tb.register("evaluate", evaluate)
    random.seed(0)
    pop = tb.population(n=args.pop)
    t0 = time.perf_counter()
    algorithms.eaMuPlusLambda(pop, tb, mu=args.pop, lambda_=args.pop, cxpb=0.5, mutpb=0.3,
                              ngen=args.gens, verbose=False)
    wall = time.perf_counter() - t0
    return {"trained": counts["trained"], "wall_s": wall, "train_s": counts["train_s"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--actforge", default="target/release/actforge")
    ap.add_argument("--pop", type=int, default=8)
    ap.add_argument("--gens", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (actforge's CPU recipe)")
    ap.add_argument("--skip-actforge", action="store_true")
    args = ap.parse_args()
    need("torch")
    need("deap")
    export_dir = tempfile.mkdtemp(prefix="actforge-search-peers-data-")
    cmd = [args.actforge, "bench-step", "--task", "qa", "--thin", "0.5", "--iters", str(args.steps + 2),
           "--warmup", "0", "--variant", "fused", "--export", export_dir, "--json"]
    subprocess.run(cmd, env=dict(os.environ, RAYON_NUM_THREADS="1"), check=True, capture_output=True)
    result = {"settings": vars(args)}
    if not args.skip_actforge:
        result["actforge"] = run_actforge(args)
    result["deap"] = run_deap(args, export_dir)
    for k in ("actforge", "deap"):
        if k in result:
            r = result[k]
            wall = r.get("generations_wall_s") or r["wall_s"]
            r["trained_per_hour"] = 3600 * r["trained"] / wall
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
