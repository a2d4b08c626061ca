"""A grid of runs and where each stands: what a launcher submits, and what ``bench status`` shows.

A grid is the (split, seed, method) runs of one ``bench run`` command. A launcher writes it as a grid
file (``RESULTS_DIR/../grids/<id>.json``: the runs, their checkpoint names, the launcher, the jobs and
where their logs are) before it starts them, so runs that have not started yet show as pending.
A run's state comes from the files of the results directory only -- never from the scheduler (Slurm
without accounting has no ``sacct`` history), so it is the same whatever launched the run:

- finished: its record is in the results directory (status ok);
- failed: its record says failed, or a ``.failed.json`` marker names the one-line reason;
- running: a process holds its lock (:mod:`bench.locks`); the epoch and images/s are those of its
  last checkpoint (``.progress.json``);
- pending: none of the above (with a checkpoint: it resumes from there when it runs again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from bench.errors import UserError
from bench.records import atomic_write, utc_now

#: The ``bench run`` options that say how to launch a grid, not what a run is (a job runs without them).
LAUNCH_OPTIONS = (
    "launcher",
    "jobs",
    "partition",
    "gpus_per_job",
    "cpus_per_job",
    "time_limit",
    "array_parallelism",
    "sbatch",
    "logs_dir",
    "detach",
)
STATES = ("running", "pending", "failed", "finished")


@dataclass
class GridRun:
    """One run of a grid: what ``bench run`` needs to run it alone, and its files' stem."""

    method: str
    dataset: str
    seed: int
    split: Optional[int]
    run_id: str
    checkpoint: str  # file name in the checkpoints folder
    epochs: int

    def label(self) -> str:
        split = f" split {self.split}" if self.split is not None else ""
        return f"{self.method} on {self.dataset}{split} seed {self.seed}"


def grid_runs(run_plan: Any) -> list[GridRun]:
    """The plan's runs in its order (split, seed, method), each with its checkpoint's name. A run's
    method is its label (``constant[tau=0.1]``): the job's ``--methods`` must name that run, not the
    bare method (which is another run of the grid)."""
    return [
        GridRun(c.method_label, c.dataset, c.seed, c.split, c.run_id(), run_plan.checkpointer(c).path.name, c.epochs)
        for c in run_plan.configs
    ]


def run_argv(args: argparse.Namespace, run_parser: argparse.ArgumentParser, run: GridRun) -> list[str]:
    """``bench run`` arguments that run exactly ``run`` the way ``args`` asked for the whole grid:
    every option the user gave, minus the launcher's, with ``--methods``/``--seeds``/``--splits`` of
    this run alone. A job runs this argv through the sequential code path; its record's ``command``
    is this command, which a user can type again to rerun the run by hand."""
    single = {
        "methods": run.method,
        "seeds": str(run.seed),
        "splits": None if run.split is None else str(run.split),
        "no_progress": True,
        "no_leaderboard": True,
    }
    argv: list[str] = []
    for action in run_parser._actions:
        dest = action.dest
        if dest in LAUNCH_OPTIONS or dest == "help" or not action.option_strings:
            continue
        value = single[dest] if dest in single else getattr(args, dest, None)
        if dest == "resume":
            argv += [] if value else ["--no-resume"]
        elif isinstance(action, argparse._StoreTrueAction):
            argv += [action.option_strings[0]] if value else []
        elif value is not None and value != action.default:
            argv += [action.option_strings[0], str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
    return argv


def grids_dir(results_dir: Path) -> Path:
    return Path(results_dir).parent / "grids"


def checkpoints_dir(results_dir: Path) -> Path:
    return Path(results_dir).parent / "checkpoints"  # bench.runner.RunPlan.checkpoint_dir


def write_grid(results_dir: Path, runs: list[GridRun], launcher: str, command: str, **extra: Any) -> Path:
    """The grid file (one per set of runs: resubmitting the same grid rewrites it)."""
    grid_id = hashlib.sha256("".join(sorted(r.run_id for r in runs)).encode()).hexdigest()[:12]
    path = grids_dir(results_dir) / f"{grid_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "grid": grid_id,
        "written_at": utc_now(),
        "launcher": launcher,
        "command": command,
        "results_dir": str(results_dir),
        "runs": [r.__dict__ for r in runs],
        **extra,
    }
    atomic_write(path, lambda handle: handle.write(json.dumps(content, indent=1)), binary=False)
    return path


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def known_runs(results_dir: Path) -> dict[str, GridRun]:
    """Every run the grid files of ``results_dir`` name, and every run with a checkpoint or marker."""
    runs: dict[str, GridRun] = {}
    for path in sorted(grids_dir(results_dir).glob("*.json")):
        for entry in (_read(path) or {}).get("runs", []):
            runs[entry["run_id"]] = GridRun(**entry)
    for path in sorted(checkpoints_dir(results_dir).glob("*.pt")):
        parts = path.stem.split("__")
        if ".old" in path.name or len(parts) < 4 or not parts[-2].startswith("seed") or parts[-1] in runs:
            continue
        dataset, split = parts[0], (int(parts[1][5:]) if parts[1].startswith("split") else None)
        runs[parts[-1]] = GridRun(parts[-3], dataset, int(parts[-2][4:]), split, parts[-1], path.name, 0)
    return runs


@dataclass
class RunState:
    run: GridRun
    state: str  # one of STATES
    detail: str = ""


def run_states(results_dir: Path, runs: Optional[Iterable[GridRun]] = None) -> list[RunState]:
    """The state of ``runs`` (default: every run :func:`known_runs` finds), from the files alone."""
    from bench import locks
    from bench.records import load_records

    results_dir = Path(results_dir)
    records: dict[str, dict] = {}
    if results_dir.is_dir():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for record in load_records(results_dir):
                if record.get("kind") == "run":
                    records[record.get("run_id", "")] = record
    runs = list(runs) if runs is not None else list(known_runs(results_dir).values())
    for run_id, record in records.items():  # runs recorded without a grid file (older results)
        if run_id not in {r.run_id for r in runs}:
            runs.append(GridRun(record["method"], record["dataset"], record["seed"], record.get("split"), run_id, "", 0))
    states = []
    checkpoints = checkpoints_dir(results_dir)
    for run in runs:
        record = records.get(run.run_id)
        # The .pt path, whose suffix its side files replace: a stem without ".pt" would lose the end of a
        # bracketed label ("constant[tau=0.1]__seed0__..." has the suffix ".1]__seed0__...").
        checkpoint = checkpoints / run.checkpoint if run.checkpoint else None
        failed = _read(checkpoint.with_suffix(".failed.json")) if checkpoint else None
        if record is not None and record.get("status") == "ok":
            states.append(RunState(run, "finished"))
        elif record is not None or failed:
            reason = (record or {}).get("failure") or (failed or {}).get("reason") or "no reason recorded"
            states.append(RunState(run, "failed", reason))
        elif checkpoint is not None and locks.is_locked(checkpoint.with_suffix(".lock")):
            states.append(
                RunState(run, "running", _progress(checkpoint, run) + f" ({locks.holder(checkpoint.with_suffix('.lock'))})")
            )
        else:
            progress = _progress(checkpoint, run) if checkpoint is not None and checkpoint.exists() else ""
            states.append(RunState(run, "pending", f"checkpoint at {progress}" if progress else ""))
    return states


def _progress(checkpoint: Path, run: GridRun) -> str:
    progress = _read(checkpoint.with_suffix(".progress.json"))
    if not progress:
        return "no checkpoint yet"
    epochs = progress.get("epochs") or run.epochs
    speed = progress.get("images_per_s")
    return f"epoch {progress.get('epoch')}/{epochs}" + (f", {speed:.0f} images/s" if speed else "")


def _ranges(values: Iterable[int]) -> str:
    """``0-3,7`` for 0, 1, 2, 3, 7 (as --seeds takes them)."""
    values, parts = sorted(set(values)), []
    for value in values:
        if parts and value == parts[-1][1] + 1:
            parts[-1][1] = value
        else:
            parts.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def format_status(states: list[RunState], results_dir: Path) -> list[str]:
    """``bench status``'s lines: a count per state, every run that is not finished on a line of its
    own, finished runs as one line per (dataset, method) with their seeds."""
    if not states:
        return [f"{results_dir}: no runs (no grid files, checkpoints or run records)"]
    counts = Counter(s.state for s in states)
    lines = [f"{results_dir}: {len(states)} runs: " + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])]
    for state in ("running", "pending", "failed"):
        for entry in sorted((s for s in states if s.state == state), key=lambda s: s.run.label()):
            lines.append(f"  {state:<9} {entry.run.label()}" + (f": {entry.detail}" if entry.detail else ""))
    finished: dict[tuple, list[RunState]] = defaultdict(list)
    for entry in states:
        if entry.state == "finished":
            finished[(entry.run.dataset, entry.run.method)].append(entry)
    for (dataset, method), entries in sorted(finished.items()):
        splits = {e.run.split for e in entries} - {None}
        where = f", splits {_ranges(splits)}" if splits else ""
        lines.append(
            f"  finished  {method} on {dataset}: {len(entries)} run(s), seeds {_ranges(e.run.seed for e in entries)}{where}"
        )
    return lines


def parse_sbatch(values: list[str]) -> dict[str, str]:
    """``--sbatch KEY=VALUE`` (repeatable) as submitit's ``additional_parameters``."""
    parsed = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key.strip() or not key.strip().lstrip("-"):
            raise UserError(f"--sbatch {value!r} is not KEY=VALUE; use e.g. --sbatch account=myproject --sbatch qos=high.")
        parsed[key.strip().lstrip("-").replace("-", "_")] = text
    return parsed
