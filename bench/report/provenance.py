"""Where a table's numbers come from, written under it from its records: the distinct commands,
hardware, Python and package versions, git commits, the repeats (seeds, splits), the dates, and what
each method is with its citation (``record["method_info"]``).

Everything is listed in a stable order (sorted, methods in table order) and nothing depends on the
machine that builds the report, so the markdown is the same bytes wherever it is generated.
"""

from __future__ import annotations

from typing import Any

from bench.report.recipes import method_label
from bench.report.tables import method_order

UNKNOWN = "unknown"


def _distinct(values: list[Any]) -> list[str]:
    return sorted({str(v) for v in values if v not in (None, "")})


def _packages(environment: dict[str, Any]) -> str:
    """``python 3.11.7, torch 2.14.1, ...``: one software stack, packages by name."""
    parts = [f"python {environment['python']}"] if environment.get("python") else []
    parts += [f"{name} {version}" for name, version in sorted((environment.get("packages") or {}).items()) if version]
    return ", ".join(parts) or UNKNOWN


def _commit(value: str) -> str:
    # 12 hex digits name a commit unambiguously in practice and keep the line short; "-dirty" stays.
    head, dirty = (value[:-6], "-dirty") if value.endswith("-dirty") else (value, "")
    return f"`{head[:12]}{dirty}`"


def _ranges(numbers: list[int]) -> str:
    """``0-4, 7``: consecutive integers collapsed."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and "-" not in out[-1] and int(out[-1]) + 1 == n:
            out[-1] = f"{out[-1]}-{n}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) + 1 == n:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def _repeats(records: list[dict[str, Any]]) -> str:
    seeds = [int(r["seed"]) for r in records if r.get("seed") is not None]
    splits = [int(r["split"]) for r in records if r.get("split") is not None]
    pairs = {(r.get("seed"), r.get("split")) for r in records}
    split_text = f"splits {_ranges(splits)}" if splits else "no published split"
    return f"{len(pairs)} (seed, split) pair(s): seeds {_ranges(seeds) or UNKNOWN}; {split_text}"


def _dates(records: list[dict[str, Any]]) -> str:
    starts = _distinct([str(r.get("started_at") or "")[:10] for r in records])
    ends = _distinct([str(r.get("finished_at") or "")[:10] for r in records])
    if not starts and not ends:
        return UNKNOWN
    return f"{min(starts or ends)} to {max(ends or starts)} (UTC)"


def _cell(text: Any) -> str:
    return str(text or "-").replace("|", "\\|").replace("\n", " ")


def provenance_markdown(records: list[dict[str, Any]], methods: bool = True) -> list[str]:
    """Markdown lines: provenance of ``records`` (the successful records of one table), and, with
    ``methods`` (default), what each method is."""
    environments = [r.get("environment") or {} for r in records]
    commands = _distinct([r.get("command") for r in records])
    lines = ["\n**Provenance** (from the records of this table):\n"]
    lines.append(f"- Commands ({len(commands)}):" if commands else f"- Commands: {UNKNOWN}")
    lines += [f"  - `{command}`" for command in commands]
    lines.append("- Hardware: " + (", ".join(f"`{h}`" for h in _distinct([e.get("hardware") for e in environments])) or UNKNOWN))
    lines.append("- Software: " + "; ".join(_distinct([_packages(e) for e in environments])))
    lines.append(
        "- Git commits: " + (", ".join(_commit(c) for c in _distinct([e.get("git_commit") for e in environments])) or UNKNOWN)
    )
    lines.append(f"- Repeats: {_repeats(records)}")
    lines.append(f"- Dates: {_dates(records)}")
    if not methods:
        return lines
    info: dict[str, dict[str, Any]] = {}
    for record in records:
        info.setdefault(method_label(record), record.get("method_info") or {})
    lines.append("\n| Method | What it is | Citation |\n|---|---|---|")
    lines += [
        f"| {m} | {_cell(info[m].get('description'))} | {_cell(info[m].get('citation'))} |" for m in method_order(list(info))
    ]
    return lines
