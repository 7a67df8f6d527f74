#!/usr/bin/env bash
# Evaluate a batch of a search run's candidates as a Slurm job array: task
# I of N runs `actforge eval-candidates --shard I/N` on its own GPU (or CPU)
# and writes OUT_DIR/shard-I-of-N.jsonl; scripts/merge-results.py then joins
# the shards by hash.
#
# Submit as is (8 tasks, one GPU each; change --array for another count; a
# stepped range such as --array=0-14:2 works too, a list such as 0,3,7 is
# refused):
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
min=${SLURM_ARRAY_TASK_MIN:-0}
max=${SLURM_ARRAY_TASK_MAX:-$((min + count - 1))}
step=${SLURM_ARRAY_TASK_STEP:-1}
# The shard is the task's position in the array, so every shard 0..N-1 is
# some task's: --array=0-7, --array=1-8 and --array=0-14:2 all work. An
# array whose ids are not one evenly stepped range (--array=0,3,7) cannot
# say which position a task has, so it is refused rather than skip shards.
if [ "$step" -lt 1 ] || [ $(((max - min) % step)) -ne 0 ] \
    || [ $(((max - min) / step + 1)) -ne "$count" ] \
    || [ $(((SLURM_ARRAY_TASK_ID - min) % step)) -ne 0 ]; then
    echo "error: the array's task ids (min $min, max $max, step $step, $count tasks) are not one evenly stepped range; submit with --array=A-B or --array=A-B:S" >&2
    exit 2
fi
index=$(((SLURM_ARRAY_TASK_ID - min) / step))

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
