"""Benchmark datasets: a registry of long-tail train / balanced test sets.

Every module in this folder (other than ``base``, ``longtail`` and private ``_`` modules) is imported
here, so adding a dataset is one new file that registers itself with ``@register_dataset("name")``.
"""

from __future__ import annotations

import importlib
import pkgutil

from typing import Optional

from datasets.base import DATASETS, DatasetSpec, LongTailData, groups_by_count, groups_by_thirds, register_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "LongTailData",
    "create_dataset",
    "groups_by_count",
    "groups_by_thirds",
    "list_datasets",
    "register_dataset",
]

# Helper modules that define no dataset.
_NOT_DATASETS = {"base", "longtail", "splitfiles", "imagefiles"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name in _NOT_DATASETS or _module.name.startswith("_"):
        continue
    importlib.import_module(f"{__name__}.{_module.name}")


def create_dataset(
    name: str, construction: Optional[str] = None, split: Optional[int] = None, rho: Optional[float] = None
) -> DatasetSpec:
    """The dataset registered as ``name`` with one construction / split / rho (None: its defaults).

    An unknown name, or a choice the dataset does not have, raises a one-line UserError.
    """
    options = {k: v for k, v in {"construction": construction, "split": split, "rho": rho}.items() if v is not None}
    return DATASETS.create(name, **options)


def list_datasets() -> list[str]:
    """All registered dataset names, sorted."""
    return DATASETS.names()
