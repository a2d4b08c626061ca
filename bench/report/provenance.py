"""Where a table's numbers come from, written under it from its records: which rows come from which
git commit (flagged when a table spans several commits or dirty trees: its rows may not be comparable
and should be rerun at one clean commit), the hardware (one label per machine,
:mod:`bench.report.machines`), the Python and package versions, the repeats (seeds, splits), the dates
and the distinct commands. :func:`methods_markdown` is the report's one list of what each method is,
with its citation (``record["method_info"]``).

Everything is listed in a stable order (sorted, methods in table order) and nothing depends on the
machine that builds the report, so the markdown is the same bytes wherever it is generated.
"""

from __future__ import annotations

from typing import Any

from bench.report.frame import method_order
from bench.report.recipes import method_label

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


def commits_line(records: list[dict[str, Any]]) -> str:
    """``Rows by commit: `abc` (constant, cosine_tau); ...``, with a warning when the rows span several
    commits or come from a dirty tree (uncommitted code: the commit does not say what ran)."""
    rows: dict[str, set[str]] = {}
    for record in records:
        commit = str((record.get("environment") or {}).get("git_commit") or UNKNOWN)
        rows.setdefault(commit, set()).add(method_label(record))
    text = "; ".join(
        f"{_commit(c) if c != UNKNOWN else UNKNOWN} ({', '.join(method_order(sorted(m)))})" for c, m in sorted(rows.items())
    )
    dirty = sum(c.endswith("-dirty") for c in rows)
    warnings = ([f"rows span {len(rows)} commits"] if len(rows) > 1 else []) + ([f"{dirty} dirty"] if dirty else [])
    flag = f" **Warning: {', '.join(warnings)}; rerun at one clean commit before reading differences.**" if warnings else ""
    return f"- Rows by commit: {text}.{flag}"


def provenance_markdown(records: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: provenance of ``records`` (the successful records of one table)."""
    environments = [r.get("environment") or {} for r in records]
    commands = _distinct([r.get("command") for r in records])
    hardware = ", ".join(f"`{h}`" for h in _distinct([e.get("hardware") for e in environments])) or UNKNOWN
    lines = ["\n**Provenance**\n", commits_line(records)]
    lines.append(f"- Hardware: {hardware}; software: " + "; ".join(_distinct([_packages(e) for e in environments])))
    lines.append(f"- Repeats: {_repeats(records)}; dates: {_dates(records)}")
    lines.append(f"- Commands ({len(commands)}): " + ("; ".join(f"`{c}`" for c in commands) or UNKNOWN))
    return lines


def methods_markdown(records: list[dict[str, Any]]) -> list[str]:
    """The report's one list of methods: each row label once, what it is and its citation."""
    info: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("kind") != "throughput":
            info.setdefault(method_label(record), record.get("method_info") or {})
    if not info:
        return []
    lines = ["\n## Methods\n"]
    for method in method_order(list(info)):
        citation, description = info[method].get("citation"), info[method].get("description") or UNKNOWN
        if "[" in method and info[method].get("temperature"):  # the class's text names its default tau, not this row's
            description += f"; this row overrides it: {info[method]['temperature']}"
        lines.append(f"- `{method}`: {description}" + (f" ({citation})" if citation else ""))
    return lines
