#!/usr/bin/env python3
"""How many validation and test pairs share their question (source) or
answer (target) with a training pair, in the split/ folder of `actforge
train` or `actforge search` run directories. Texts are compared lower-cased
with whitespace collapsed (actforge's own grouping normalises further).

    python3 scripts/split-leakage.py runs/train-qa-… [more run directories]
"""

import sys


def load(path):
    pairs = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line:
            src, tgt = line.split("\t", 1)
            pairs.append((src, tgt))
    return pairs


def norm(s):
    return " ".join(s.lower().split())


def main(dirs):
    for d in dirs:
        train = load(f"{d}/split/train.tsv")
        sources = {norm(s) for s, _ in train}
        targets = {norm(t) for _, t in train}
        for part in ["valid", "test"]:
            pairs = load(f"{d}/split/{part}.tsv")
            q = sum(norm(s) in sources for s, _ in pairs)
            a = sum(norm(t) in targets for _, t in pairs)
            n = max(len(pairs), 1)
            print(f"{d} {part}: {len(pairs)} pairs; questions shared with training {q} "
                  f"({100 * q / n:.1f}%), answers {a} ({100 * a / n:.1f}%)")


if __name__ == "__main__":
    main(sys.argv[1:])
