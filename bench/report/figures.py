"""The leaderboard's figures, one set per table, from records alone: what each figure plots, and its
digest (drawn as PNG by :mod:`bench.report.drawing`).

Per table (protocol): ``tau`` (tau per epoch, mean over repeats, every method with a line style of its own so
that identical schedules stay visible; per-pair strategies' 10-90 % range as a band), ``sample_tau`` and
``tau_by_class`` (only where a method learns a temperature per sample, iSogCLR: the quantiles of its per-
sample taus per epoch beside the other methods' tau, and the final mean tau of each class against the class's
size), ``differences`` (each method's paired difference to ``constant`` with its 95 % t interval, overall and
per class group: the size of a difference against its noise, not bars from 0), ``per_class`` (per-class
accuracy against training-set class size, log x, mean with the std over records as error bars, markers only:
classes are discrete) and ``training`` (the temperature methods' monitored kNN@10 overall and on the
few-shot classes over training, with tau beside it, where histories log it; losses are not drawn: they are
not comparable across tau and objectives). A ``bench throughput`` table gets ``benchmark`` instead: each variant's median ratio to
``constant`` with its 95 % interval over repeats, methods and reference paths apart, one row per hardware (the
latest record of each). A figure whose data are absent (no method logs tau, no ``constant`` on any hardware)
is not drawn and not linked.

How ``--check`` stays robust: PNG bytes depend on the matplotlib, freetype and zlib versions, so
they are never compared. Instead each figure is first reduced to the exact data it plots (a JSON
value, floats rounded to :data:`DECIMALS` decimals so that summation order in numpy cannot change
it); the SHA-256 of that data, the figure's kind and :data:`FIGURE_FORMAT` is written into the PNG
as a ``tEXt`` chunk (:data:`DIGEST_KEY`), and matplotlib's ``Software`` chunk is dropped.
:func:`expected_digests` recomputes the digests from the records without drawing, and the check
compares them with the chunks in the committed PNGs, and the set of files with the expected set.
:func:`bench.report.drawing.write_figures` redraws only figures whose digest changed, so the committed
PNGs do not churn.
Bump :data:`FIGURE_FORMAT` when the drawing changes (colours, layout) so that old PNGs read stale, or the
kind's entry in :data:`DRAWING_REVISION` when only one kind's drawing changes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.keys import BASELINE, CONTROL, COST_TOLERANCE, FLOOR_PREFIX, GROUPS, median_interval
from bench.report.recipes import method_label, method_roles, registered_name
from bench.report.frame import ACCURACY_KINDS, METRIC_LABELS, main_metric, method_order, records_frame, repeat_means
from bench.report.statistics import paired_difference
from bench.report.throughput import benchmark_records, latest_per_hardware

FIGURE_FORMAT = 3  # bump when the drawing (not the data) of every kind changes
#: Per kind, bumped when only that kind's drawing changes: the other kinds' PNGs keep their digests and
#: do not churn. A kind absent here is at revision 0 (and its digest has no revision field).
DRAWING_REVISION = {"training": 1}  # 1: overall and few-shot in panels of their own, temperature methods only
DIGEST_KEY = "bench-figure-digest"
FORMAT_KEY = "bench-figure-format"
DECIMALS = 6


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its file name, alt text, the data it plots (JSON) and how to draw them."""

    name: str
    title: str
    kind: str
    data: dict[str, Any]

    @property
    def digest(self) -> str:
        revision = {"revision": DRAWING_REVISION[self.kind]} if self.kind in DRAWING_REVISION else {}
        payload = json.dumps(
            {"format": FIGURE_FORMAT, "kind": self.kind, "data": self.data, **revision},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def _round(value: Any) -> Any:
    """Floats rounded to DECIMALS (NaN -> None), recursively: the data a digest covers."""
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else round(float(value), DECIMALS)
    if isinstance(value, np.integer):
        return int(value)
    return value


def protocol_slug(protocol_id: str) -> str:
    """``<dataset>-<8 hex of the protocol>``: stable, readable file-name stem of a table's figures."""
    dataset = json.loads(protocol_id).get("dataset", "unknown")
    safe = "".join(c if c.isalnum() or c in "_-" else "-" for c in str(dataset))
    return f"{safe}-{hashlib.sha256(protocol_id.encode()).hexdigest()[:8]}"


# --- data: what each figure plots, from records alone ------------------------------------------------


def _per_epoch_mean(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """Mean of ``history[*][key]`` per epoch over the records that log it (finite values only)."""
    values: dict[int, list[float]] = defaultdict(list)
    for record in records:
        for row in record.get("history") or []:
            value = row.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value) and "epoch" in row:
                values[int(row["epoch"])].append(float(value))
    epochs = sorted(values)
    return epochs, [float(np.mean(values[e])) for e in epochs]


def _by_method(records: list[dict[str, Any]], kinds: tuple[str, ...] = ("run",)) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("kind", "run") in kinds:
            grouped[method_label(record)].append(record)
    return {m: grouped[m] for m in method_order(list(grouped))}


def tau_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: epochs, mean tau, and for per-pair strategies the mean 10th / 90th percentiles."""
    out = {}
    for method, runs in _by_method(records).items():
        epochs, tau = _per_epoch_mean(runs, "tau")
        if not epochs:
            continue  # a method without tau in its history (e.g. a non-contrastive one): nothing to draw
        entry: dict[str, Any] = {"epoch": epochs, "tau": tau}
        p10_epochs, p10 = _per_epoch_mean(runs, "tau_p10")
        p90_epochs, p90 = _per_epoch_mean(runs, "tau_p90")
        if p10_epochs and p10_epochs == p90_epochs:
            entry.update(band_epoch=p10_epochs, p10=p10, p90=p90)
        out[method] = entry
    return {"methods": out} if out else {}


#: The per-epoch quantiles of per-sample temperatures that histories log (methods/isogclr.py).
SAMPLE_TAU_KEYS = ("min", "p10", "p50", "p90", "max")


def sample_tau_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method with per-sample temperatures: the per-epoch quantiles of its N taus (min, 10 / 50 /
    90 %, max; each the mean over repeats), and every other method's tau per epoch beside them."""
    per_sample, others = {}, {}
    for method, runs in _by_method(records).items():
        curves = {key: _per_epoch_mean(runs, f"sample_tau_{key}") for key in SAMPLE_TAU_KEYS}
        epochs = curves["p50"][0]
        if epochs and all(curves[key][0] == epochs for key in SAMPLE_TAU_KEYS):
            per_sample[method] = {"epoch": epochs, **{key: curves[key][1] for key in SAMPLE_TAU_KEYS}}
            continue
        tau_epochs, tau = _per_epoch_mean(runs, "tau")
        if tau_epochs:
            others[method] = {"epoch": tau_epochs, "tau": tau}
    return {"per_sample": per_sample, "others": others} if per_sample else {}


def tau_by_class_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method with per-sample temperatures: the final mean tau of a class against its training-set
    size (the record's ``tau_per_class``), averaged over repeats per class size, sorted by size."""
    out = {}
    for method, runs in _by_method(records).items():
        by_count: dict[int, list[float]] = defaultdict(list)
        for record in runs:
            summary = record.get("tau_per_class") or {}
            for count, value in zip(summary.get("count", []), summary.get("mean_tau", [])):
                by_count[int(count)].append(float(value))
        if by_count:
            sizes = sorted(by_count)
            out[method] = {"count": sizes, "tau": [float(np.mean(by_count[c])) for c in sizes]}
    return {"methods": out} if out else {}


def differences_data(frame: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Per trained method other than ``constant``: the paired difference to ``constant`` (mean, 95 % t
    interval) on ``metric`` overall and per class group; empty without ``constant``."""
    if BASELINE not in set(frame["method"]):
        return {}
    groups = [g for g in ("overall", *GROUPS) if f"{metric}/{g}" in frame]
    methods = [m for m in method_order(sorted(frame.loc[frame["kind"] != "floor", "method"].unique())) if m != BASELINE]
    out: dict[str, Any] = {"metric": METRIC_LABELS[metric], "groups": groups, "methods": methods}
    for group in groups:
        column = f"{metric}/{group}"
        baseline = repeat_means(frame, BASELINE, column)
        results = [paired_difference(repeat_means(frame, m, column), baseline) for m in methods]
        out[group] = {key: [r[key] for r in results] for key in ("mean", "low", "high")}
    return out if methods else {}


def per_class_data(records: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Per method: accuracy averaged over records per training-set class size, sorted by size, with the
    std over those records (the error bars).

    Averaging per class size rather than per class index keeps SDCLR's splits honest: each split
    gives the classes different sizes, and the claim is about size."""
    out = {}
    for method, runs in _by_method(records, ACCURACY_KINDS).items():
        by_count: dict[int, list[float]] = defaultdict(list)
        for record in runs:
            counts = (record.get("data") or {}).get("class_counts")
            accuracy = ((record.get("metrics") or {}).get(metric) or {}).get("per_class")
            if counts and accuracy and len(counts) == len(accuracy):
                for count, value in zip(counts, accuracy):
                    by_count[int(count)].append(float(value))
        if by_count:
            sizes = sorted(by_count)
            out[method] = {
                "count": sizes,
                "accuracy": [float(np.mean(by_count[c])) for c in sizes],
                "std": [float(np.std(by_count[c], ddof=1)) if len(by_count[c]) > 1 else 0.0 for c in sizes],
                "floor": method.startswith(FLOOR_PREFIX),
            }
    return {"metric": METRIC_LABELS[metric], "methods": out} if out else {}


#: The accuracy the trainer logs during training (``--monitor-every``): kNN@10 overall and few-shot.
MONITORED = "knn10"
MONITORED_FEW = "knn10_few"


def training_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Where histories log it (``--monitor-every``): per method the mean kNN@10 overall and on the
    few-shot classes at the monitored epochs, and tau per epoch beside it -- what the low- and high-tau
    phases of a schedule do to the tail (TS, Kukleva et al., ICLR 2023, Fig. 1). Empty when no history
    logs the monitor (losses are not drawn: they are not comparable across tau and objectives). Only the
    temperature methods: ``constant`` at each tau and the strategies (role ``temperature``); the other
    objectives are in the table, and fifteen curves in one panel would hide the comparison it is for."""
    roles = method_roles()
    curves: dict[str, Any] = {"accuracy": {}, "few": {}, "tau": {}}
    for method, method_runs in _by_method(records).items():
        registered = registered_name(method)
        if registered != BASELINE and roles.get(registered) != "temperature":
            continue
        for name, history_key in (("accuracy", MONITORED), ("few", MONITORED_FEW), ("tau", "tau")):
            epochs, values = _per_epoch_mean(method_runs, history_key)
            if epochs:
                curves[name][method] = {"epoch": epochs, "value": values}
    return curves if curves["accuracy"] else {}


def benchmark_data(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``bench throughput`` records, per hardware the latest: every variant's median ratio to
    ``constant`` over repeats with its 95 % interval (:func:`bench.keys.median_interval`; None
    with too few repeats), methods apart from the reference paths (bare loop, per-image data)."""
    out = {}
    for hardware, record in latest_per_hardware(benchmark_records(records)).items():
        panel: dict[str, Any] = {
            group: {"variants": [], "median": [], "low": [], "high": []} for group in ("methods", "references")
        }
        variants = record["throughput"]["variants"]
        # The A/A control first (the noise every other ratio is read against), then by name.
        for label in sorted(variants, key=lambda v: (v != CONTROL, v)):
            entry = variants[label]
            ratio = entry.get("ratio_to_constant")
            if not ratio or label == BASELINE:
                continue
            interval = median_interval(ratio["per_repeat"])
            group = panel["methods" if entry.get("data_path") == "device" else "references"]
            group["variants"].append(label)
            group["median"].append(ratio["median"])
            group["low"].append(interval[0] if interval else None)
            group["high"].append(interval[1] if interval else None)
        if panel["methods"]["variants"] or panel["references"]["variants"]:
            out[hardware] = panel
    return {"hardware": out, "tolerance": COST_TOLERANCE} if out else {}


def protocol_figures(protocol_id: str, records: list[dict[str, Any]]) -> list[FigureSpec]:
    """The figures of one table, from its successful records; those without data are left out."""
    slug = protocol_slug(protocol_id)
    benchmark = benchmark_data(records)
    if benchmark:  # a `bench throughput` table: its own figure only
        return [
            FigureSpec(
                f"{slug}__benchmark.png", "bench throughput: each variant relative to constant", "benchmark", _round(benchmark)
            )
        ]
    frame = records_frame(records)
    if frame.empty:
        return []
    scored = frame[frame["kind"].isin(ACCURACY_KINDS)]
    metric = main_metric(scored) if not scored.empty else None
    candidates = [
        ("tau", "tau over training", tau_data(records)),
        ("sample_tau", "per-sample temperatures over training", sample_tau_data(records)),
        ("tau_by_class", "final per-sample temperature against class size", tau_by_class_data(records)),
        (
            "differences",
            "difference to constant with 95 % intervals, overall and per class group",
            differences_data(scored, metric) if metric else {},
        ),
        ("per_class", "per-class accuracy against class size", per_class_data(records, metric) if metric else {}),
        ("training", "kNN@10 over training, with tau", training_data(records)),
    ]
    return [FigureSpec(f"{slug}__{kind}.png", title, kind, _round(data)) for kind, title, data in candidates if data]


def stored_digest(path: Path) -> str | None:
    """The digest chunk of a PNG written by :func:`bench.report.drawing.draw`; None when absent or unreadable."""
    from PIL import Image  # matplotlib's own dependency; read only here

    try:
        with Image.open(path) as image:
            return image.text.get(DIGEST_KEY)
    except (OSError, ValueError):
        return None


def figure_problems(specs: list[FigureSpec], directory: Path, shown: str) -> list[str]:
    """One line per figure that is missing, stale (digest differs) or extra; ``shown`` names the folder."""
    problems = []
    for spec in specs:
        path = directory / spec.name
        if not path.exists():
            problems.append(f"figure {shown}/{spec.name} is missing")
        elif stored_digest(path) != spec.digest:
            problems.append(f"figure {shown}/{spec.name} is stale")
    wanted = {spec.name for spec in specs}
    if directory.is_dir():
        problems += [
            f"figure {shown}/{p.name} is stale: the records no longer generate it"
            for p in sorted(directory.glob("*.png"))
            if p.name not in wanted
        ]
    return problems
