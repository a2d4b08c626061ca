"""The leaderboard's figures drawn: matplotlib (Agg canvas) into PNG files, from the data that
:mod:`bench.report.figures` reduces the records to.

Kept apart from that module so that ``bench leaderboard --check``, which compares digests and never
draws, does not import matplotlib. Each PNG carries the digest of its data in a ``tEXt`` chunk
(:data:`bench.report.figures.DIGEST_KEY`) and no ``Software`` chunk (see :mod:`bench.report.figures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from bench.keys import BASELINE, FLOOR_PREFIX, GROUPS
from bench.records import atomic_write
from bench.report.figures import DIGEST_KEY, FIGURE_FORMAT, FORMAT_KEY, FigureSpec, stored_digest

DPI = 100


def _colours(methods: list[str]) -> dict[str, Any]:
    # One colour per method within a figure, in table order, so the legend reads like the table.
    palette = [f"C{i}" for i in range(10)]
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


def _legend(ax: Axes) -> None:
    # Outside the axes, right: bars and curves near the top are never hidden behind it.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_tau(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    colours = _colours(list(data["methods"]))
    for method, entry in data["methods"].items():
        label = method + (" (median, 10-90 % band)" if "p10" in entry else "")
        ax.plot(entry["epoch"], entry["tau"], color=colours[method], label=label)
        if "p10" in entry:
            ax.fill_between(entry["band_epoch"], entry["p10"], entry["p90"], color=colours[method], alpha=0.2, linewidth=0)
    ax.set(xlabel="epoch", ylabel="tau", title="Temperature over training (mean over repeats)")
    _legend(ax)


def _draw_sample_tau(fig: MplFigure, data: dict[str, Any]) -> None:
    """Per-sample methods: median line, 10-90 % band and min-max band; other methods' tau dotted."""
    ax = fig.add_subplot()
    colours = _colours(list(data["per_sample"]) + list(data["others"]))
    for method, entry in data["per_sample"].items():
        colour = colours[method]
        ax.plot(entry["epoch"], entry["p50"], color=colour, label=f"{method}: median of the per-sample taus")
        ax.fill_between(entry["epoch"], entry["p10"], entry["p90"], color=colour, alpha=0.3, linewidth=0,
                        label=f"{method}: 10-90 %")
        ax.fill_between(entry["epoch"], entry["min"], entry["max"], color=colour, alpha=0.1, linewidth=0,
                        label=f"{method}: min-max")
    for method, entry in data["others"].items():
        ax.plot(entry["epoch"], entry["tau"], color=colours[method], linestyle=":", label=method)
    ax.set(xlabel="epoch", ylabel="tau", title="Per-sample temperatures over training (mean over repeats)")
    _legend(ax)


def _draw_tau_by_class(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    colours = _colours(list(data["methods"]))
    for method, entry in data["methods"].items():
        ax.plot(entry["count"], entry["tau"], marker="o", markersize=3, color=colours[method], label=method)
    ax.set_xscale("log")
    ax.set(xlabel="training images of the class (log)", ylabel="final mean tau of the class",
           title="Final per-sample temperature against class size (mean over repeats)")
    _legend(ax)


def _draw_groups(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    methods = data["methods"]
    width = 0.8 / max(len(methods), 1)
    colours = _colours(methods)
    for i, method in enumerate(methods):
        x = np.arange(len(GROUPS)) + (i - (len(methods) - 1) / 2) * width
        means = [np.nan if v is None else v for v in (data[g]["mean"][i] for g in GROUPS)]
        ax.bar(x, means, width, yerr=[data[g]["std"][i] for g in GROUPS], capsize=2, color=colours[method],
               hatch="//" if method.startswith(FLOOR_PREFIX) else None, label=method)
    ax.set_xticks(np.arange(len(GROUPS)), GROUPS)
    ax.set(ylabel=f"{data['metric']} accuracy (%)", title=f"{data['metric']} by class group (mean ± std over repeats)")
    _legend(ax)


def _draw_per_class(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    colours = _colours(list(data["methods"]))
    for method, entry in data["methods"].items():
        ax.plot(entry["count"], entry["accuracy"], marker="o", markersize=3, color=colours[method],
                linestyle="--" if entry["floor"] else "-", label=method)
    ax.set_xscale("log")
    ax.set(xlabel="training images of the class (log)", ylabel=f"{data['metric']} accuracy (%)",
           title="Per-class accuracy against class size (mean over repeats; floors dashed)")
    _legend(ax)


def _draw_throughput(fig: MplFigure, data: dict[str, Any]) -> None:
    """One bar panel per hardware: each method's mean images/s over constant's, a line at 1."""
    panels = data["hardware"]
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (hardware, entry) in zip(axes, panels.items()):
        names = entry["methods"]
        colours = _colours(names)
        ax.bar(names, entry["ratio"], color=[colours[n] for n in names])
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_title(hardware, fontsize="small")
        ax.set_ylabel(f"images/s relative to {BASELINE}")
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    fig.suptitle("Throughput of the runs relative to constant, per hardware (separate runs, not interleaved)")


def _draw_benchmark(fig: MplFigure, data: dict[str, Any]) -> None:
    """Per hardware a row of two panels, methods (with the A/A control) and the reference paths, each
    on its own scale: a dot per variant at its median ratio to constant, its 95 % interval as a bar,
    and in the methods' panel the band of "no added cost" (1 +- tolerance)."""
    rows = data["hardware"]
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=(2, 1))
    tolerance = data["tolerance"]
    for (hardware, panel), row in zip(rows.items(), axes):
        for ax, group, title in ((row[0], "methods", f"{hardware}: methods (band: {BASELINE} ±{100 * tolerance:g} %)"),
                                 (row[1], "references", "reference paths")):
            entry = panel[group]
            names = entry["variants"]
            y = np.arange(len(names))[::-1]
            for yi, name, median, low, high in zip(y, names, entry["median"], entry["low"], entry["high"]):
                if low is not None:
                    ax.plot([low, high], [yi, yi], color="C0", linewidth=2.5, solid_capstyle="butt")
                ax.plot([median], [yi], "o", color="black", markersize=4)
            ax.axvline(1.0, color="grey", linewidth=0.8)
            if group == "methods":
                ax.axvspan(1 - tolerance, 1 + tolerance, color="C2", alpha=0.15, linewidth=0)
            ax.set_yticks(y, names, fontsize="small")
            ax.set_title(title, fontsize="small")
            ax.set_xlabel(f"images/s ÷ {BASELINE}'s" + (" (median, 95 % interval)" if group == "methods" else ""),
                          fontsize="small")
            if not names:
                ax.set_axis_off()
    fig.suptitle("bench throughput: each variant against constant, interleaved step by step")


def _draw_training(fig: MplFigure, data: dict[str, Any]) -> None:
    monitored = bool(data["accuracy"])
    axes = fig.subplots(1, 2 if monitored else 1, squeeze=False, width_ratios=[1, 2] if monitored else None)[0]
    colours = _colours(list(data["loss"]))
    for method, entry in data["loss"].items():
        axes[0].plot(entry["epoch"], entry["value"], color=colours[method], label=method)
    axes[0].set(xlabel="epoch", ylabel="loss")
    _legend(axes[0])
    if monitored:
        ax = axes[1]
        for method, entry in data["accuracy"].items():
            ax.plot(entry["epoch"], entry["value"], color=colours.get(method), marker=".", label=f"{method}: all classes")
            few = data["few"].get(method)
            if few:
                ax.plot(few["epoch"], few["value"], color=colours.get(method), linestyle="--", marker=".",
                        label=f"{method}: few-shot classes")
        ax.set(xlabel="epoch", ylabel="kNN@10 on the test set (%)")
        ax.legend(fontsize="x-small", loc="best")  # inside: the right edge holds the tau axis
        tau_axis = ax.twinx()  # tau beside the accuracy: the schedule's phases against the tail
        for method, entry in data["tau"].items():
            tau_axis.plot(entry["epoch"], entry["value"], color=colours.get(method), linestyle=":", linewidth=1)
        tau_axis.set_ylabel("tau (dotted)")
    note = "" if monitored else " (no kNN accuracy logged per epoch: --monitor-every)"
    fig.suptitle(f"Training curves, mean over repeats{note}")


DRAW: dict[str, Callable[[MplFigure, dict[str, Any]], None]] = {
    "tau": _draw_tau, "sample_tau": _draw_sample_tau, "tau_by_class": _draw_tau_by_class,
    "groups": _draw_groups, "per_class": _draw_per_class,
    "throughput": _draw_throughput, "training": _draw_training, "benchmark": _draw_benchmark,
}


def draw(spec: FigureSpec, path: Path) -> None:
    """Draw ``spec`` into ``path`` (atomically), with its digest chunk and no Software chunk."""
    fig = MplFigure(figsize=(9, 4.5), layout="constrained")
    DRAW[spec.kind](fig, spec.data)
    metadata = {"Software": None, DIGEST_KEY: spec.digest, FORMAT_KEY: str(FIGURE_FORMAT)}
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI, metadata=metadata), binary=True)


def write_figures(specs: list[FigureSpec], directory: Path) -> None:
    """Make ``directory`` hold exactly ``specs``: draw new or changed ones, delete PNGs no longer made."""
    wanted = {spec.name for spec in specs}
    for spec in specs:
        path = directory / spec.name
        if not path.exists() or stored_digest(path) != spec.digest:
            draw(spec, path)
    if directory.is_dir():
        for path in sorted(directory.glob("*.png")):
            if path.name not in wanted:
                path.unlink()
