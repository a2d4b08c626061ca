"""Names and statistics that the layers writing records share with the report that reads them.

Everything here is plain Python, numpy and scipy, never torch: the report (:mod:`bench.report`)
imports this module and the records only, so rendering the leaderboard needs no training stack;
the measuring side (:mod:`bench.throughput`, :mod:`bench.gpu_check`, :mod:`bench.external`,
:mod:`bench.evaluation`) imports the same names, so a label written into a record and the label the
report looks for are one definition.

The ratio statistics: a ratio to ``constant`` is taken within each repeat of ``bench throughput``
and summarised by its median over repeats, with a distribution-free 95 % confidence interval of
that median (order statistics, ``scipy.stats.quantile_test``: no assumption on the shape of the
noise, which on a shared machine is skewed); "no added cost" means an interval within 1 +- 2 %.
"""

from __future__ import annotations

import functools
import json
import statistics
from typing import Any, Optional

import numpy as np
from scipy import stats

#: The reference method: every difference and every ratio is taken against it.
BASELINE = "constant"
#: The class groups of a long-tail training set (thirds by training count), in report order.
GROUPS = ("many", "medium", "few")
#: How the row labels of floors (raw pixels, random weights) start.
FLOOR_PREFIX = "floor:"
#: The record kind of ``bench evaluate`` (bench/external.py), and how its row labels start:
#: ``external:LABEL (sha256 0123456789ab)``.
EXTERNAL_KIND = "external"
EXTERNAL_PREFIX = "external:"

#: ``bench throughput``'s reference loop: nothing of the suite (lightly's head and loss, plain SGD).
BARE = "bare"
#: ``constant`` built and timed a second time: its ratio to ``constant`` is the measurement's noise.
CONTROL = f"{BASELINE} (A/A)"
#: The label suffix of a variant fed by lightly's per-image transform in a DataLoader.
PER_IMAGE_SUFFIX = "@per-image"
#: ``bench gpu-check``'s network-only variant: the bare step on one fixed batch, no data work at all.
LIMIT = "limit"
#: Confidence of the interval around a median ratio.
CONFIDENCE = 0.95
#: What "no added cost" tolerates: a ratio to ``constant`` whose interval lies within 1 +- 2 %.
COST_TOLERANCE = 0.02


def summarise(values: list[float]) -> dict[str, Any]:
    """Median, min and max of per-repeat values (and the values)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "per_repeat": values}


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> Optional[tuple[float, float]]:
    """A distribution-free confidence interval of the median of ``values``: the order statistics
    that ``scipy.stats.quantile_test`` gives (no assumption on the shape of the noise, which on a
    shared machine is skewed). None when there are too few values (fewer than 6 at 95 %)."""
    return _median_interval(tuple(values), confidence)


@functools.lru_cache(maxsize=4096)
def _median_interval(values: tuple[float, ...], confidence: float) -> Optional[tuple[float, float]]:
    # Cached: the report asks for the same record's intervals in its tables, summary and figures, and
    # one quantile_test costs about 2 ms, a third of `bench leaderboard --check` before the cache.
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    interval = stats.quantile_test(data, q=float(np.median(data)), p=0.5).confidence_interval(confidence)
    if not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        return None
    return float(interval.low), float(interval.high)


def cost_category(ratios: list[float], tolerance: float = COST_TOLERANCE) -> str:
    """Where the 95 % interval of the median ratio to ``constant`` lies against 1 +- ``tolerance``:
    ``within``, ``slower`` or ``faster`` (beyond the tolerance), ``unresolved`` (the interval crosses
    a bound) or ``untestable`` (too few repeats for an interval)."""
    interval = median_interval(ratios)
    if interval is None:
        return "untestable"
    low, high = interval
    if 1 - tolerance <= low and high <= 1 + tolerance:
        return "within"
    if high < 1 - tolerance:
        return "slower"
    if low > 1 + tolerance:
        return "faster"
    return "unresolved"


def cost_verdict(ratios: list[float], tolerance: float = COST_TOLERANCE) -> str:
    """:func:`cost_category` in words, with the size of the difference where it is beyond the tolerance."""
    median = statistics.median(ratios)
    percent = f"{100 * tolerance:g} %"
    return {
        "within": f"within {percent} of {BASELINE}",
        "slower": f"slower than {BASELINE} by {100 * (1 - median):.0f} %",
        "faster": f"faster than {BASELINE} by {100 * (median - 1):.0f} %",
        "unresolved": f"not resolved to {percent} by this measurement",
        "untestable": f"too few repeats for a {100 * CONFIDENCE:.0f} % interval",
    }[cost_category(ratios, tolerance)]


def hardware_of(record: dict[str, Any]) -> str:
    """The hardware a record ran on (``unknown`` when it does not say): speeds are compared only
    between records of one hardware."""
    return record.get("environment", {}).get("hardware", "unknown")


def protocol_id(record: dict[str, Any]) -> str:
    """The key that decides which leaderboard table a record belongs to: its protocol as sorted JSON
    (a record without a protocol, of a foreign kind, still gets a table of its own dataset)."""
    return json.dumps(record.get("protocol") or {"dataset": record.get("dataset", "unknown")}, sort_keys=True)
