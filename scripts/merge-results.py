#!/usr/bin/env python3
"""Join `actforge eval-candidates` result files (e.g. the shards of
scripts/slurm-eval.sh) by hash: one line per (hash, seeds, recipe), sorted by
hash, on stdout. Error lines (refused batch lines) are reported on stderr and
left out. Two results for the same candidate must agree bit for bit on the
fitness (the evaluation is deterministic); a disagreement is an error.

  python3 scripts/merge-results.py results/shard-*.jsonl > results.jsonl

A line that is not a result or error line of eval-candidates (no 16-hex-digit
hash, seeds that are not a list of non-negative integers, a recipe that is
not 16 hex digits, not a JSON object at all), a file that cannot be read or
a folder is an error that names the file and line (exit status 1).
"""

import json
import os
import re
import sys

HEX16 = re.compile(r"[0-9a-f]{16}\Z")


class Bad(Exception):
    """A line or file that is not what this script merges."""


def result_key(line):
    """(hash, seeds, recipe) of a result line, checked."""
    h = line.get("hash")
    if not isinstance(h, str) or not HEX16.match(h):
        raise Bad(f"a result line needs a 16-hex-digit \"hash\", not {json.dumps(h)}")
    seeds = line.get("seeds")
    ok_seeds = isinstance(seeds, list) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    if not ok_seeds:
        raise Bad(f"\"seeds\" must be a list of non-negative integers, not {json.dumps(seeds)}")
    recipe = line.get("recipe")
    if not isinstance(recipe, str) or not HEX16.match(recipe):
        raise Bad(f"\"recipe\" must be 16 hex digits, not {json.dumps(recipe)}")
    if "fitness" not in line and "failure" not in line:
        raise Bad("a result line has a \"fitness\" or a \"failure\"")
    return (h, tuple(seeds), recipe)


def read(path):
    """The lines of a results file, or Bad naming it."""
    if os.path.isdir(path):
        raise Bad(f"{path}: is a folder; give the result files (e.g. {path}/shard-*.jsonl)")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise Bad(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")
    except OSError as e:
        raise Bad(f"{path}: cannot be read: {e.strerror}")


def merge(paths):
    merged, errors, repeats = {}, 0, 0
    for path in paths:
        for n, text in enumerate(read(path), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as e:
                raise Bad(f"{path}:{n}: not a JSON line: {e}")
            if not isinstance(line, dict):
                raise Bad(f"{path}:{n}: not a JSON object (a result or error line of eval-candidates)")
            if "error" in line:
                errors += 1
                print(f"{path}:{n}: batch line {line.get('line')} was refused: {line['error']}",
                      file=sys.stderr)
                continue
            try:
                key = result_key(line)
            except Bad as e:
                raise Bad(f"{path}:{n}: {e}")
            old = merged.get(key)
            if old is None:
                merged[key] = line
                continue
            repeats += 1
            if old.get("fitness") != line.get("fitness"):
                raise Bad(f"{path}:{n}: {line['hash']} has fitness {line.get('fitness')} here "
                          f"but {old.get('fitness')} elsewhere")
    return merged, errors, repeats


def main(paths):
    if not paths:
        sys.exit(__doc__)
    try:
        merged, errors, repeats = merge(paths)
    except Bad as e:
        print(f"merge-results.py: {e}", file=sys.stderr)
        sys.exit(1)
    for key in sorted(merged):
        print(json.dumps(merged[key]))
    print(f"merged {len(merged)} results from {len(paths)} files "
          f"({repeats} repeated, {errors} refused lines)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
