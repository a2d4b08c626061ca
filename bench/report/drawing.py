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

from bench.keys import BASELINE
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


#: Line styles and markers cycled over the methods of a figure, so that two methods with the same
#: schedule (e.g. constant and constant+sdclr, or two strategies at the same tau) never hide each other.
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")


def _style(index: int) -> dict[str, Any]:
    return {"linestyle": STYLES[index % len(STYLES)], "marker": MARKERS[index % len(MARKERS)]}


def _draw_tau(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    colours = _colours(list(data["methods"]))
    for index, (method, entry) in enumerate(data["methods"].items()):
        label = method + (" (mean, 10-90 % band)" if "p10" in entry else "")
        # Markers spaced and offset per method: on overlapping curves each method's markers stay visible.
        every = max(len(entry["epoch"]) // 8, 1)
        ax.plot(
            entry["epoch"],
            entry["tau"],
            color=colours[method],
            label=label,
            markersize=4,
            markevery=(index % every, every),
            linewidth=1.5,
            **_style(index),
        )
        if "p10" in entry:
            ax.fill_between(entry["band_epoch"], entry["p10"], entry["p90"], color=colours[method], alpha=0.2, linewidth=0)
    ax.set(xlabel="epoch", ylabel="tau", title="Temperature over training (mean over repeats; every method drawn)")
    _legend(ax)


def _draw_sample_tau(fig: MplFigure, data: dict[str, Any]) -> None:
    """Per-sample methods: median line, 10-90 % band and min-max band; other methods' tau dotted."""
    ax = fig.add_subplot()
    colours = _colours(list(data["per_sample"]) + list(data["others"]))
    for method, entry in data["per_sample"].items():
        colour = colours[method]
        ax.plot(entry["epoch"], entry["p50"], color=colour, label=f"{method}: median of the per-sample taus")
        ax.fill_between(
            entry["epoch"], entry["p10"], entry["p90"], color=colour, alpha=0.3, linewidth=0, label=f"{method}: 10-90 %"
        )
        ax.fill_between(
            entry["epoch"], entry["min"], entry["max"], color=colour, alpha=0.1, linewidth=0, label=f"{method}: min-max"
        )
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
    ax.set(
        xlabel="training images of the class (log)",
        ylabel="final mean tau of the class",
        title="Final per-sample temperature against class size (mean over repeats)",
    )
    _legend(ax)


def _draw_differences(fig: MplFigure, data: dict[str, Any]) -> None:
    """One panel per group (overall, many, medium, few): a dot per method at its mean paired difference
    to constant, its 95 % t interval as a bar, and the line of no difference."""
    groups = data["groups"]
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True)[0]
    methods = data["methods"]
    y = np.arange(len(methods))[::-1]
    for ax, group in zip(axes, groups):
        entry = data[group]
        for yi, mean, low, high in zip(y, entry["mean"], entry["low"], entry["high"]):
            if mean is None:
                continue
            if low is not None:
                ax.plot([low, high], [yi, yi], color="C0", linewidth=2.5, solid_capstyle="butt")
            ax.plot([mean], [yi], "o", color="black", markersize=4)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_title(group, fontsize="small")
        ax.set_xlabel(f"Δ {data['metric']} vs {BASELINE} (pp)", fontsize="small")
    axes[0].set_yticks(y, methods, fontsize="small")
    fig.suptitle(f"Paired difference to {BASELINE} with 95 % t interval (unadjusted), by class group")


def _draw_per_class(fig: MplFigure, data: dict[str, Any]) -> None:
    ax = fig.add_subplot()
    colours = _colours(list(data["methods"]))
    count = len(data["methods"])
    for index, (method, entry) in enumerate(data["methods"].items()):
        # Dodged on the log axis so that error bars of one class size do not sit on top of each other.
        shift = 1.012 ** (index - (count - 1) / 2)
        ax.errorbar(
            [c * shift for c in entry["count"]],
            entry["accuracy"],
            yerr=entry["std"],
            fmt=MARKERS[index % len(MARKERS)],
            markersize=4,
            capsize=2,
            linestyle="none",
            color=colours[method],
            mfc="none" if entry["floor"] else colours[method],
            label=method,
        )
    ax.set_xscale("log")
    ax.set(
        xlabel="training images of the class (log)",
        ylabel=f"{data['metric']} accuracy (%)",
        title="Per-class accuracy against class size (mean ± std over records; floors hollow)",
    )
    _legend(ax)


def _draw_benchmark(fig: MplFigure, data: dict[str, Any]) -> None:
    """Per hardware a row of two panels, methods (with the A/A control) and the reference paths, each
    on its own scale: a dot per variant at its median ratio to constant, its 95 % interval as a bar,
    and in the methods' panel the band of "no added cost" (1 +- tolerance)."""
    rows = data["hardware"]
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=(2, 1))
    tolerance = data["tolerance"]
    for (hardware, panel), row in zip(rows.items(), axes):
        for ax, group, title in (
            (row[0], "methods", f"{hardware}: methods (band: {BASELINE} ±{100 * tolerance:g} %)"),
            (row[1], "references", "reference paths"),
        ):
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
            ax.set_xlabel(
                f"images/s ÷ {BASELINE}'s" + (" (median, 95 % interval)" if group == "methods" else ""), fontsize="small"
            )
            if not names:
                ax.set_axis_off()
    fig.suptitle("bench throughput: each variant against constant, interleaved step by step")


def _draw_training(fig: MplFigure, data: dict[str, Any]) -> None:
    """kNN@10 over training on all classes and on the few-shot classes, each panel with its own y scale
    (at a CPU scale the few-shot kNN can sit near zero, where a shared scale flattens it), and tau per epoch
    in a third panel; one legend for the three."""
    axes = fig.subplots(1, 3, squeeze=False)[0]
    colours = _colours(list(data["accuracy"]))
    for index, method in enumerate(data["accuracy"]):
        for ax, curve in ((axes[0], data["accuracy"].get(method)), (axes[1], data["few"].get(method))):
            if curve:
                ax.plot(curve["epoch"], curve["value"], color=colours[method], markersize=4, label=method, **_style(index))
    for index, (method, entry) in enumerate(data["tau"].items()):
        axes[2].plot(
            entry["epoch"],
            entry["value"],
            color=colours.get(method, "grey"),
            linewidth=1,
            markersize=4,
            markevery=(index % 4, max(len(entry["epoch"]) // 8, 1)),
            **_style(index),
        )
    axes[0].set(xlabel="epoch", ylabel="kNN@10 on the test set (%)", title="all classes")
    axes[1].set(xlabel="epoch", title="few-shot classes")
    axes[2].set(xlabel="epoch", ylabel="tau", title="tau")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize="small", loc="outside lower center", ncols=4)
    fig.suptitle("Monitored kNN@10 over training, tau beside it (mean over repeats)")


DRAW: dict[str, Callable[[MplFigure, dict[str, Any]], None]] = {
    "tau": _draw_tau,
    "sample_tau": _draw_sample_tau,
    "tau_by_class": _draw_tau_by_class,
    "differences": _draw_differences,
    "per_class": _draw_per_class,
    "training": _draw_training,
    "benchmark": _draw_benchmark,
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
