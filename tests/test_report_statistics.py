"""The report's statistics and its reading of records: Holm against a hand computation, the minimum
detectable difference against its definition, the balancedness std, one hardware label per machine, and
the report on records that carry the new fields (per-seed class-to-rank assignments, constant[tau=...] rows)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report import render_report
from bench.report.analysis import analyse
from bench.report.figures import per_class_data
from bench.report.machines import superseded_coarse_removed, with_canonical_hardware
from bench.report.statistics import balancedness, holm, minimum_detectable_difference
from bench.report.tables import records_frame


def test_holm_equals_a_hand_computation_on_a_fixed_example():
    # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> 0.06 (never below the one
    # before it: step-down). None (no test) is outside the family, so m = 4. What statsmodels'
    # multipletests(p, method="holm")[1] returns for [0.01, 0.04, 0.03, 0.005].
    assert holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx([0.03, 0.06, 0.06, 0.02, None])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, and monotone
    assert holm([]) == [] and holm([None]) == [None]


def test_holm_matches_statsmodels_where_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = list(np.random.default_rng(1).uniform(0, 0.2, size=12))
    assert holm(p) == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


@pytest.mark.parametrize("n, sd", [(3, 1.0), (5, 1.7), (10, 0.4)])
def test_minimum_detectable_difference_has_the_stated_power(n, sd):
    delta = minimum_detectable_difference(sd, n)
    # Its definition: a two-sided paired t-test at alpha 0.05 rejects with probability 0.8 at that true difference.
    critical = stats.t.ppf(0.975, n - 1)
    noncentrality = delta * math.sqrt(n) / sd
    power = stats.nct.sf(critical, n - 1, noncentrality) + stats.nct.cdf(-critical, n - 1, noncentrality)
    assert power == pytest.approx(0.8, abs=1e-6)
    # Above the normal-theory value (z 1.96 + z 0.84) * sd / sqrt(n): the t distribution's heavier tails at small n.
    assert delta > (1.959964 + 0.841621) * sd / math.sqrt(n)
    assert minimum_detectable_difference(sd, 2) is None and minimum_detectable_difference(0.0, n) is None


def test_balancedness_is_the_population_std_of_the_three_groups():
    assert balancedness(90.0, 60.0, 30.0) == pytest.approx(math.sqrt(600.0))  # deviations 30, 0, -30
    assert balancedness(70.0, 70.0, 70.0) == 0.0


def _env(label: str, capability: str | None = None, count: int = 2, threads: int = 2) -> dict:
    return {
        "hardware": label,
        "device": "cpu",
        "cpu": "AMD EPYC",
        "cpu_count": count,
        "gpu": None,
        "torch_threads": threads,
        **({"cpu_capability": capability} if capability else {}),
    }


def test_one_label_per_machine_from_the_stored_cpu_facts():
    old = {"environment": _env("cpu: AMD EPYC x2 threads"), "finished_at": "2026-11-28T00:00:00+00:00"}
    new = {"environment": _env("cpu: AMD EPYC (family 23, AVX2) x2 threads", "AVX2"), "finished_at": "2026-12-04T00:00:00+00:00"}
    other = {"environment": _env("cpu: AMD EPYC x4 threads", count=4), "finished_at": "2026-11-01T00:00:00+00:00"}
    bare = {"environment": {"hardware": "cpu: mystery"}, "finished_at": "2026-12-05T00:00:00+00:00"}
    migrated = with_canonical_hardware([old, new, other, bare])
    assert [r["environment"]["hardware"] for r in migrated] == [
        "cpu: AMD EPYC (family 23, AVX2) x2 threads",
        "cpu: AMD EPYC (family 23, AVX2) x2 threads",
        "cpu: AMD EPYC x4 threads",
        "cpu: mystery",  # another machine; a record without facts keeps its label
    ]
    assert migrated[0]["environment"]["hardware_recorded"] == "cpu: AMD EPYC x2 threads"
    assert old["environment"]["hardware"] == "cpu: AMD EPYC x2 threads"  # the record itself is not edited


def test_detailed_labels_are_kept_and_a_coarse_one_that_could_be_two_machines_is_not_guessed():
    old = {"environment": _env("cpu: AMD EPYC x2 threads"), "finished_at": "2026-11-28T00:00:00+00:00"}
    f23 = {"environment": _env("cpu: AMD EPYC (family 23, AVX2) x2 threads", "AVX2"), "finished_at": "2026-12-04T00:00:00+00:00"}
    f25 = {
        "environment": _env("cpu: AMD EPYC (family 25, AVX512) x2 threads", "AVX512"),
        "finished_at": "2026-12-05T00:00:00+00:00",
    }
    one = {
        "environment": _env("cpu: AMD EPYC (family 25, AVX512) x1 threads", "AVX512", threads=1),
        "finished_at": "2026-12-06T00:00:00+00:00",
    }
    migrated = with_canonical_hardware([old, f23, f25, one])
    # A newer 1-thread run never relabels a 2-thread measurement, nor a family-25 VM a family-23 one.
    assert [r["environment"]["hardware"] for r in migrated] == [
        "cpu: AMD EPYC x2 threads",
        "cpu: AMD EPYC (family 23, AVX2) x2 threads",
        "cpu: AMD EPYC (family 25, AVX512) x2 threads",
        "cpu: AMD EPYC (family 25, AVX512) x1 threads",
    ]
    # The throughput page leaves out the unplaced older measurement, not the newer coarse one of a 4-core VM.
    newer_elsewhere = {"environment": _env("cpu: AMD EPYC x4 threads", count=4), "finished_at": "2026-11-01T00:00:00+00:00"}
    assert superseded_coarse_removed(migrated + [newer_elsewhere]) == [f23, f25, one, newer_elsewhere]


# --- records with the new fields: per-seed class-to-rank assignment, constant[tau=...] rows ---------------

COUNTS = [120, 60, 30, 15, 8, 4]


def _record(method: str, seed: int, overall: float, few: float, kind: str = "run") -> dict:
    """A small record as i15's datasets write it: class_counts permuted per seed (which classes are rare
    varies over repeats), a dataset version, and constant[tau=...] labels for the tuned baseline."""
    order = np.random.default_rng(seed).permutation(len(COUNTS))
    counts = [COUNTS[i] for i in order]
    per_class = [overall + (5 if c >= 60 else 0 if c >= 15 else few - overall) for c in counts]
    return {
        "schema_version": 3,
        "kind": kind,
        "status": "ok",
        "method": method,
        "dataset": "toy_lt",
        "seed": seed,
        "split": None,
        "config": {"method": method.split("[")[0]} if kind == "run" else {},
        "protocol": {"dataset": "toy_lt", "backbone": "small_cnn", "epochs": 20, "batch_size": 32, "evaluation": "knn10"},
        "data": {
            "class_counts": counts,
            "class_to_rank_version": 2,
            "construction": "ldam(n_max=120, rho=30, seed=%d)" % seed,
            "image_shape": [28, 28, 1],
        },
        "metrics": {"knn10": {"overall": overall, "many": overall + 5, "medium": overall, "few": few, "per_class": per_class}},
        "history": [{"epoch": 1, "loss": 1.0, "tau": 0.2}],
        "environment": {"hardware": "cpu: test", "git_commit": "c" * 40},
        "method_info": {
            "name": method.split("[")[0],
            "description": f"{method.split('[')[0]} description",
            **({"temperature": f"constant tau = {method[13:-1]}"} if "[tau=" in method else {}),
        },
    }


@pytest.fixture
def tuned() -> list[dict]:
    return tuned_records()


def tuned_records() -> list[dict]:
    """toy_lt, 5 seeds: constant[tau=0.1] the best constant; cosine_tau above constant, below the best constant."""
    rows = {
        "constant": (80.0, 50.0),
        "constant[tau=0.1]": (83.0, 56.0),
        "constant[tau=0.5]": (78.0, 45.0),
        "cosine_tau": (82.0, 55.0),
        "learnable_tau": (83.2, 56.3),
        "floor:raw_pixels": (60.0, 30.0),
        "floor:random_init": (55.0, 25.0),
    }
    jitter = [0.0, 0.3, -0.2, 0.1, -0.15]
    return [
        _record(
            m,
            seed,
            o + 2 * seed + jitter[(seed + i) % 5],
            f + 2 * seed + jitter[(seed + 2 * i) % 5],
            "floor" if m.startswith("floor:") else "run",
        )
        for i, (m, (o, f)) in enumerate(rows.items())
        for seed in range(5)
    ]


def test_the_best_constant_is_the_second_reference_of_every_strategy(tuned):
    frame = records_frame(tuned)
    analysis = analyse(frame)
    assert analysis.strategies == ["cosine_tau", "learnable_tau"]
    assert analysis.constants == ["constant", "constant[tau=0.1]", "constant[tau=0.5]"]
    assert analysis.best_constant == "constant[tau=0.1]"
    # Family: 5 rows vs constant and 2 strategies vs constant[tau=0.1], overall and few-shot each.
    assert len(analysis.comparisons) == 2 * (4 + 2)
    markdown = render_report(tuned)
    summary = markdown.split("## Summary\n")[1].split("\n## ")[0]
    line = next(x for x in summary.splitlines() if x.startswith("- **toy_lt"))
    assert line.startswith("- **toy_lt (ldam rho 30), small_cnn, 20 epochs, 28x28 px**, kNN@10, n 5")
    assert "cosine_tau vs constant: overall better" in line and "; vs constant[tau=0.1] (best constant): overall worse" in line
    assert "learnable_tau vs constant: overall better (+3.2 pp" in line
    # Better than constant 0.2 but not than the best constant: the claim is not supported.
    assert (
        "These runs do not support the claim that the cosine schedule of tau helps the tail (Kukleva et al., ICLR 2023) at "
        "this setting (few-shot: vs constant better beyond the noise, vs constant[tau=0.1] worse beyond the noise)"
    ) in line
    assert "| constant[tau=0.5] " in markdown and "| constant[tau=0.1] " in markdown
    # The methods list says what a bracketed row ran, not only its class's default text.
    assert "- `constant[tau=0.1]`: constant description; this row overrides it: constant tau = 0.1" in markdown
    assert "- `constant`: constant description\n" in markdown


def test_when_constant_is_the_best_constant_the_summary_says_so(tuned):
    # Without the tuned tau 0.1 rows, constant (tau 0.2) is the best of the table's two constant taus:
    # the comparison with the best constant is the one with constant, and the line must say it.
    records = [r for r in tuned if r["method"] != "constant[tau=0.1]"]
    analysis = analyse(records_frame(records))
    assert analysis.best_constant == "constant" and len(analysis.constants) == 2
    line = next(x for x in render_report(records).splitlines() if x.startswith("- **toy_lt"))
    assert "cosine_tau vs constant (also the best of the table's 2 constant taus): overall better" in line
    assert "(best constant)" not in line


def test_the_floor_gate_is_the_larger_p_of_each_method_holm_adjusted_across_methods(tuned):
    analysis = analyse(records_frame(tuned))
    floors = ["floor:random_init", "floor:raw_pixels"]
    assert analysis.floors == floors and list(analysis.gate) == analysis.methods
    # Intersection-union: above both floors at the larger of the two p-values; Holm over the 5 methods.
    larger = [max(analysis.floor_tests[(m, f)]["p"] for f in floors) for m in analysis.methods]
    assert [analysis.gate[m]["p"] for m in analysis.methods] == larger
    assert [analysis.gate[m]["p_holm"] for m in analysis.methods] == pytest.approx(holm(larger))
    assert analysis.informative and all(analysis.beats_floors(m) for m in analysis.methods)


def test_per_class_accuracy_is_averaged_by_class_size_when_the_assignment_varies_per_seed(tuned):
    data = per_class_data([r for r in tuned if r["method"] == "constant"], "knn10")["methods"]["constant"]
    assert data["count"] == sorted(COUNTS)
    # The rarest classes have the few-shot accuracy whichever class index they were given in each seed.
    few = pd.Series([r["metrics"]["knn10"]["few"] for r in tuned if r["method"] == "constant"])
    assert data["accuracy"][0] == pytest.approx(few.mean()) and data["std"][0] == pytest.approx(few.std(ddof=1))


def test_a_table_without_constant_compares_strategies_with_the_constant_it_has_or_says_it_has_none(tuned):
    # A grid of the other methods alone (the CIFAR CPU table's second batch, in its own results directory)
    # has no constant row: its report must still be written (it raised KeyError 'constant').
    without_baseline = [r for r in tuned if r["method"] != "constant"]
    line = next(x for x in render_report(without_baseline).splitlines() if x.startswith("- **toy_lt"))
    assert "cosine_tau vs constant[tau=0.1] (best constant): overall worse (" in line
    assert "vs constant:" not in line and "Other methods" not in line
    without_constants = [r for r in tuned if not r["method"].startswith("constant")]
    line = next(x for x in render_report(without_constants).splitlines() if x.startswith("- **toy_lt"))
    for strategy in ("cosine_tau", "learnable_tau"):
        assert f"{strategy} not compared (no constant tau in this table)" in line
    assert "These runs" not in line  # no claim read without a constant


def test_a_method_with_one_repeat_far_above_the_floors_is_not_read_not_called_below_them_and_its_numbers_given(tuned):
    # One repeat gives no paired test: the method's mean is above both floors, yet nothing says it is
    # beyond the noise. The summary must not read its comparison, and must not call it below a floor.
    records = [r for r in tuned if r["method"] != "learnable_tau" or r["seed"] == 0]
    records.append(_record("dcl", 0, 90.0, 60.0))
    analysis = analyse(records_frame(records))
    assert not analysis.beats_floors("learnable_tau") and not analysis.beats_floors("dcl")
    line = next(x for x in render_report(records).splitlines() if x.startswith("- **toy_lt"))

    # Not read, yet stated whatever it shows: the paired difference to constant without a verdict.
    def numbers(method: str) -> str:
        result = {g: analysis.comparisons[(method, "constant", g)] for g in ("overall", "few")}
        assert all(r["n"] == 1 and r["p"] is None for r in result.values())
        return f"overall ({result['overall']['mean']:+.1f} pp, n 1, no test), few ({result['few']['mean']:+.1f} pp, n 1, no test)"

    assert (
        "learnable_tau vs constant: not read (learnable_tau not above both floors beyond the noise): "
        + numbers("learnable_tau")
        + "; vs constant[tau=0.1] (best constant): not read"
    ) in line
    assert f"Other methods vs constant: not read (not above both floors beyond the noise): dcl {numbers('dcl')}." in line
    assert "below a floor" not in line
