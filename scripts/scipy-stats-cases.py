#!/usr/bin/env python3
"""Expected Student-t, confidence-interval, Welch and paired t-test values
from scipy, Holm adjustments from statsmodels' multipletests, and minimum
detectable effects of a paired design from statsmodels' TTestPower (checked
against scipy's noncentral t), for tests/metrics.rs. Maintainers only; the
tests read the committed output.

    python3 -m venv /tmp/sb && /tmp/sb/bin/pip install scipy statsmodels
    /tmp/sb/bin/python scripts/scipy-stats-cases.py

Writes tests/data/stats/scipy.json.
"""

import json
from pathlib import Path

import math

import numpy as np
import scipy
import statsmodels
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

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


# (contender, baseline), one value per seed, seed-matched.
PAIRED = [
    # Highly correlated fitnesses over 5 seeds (common random numbers):
    # Welch sees nothing, the paired test sees the shift.
    ([0.1262, 0.1241, 0.1288, 0.1230, 0.1275], [0.1250, 0.1232, 0.1270, 0.1224, 0.1262]),
    ([31.2, 29.8], [28.1, 27.5]),
    ([31.2, 29.8, 30.5], [30.9, 29.9, 30.1]),
    ([12.4, 13.1, 12.9, 11.8, 12.2, 12.0, 13.3], [12.6, 12.2, 13.4, 12.0, 12.1, 12.5, 12.9]),
    ([151.6, 160.2, 148.9, 155.0], [176.3, 158.8, 170.1, 169.4]),
    ([0.0, 0.131, 0.0], [0.142, 0.133, 0.139]),
    ([-2.5, 0.0, 7.25, 1e-3, 3.5, -1.0], [-2.0, 0.5, 7.0, 0.0, 3.0, -1.5]),
    ([1e6 + 0.3, 1e6 + 0.1, 1e6 + 0.4], [1e6 + 0.1, 1e6 + 0.2, 1e6 + 0.1]),
    # Constant differences (exact in binary): p = 0; none at all: no p.
    ([1.5, 2.5, 3.0], [1.0, 2.0, 2.5]),
    ([1.5, 2.5, 3.0], [1.5, 2.5, 3.0]),
]

# Families of p-values; None is an undefined test (left out of the family).
HOLM = [
    [0.01, 0.04, 0.03, 0.5],
    [0.041],
    [0.2, 0.2, 0.01],
    [0.6, 0.7, 0.9],
    [1e-8, 0.049, 0.0125, 0.0126, 0.3, 0.024],
    [0.01, None, 0.02, None],
    [0.04, 0.04, 0.04],
]

# (sd of the differences, seed pairs, alpha, power)
MDE = [
    (1.0, 2, 0.05, 0.8),
    (1.0, 3, 0.05, 0.8),
    (0.0035, 3, 0.05, 0.8),
    (0.0013, 5, 0.05, 0.8),
    (1.0, 5, 0.05, 0.8),
    (2.5, 8, 0.05, 0.8),
    (1.0, 10, 0.05, 0.9),
    (1.0, 20, 0.01, 0.8),
    (0.02, 30, 0.05, 0.8),
    (1.0, 200, 0.05, 0.8),
]


def paired(contender, baseline):
    r = stats.ttest_rel(contender, baseline)
    lo, hi = r.confidence_interval(0.95)
    d = np.array(contender) - np.array(baseline)
    return {
        "contender": contender,
        "baseline": baseline,
        "mean_diff": float(np.mean(d)),
        "sd_diff": float(np.std(d, ddof=1)),
        "ci95": [float(lo), float(hi)],
        "p": None if math.isnan(r.pvalue) else float(r.pvalue),
        "t": float(r.statistic) if math.isfinite(r.statistic) else None,
    }


def holm(ps):
    defined = [p for p in ps if p is not None]
    adjusted = iter(multipletests(defined, method="holm")[1]) if defined else iter([])
    return {"p": ps, "holm": [None if p is None else float(next(adjusted)) for p in ps]}


def nct_power(nc, df, alpha):
    c = stats.t.ppf(1 - alpha / 2, df)
    # The lower tail P(T' < -c | nc) as P(T' > c | -nc): scipy's nct.cdf
    # gives NaN deep in that tail.
    return stats.nct.sf(c, df, nc) + stats.nct.sf(c, df, -nc)


def mde(sd, n, alpha, power):
    d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                 alternative="two-sided")
    # The same from scipy's noncentral t, to tighter tolerance.
    nc = optimize.brentq(lambda nc: nct_power(nc, n - 1, alpha) - power, 1e-9, 60.0,
                         xtol=1e-14, rtol=1e-14)
    assert abs(nc / math.sqrt(n) - d) < 1e-5 * d, (n, nc / math.sqrt(n), d)
    return {"sd": sd, "n": n, "alpha": alpha, "power": power,
            "mde": float(nc / math.sqrt(n) * sd), "statsmodels_effect": float(d)}


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
        "statsmodels": statsmodels.__version__,
        "paired": [paired(c, b) for c, b in PAIRED],
        "holm": [holm(ps) for ps in HOLM],
        "mde": [mde(*case) for case in MDE],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
