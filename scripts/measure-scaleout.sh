#!/usr/bin/env bash
# Side by side: the same seeded search through 1 thread, 2 threads, 2 worker processes, local Ray (2 CPUs).
# Usage: ACTFORGE=target/release/actforge RAY_PYTHON=ray-env/bin/python scripts/measure-scaleout.sh [WORKDIR]
set -u
B=$(realpath "${ACTFORGE:-target/release/actforge}")
PY=$(realpath "${RAY_PYTHON:-$(command -v python3)}")
mkdir -p "${1:-scaleout-bench}" && cd "${1:-scaleout-bench}"
COMMON="search --quiet --json --pop 8 --gens 1 --include --steps 20 --seed 7 --no-export --retrain-top 0"
for cfg in "t1:--workers 1" "t2:--workers 2" "p2:--workers 2 --executor process" "ray2:--executor ray --ray-python $PY --ray-local-cpus 2"; do
  name=${cfg%%:*}; flags=${cfg#*:}
  rm -rf run-$name
  s=$(date +%s.%N)
  $B $COMMON $flags --out run-$name > $name.json 2> $name.err
  e=$(date +%s.%N)
  n=$(python3 -c "import json;print(sum(1 for l in open('run-$name/evaluations.jsonl') if json.loads(l)['screened'] is None))")
  echo "$name wall=$(python3 -c "print(round($e-$s,1))") trained=$n per_hour=$(python3 -c "print(round($n*3600/($e-$s)))")"
done
# The fresh-process path: an empty batch (start, read the run, prepare data), then one candidate.
printf '# nothing\n' > empty.jsonl
f=$(python3 -c "import json;print([json.loads(l) for l in open('run-t1/evaluations.jsonl') if json.loads(l)['fitness'] is not None][0]['formula'])")
python3 -c "import json,sys;print(json.dumps({'formula':sys.argv[1]}))" "$f" > one.jsonl
for i in 1 2 3; do
  rm -f e.jsonl o.jsonl
  s=$(date +%s.%N); $B eval-candidates --quiet --run run-t1 --batch empty.jsonl --out e.jsonl >/dev/null; m=$(date +%s.%N)
  $B eval-candidates --quiet --run run-t1 --batch one.jsonl --out o.jsonl >/dev/null; e=$(date +%s.%N)
  python3 -c "
import json
r=json.loads(open('o.jsonl').readline())
print('fresh: empty batch %.2f s; one candidate %.2f s wall, of which evaluation %.2f s; overhead %.2f s' % ($m-$s, $e-$m, r['seconds'], ($e-$m)-r['seconds']))"
done
# In process, the same candidate: its seconds in the search.
python3 -c "
import json,sys
for l in open('run-t1/evaluations.jsonl'):
    e=json.loads(l)
    if e['formula']==sys.argv[1]: print('in search (1 thread): %.2f s' % e['seconds'])" "$f"
