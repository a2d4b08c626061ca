"""The summary at the top of the leaderboard, written from the numbers (never by hand), at most
:data:`MAX_LINES` lines: one line per table, then one on the cost.

Every line names its setting (dataset, construction, backbone, epochs, resolution:
:func:`bench.report.frame.setting`) and is gated by the floors (:mod:`bench.report.analysis`): a table
where no method beats both floors beyond the noise says it is not informative about the methods and
draws no conclusion about any paper's claim. Otherwise the line states, for every temperature strategy
of the table (cosine_tau, dystress, learnable_tau, any new one), its paired difference to ``constant``
(tau 0.2) and to the table's best constant tau (among ``constant`` and ``constant[tau=...]``, by the
mean overall; when that is ``constant`` itself the line says so), overall and on the few-shot classes,
with Holm-adjusted p-values -- whatever they show; a comparison whose sides do not both beat the floors
is not read (no verdict), and its numbers are still given. Then what these runs say of the TS paper's
claim (Kukleva et al., ICLR 2023: the cosine schedule helps the tail), which needs a positive few-shot difference beyond the
noise against ``constant`` and against the best constant. Every other method (SDCLR, BCL, MoCo, DCL, GH,
compositions) is stated against ``constant`` in one sentence: what differs beyond the noise with its
numbers, the rest by name, and those not read with their numbers.
"""

from __future__ import annotations

import json
from typing import Any

from bench.keys import BASELINE, EXTERNAL_KIND, protocol_id
from bench.records import successful
from bench.report.analysis import TableAnalysis, analyse, verdict
from bench.report.frame import ACCURACY_KINDS, METRIC_LABELS, records_frame, repeat_means, setting
from bench.report.throughput import benchmark_records, latest_per_hardware, ratio_text

MAX_LINES = 10
SCHEDULE = "cosine_tau"  # the method whose paper claim the summary reads
CLAIM = "the cosine schedule of tau helps the tail (Kukleva et al., ICLR 2023)"
# What a method that fails the floors' gate is called. Not "below a floor": a method with one repeat, or
# three close to the floors' spread, may have the higher mean and still no test that says it is above.
NOT_ABOVE_FLOORS = "not above both floors beyond the noise"


def _numbers(result: dict[str, Any]) -> str:
    if result["mean"] is None:
        return "no matched repeats"
    if result["p"] is None:
        return f"{result['mean']:+.1f} pp, n {result['n']}, no test"
    return f"{result['mean']:+.1f} pp, p {result['p_holm']:.2g}"


def _results(analysis: TableAnalysis, method: str, reference: str) -> dict[str, dict[str, Any]]:
    """The paired tests of ``method`` against ``reference`` the table has, overall and few-shot."""
    return {g: r for g in ("overall", "few") if (r := analysis.comparisons.get((method, reference, g)))}


def _unread_numbers(analysis: TableAnalysis, method: str, reference: str) -> str:
    """``overall (+0.1 pp, p 1), few (-0.3 pp, p 1)``: a comparison that is not read, without a verdict.
    A method may fail the floors' gate for want of power (three repeats: a paired t-test on 2 degrees of
    freedom, Holm over the table's methods) while far above both floors; its test against constant is
    still stated, whatever it shows, and the gate says why it draws no conclusion."""
    return ", ".join(f"{group} ({_numbers(result)})" for group, result in _results(analysis, method, reference).items())


def _comparison(analysis: TableAnalysis, method: str, reference: str) -> str:
    """``vs constant: overall no different beyond the noise (+0.3 pp, p 1), few ...``; or why it is not read."""
    name = reference if reference == BASELINE else f"{reference} (best constant)"
    if reference == BASELINE == analysis.best_constant and len(analysis.constants) > 1:
        # The comparison with the best constant tau is this one: say so, or a reader looks for it in vain.
        name = f"{BASELINE} (also the best of the table's {len(analysis.constants)} constant taus)"
    failing = [m for m in (method, reference) if not analysis.beats_floors(m)]
    if failing:
        numbers = _unread_numbers(analysis, method, reference)
        return f"vs {name}: not read ({' and '.join(failing)} {NOT_ABOVE_FLOORS})" + (f": {numbers}" if numbers else "")
    parts = [
        f"{group} {verdict(result).replace(' beyond the noise', '')} ({_numbers(result)})"
        for group, result in _results(analysis, method, reference).items()
    ]
    return f"vs {name}: " + ", ".join(parts)


def _claim(analysis: TableAnalysis) -> str:
    references = [BASELINE] + ([analysis.best_constant] if analysis.best_constant not in (None, BASELINE) else [])
    results = [analysis.comparisons.get((SCHEDULE, ref, "few")) for ref in references]
    if (
        SCHEDULE not in analysis.strategies
        or any(r is None for r in results)
        or not all(analysis.beats_floors(m) for m in (SCHEDULE, *references))
    ):
        return ""
    if all(verdict(r) == "better beyond the noise" for r in results):
        return f" These runs support the claim that {CLAIM} at this setting."
    read = ", ".join(f"vs {ref} {verdict(r)}" for ref, r in zip(references, results))
    mdd = analysis.mdd["value"] if analysis.mdd and analysis.mdd["value"] is not None else None
    unseen = (
        f"; a gain below the MDD ({mdd:.1f} pp) could go unseen"
        if mdd is not None and any(verdict(r) == "no different beyond the noise" for r in results)
        else ""
    )
    return f" These runs do not support the claim that {CLAIM} at this setting (few-shot: {read}{unseen})."


def _other_methods(analysis: TableAnalysis) -> str:
    """Every other method of the table against ``constant`` in one sentence: those different beyond the
    noise with their numbers, the rest named as no different, those not above both floors beyond the
    noise as not read, with their numbers (each method's paired test is in the table; this says what it
    shows, whatever it shows)."""
    others = [m for m in analysis.methods if m not in analysis.strategies and m not in analysis.constants and " (v" not in m]
    if BASELINE not in analysis.methods or not others:
        return ""
    unread = [m for m in others if not (analysis.beats_floors(m) and analysis.beats_floors(BASELINE))]
    different, same = [], []
    for method in (m for m in others if m not in unread):
        results = _results(analysis, method, BASELINE)
        beyond = [
            f"{g} {verdict(r).replace(' beyond the noise', '')} ({_numbers(r)})"
            for g, r in results.items()
            if verdict(r) != "no different beyond the noise"
        ]
        if beyond:
            different.append(f"{method} " + ", ".join(beyond))
        elif results:
            same.append(method)
    parts = different + ([f"no different overall or few: {', '.join(same)}"] if same else [])
    stated = [f"{m} {_unread_numbers(analysis, m, BASELINE)}".strip() for m in unread]
    parts += [f"not read ({NOT_ABOVE_FLOORS}): {'; '.join(stated)}"] if unread else []
    return f" Other methods vs {BASELINE}: " + "; ".join(parts) + "."


def table_line(protocol: dict[str, Any], records: list[dict[str, Any]], analysis: TableAnalysis, n: int) -> str:
    """The summary's line for one table."""
    head = f"**{setting(protocol, records)}**"
    if analysis.metric is None:
        return f"{head}: no accuracy recorded."
    label = METRIC_LABELS[analysis.metric]
    if analysis.kind == EXTERNAL_KIND:  # encoders trained elsewhere: their numbers, never ranked against the suite's
        parts = [f"External encoder {m}: overall {repeat_means_text(analysis, m)}" for m in analysis.methods]
        gate = "" if analysis.informative else " **Not informative about the encoders**: none beats both floors beyond the noise."
        return f"{head}, {label}: " + "; ".join(parts) + "." + gate
    if not analysis.informative:
        why = "no floor records" if not analysis.floors else f"no method beats both floors beyond the noise on {label} overall"
        return (
            f"{head}: **not informative about the methods** ({why}, n {n}); no conclusion about any method "
            "or paper's claim is drawn here."
        )
    sentences = []
    # constant (tau 0.2) and the best constant tau, those the table has: a grid of other methods alone
    # (e.g. a CPU table's second batch, reported from its own results directory) has neither.
    references = [ref for ref in dict.fromkeys((BASELINE, analysis.best_constant)) if ref in analysis.methods]
    for strategy in analysis.strategies:
        compared = "; ".join(_comparison(analysis, strategy, ref) for ref in references)
        sentences.append(f"{strategy} " + (compared or "not compared (no constant tau in this table)"))
    below = [m for m in analysis.methods if not analysis.beats_floors(m)]
    gate = f"{NOT_ABOVE_FLOORS}: {', '.join(below)}" if below else "every method beats both floors"
    body = ". ".join(sentences) if sentences else f"no temperature strategy besides {BASELINE} in this table"
    return f"{head}, {label}, n {n} ({gate}): {body}.{_other_methods(analysis)}{_claim(analysis)}"


def repeat_means_text(analysis: TableAnalysis, method: str) -> str:
    """``71.2, few-shot 40.1 (n 3)``: a row's mean on the main metric overall and few-shot."""
    frame = analysis.frame
    overall = repeat_means(frame, method, f"{analysis.metric}/overall")
    few = repeat_means(frame, method, f"{analysis.metric}/few")
    return f"{overall.mean():.1f}" + (f", few-shot {few.mean():.1f}" if len(few) else "") + f" (n {len(overall)})"


def cost_line(records: list[dict[str, Any]]) -> str:
    """One line: ``cosine_tau``'s images/s over ``constant``'s in the latest ``bench throughput`` record
    of each dataset and machine (the controlled, interleaved measurement; details on the throughput page)."""
    parts = []
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in benchmark_records(records):
        by_dataset.setdefault(record["dataset"], []).append(record)
    for dataset, group in sorted(by_dataset.items()):
        for hardware, record in latest_per_hardware(group).items():
            entry = record["throughput"]["variants"].get(SCHEDULE) or {}
            if entry.get("ratio_to_constant"):
                parts.append(f"{ratio_text(entry['ratio_to_constant'])} ({dataset}, {hardware})")
    if not parts:
        return ""
    return (
        f"Cost ([throughput.md](throughput.md)): {SCHEDULE}'s images/s over {BASELINE}'s, median [95 % interval]: "
        + "; ".join(parts)
        + "."
    )


def summary_markdown(records: list[dict[str, Any]]) -> str:
    """The ``## Summary`` section: one line per table (at most ``MAX_LINES - 1``), then the cost line."""
    frame = records_frame(records)
    lines = []
    if not frame.empty:
        frame = frame[frame["kind"].isin(ACCURACY_KINDS)]
        ok = successful(records)
        for pid in sorted(frame["protocol"].unique()):
            part = frame[frame["protocol"] == pid]
            analysis = analyse(part)
            lines.append(
                table_line(json.loads(pid), [r for r in ok if protocol_id(r) == pid], analysis, int(part["repeat"].nunique()))
            )
    cost = cost_line(records)
    room = MAX_LINES - (1 if cost else 0)
    if len(lines) > room:
        lines = lines[: room - 1] + [f"{len(lines) - room + 1} more tables below, without a summary line."]
    lines += [cost] if cost else []
    if not lines:
        return ""
    return "\n## Summary\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
