"""One hardware label per machine, decided when the report reads the records (record files are never
edited).

The label a run writes (``environment.hardware``, bench/environment.py) gained detail over time: the
same 2-thread VM reads ``cpu: AMD EPYC x2 threads`` in older records and ``cpu: AMD EPYC (family 23
model 1 stepping 2, AVX2) x2 threads`` in newer ones, which split its throughput and provenance in two.
A detailed label (the record stores ``cpu_capability``) is a measured fact and is kept as written. A
coarse one takes the detailed label of the records whose stored facts (``device``, ``cpu``,
``cpu_count``, ``gpu``, ``torch_threads``) agree with its own, when they name exactly one machine; when
they name several (the VM moved from a family-23 to a family-25 EPYC between sessions) nothing tells
which one the coarse record ran on, and it keeps its label. A record without these facts cannot be
identified: it keeps its label, and the throughput page, which shows the latest measurement per
machine, folds it away with the other older ones.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

FACTS = ("device", "cpu", "cpu_count", "gpu", "torch_threads")


def machine_key(record: dict[str, Any]) -> Optional[tuple[Any, ...]]:
    """The stored facts that identify a record's machine; None when the record does not store them."""
    environment = record.get("environment") or {}
    if not environment.get("device") or not environment.get("cpu") or not environment.get("cpu_count"):
        return None
    return tuple(environment.get(fact) for fact in FACTS)


def _detailed(record: dict[str, Any]) -> bool:
    return bool((record.get("environment") or {}).get("cpu_capability"))


def detailed_labels(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], set[str]]:
    """Per identified machine key, the detailed labels its records wrote."""
    labels: dict[tuple[Any, ...], set[str]] = {}
    for record in records:
        key, label = machine_key(record), (record.get("environment") or {}).get("hardware")
        if key is not None and label and _detailed(record):
            labels.setdefault(key, set()).add(label)
    return labels


def with_canonical_hardware(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with a coarse ``environment.hardware`` replaced by the one detailed label its facts
    point to (copies of the records that change; the others as they are)."""
    detailed = detailed_labels(records)
    out = []
    for record in records:
        key = machine_key(record)
        label = (record.get("environment") or {}).get("hardware")
        candidates = detailed.get(key, set()) if key is not None and label and not _detailed(record) else set()
        if len(candidates) != 1 or label in candidates:
            out.append(record)
            continue
        changed = copy.copy(record)
        changed["environment"] = dict(record["environment"], hardware=next(iter(candidates)), hardware_recorded=label)
        out.append(changed)
    return out


def superseded_coarse_removed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` without the coarse-labelled ones (after :func:`with_canonical_hardware`, those it
    could not place) that are older than a detailed record with the same facts."""
    newest_detailed: dict[tuple[Any, ...], str] = {}
    for record in records:
        key = machine_key(record)
        if key is not None and _detailed(record):
            newest_detailed[key] = max(newest_detailed.get(key, ""), str(record.get("finished_at") or ""))
    return [
        r
        for r in records
        if _detailed(r)
        or (key := machine_key(r)) is None
        or key not in newest_detailed
        or str(r.get("finished_at") or "") > newest_detailed[key]
    ]
