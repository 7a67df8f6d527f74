#!/usr/bin/env python3
"""Join `actforge eval-candidates` result files (e.g. the shards of
scripts/slurm-eval.sh) by hash: one line per (hash, seeds, recipe), sorted by
hash, on stdout. Error lines (refused batch lines) are reported on stderr and
left out. Two results for the same candidate must agree bit for bit on the
fitness (the evaluation is deterministic); a disagreement is an error.

  python3 scripts/merge-results.py results/shard-*.jsonl > results.jsonl
"""

import json
import sys


def main(paths):
    if not paths:
        sys.exit(__doc__)
    merged, errors, repeats = {}, 0, 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except ValueError as e:
                    sys.exit(f"{path}:{n}: not a JSON line: {e}")
                if "error" in line:
                    errors += 1
                    print(f"{path}:{n}: batch line {line.get('line')} was refused: {line['error']}",
                          file=sys.stderr)
                    continue
                key = (line["hash"], tuple(line.get("seeds") or ()), line.get("recipe"))
                old = merged.get(key)
                if old is None:
                    merged[key] = line
                    continue
                repeats += 1
                if old.get("fitness") != line.get("fitness"):
                    sys.exit(f"{path}:{n}: {line['hash']} has fitness {line.get('fitness')} here "
                             f"but {old.get('fitness')} elsewhere")
    for key in sorted(merged):
        print(json.dumps(merged[key]))
    print(f"merged {len(merged)} results from {len(paths)} files "
          f"({repeats} repeated, {errors} refused lines)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
