"""The leaderboard's throughput page (leaderboard/throughput.md) from ``bench throughput`` records, and
the tables ``bench throughput`` and ``bench gpu-check`` print: markdown and text from the records alone.

Per dataset and machine only the latest record (older measurements are not shown: they were made
with fewer repeats or other code, and the page is the current controlled comparison); a ratio is only
ever taken within one record, so never across hardware. Machines are named by one canonical label
(:mod:`bench.report.machines`, applied by the report before it reads the records). The record layout is
described in
:mod:`bench.throughput`, which measures and writes it; the statistics (median ratio, its 95 %
interval, the cost verdict) come from :mod:`bench.keys`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from tabulate import tabulate

from bench.keys import (
    BARE,
    BASELINE,
    CONTROL,
    LIMIT,
    PER_IMAGE_SUFFIX,
    cost_category,
    cost_verdict,
    hardware_of,
    median_interval,
    protocol_id,
)
from bench.report.machines import superseded_coarse_removed


def _range(summary: Optional[dict[str, Any]], digits: int = 3) -> str:
    if not summary:
        return "-"
    return f"{summary['median']:.{digits}f} [{summary['min']:.{digits}f}–{summary['max']:.{digits}f}]"


def ratio_text(summary: Optional[dict[str, Any]], digits: int = 3) -> str:
    """``median [low–high]``: a ratio's median over repeats and its 95 % interval (from ``per_repeat``)."""
    if not summary:
        return "-"
    interval = median_interval(summary["per_repeat"])
    bounds = f"{interval[0]:.{digits}f}–{interval[1]:.{digits}f}" if interval else "too few repeats"
    return f"{summary['median']:.{digits}f} [{bounds}]"


def variants_table(result: dict[str, Any]) -> list[dict[str, str]]:
    """Rows of the throughput table: one per variant."""
    rows = []
    for label, entry in result["variants"].items():
        memory = entry.get("peak_memory")
        ratio = entry.get("ratio_to_constant")
        rows.append(
            {
                "Variant": label,
                "images/s median [min–max]": _range(entry["images_per_s"], 0),
                f"÷ {BASELINE} median [95 % CI]": ratio_text(ratio),
                f"÷ {BASELINE}, CPU time": ratio_text(entry.get("cpu_ratio_to_constant")),
                "cost": cost_verdict(ratio["per_repeat"]) if ratio and label != BASELINE else "-",
                "data %": f"{100 * entry['data_fraction']:.0f}",
                "peak memory MiB": f"{memory['bytes'] / 2**20:.0f}" if memory else "-",
            }
        )
    return rows


#: The record's reference ratios, and what each one says.
REFERENCE_RATIOS = {
    "suite_over_bare": f"{BASELINE} / {BARE} (above 1: the suite's loop is faster than the bare loop)",
    "suite_over_bare_cpu": f"{BASELINE} / {BARE} by this process's CPU time (steadier on a shared CPU)",
    "fast_over_per_image": f"{BASELINE} / {BASELINE}{PER_IMAGE_SUFFIX} (batched on-device augmentation vs lightly per image)",
    "suite_over_limit": f"{BASELINE} / {LIMIT} (the fraction of the network-only speed a run reaches; target >= 0.9)",
}


def reference_lines(result: dict[str, Any], keys: tuple[str, ...] = tuple(REFERENCE_RATIOS)) -> list[str]:
    """``what: median [interval]`` for each reference ratio of ``keys`` that the record has."""
    return [f"{REFERENCE_RATIOS[key]}: {ratio_text(result[key])}" for key in keys if result.get(key)]


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The reference ratios and the process's peak memory, one line each."""
    lines = reference_lines(result)
    memory = result.get("process_peak_memory")
    if memory:
        lines.append(f"peak memory: {memory['bytes'] / 2**20:.0f} MiB ({memory['kind']})")
    return lines


def _is_benchmark(record: dict[str, Any]) -> bool:
    """Whether a ``throughput`` record has :mod:`bench.throughput`'s layout (others are left out, not fatal)."""
    config, result = record.get("config"), record.get("throughput")
    return (
        isinstance(config, dict)
        and all(k in config for k in ("backbone", "batch_size", "repeats", "steps"))
        and isinstance(result, dict)
        and isinstance(result.get("variants"), dict)
    )


def benchmark_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful ``throughput`` records with :mod:`bench.throughput`'s layout."""
    return [r for r in records if r.get("kind") == "throughput" and r.get("status", "ok") == "ok" and _is_benchmark(r)]


def latest_per_hardware(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most recent benchmark record of each hardware (what the report shows; ratios never mix hardware).
    A coarse-labelled record that :mod:`bench.report.machines` could not place on one machine is left out
    when a newer detailed record with its facts exists: it is an older measurement of one of those."""
    latest: dict[str, dict[str, Any]] = {}
    for record in superseded_coarse_removed(records):
        hardware = hardware_of(record)
        if hardware not in latest or record.get("finished_at", "") > latest[hardware].get("finished_at", ""):
            latest[hardware] = record
    return dict(sorted(latest.items()))


COST_CLAIM = "the cosine schedule adds no compute cost (Kukleva et al., ICLR 2023)"
SCHEDULE = "cosine_tau"
PAGE = "throughput.md"  # beside the README
PAGE_HEADER = f"""# Throughput

Generated by `python -m bench leaderboard` from the `bench throughput` records in [results/](results/): do not
edit by hand. Per dataset and machine, only the latest controlled measurement: the variants are interleaved
(step by step or in blocks), each repeat gives every variant's images/s over `{BASELINE}`'s, and a ratio is
the median over repeats with a distribution-free 95 % interval; "within 2 %" means that interval lies in
1 ± 0.02. A ratio above 1 means faster than `{BASELINE}`. Ratios are never taken across machines. The
accuracy tables are in [README.md](README.md).
"""


def cost_lines(record: dict[str, Any]) -> list[str]:
    """What one ``bench throughput`` record says, in words: the A/A control (the measurement's own
    noise), ``cosine_tau`` against the paper's "no added cost" claim, the other methods grouped by
    :func:`bench.keys.cost_category`."""
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
            f"A/A control ({BASELINE} built and timed twice): {ratio_text(control['ratio_to_constant'])}: the "
            "measurement's own noise, against which every ratio below is read."
        )
    schedule = methods.pop(SCHEDULE, None)
    if schedule:
        per_repeat = schedule["ratio_to_constant"]["per_repeat"]
        claim = {
            "within": f"these measurements support the claim that {COST_CLAIM}, to within 2 %",
            "slower": f"**these measurements do not support the claim that {COST_CLAIM}**",
            "faster": f"{SCHEDULE} is even faster than {BASELINE} here",
        }.get(cost_category(per_repeat), f"this measurement does not decide the claim that {COST_CLAIM} (more repeats needed)")
        lines.append(f"{SCHEDULE}: {ratio_text(schedule['ratio_to_constant'])}, {cost_verdict(per_repeat)}: {claim}.")
    groups: dict[str, list[str]] = {}
    for label in sorted(methods):
        ratio = methods[label]["ratio_to_constant"]
        groups.setdefault(cost_category(ratio["per_repeat"]), []).append(f"{label} {ratio_text(ratio)}")
    headings = {
        "within": f"Within 2 % of {BASELINE}",
        "slower": f"Slower than {BASELINE} beyond 2 %",
        "faster": f"Faster than {BASELINE} beyond 2 %",
        "unresolved": "Not resolved to 2 %",
        "untestable": "Too few repeats for an interval",
    }
    return lines + [f"{headings[kind]}: {', '.join(groups[kind])}." for kind in headings if kind in groups]


def _record_markdown(record: dict[str, Any]) -> list[str]:
    """One ``bench throughput`` record: its heading, command and settings, verdicts, table and reference lines."""
    config = record["config"]
    interleaving = (
        "interleaved step by step"
        if config.get("interleaving") == "step"
        else f"interleaved in blocks of {config['steps']} steps"
    )
    parts = [
        f"\n## {record['dataset']} on {hardware_of(record)}, {str(record.get('finished_at', '?'))[:10]}\n",
        f"`{record.get('command', '?')}`: {config['backbone']}, batch {config['batch_size']}, "
        f"{config['repeats']} repeats x {config['steps']} steps, {interleaving}; commit "
        f"`{str((record.get('environment') or {}).get('git_commit', '?'))[:12]}`.\n",
    ]
    parts += [f"- {line}" for line in cost_lines(record)]
    parts += ["", tabulate(variants_table(record["throughput"]), headers="keys", tablefmt="github"), ""]
    parts += [f"- {line}" for line in summary_lines(record["throughput"])]
    return parts


def throughput_page(
    records: list[dict[str, Any]], extras: Optional[Callable[[str, list[dict[str, Any]]], list[str]]] = None
) -> str:
    """The throughput page: per dataset and machine only the latest ``bench throughput`` record, then
    ``extras(table key, the dataset's records)`` (the report's figure links); empty when there are none."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in benchmark_records(records):
        by_dataset.setdefault(record["dataset"], []).append(record)
    if not by_dataset:
        return ""
    parts = [PAGE_HEADER]
    for dataset, group in sorted(by_dataset.items()):
        for record in latest_per_hardware(group).values():
            parts.extend(_record_markdown(record))
        if extras is not None:
            parts.extend(extras(protocol_id(group[0]), group))
    return "\n".join(parts) + "\n"
