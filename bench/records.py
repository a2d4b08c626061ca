"""Run records: one JSON file per run under the results directory (default leaderboard/results/).

Writes are atomic (a temporary file in the same directory, then ``os.replace``) and file names are
unique (dataset, method, seed, UTC time and a random suffix), so concurrent runs never clobber each
other and a crash never leaves half a record. Reading skips files that are not records, with a
warning that names them: one bad file never hides the others.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable

#: Version 2 added ``run_id``, ``status`` / ``failure`` on every record and ``nondeterminism``.
SCHEMA_VERSION = 2
REQUIRED_FIELDS = ("schema_version", "kind", "method", "dataset", "seed", "config", "metrics")


def migrate(record: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record up to :data:`SCHEMA_VERSION` (older records keep loading)."""
    if record["schema_version"] < 2:
        from bench.config import run_id_of

        record.setdefault("status", "ok")
        record.setdefault("run_id", run_id_of(record["config"]))
        record["config"].setdefault("temperature_overrides", {})
        record["schema_version"] = 2
    return record


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line() -> str:
    """The command that made a record, as a user would type it again (``python -m bench ...``)."""
    return " ".join([os.path.basename(sys.executable), "-m", "bench", *sys.argv[1:]])


def record_header(kind: str, method: str, dataset: str, seed: int, split: int | None) -> dict[str, Any]:
    """The fields every record starts with (runs, floors, external encoders, throughput): what it is,
    of which method, dataset, seed and split, at which schema version; ``status`` is ``ok`` until a
    failure says otherwise."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "status": "ok",
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "split": split,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def record_filename(record: dict[str, Any]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    split = f"__split{record['split']}" if record.get("split") is not None else ""
    name = f"{_slug(record['dataset'])}__{_slug(record['method'])}{split}__seed{record['seed']}"
    return f"{name}__{stamp}__{uuid.uuid4().hex[:8]}.json"


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False) -> None:
    """Write ``path`` all at once or not at all: ``write(handle)`` fills a temporary file in the same
    directory, which is flushed to disk and renamed over ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(record: dict[str, Any], results_dir: Path) -> Path:
    """Write ``record`` atomically to a new file in ``results_dir``; returns its path."""
    path = results_dir / record_filename(record)

    def dump(handle: IO) -> None:
        json.dump(record, handle, indent=1, sort_keys=True, allow_nan=True)
        handle.write("\n")

    atomic_write(path, dump)
    return path


def is_record(data: Any) -> bool:
    return isinstance(data, dict) and all(field in data for field in REQUIRED_FIELDS)


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """Every valid record under ``results_dir`` (recursively), each with its ``_path``; sorted by path."""
    records = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping {path}: not readable JSON ({error})", stacklevel=2)
            continue
        if not is_record(data):
            warnings.warn(f"skipping {path}: not a benchmark record (missing {_missing(data)})", stacklevel=2)
            continue
        if not isinstance(data["schema_version"], int) or data["schema_version"] > SCHEMA_VERSION:
            warnings.warn(f"skipping {path}: schema version {data['schema_version']} is newer than this code", stacklevel=2)
            continue
        data = migrate(data)
        data["_path"] = str(path)
        records.append(data)
    return records


def _missing(data: Any) -> str:
    if not isinstance(data, dict):
        return "everything: it is not a JSON object"
    return ", ".join(f for f in REQUIRED_FIELDS if f not in data)


def successful(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status", "ok") == "ok"]
