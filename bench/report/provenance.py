"""Where a table's numbers come from, written under it from its records: which rows come from which
git commit (flagged when a table spans several commits or dirty trees: its rows may not be comparable
and should be rerun at one clean commit), the hardware (one label per machine,
:mod:`bench.report.machines`), the Python and package versions, the repeats (seeds, splits), the dates
and the commands, one per grid (:func:`commands`). :func:`methods_markdown` is the report's one list of what each method is,
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


GRID_OPTIONS = ("--methods", "--seeds", "--splits")


def _split_grid(command: str) -> tuple[list[str], int, bool]:
    """A command's tokens without its grid options (``--methods``, ``--seeds``, ``--splits``, with their
    values), where the first of them stood, and whether it named its methods. Records store the command
    as typed, joined with spaces (:func:`bench.records.command_line`), so splitting on spaces inverts it."""
    tokens, rest, at, named = command.split(), [], None, False
    i = 0
    while i < len(tokens):
        name, equals, _ = tokens[i].partition("=")
        if name in GRID_OPTIONS:
            at = len(rest) if at is None else at
            named = named or name == "--methods"
            i += 1 if equals else 2
            continue
        rest.append(tokens[i])
        i += 1
    return rest, len(rest) if at is None else at, named


def _grid_commands(rest: list[str], at: int, methods: dict[str, set[tuple[Any, Any]]]) -> list[str]:
    """One command per set of methods run on the same (seed, split) pairs; a set that is not a full
    seeds x splits grid is written one command per pair, so no command claims a run that was not made."""
    by_pairs: dict[frozenset, list[str]] = {}
    for method, pairs in methods.items():
        by_pairs.setdefault(frozenset(pairs), []).append(method)
    out = []
    for pairs, names in by_pairs.items():
        seeds = sorted({seed for seed, _ in pairs})
        splits = sorted({split for _, split in pairs if split is not None})
        full = len(pairs) == len(seeds) * max(len(splits), 1)
        blocks = [(seeds, splits)]
        if not full:  # not a seeds x splits grid: one command per pair
            blocks = [([seed], [] if split is None else [split]) for seed, split in sorted(pairs, key=str)]
        for seed_set, split_set in blocks:
            grid = ["--methods", ",".join(method_order(names))]
            grid += ["--seeds", _ranges(seed_set)] if seed_set != [0] else []
            grid += ["--splits", _ranges(split_set)] if split_set else []
            out.append(" ".join(rest[:at] + grid + rest[at:]))
    return out


def commands(records: list[dict[str, Any]]) -> list[str]:
    """The commands that made ``records``, one per grid. Each record stores the command of the job that
    wrote it; a table run as a grid (``--launcher local --jobs 2``, one session per split) leaves one per
    (method, split), dozens of lines that differ only in ``--methods``, ``--seeds`` and ``--splits``. Those
    are merged back into the ``bench run`` over the methods and the (seed, split) pairs the records hold.
    Floors are written by the run of their split and need no command of their own when one is listed;
    a command that names no methods (the defaults of its day) is kept as typed."""
    grids: dict[tuple[str, ...], tuple[int, dict[str, set[tuple[Any, Any]]]]] = {}
    others: list[tuple[str, tuple[str, ...], bool]] = []
    for record in records:
        if not record.get("command"):
            continue
        rest, at, named = _split_grid(record["command"])
        if named and record.get("kind") == "run":
            _, methods = grids.setdefault(tuple(rest), (at, {}))
            methods.setdefault(record["method"], set()).add((record.get("seed", 0), record.get("split")))
        else:
            others.append((record["command"], tuple(rest), named))
    kept = {command for command, rest, named in others if not (named and rest in grids)}
    merged = {c for rest, (at, methods) in grids.items() for c in _grid_commands(list(rest), at, methods)}
    return sorted(merged | kept)


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
    grid_commands = commands(records)
    hardware = ", ".join(f"`{h}`" for h in _distinct([e.get("hardware") for e in environments])) or UNKNOWN
    lines = ["\n**Provenance**\n", commits_line(records)]
    lines.append(f"- Hardware: {hardware}; software: " + "; ".join(_distinct([_packages(e) for e in environments])))
    lines.append(f"- Repeats: {_repeats(records)}; dates: {_dates(records)}")
    lines.append(f"- Commands ({len(grid_commands)}): " + ("; ".join(f"`{c}`" for c in grid_commands) or UNKNOWN))
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
