"""The report's statistics, on per-repeat accuracies (numpy, pandas, scipy; no torch).

- :func:`paired_difference`: the mean difference of two methods over the (seed, split) repeats both
  have, its 95 % t interval and the paired t-test (the p of ``scipy.stats.ttest_rel``). Pairing removes the
  spread that repeats share (the split, the initialisation); a t-test rather than a bootstrap because
  n is 3..5, where a bootstrap has a handful of distinct resamples and too narrow intervals.
- :func:`holm`: Holm's step-down adjustment of a family of p-values (Holm, Scand. J. Statist. 1979),
  the same numbers as ``statsmodels.stats.multitest.multipletests(method="holm")``: many paired tests
  on one table find a few "significant" differences by chance unless the family is corrected.
- :func:`minimum_detectable_difference`: the smallest true paired difference that a two-sided paired
  t-test at level ``alpha`` detects with probability ``power`` at ``n`` pairs, from the noncentral t
  distribution (``scipy.stats.nct``): what "no difference beyond the noise" can and cannot rule out.
- :func:`balancedness`: the std over the many / medium / few accuracies of one run, the "Std" column
  of SDCLR (Jiang et al., ICML 2021, Tab. 1) and BCL (Zhou et al., ICML 2022, Tab. 1): lower is more
  balanced across the tail.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

SIGNIFICANCE_LEVEL = 0.05
POWER = 0.8


def paired_difference(method_values: pd.Series, baseline_values: pd.Series) -> dict[str, Any]:
    """Mean difference (method - baseline) over the repeats both have, with a paired t-test.

    Both series are indexed by repeat ((seed, split) pairs). Returns n, the mean difference, the std of
    the paired differences, the 95 % t interval, the p-value of ``scipy.stats.ttest_rel`` (computed
    from the t distribution) and whether p < 0.05 (unadjusted; :func:`holm` adjusts a family). Fewer
    than 2 pairs give no test (p None); identical differences give p 1.0 for a zero mean, else 0.0.
    """
    joined = pd.concat([method_values.rename("m"), baseline_values.rename("b")], axis=1, join="inner").dropna()
    n = len(joined)
    empty = {"n": n, "mean": None, "sd": None, "low": None, "high": None, "p": None, "significant": False}
    if n == 0:
        return empty
    diff = (joined["m"] - joined["b"]).to_numpy(dtype=float)
    mean = float(diff.mean())
    if n < 2:
        return empty | {"mean": mean}
    sd = float(diff.std(ddof=1))
    if sd <= 1e-9 * max(1.0, abs(mean)):  # equal differences up to float rounding: no spread (scipy would warn)
        sd = 0.0
        p = 1.0 if abs(mean) <= 1e-9 else 0.0
        return {"n": n, "mean": mean, "sd": sd, "low": mean, "high": mean, "p": p, "significant": p < SIGNIFICANCE_LEVEL}
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    # ttest_rel's statistic and two-sided p, from the t distribution directly: the same numbers
    # (tests/test_leaderboard.py checks them against ttest_rel), without the ~2 ms a call that
    # scipy's array-API dispatch costs, which made the report's hundreds of tests its slowest part.
    p = float(2.0 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "low": mean - half,
        "high": mean + half,
        "p": p,
        "significant": p < SIGNIFICANCE_LEVEL,
    }


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-adjusted p-values, in the input order; ``None`` (no test) stays ``None`` and is not counted
    in the family. Sorted ascending, the i-th of m is multiplied by (m - i + 1), capped at 1 and made
    non-decreasing (step-down), as ``multipletests(method="holm")`` returns them."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def minimum_detectable_difference(sd: float, n: int, alpha: float = SIGNIFICANCE_LEVEL, power: float = POWER) -> Optional[float]:
    """The smallest |mean paired difference| that a two-sided paired t-test at level ``alpha`` detects
    with probability ``power``, when the paired differences have std ``sd`` over ``n`` pairs (None for
    n < 3, where scipy's noncentral t is not reliable at the large noncentrality needed, or no spread).
    Exact: solves for the noncentrality delta * sqrt(n) / sd of ``scipy.stats.nct``."""
    if n < 3 or not sd or not math.isfinite(sd):
        return None
    df = n - 1
    critical = float(stats.t.ppf(1 - alpha / 2, df))

    def shortfall(delta: float) -> float:
        noncentrality = delta * math.sqrt(n) / sd
        detected = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
        return float(detected) - power

    upper = sd
    while shortfall(upper) < 0:  # widen until the power is reached (n = 2 needs about 10 sd)
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-9))


def balancedness(many: float, medium: float, few: float) -> float:
    """The std (population, ddof 0, as ``numpy.std``) of one run's many / medium / few accuracies."""
    return float(np.std([many, medium, few]))
