"""Benchmark datasets: a registry of long-tail train / balanced test sets.

Every module in this folder (other than ``base``, ``longtail`` and private ``_`` modules) is imported
here, so adding a dataset is one new file that registers itself with ``@register_dataset("name")``.
"""

from __future__ import annotations

import importlib
import pkgutil

from datasets.base import DATASETS, DatasetSpec, LongTailData, groups_by_thirds, register_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "LongTailData",
    "create_dataset",
    "groups_by_thirds",
    "list_datasets",
    "register_dataset",
]

# Helper modules that define no dataset.
_NOT_DATASETS = {"base", "longtail"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name in _NOT_DATASETS or _module.name.startswith("_"):
        continue
    importlib.import_module(f"{__name__}.{_module.name}")


def create_dataset(name: str) -> DatasetSpec:
    """An instance of the dataset registered as ``name``; an unknown name raises a one-line UserError."""
    return DATASETS.create(name)


def list_datasets() -> list[str]:
    """All registered dataset names, sorted."""
    return DATASETS.names()
