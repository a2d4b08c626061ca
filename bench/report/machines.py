"""One hardware label per machine, decided when the report reads the records (record files are never
edited).

The label a run writes (``environment.hardware``, bench/environment.py) gained detail over time: the
same 2-thread VM reads ``cpu: AMD EPYC x2 threads`` in older records and ``cpu: AMD EPYC (family 23
model 1 stepping 2, AVX2) x2 threads`` in newer ones, which split its throughput and provenance in two.
The records also store the facts the label is made from (``device``, ``cpu``, ``cpu_count``, ``gpu``):
records whose facts agree are one machine and all get the label of the newest of them (the most
detailed). A record without these facts cannot be identified: it keeps its label, and the throughput
page, which shows the latest measurement per machine, folds it away with the other older ones.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

FACTS = ("device", "cpu", "cpu_count", "gpu")


def machine_key(record: dict[str, Any]) -> Optional[tuple[Any, ...]]:
    """The stored facts that identify a record's machine; None when the record does not store them."""
    environment = record.get("environment") or {}
    if not environment.get("device") or not environment.get("cpu") or not environment.get("cpu_count"):
        return None
    return tuple(environment.get(fact) for fact in FACTS)


def newest_labels(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], str]:
    """Per identified machine, the label of its newest record (the most detailed one)."""
    newest: dict[tuple[Any, ...], tuple[str, str]] = {}
    for record in records:
        key, label = machine_key(record), (record.get("environment") or {}).get("hardware")
        if key is not None and label:
            stamp = (str(record.get("finished_at") or ""), label)
            newest[key] = max(newest.get(key, stamp), stamp)
    return {key: label for key, (_, label) in newest.items()}


def with_canonical_hardware(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with ``environment.hardware`` replaced by its machine's canonical label (copies of
    the records that change; the others as they are)."""
    newest = newest_labels(records)
    out = []
    for record in records:
        key = machine_key(record)
        label = (record.get("environment") or {}).get("hardware")
        if key is None or not label or newest[key] == label:
            out.append(record)
            continue
        changed = copy.copy(record)
        changed["environment"] = dict(record["environment"], hardware=newest[key], hardware_recorded=label)
        out.append(changed)
    return out
