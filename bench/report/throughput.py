"""The leaderboard's section on ``bench throughput`` records, and the tables ``bench throughput`` and
``bench gpu-check`` print: markdown and text from the records alone.

Per dataset and hardware the latest record in full, older ones folded away below it; a ratio is only
ever taken within one record, so never across hardware. The record layout is described in
:mod:`bench.throughput`, which measures and writes it; the statistics (median ratio, its 95 %
interval, the cost verdict) come from :mod:`bench.keys`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from tabulate import tabulate

from bench.keys import BARE, BASELINE, LIMIT, PER_IMAGE_SUFFIX, cost_verdict, hardware_of, median_interval, protocol_id


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
        rows.append({
            "Variant": label,
            "images/s median [min–max]": _range(entry["images_per_s"], 0),
            f"÷ {BASELINE} median [95 % CI]": ratio_text(ratio),
            f"÷ {BASELINE}, CPU time": ratio_text(entry.get("cpu_ratio_to_constant")),
            "cost": cost_verdict(ratio["per_repeat"]) if ratio and label != BASELINE else "-",
            "data %": f"{100 * entry['data_fraction']:.0f}",
            "peak memory MiB": f"{memory['bytes'] / 2**20:.0f}" if memory else "-",
        })
    return rows


#: The record's reference ratios, and what each one says.
REFERENCE_RATIOS = {
    "suite_over_bare": f"{BASELINE} / {BARE} (suite overhead; 1 = none)",
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
    return (isinstance(config, dict) and all(k in config for k in ("backbone", "batch_size", "repeats", "steps"))
            and isinstance(result, dict) and isinstance(result.get("variants"), dict))


def benchmark_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful ``throughput`` records with :mod:`bench.throughput`'s layout."""
    return [r for r in records if r.get("kind") == "throughput" and r.get("status", "ok") == "ok" and _is_benchmark(r)]


def latest_per_hardware(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most recent benchmark record of each hardware (what the report shows; ratios never mix hardware)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        hardware = hardware_of(record)
        if hardware not in latest or record.get("finished_at", "") > latest[hardware].get("finished_at", ""):
            latest[hardware] = record
    return dict(sorted(latest.items()))


def _record_markdown(record: dict[str, Any], heading: str) -> list[str]:
    """One ``bench throughput`` record: its heading, command and settings, table and summary lines."""
    config = record["config"]
    interleaving = ("interleaved step by step" if config.get("interleaving") == "step"
                    else f"interleaved in blocks of {config['steps']} steps")
    parts = [f"\n{heading} {record['dataset']} on {hardware_of(record)}, {record.get('finished_at', '?')}\n",
             f"`{record.get('command', '?')}`: {config['backbone']}, batch {config['batch_size']}, "
             f"{config['repeats']} repeats x {config['steps']} steps, {interleaving}.\n",
             tabulate(variants_table(record["throughput"]), headers="keys", tablefmt="github"), ""]
    parts.extend(f"- {line}" for line in summary_lines(record["throughput"]))
    return parts


def throughput_section(records: list[dict[str, Any]],
                       extras: Optional[Callable[[str, list[dict[str, Any]]], list[str]]] = None) -> str:
    """Markdown for the ``throughput`` records: per dataset and hardware the latest record in full,
    older ones folded away below it (ratios are only taken within a record, so never across
    hardware), then ``extras(table key, the dataset's records)`` (the report's provenance and
    figure); empty when there are none."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in benchmark_records(records):
        by_dataset.setdefault(record["dataset"], []).append(record)
    if not by_dataset:
        return ""
    parts = ["\n## Throughput (`python -m bench throughput`: variants interleaved, ratios per repeat)\n"]
    for dataset, group in sorted(by_dataset.items()):
        by_hardware: dict[str, list[dict[str, Any]]] = {}
        for record in sorted(group, key=lambda r: r.get("finished_at", "")):
            by_hardware.setdefault(hardware_of(record), []).append(record)
        for hardware, measured in sorted(by_hardware.items()):
            *older, latest = measured
            parts.extend(_record_markdown(latest, "###"))
            if older:
                parts.append(f"\n<details><summary>Older measurements of {dataset} on {hardware} ({len(older)})</summary>\n")
                for record in reversed(older):
                    parts.extend(_record_markdown(record, "####"))
                parts.append("\n</details>\n")
        if extras is not None:
            parts.extend(extras(protocol_id(group[0]), group))
    return "\n".join(parts) + "\n"
