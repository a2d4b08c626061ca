"""The summary at the top of the leaderboard, written from the numbers (never by hand).

Per table (dataset and protocol), ranked by the table's main metric (kNN@10 where recorded):

* the best trained method overall and on the few-shot classes, and whether its lead over the
  runner-up is beyond the noise -- the paired t-test of :func:`bench.report.tables.paired_difference`
  over matched (seed, split) repeats, p < 0.05 and a positive difference;
* ``cosine_tau`` against ``constant`` overall and on the few-shot classes: better / worse beyond the
  noise, or no difference beyond the noise; and a plain sentence on whether these runs support the
  paper's claim (Kukleva et al.: the cosine schedule helps the tail), which needs a positive,
  significant few-shot difference;
* ``<objective>+cosine_tau`` against ``<objective>`` wherever both ran (e.g. ``sdclr+cosine_tau``
  against ``sdclr``: the paper combines TS with SDCLR), overall and on the few-shot classes;
* whether every trained method beat every floor (``floor:*`` records) beyond the noise, naming those
  that did not.

Only records of kind ``run`` are ranked; ``floor`` records are the floors. A table of external encoders
(``bench evaluate``, bench/external.py) gets its own bullets instead: each encoder's main metric overall
and on the few-shot classes, and whether each beat every floor beyond the noise. Then the cost, from the
latest ``bench throughput`` record of each dataset and hardware (interleaved, so its ratios are the
controlled comparison; the runs' own throughput is not): each method's images/s over ``constant``'s,
the median over repeats with its 95 % interval, grouped by :func:`bench.cost_category`
(within 2 % of ``constant``, slower, faster, not resolved), the A/A control that shows the
measurement's noise, a plain sentence on the paper's "no added cost" claim for ``cosine_tau``, and
the suite's loop against the bare one and the batched augmentation against lightly's per-image path.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.keys import BASELINE, CONTROL, EXTERNAL_KIND, cost_category, cost_verdict
from bench.report.tables import (
    ACCURACY_KINDS,
    METRIC_LABELS,
    main_metric,
    method_order,
    paired_difference,
    protocol_title,
    records_frame,
    repeat_means,
)
from bench.report.throughput import benchmark_records, latest_per_hardware, ratio_text, reference_lines

SCHEDULE = "cosine_tau"  # the method whose claim the summary checks against BASELINE
CLAIM = "the cosine schedule of tau helps the tail (Kukleva et al., ICLR 2023)"
COST_CLAIM = "the cosine schedule adds no compute cost (Kukleva et al., ICLR 2023)"


def _numbers(result: dict[str, Any]) -> str:
    if result["mean"] is None:
        return "no matched repeats"
    if result["p"] is None:
        return f"{result['mean']:+.1f} pp, n {result['n']}, too few repeats for a test"
    return f"{result['mean']:+.1f} pp, p {result['p']:.2g}, n {result['n']}"


def verdict(result: dict[str, Any]) -> str:
    """better / worse beyond the noise, no difference beyond the noise, or untestable."""
    if result["p"] is None:
        return "not testable"
    if result["significant"] and result["mean"] > 0:
        return "better beyond the noise"
    if result["significant"] and result["mean"] < 0:
        return "worse beyond the noise"
    return "no different beyond the noise"


def _trained(frame: pd.DataFrame, kind: str = "run") -> list[str]:
    return method_order(sorted(frame.loc[frame["kind"] == kind, "method"].unique()))


def _floors(frame: pd.DataFrame) -> list[str]:
    return method_order(sorted(frame.loc[frame["kind"] == "floor", "method"].unique()))


def best_sentence(frame: pd.DataFrame, column: str, label: str) -> str:
    """Who leads on ``column`` (mean over repeats), and whether the lead over the runner-up is real."""
    means = {m: repeat_means(frame, m, column) for m in _trained(frame)}
    ranked = sorted((m for m in means if not means[m].empty), key=lambda m: -means[m].mean())
    if not ranked:
        return f"{label}: no trained method has this metric."
    best = ranked[0]
    head = f"{label}: **{best}** ({means[best].mean():.1f})"
    if len(ranked) == 1:
        return f"{head}, the only trained method."
    runner = ranked[1]
    result = paired_difference(means[best], means[runner])
    if result["p"] is not None and result["significant"] and result["mean"] > 0:
        return f"{head}, ahead of {runner} ({means[runner].mean():.1f}) beyond the noise ({_numbers(result)})."
    return f"{head}, within the noise of the runner-up {runner} ({means[runner].mean():.1f}; {_numbers(result)})."


def schedule_sentence(frame: pd.DataFrame, metric: str) -> str:
    """``cosine_tau`` - ``constant`` overall and on the few-shot classes, and what that says of the claim."""
    methods = set(frame["method"])
    if SCHEDULE not in methods or BASELINE not in methods:
        return f"{SCHEDULE} vs {BASELINE}: not both in this table, so the claim that {CLAIM} is not tested here."
    label = METRIC_LABELS[metric]
    overall = paired_difference(
        repeat_means(frame, SCHEDULE, f"{metric}/overall"), repeat_means(frame, BASELINE, f"{metric}/overall")
    )
    text = f"{SCHEDULE} vs {BASELINE} on {label}: overall {verdict(overall)} ({_numbers(overall)})"
    if f"{metric}/few" not in frame:
        return text + f"; no few-shot group recorded, so the claim that {CLAIM} is not tested here."
    few = paired_difference(repeat_means(frame, SCHEDULE, f"{metric}/few"), repeat_means(frame, BASELINE, f"{metric}/few"))
    text += f"; few-shot classes {verdict(few)} ({_numbers(few)}). "
    if few["p"] is not None and few["significant"] and few["mean"] > 0:
        return text + f"These runs support the claim that {CLAIM}."
    return text + f"**These runs do not support the claim that {CLAIM}**: on the few-shot classes {SCHEDULE} is {verdict(few)}."


def combination_sentences(frame: pd.DataFrame, metric: str) -> list[str]:
    """``<objective>+cosine_tau`` against ``<objective>`` (the paper also combines TS with SDCLR), for
    every such pair in the table: overall and few-shot, beyond the noise or not."""
    label = METRIC_LABELS[metric]
    methods = set(_trained(frame))
    sentences = []
    for combined in _trained(frame):
        objective, _, strategy = combined.partition("+")
        if strategy != SCHEDULE or objective not in methods:
            continue
        parts = []
        for group in ("overall", "few"):
            column = f"{metric}/{group}"
            if column not in frame:
                continue
            result = paired_difference(repeat_means(frame, combined, column), repeat_means(frame, objective, column))
            parts.append(f"{'overall' if group == 'overall' else 'few-shot classes'} {verdict(result)} ({_numbers(result)})")
        sentences.append(f"{combined} vs {objective} on {label}: " + "; ".join(parts) + ".")
    return sentences


def floor_sentence(frame: pd.DataFrame, metric: str, kind: str = "run") -> str:
    """Whether every method of ``kind`` (trained runs, or external encoders) is above every floor on
    ``metric`` overall, beyond the noise."""
    floors, trained = _floors(frame), _trained(frame, kind)
    label = f"{METRIC_LABELS[metric]} overall"
    if not floors:
        return f"Floors: no floor records in this table, so nothing says whether the methods learned anything ({label})."
    misses = []
    for method in trained:
        for floor in floors:
            result = paired_difference(
                repeat_means(frame, method, f"{metric}/overall"), repeat_means(frame, floor, f"{metric}/overall")
            )
            if not (result["p"] is not None and result["significant"] and result["mean"] > 0):
                where = "below" if result["significant"] and result["mean"] < 0 else "not above"
                misses.append(f"{method} {where} {floor} ({_numbers(result)})")
    who = "external encoder" if kind == EXTERNAL_KIND else "method"
    if not misses:
        return f"Floors: every {who} beat every floor ({', '.join(floors)}) beyond the noise on {label}."
    return f"Floors: **not every {who} beat the floors** on {label} beyond the noise: " + "; ".join(misses) + "."


def external_sentences(frame: pd.DataFrame, metric: str) -> list[str]:
    """A table of external encoders: each one's mean on ``metric`` overall and few-shot; no ranking
    against the suite's methods, which are in other tables (trained under the suite's recipe)."""
    label = METRIC_LABELS[metric]
    sentences = []
    for method in _trained(frame, EXTERNAL_KIND):
        parts = [
            f"{group} {repeat_means(frame, method, f'{metric}/{group}').mean():.1f}"
            for group in ("overall", "few")
            if f"{metric}/{group}" in frame
        ]
        n = len(repeat_means(frame, method, f"{metric}/overall"))
        sentences.append(
            f"External encoder {method} on {label}: {', '.join(parts)} (n {n}; not trained by this suite, "
            "so not ranked against its methods)."
        )
    return sentences


def _ratio(entry: dict[str, Any]) -> str:
    return ratio_text(entry["ratio_to_constant"])


def cost_lines(record: dict[str, Any]) -> list[str]:
    """The summary's bullets for one ``bench throughput`` record."""
    variants = record["throughput"]["variants"]
    methods = {
        label: entry
        for label, entry in variants.items()
        if entry.get("data_path") == "device" and entry.get("ratio_to_constant") and label != BASELINE
    }
    lines = []
    control = methods.pop(CONTROL, None)
    if control:
        lines.append(
            f"A/A control ({BASELINE} built and timed twice): {_ratio(control)}: the measurement's own "
            "noise, against which every ratio below is read."
        )
    schedule = methods.pop(SCHEDULE, None)
    if schedule:
        category = cost_category(schedule["ratio_to_constant"]["per_repeat"])
        claim = {
            "within": f"these measurements support the claim that {COST_CLAIM}, to within 2 %",
            "slower": f"**these measurements do not support the claim that {COST_CLAIM}**",
            "faster": f"{SCHEDULE} is even faster than {BASELINE} here",
        }.get(category, f"this measurement does not decide the claim that {COST_CLAIM} (more repeats needed)")
        lines.append(f"{SCHEDULE}: {_ratio(schedule)}, {cost_verdict(schedule['ratio_to_constant']['per_repeat'])}: {claim}.")
    groups: dict[str, list[str]] = {}
    for label in sorted(methods):
        entry = methods[label]
        groups.setdefault(cost_category(entry["ratio_to_constant"]["per_repeat"]), []).append(f"{label} {_ratio(entry)}")
    headings = {
        "within": f"Within 2 % of {BASELINE}",
        "slower": f"Slower than {BASELINE} beyond 2 %",
        "faster": f"Faster than {BASELINE} beyond 2 %",
        "unresolved": "Not resolved to 2 %",
        "untestable": "Too few repeats for an interval",
    }
    lines += [f"{headings[kind]}: {', '.join(groups[kind])}." for kind in headings if kind in groups]
    references = reference_lines(record["throughput"], ("suite_over_bare", "fast_over_per_image"))
    if references:
        lines.append("Reference paths: " + "; ".join(references) + ".")
    return lines


def cost_markdown(records: list[dict[str, Any]]) -> list[str]:
    """The cost part of the summary: per dataset and hardware, the latest ``bench throughput`` record."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in benchmark_records(records):
        by_dataset.setdefault(record["dataset"], []).append(record)
    lines = []
    for dataset, group in sorted(by_dataset.items()):
        for hardware, record in latest_per_hardware(group).items():
            config = record["config"]
            interleaving = "step by step" if config.get("interleaving") == "step" else f"in blocks of {config['steps']} steps"
            lines.append(
                f"**Cost: `bench throughput` on {dataset}, {hardware}** ({record.get('finished_at', '?')[:10]}; "
                f"{config['repeats']} repeats x {config['steps']} steps, interleaved {interleaving}; images/s "
                f"over {BASELINE}'s, median over repeats [95 % interval])\n"
            )
            lines += [f"- {line}" for line in cost_lines(record)]
            lines.append("")
    return lines


def summary_markdown(records: list[dict[str, Any]]) -> str:
    """The ``## Summary`` section: one bullet list per table, in the leaderboard's table order."""
    frame = records_frame(records)
    if frame.empty:
        return ""
    frame = frame[frame["kind"].isin(ACCURACY_KINDS)]
    lines = [
        "\n## Summary\n",
        'Written by the generator from the records (main metric of each table; "beyond the noise": '
        "paired t-test over matched (seed, split) repeats, p < 0.05).\n",
    ]
    for protocol_id in sorted(frame["protocol"].unique()):
        part = frame[frame["protocol"] == protocol_id]
        metric = main_metric(part)
        lines.append(f"**{protocol_title(json.loads(protocol_id))}**\n")
        if metric is None:
            lines.append("- no accuracy recorded.\n")
            continue
        if (part["kind"] == EXTERNAL_KIND).any() and not (part["kind"] == "run").any():
            lines += [f"- {sentence}" for sentence in external_sentences(part, metric)]
            lines.append(f"- {floor_sentence(part, metric, EXTERNAL_KIND)}\n")
            continue
        label = METRIC_LABELS[metric]
        lines.append(f"- {best_sentence(part, f'{metric}/overall', f'Best on {label} overall')}")
        if f"{metric}/few" in part:
            lines.append(f"- {best_sentence(part, f'{metric}/few', f'Best on {label} few-shot classes')}")
        lines.append(f"- {schedule_sentence(part, metric)}")
        lines += [f"- {sentence}" for sentence in combination_sentences(part, metric)]
        lines.append(f"- {floor_sentence(part, metric)}\n")
    lines += cost_markdown(records)
    return "\n".join(lines)
