#!/usr/bin/env python3
"""Expected Student-t, confidence-interval and Welch t-test values from scipy
for tests/metrics.rs. Maintainers only; the tests read the committed output.

    python3 -m venv /tmp/sb && /tmp/sb/bin/pip install scipy
    /tmp/sb/bin/python scripts/scipy-stats-cases.py

Writes tests/data/stats/scipy.json.
"""

import json
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "stats" / "scipy.json"

DFS = [0.5, 1, 1.5, 2, 3, 4, 5, 7, 9, 10, 19, 30, 50, 100, 1000, 1e6]
PROBS = [1e-9, 1e-4, 0.025, 0.1, 0.4, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9999]
TS = [-40.0, -3.0, -0.2, 0.0, 0.05, 1.0, 2.5, 6.0, 25.0, 300.0]

SAMPLES = [
    [31.2, 29.8],
    [31.2, 29.8, 30.5],
    [12.4, 13.1, 12.9, 11.8, 12.2],
    [0.512, 0.498, 0.505, 0.521, 0.487, 0.530, 0.509, 0.495, 0.515, 0.501],
    [145.2, 161.9, 150.3, 139.8],
    [-2.5, 0.0, 7.25, 1e-3, 3.5, -1.0],
    [1e6 + 0.1, 1e6 + 0.2, 1e6 + 0.4],
]

PAIRS = [
    ([31.2, 29.8, 30.5, 30.9, 31.4], [28.1, 27.5, 29.0, 28.4, 27.9]),
    ([12.4, 13.1, 12.9], [12.6, 12.2, 13.4, 12.8]),
    ([0.512, 0.498, 0.505, 0.521, 0.487], [0.501, 0.499, 0.503]),
    ([1.0, 2.0], [1.5, 2.5]),
    ([1.0, 1.0, 1.0], [5.0, 1.0, 9.0]),
    ([10.0, 10.1, 9.9, 10.05, 9.95], [20.0, 20.2, 19.8, 20.1, 19.9]),
    ([5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [5.5, 6.1, 7.2, 7.9, 9.3, 10.2, 10.8, 12.1]),
    ([145.2, 161.9, 150.3, 139.8], [210.4, 140.1, 188.8, 171.0, 160.2, 199.9]),
]


def summary(xs):
    x = np.array(xs)
    mean, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=mean, scale=stats.sem(x))
    return {"xs": xs, "mean": mean, "sd": sd, "ci95": [float(lo), float(hi)]}


def welch(a, b):
    r = stats.ttest_ind(a, b, equal_var=False)
    return {"a": a, "b": b, "p": float(r.pvalue), "t": float(r.statistic), "df": float(r.df)}


def main():
    out = {
        "scipy": scipy.__version__,
        "quantiles": [{"p": p, "df": df, "t": float(stats.t.ppf(p, df))} for df in DFS for p in PROBS],
        "sf": [{"t": t, "df": df, "sf": float(stats.t.sf(t, df))} for df in DFS for t in TS],
        "summaries": [summary(xs) for xs in SAMPLES],
        "welch": [welch(a, b) for a, b in PAIRS],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
