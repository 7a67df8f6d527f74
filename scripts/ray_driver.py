#!/usr/bin/env python3
"""Fans `actforge eval-candidates` out over a Ray cluster for `actforge search
--executor ray`. The Rust search stays the driver of the search; this script
only runs the candidates it is sent.

Needs the `ray` package, pinned: pip install 'ray[default]==2.60.0' (or
plain `ray==2.60.0`, which is all this script uses).

Protocol (the search starts this script and speaks it over pipes):
  stdin:  batch lines of `actforge eval-candidates` (one candidate each), sent
          whenever the search has them; end of input ends the script once
          every candidate sent has its result.
  stdout: first {"ready": true, "ray": VERSION, "resources": {...}} once
          connected, then one result line per candidate (as
          `eval-candidates` writes it) as each task finishes, in any order.
          A task that fails (the command crashed, was killed, its node
          died, or with --timeout ran longer than that and was killed) is
          retried once by Ray; after the second failure the candidate gets
          a result line with "fitness": null and the reason.
          If the cluster itself goes away: {"lost": "why"} and exit status 3.
  stderr: Ray's own messages (the search keeps them in a log file).

Each task runs `ACTFORGE eval-candidates --run RUN --batch B --out O` in a
fresh process on a Ray worker, with the run's config.json (and primitives
file) copied into a temporary run directory there: the nodes need the
actforge binary at the same path (and the corpus, if the run reads one from
a file), but not the run directory.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading

# The protocol owns the real stdout; everything else printed to stdout
# (Ray's raylet messages among it) goes to stderr.
PROTOCOL = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import ray  # noqa: E402

RAY_VERSION = "2.60.0"
LOST = 3


def emit(obj):
    PROTOCOL.write(json.dumps(obj) + "\n")
    PROTOCOL.flush()


def run_files(run):
    """The files of the run directory a worker needs, by name."""
    files = {}
    for name in ("config.json", "primitives.act"):
        path = os.path.join(run, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                files[name] = f.read()
    if "config.json" not in files:
        sys.exit(f"{run} has no config.json: not an actforge search run")
    return files


def evaluate(actforge, files, line, gpus, cpus, timeout=None):
    """One candidate, in a fresh `eval-candidates` process; returns its
    output line, or raises (so that Ray retries the task). With `timeout`
    (seconds), a process that has not finished by then is killed (SIGKILL,
    which also ends a stopped one) and the task fails saying so."""
    with tempfile.TemporaryDirectory(prefix="actforge-ray-") as tmp:
        run = os.path.join(tmp, "run")
        os.mkdir(run)
        for name, text in files.items():
            with open(os.path.join(run, name), "w", encoding="utf-8") as f:
                f.write(text)
        batch, out = os.path.join(tmp, "batch.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(batch, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        cmd = [actforge, "eval-candidates", "--run", run, "--batch", batch,
               "--out", out, "--quiet"]
        if gpus > 0:
            # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU.
            cmd += ["--device", "cuda:0"]
        env = dict(os.environ)
        env.setdefault("RAYON_NUM_THREADS", str(max(1, int(cpus))))
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"eval-candidates timed out after {timeout} s (--eval-timeout) on "
                f"{os.uname().nodename} and was killed") from None
        lines = []
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                lines = [l for l in f.read().splitlines() if l.strip()]
        if lines:
            return lines[0]
        how = (f"was killed by signal {-p.returncode}" if p.returncode < 0
               else f"exited with status {p.returncode}")
        tail = (p.stderr or "").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"eval-candidates {how} on {os.uname().nodename}: {tail[0]}")


TASK_FAILURES = (
    ray.exceptions.RayTaskError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.OutOfMemoryError,
    ray.exceptions.TaskUnschedulableError,
    ray.exceptions.ObjectLostError,
)


def failure_line(line, why):
    job = json.loads(line)
    first = str(why).strip().splitlines()
    reason = " ".join(l.strip() for l in first if "RuntimeError" in l or "eval-candidates" in l)
    what = ("the evaluation timed out twice (Ray task retried once): " if "timed out" in reason
            else "the Ray task failed twice: ")
    return {
        "hash": job["hash"], "formula": job.get("formula"), "seeds": job.get("seeds"),
        "recipe": job.get("recipe"), "fitness": None,
        "failure": what + (reason or (first[-1] if first else type(why).__name__)),
        "metrics": {}, "seconds": 0.0, "worker": 0,
    }


def read_stdin(q):
    for line in sys.stdin:
        line = line.strip()
        if line:
            q.put(line)
    q.put(None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the search run directory")
    ap.add_argument("--actforge", required=True, help="path of the actforge binary on every node")
    ap.add_argument("--address", help="a running cluster (auto, host:6379 or ray://host:10001); default: a local instance")
    ap.add_argument("--gpus", type=float, default=0.0, help="GPUs per task (num_gpus)")
    ap.add_argument("--cpus", type=float, default=1.0, help="CPUs per task (num_cpus)")
    ap.add_argument("--local-cpus", type=int, help="CPUs of the local instance (default: all)")
    ap.add_argument("--timeout", type=float, help="seconds an evaluation may take before it is killed")
    a = ap.parse_args()

    if ray.__version__ != RAY_VERSION:
        print(f"warning: ray {ray.__version__} is installed; this driver is tested with {RAY_VERSION}",
              file=sys.stderr)
    files = run_files(a.run)
    try:
        if a.address:
            ray.init(address=a.address, log_to_driver=False)
        else:
            ray.init(num_cpus=a.local_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # no cluster at that address, or none could start
        emit({"lost": f"cannot connect to Ray ({a.address or 'local instance'}): {e}"})
        sys.exit(LOST)
    task = ray.remote(evaluate).options(
        num_gpus=a.gpus, num_cpus=a.cpus, max_retries=1, retry_exceptions=True)
    emit({"ready": True, "ray": ray.__version__, "resources": ray.cluster_resources()})

    lines = queue.Queue()
    threading.Thread(target=read_stdin, args=(lines,), daemon=True).start()
    pending, open_input = {}, True
    while open_input or pending:
        while True:
            try:
                line = lines.get(timeout=0 if pending or not open_input else 0.5)
            except queue.Empty:
                break
            if line is None:
                open_input = False
                break
            pending[task.remote(a.actforge, files, line, a.gpus, a.cpus, a.timeout)] = line
        if not pending:
            continue
        try:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
        except Exception as e:
            emit({"lost": f"the Ray cluster went away: {type(e).__name__}: {e}"})
            sys.exit(LOST)
        for ref in ready:
            line = pending.pop(ref)
            try:
                PROTOCOL.write(ray.get(ref).strip() + "\n")
                PROTOCOL.flush()
            except TASK_FAILURES as e:
                emit(failure_line(line, e))
            except Exception as e:
                emit({"lost": f"the Ray cluster went away: {type(e).__name__}: {e}"})
                sys.exit(LOST)
    ray.shutdown()


if __name__ == "__main__":
    main()
