"""The records as one table of numbers (pandas): one row per record, the row labels and orders, and
what names a table's setting. Shared by the tables, the comparisons, the summary and the figures.

Only records of kind ``run``, ``floor`` and ``external`` carry accuracy; ``throughput`` records (speed
only) are left out here and rendered by :mod:`bench.report.throughput`. One repeat is one (seed,
split) pair: SDCLR's splits are repeats like seeds.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from bench.keys import BASELINE, EXTERNAL_KIND, FLOOR_PREFIX, GROUPS, protocol_id
from bench.records import successful
from bench.report.recipes import method_label

METRIC_LABELS = {
    "knn1": "kNN@1",
    "knn10": "kNN@10",
    "wknn": "wkNN",
    "linear": "Linear",
    "linear_fs": "Linear FS",
    "probe_full": "Probe full",
    "probe_few": "Probe few",
}
GROUPED_METRIC = "knn10"  # the metric whose many / medium / few split the tables show
ACCURACY_KINDS = ("run", "floor", EXTERNAL_KIND)  # record kinds that the accuracy tables compare


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: protocol, method, seed, hardware, throughput and every metric."""
    rows = []
    for record in successful(records):
        if record["kind"] == "throughput":  # no accuracy: rendered by bench.report.throughput
            continue
        row = {
            "protocol": protocol_id(record),
            "method": method_label(record),
            "kind": record.get("kind", "run"),
            "seed": record["seed"],
            "split": record.get("split"),
            "hardware": record.get("environment", {}).get("hardware", "unknown"),
            "images_per_s": (record.get("throughput") or {}).get("images_per_s"),
        }
        for metric, report in (record.get("metrics") or {}).items():
            for group in ("overall", *GROUPS):
                row[f"{metric}/{group}"] = report.get(group)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        # One repeat = one (seed, split) pair; "-" stands for "no split" so the key is hashable and sortable.
        frame["repeat"] = [
            f"{seed}/{'-' if split is None or pd.isna(split) else int(split)}"
            for seed, split in zip(frame["seed"], frame["split"])
        ]
    return frame


def method_order(methods: list[str]) -> list[str]:
    """Constant first, other methods by name, floors last: the row order of every table."""
    trained = sorted((m for m in methods if not m.startswith(FLOOR_PREFIX)), key=lambda m: (m != BASELINE, m))
    return trained + sorted(m for m in methods if m.startswith(FLOOR_PREFIX))


def repeat_means(frame: pd.DataFrame, method: str, column: str) -> pd.Series:
    """``column`` of ``method`` per repeat, records of one repeat averaged (so each repeat weighs the same)."""
    if column not in frame:
        return pd.Series(dtype=float)
    return frame[frame["method"] == method].groupby("repeat")[column].mean().dropna()


def main_metric(frame: pd.DataFrame) -> str | None:
    """The metric a table ranks by: kNN@10 where recorded, else the first recorded metric (None if none)."""
    recorded = [m for m in METRIC_LABELS if f"{m}/overall" in frame and frame[f"{m}/overall"].notna().any()]
    return GROUPED_METRIC if GROUPED_METRIC in recorded else (recorded[0] if recorded else None)


def _construction(text: str) -> str:
    """``ldam(n_max=124, rho=10, seed=0) after ...`` -> ``ldam rho 10``: the rule and its imbalance, not
    the per-repeat details (seed, split, file names)."""
    name = text.split("(", 1)[0].strip()
    rho = re.search(r"rho=([0-9.]+)", text)
    return f"{name} rho {rho.group(1)}" if rho else name


def setting(protocol: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """What a verdict is about: dataset, construction, backbone, epochs and resolution (from the
    records' ``data``), e.g. ``digits_lt (ldam rho 10), small_cnn, 200 epochs, 8x8 px``."""
    constructions = sorted(
        {
            _construction(str((r.get("data") or {}).get("construction")))
            for r in records
            if (r.get("data") or {}).get("construction")
        }
    )
    shapes = sorted(
        {
            "x".join(str(v) for v in (r.get("data") or {})["image_shape"][:2])
            for r in records
            if (r.get("data") or {}).get("image_shape")
        }
    )
    dataset = str(protocol.get("dataset", "?")) + (f" ({', '.join(constructions)})" if constructions else "")
    epochs = f"{protocol['epochs']} epochs" if "epochs" in protocol else "external encoders"
    resolution = f", {', '.join(shapes)} px" if shapes else ""
    return f"{dataset}, {protocol.get('backbone', '?')}, {epochs}{resolution}"
