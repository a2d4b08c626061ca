"""What every dataset entry provides: a long-tail train set, a balanced test set, class counts,
many / medium / few groups, the augmentation parameters of its papers and its training presets.

A dataset is one file in ``datasets/`` that subclasses :class:`DatasetSpec` and registers it with
``@register_dataset("name")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Union

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from bench.registry import Registry
from datasets.imagefiles import ImageFiles

#: Images of a set: uint8 (N, H, W, C) in memory, or files loaded with PIL on demand.
Images = Union[np.ndarray, ImageFiles]

GROUP_NAMES = ("many", "medium", "few")


def groups_by_thirds(class_counts: np.ndarray) -> np.ndarray:
    """Many / medium / few by the thirds rule of SDCLR, BCL and GH (leaderboard/PROTOCOL.md).

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


#: ImageNet-style group boundaries (OLTR, Liu et al. CVPR 2019; SDCLR on ImageNet-LT / ImageNet100-LT).
MANY_ABOVE = 100
FEW_BELOW = 20
GROUPS_BY_COUNT_RULE = f"many > {MANY_ABOVE}, medium {FEW_BELOW}..{MANY_ABOVE}, few < {FEW_BELOW} training images"
GROUPS_BY_THIRDS_RULE = "thirds of the classes sorted by training count (few = rarest C // 3, medium = next C // 3)"


def groups_by_count(class_counts: np.ndarray) -> np.ndarray:
    """Many / medium / few by absolute training count, as OLTR and SDCLR report ImageNet-LT.

    Boundary convention (stated, since papers differ at exactly 20 and 100): *many* has more than 100
    training images, *few* fewer than 20, *medium* 20..100 inclusive -- the wording of the OLTR paper
    and of leaderboard/PROTOCOL.md. OLTR's code uses ``>= 100`` and ``<= 20`` instead; on ImageNet100-LT the two
    differ by one class at each boundary (39 / 48 / 13 here, 40 / 46 / 14 with OLTR's code).
    """
    counts = np.asarray(class_counts)
    groups = np.full(len(counts), "medium", dtype=object)
    groups[counts > MANY_ABOVE] = "many"
    groups[counts < FEW_BELOW] = "few"
    return groups.astype(str)


@dataclass
class ProbeSet:
    """A labelled set that a linear probe trains on (SDCLR's full-shot and few-shot probe sets).

    Loaded only when a protocol asks for it (``load()`` -> images, int64 labels): a full-shot set can
    be four times the pretraining set, and on ImageNet it means listing the whole train folder.
    """

    description: str
    load: Callable[[], tuple[Images, np.ndarray]]

    def summary(self) -> dict[str, Any]:
        return {"description": self.description}


@dataclass
class LongTailData:
    """A loaded benchmark: images (uint8 (N, H, W, C) arrays, or :class:`ImageFiles`) and int64 labels
    for train (long-tailed) and test (balanced), plus how the long tail was built.

    ``split`` is the published split the data comes from (SDCLR splits 1..5), None when there is one;
    ``probe_sets`` are the balanced sets of the probe protocols (``"full"``, ``"few"``) where the
    dataset defines them; ``groups_rule`` says how ``groups`` were made (defaults to the thirds rule).
    ``rank_order`` lists the classes from head to tail where the dataset drew that order for the run
    (:func:`datasets.longtail.class_rank_order`), None where the construction fixes it; ``data_version``
    is the dataset's :attr:`DatasetSpec.data_version`. Groups always follow this data's own counts.
    """

    name: str
    train_images: Images
    train_labels: np.ndarray
    test_images: Images
    test_labels: np.ndarray
    class_names: list[str]
    construction: str
    source: str
    groups: np.ndarray = field(default=None)  # type: ignore[assignment]
    split: Optional[int] = None
    probe_sets: dict[str, ProbeSet] = field(default_factory=dict)
    groups_rule: str = GROUPS_BY_THIRDS_RULE
    rank_order: Optional[list[int]] = None
    data_version: int = 1

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
        """(H, W, C) of in-memory images; () for files, whose sizes vary."""
        return tuple(self.train_images.shape[1:]) if isinstance(self.train_images, np.ndarray) else ()

    def summary(self) -> dict:
        """What a record stores about the data (sizes, counts, groups, construction)."""
        extra: dict[str, Any] = {"groups_rule": self.groups_rule, "data_version": self.data_version}
        if self.rank_order is not None:  # which classes were many / medium / few in this run, by name
            extra["rank_order"] = [self.class_names[c] for c in self.rank_order]
        if self.split is not None:
            extra["split"] = self.split
        if self.probe_sets:
            extra["probe_sets"] = {name: probe.summary() for name, probe in self.probe_sets.items()}
        return {
            **extra,
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
    """Base class of dataset entries. Subclasses set the class attributes and implement :meth:`load`.

    ``constructions`` names the ways the entry can build its long tail (the first is the default);
    ``splits`` lists, per construction, the published splits it has (SDCLR's 1..5), and an entry
    whose long tail is imposed on a balanced set says so with ``takes_rho``. An instance is one choice:
    ``create_dataset("cifar10_lt", construction="sdclr", split=2)``.
    """

    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    augmentation: ClassVar[AugmentationSpec]
    presets: ClassVar[dict[str, TrainPreset]]
    default_preset: ClassVar[str] = "quick"
    registered_name: ClassVar[str]
    constructions: ClassVar[tuple[str, ...]] = ("ldam",)
    splits: ClassVar[dict[str, tuple[int, ...]]] = {}
    takes_rho: ClassVar[bool] = False
    #: The probe sets (:class:`ProbeSet` names) each construction provides: "full", "few".
    probe_sets: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: Whether the classes' frequency ranks are drawn per repeat from the run's seed (digits_lt,
    #: fashion_mnist_lt; leaderboard/PROTOCOL.md, "Datasets"): then each seed has its own long tail.
    ranks_per_seed: ClassVar[bool] = False
    #: Bumped when a change moves the data a run sees (as methods' ``recipe_version``); records store it
    #: in ``data.data_version`` (absent: 1). leaderboard/PROTOCOL.md, "Versions", lists the changes.
    data_version: ClassVar[int] = 1

    def __init__(self, construction: Optional[str] = None, split: Optional[int] = None, rho: Optional[float] = None) -> None:
        name = getattr(self, "registered_name", type(self).__name__)
        self.construction = construction or self.constructions[0]
        if self.construction not in self.constructions:
            raise UserError(
                f"{name} has no construction {self.construction!r}; its constructions are: {', '.join(self.constructions)}."
            )
        available = self.splits.get(self.construction, ())
        if split is not None and split not in available:
            if available:
                raise UserError(
                    f"{name} --construction {self.construction} has splits {available[0]}..{available[-1]}, not {split}."
                )
            with_splits = [c for c in self.constructions if self.splits.get(c)]
            hint = f" (use --construction {with_splits[0]})" if with_splits else ""
            raise UserError(f"--splits: {name} --construction {self.construction} has no published splits{hint}.")
        self.split = split if split is not None else (available[0] if available else None)
        if rho is not None and not self.takes_rho:
            raise UserError(f"--rho: {name} has a fixed long tail; --rho applies to datasets that impose one (folder).")
        if rho is not None and rho < 1:
            raise UserError(f"--rho must be >= 1 (head count / tail count), got {rho:g}.")
        self.rho = rho

    #: Whether the entry's images stay on disk (a DataLoader with workers feeds the trainer).
    file_based: ClassVar[bool] = False

    def protocol_extra(self, data_root: Optional[Path]) -> dict[str, Any]:
        """What separates this choice's benchmark from the default one on the leaderboard (records'
        ``protocol``): the construction when it is not the default, rho when the user set it, and
        ``class_ranks`` where ranks are drawn per seed (so such runs never share a table, or a run id,
        with runs of the fixed order that came before)."""
        extra: dict[str, Any] = {}
        if self.ranks_per_seed:
            extra["class_ranks"] = "per seed"
        if self.construction != self.constructions[0]:
            extra["construction"] = self.construction
        if self.rho is not None:
            extra["rho"] = self.rho
        return extra

    def available_probe_sets(self) -> tuple[str, ...]:
        """Names of the probe sets this construction provides (for checking --eval up front)."""
        return self.probe_sets.get(self.construction, ())

    def load(self, data_root: Path | None = None, run_seed: int = 0) -> LongTailData:
        """Load the data; raise :class:`bench.errors.UserError` with one line (where the suite looked,
        how to get the data) when it is missing. ``run_seed`` is the run's seed: datasets with
        ``ranks_per_seed`` draw the classes' frequency ranks from it, the others ignore it."""
        raise NotImplementedError


DATASETS: Registry[type[DatasetSpec]] = Registry("dataset")
register_dataset = DATASETS.register
