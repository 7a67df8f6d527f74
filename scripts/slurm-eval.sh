#!/usr/bin/env bash
# Evaluate a batch of a search run's candidates as a Slurm job array: task
# I of N runs `actforge eval-candidates --shard I/N` on its own GPU (or CPU)
# and writes OUT_DIR/shard-I-of-N.jsonl; scripts/merge-results.py then joins
# the shards by hash.
#
# Submit as is (8 tasks, one GPU each; change --array for another count):
#   sbatch scripts/slurm-eval.sh runs/qa1 batch.jsonl results/
#   sbatch --array=0-31 --gres=gpu:1 scripts/slurm-eval.sh runs/qa1 batch.jsonl results/
#   sbatch --array=0-15 --gres=none --cpus-per-task=2 scripts/slurm-eval.sh runs/qa1 batch.jsonl results/   # CPU only
# then, once every task has finished:
#   python3 scripts/merge-results.py results/shard-*.jsonl > results.jsonl
#
# RUN_DIR (its config.json gives the recipe), BATCH and OUT_DIR must be on a
# filesystem every node sees; `actforge` must be on PATH there (or set
# ACTFORGE=/path/to/actforge). A task that is requeued or resubmitted keeps
# the results its shard file already holds and evaluates only the rest
# (eval-candidates is idempotent by hash). A task exits 1 when some batch
# lines were refused; their error lines are in its shard file.
#
#SBATCH --job-name=actforge-eval
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --output=slurm-actforge-%A_%a.out
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: sbatch [--array=0-(N-1)] $0 RUN_DIR BATCH.jsonl OUT_DIR" >&2
    exit 2
fi
run=$1 batch=$2 out=$3
actforge=${ACTFORGE:-actforge}
: "${SLURM_ARRAY_TASK_ID:?submit with sbatch --array (or set SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT)}"
count=${SLURM_ARRAY_TASK_COUNT:?no SLURM_ARRAY_TASK_COUNT}
index=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0}))

# Slurm hands a task its GPU as CUDA_VISIBLE_DEVICES: it is cuda:0 inside.
device=()
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && [ "${CUDA_VISIBLE_DEVICES}" != "NoDevFiles" ]; then
    device=(--device cuda:0)
fi
# One math thread per CPU Slurm gave the task.
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}

mkdir -p "$out"
exec "$actforge" eval-candidates --run "$run" --batch "$batch" \
    --out "$out/shard-$index-of-$count.jsonl" --shard "$index/$count" "${device[@]}"
