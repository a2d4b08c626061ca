"""What every dataset entry provides: a long-tail train set, a balanced test set, class counts,
many / medium / few groups, the augmentation parameters of its papers and its training presets.

A dataset is one file in ``datasets/`` that subclasses :class:`DatasetSpec` and registers it with
``@register_dataset("name")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.registry import Registry

GROUP_NAMES = ("many", "medium", "few")


def groups_by_thirds(class_counts: np.ndarray) -> np.ndarray:
    """Many / medium / few by the thirds rule of SDCLR, BCL and GH (protocol.md).

    Classes are sorted by training count; the lowest ``C // 3`` are *few*, the next ``C // 3``
    *medium*, the rest *many* (3 / 3 / 4 on 10 classes, 33 / 33 / 34 on 100). Ties are broken by
    class index (a stable sort), so the assignment is deterministic.
    """
    counts = np.asarray(class_counts)
    num_classes = len(counts)
    third = num_classes // 3
    order = np.argsort(counts, kind="stable")  # rarest first
    groups = np.empty(num_classes, dtype=object)
    groups[order[:third]] = "few"
    groups[order[third : 2 * third]] = "medium"
    groups[order[2 * third :]] = "many"
    return groups.astype(str)


@dataclass
class LongTailData:
    """A loaded benchmark: uint8 images (N, H, W, C) and int64 labels for train (long-tailed) and
    test (balanced), plus how the long tail was built."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    construction: str
    source: str
    groups: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = groups_by_thirds(self.class_counts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train_labels, minlength=self.num_classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images.shape[1:])

    def summary(self) -> dict:
        """What a record stores about the data (sizes, counts, groups, construction)."""
        return {
            "name": self.name,
            "construction": self.construction,
            "source": self.source,
            "num_train": int(len(self.train_labels)),
            "num_test": int(len(self.test_labels)),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "class_counts": [int(c) for c in self.class_counts],
            "groups": [str(g) for g in self.groups],
            "image_shape": list(self.image_shape),
        }


class DatasetSpec:
    """Base class of dataset entries. Subclasses set the class attributes and implement :meth:`load`."""

    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    augmentation: ClassVar[AugmentationSpec]
    presets: ClassVar[dict[str, TrainPreset]]
    default_preset: ClassVar[str] = "quick"
    registered_name: ClassVar[str]

    def load(self, data_root: Path | None = None) -> LongTailData:
        """Load the data; raise :class:`bench.errors.UserError` with one line (where the suite looked,
        how to get the data) when it is missing."""
        raise NotImplementedError


DATASETS: Registry[type[DatasetSpec]] = Registry("dataset")
register_dataset = DATASETS.register
