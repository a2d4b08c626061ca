"""What one table can say: its comparisons with ``constant``, corrected for multiplicity, and whether
its methods learned anything (the floors' gate). The tables (:mod:`bench.report.tables`), the summary
(:mod:`bench.report.summary`) and the figures read the same :class:`TableAnalysis`.

Two families of paired tests per table, each Holm-corrected on its own (:func:`bench.report.statistics.holm`):

- the *comparison family*: every trained method against ``constant`` (tau 0.2) on the table's main
  metric overall and on the few-shot classes, and every temperature strategy against the best constant
  tau of the table (the ``constant[tau=...]`` row with the highest mean overall) where that is not
  ``constant`` itself;
- the *floor family*: one test per trained method, "above every floor (raw pixels, random weights)
  on the main metric overall". It is an intersection-union test (Berger, Technometrics 1982): the
  method's mean must be above each floor's, and its p-value is the largest of its paired tests against
  the floors, which needs no correction within the method; Holm then corrects across the methods. A
  table where no method beats the floors is not informative about the methods (self-supervised
  training learned nothing there), and a comparison is read only when both its sides beat the floors.

Temperature strategies are the methods whose ``role`` is ``temperature`` (methods/base.py, read with
ast by :func:`bench.report.recipes.method_roles`): cosine_tau, dystress, learnable_tau and any new
one; ``objective+strategy`` compositions are objectives, not strategies of SimCLR.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from bench.keys import BASELINE, EXTERNAL_KIND
from bench.report.frame import main_metric, method_order, repeat_means
from bench.report.recipes import method_roles, registered_name
from bench.report.statistics import SIGNIFICANCE_LEVEL, holm, minimum_detectable_difference, paired_difference

GROUP_COLUMNS = ("overall", "few")  # where the comparisons are read: all classes and the few-shot classes


@dataclass
class TableAnalysis:
    """The comparisons and the gate of one table (see the module docstring)."""

    metric: Optional[str]
    kind: str  # the kind of the rows under test: "run", or "external" for a table of external encoders
    methods: list[str]
    floors: list[str]
    strategies: list[str]
    constants: list[str]  # constant and its constant[tau=...] variants present, in table order
    best_constant: Optional[str]
    comparisons: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (method, reference, group)
    floor_tests: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (method, floor), unadjusted
    gate: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> above every floor: mean, p, p_holm
    mdd: Optional[dict[str, Any]] = None
    frame: Optional[pd.DataFrame] = None  # the table's rows, for what the summary reads beyond the comparisons

    def beats_floors(self, method: str) -> bool:
        """Above every floor beyond the noise (Holm over the floor family); True when there are no floors."""
        return not self.floors or _above(self.gate[method])

    @property
    def informative(self) -> bool:
        """Whether some method beat every floor: without floors, or with none above them, the table
        cannot say anything about the methods."""
        return bool(self.floors) and any(self.beats_floors(m) for m in self.methods)


def _above(result: dict[str, Any]) -> bool:
    return result["p_holm"] is not None and result["p_holm"] < SIGNIFICANCE_LEVEL and result["mean"] > 0


def verdict(result: dict[str, Any]) -> str:
    """better / worse beyond the noise (Holm-adjusted p < 0.05), no different beyond it, or not testable."""
    p = result.get("p_holm", result["p"])
    if p is None:
        return "not testable"
    if p < SIGNIFICANCE_LEVEL:
        return "better beyond the noise" if result["mean"] > 0 else "worse beyond the noise"
    return "no different beyond the noise"


def _adjust(results: dict[Any, dict[str, Any]]) -> None:
    keys = list(results)
    for key, adjusted in zip(keys, holm([results[k]["p"] for k in keys])):
        results[key]["p_holm"] = adjusted


def analyse(frame: pd.DataFrame) -> TableAnalysis:
    """The analysis of one table's frame (the accuracy kinds of one protocol)."""
    kind = "run" if (frame["kind"] == "run").any() else EXTERNAL_KIND
    methods = method_order(sorted(frame.loc[frame["kind"] == kind, "method"].unique()))
    floors = method_order(sorted(frame.loc[frame["kind"] == "floor", "method"].unique()))
    roles = method_roles()
    strategies = [m for m in methods if " (v" not in m and "[" not in m and roles.get(registered_name(m)) == "temperature"]
    constants = [m for m in methods if registered_name(m) == BASELINE and " (v" not in m]
    metric = main_metric(frame)
    analysis = TableAnalysis(metric, kind, methods, floors, strategies, constants, None, frame=frame)
    if metric is None:
        return analysis

    # Each (method, group) series feeds several tests (vs constant, vs the best constant, vs each floor):
    # computed once, as filtering and grouping the frame dominates the report's time.
    @functools.cache
    def means(method: str, group: str) -> pd.Series:
        return repeat_means(frame, method, f"{metric}/{group}")

    ranked = sorted(constants, key=lambda m: (-means(m, "overall").mean() if len(means(m, "overall")) else np.inf, m))
    analysis.best_constant = ranked[0] if ranked else None
    groups = [g for g in GROUP_COLUMNS if f"{metric}/{g}" in frame]
    pairs = [(m, BASELINE) for m in methods if m != BASELINE and BASELINE in methods]
    if analysis.best_constant not in (None, BASELINE):
        pairs += [(s, analysis.best_constant) for s in strategies]
    analysis.comparisons = {(m, ref, g): paired_difference(means(m, g), means(ref, g)) for m, ref in pairs for g in groups}
    _adjust(analysis.comparisons)
    analysis.floor_tests = {(m, f): paired_difference(means(m, "overall"), means(f, "overall")) for m in methods for f in floors}
    if floors:
        for m in methods:
            tests = [analysis.floor_tests[(m, f)] for f in floors]
            untestable = any(t["p"] is None for t in tests)
            analysis.gate[m] = {
                "mean": min(t["mean"] if t["mean"] is not None else -np.inf for t in tests),
                "p": None if untestable else max(t["p"] for t in tests),
            }
        _adjust(analysis.gate)
    spreads = [r["sd"] for (m, ref, g), r in analysis.comparisons.items() if ref == BASELINE and g == "overall" and r["sd"]]
    n = max((r["n"] for r in analysis.comparisons.values()), default=0)
    if spreads and n >= 2:
        sd = float(np.median(spreads))
        analysis.mdd = {"n": n, "sd": sd, "value": minimum_detectable_difference(sd, n)}
    return analysis
