"""cifar10_lt / cifar100_lt: CIFAR with the LDAM exponential long tail (rho 100) — the papers' GPU benchmark.

Data: Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images" (CIFAR-10 / CIFAR-100,
50,000 train / 10,000 test, 32x32), read with torchvision. Long tail: Cao et al. 2019 (LDAM-DRW,
``imbalance_cifar.py``), n_max = 5000 / 500, rho = 100, ``np.random.seed(0)``: CIFAR-10-LT 12,406 images,
CIFAR-100-LT 10,847; the test set is the full official (balanced) one. Recipe: TS (Kukleva et al.
2023) / SDCLR (Jiang et al. 2021) — ResNet-18 with CIFAR stem, 2000 epochs, batch 512, lr 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from datasets.base import DatasetSpec, LongTailData, register_dataset
from datasets.longtail import ldam_counts, ldam_indices

DEFAULT_ROOT = Path("data")  # relative to the working directory; /data/ is git-ignored
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


def ldam_cifar_indices(train_labels: np.ndarray, num_classes: int, rho: float = 100.0,
                       seed: int = 0) -> np.ndarray:
    """Indices into the torchvision training set of CIFAR-``num_classes``-LT (LDAM-DRW, Cao et al. 2019).

    ``n_max`` is ``len(train) / C`` as upstream (5000 for CIFAR-10, 500 for CIFAR-100); rho 100 gives
    12,406 / 10,847 images, rho 50 13,996 / 12,608, rho 10 20,431 / 19,573.
    """
    train_labels = np.asarray(train_labels)
    n_max = len(train_labels) // num_classes
    return ldam_indices(train_labels, ldam_counts(n_max, num_classes, rho), seed=seed)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class _CifarLT(DatasetSpec):
    """Shared loader of the two CIFAR-LT entries; subclasses name the torchvision class and folder."""

    torchvision_class: ClassVar[str]
    folder: ClassVar[str]  # what torchvision extracts under the root
    title: ClassVar[str]
    num_classes: ClassVar[int]
    rho: ClassVar[float] = 100.0
    seed: ClassVar[int] = 0

    augmentation = AugmentationSpec(input_size=32)  # the CIFAR-LT recipe: the AugmentationSpec defaults
    presets = {
        "paper": TrainPreset(name="paper", backbone="resnet18_cifar", epochs=2000, batch_size=512, lr=0.5,
                             weight_decay=1e-4, warmup_epochs=10, temperature_period=400,
                             description="TS / SDCLR recipe (GPU)"),
        "quick": TrainPreset(name="quick", backbone="resnet18_cifar", epochs=200, batch_size=512, lr=0.5,
                             weight_decay=1e-4, warmup_epochs=10, description="200-epoch GPU run"),
    }
    default_preset = "paper"

    def _open(self, data_root: Path | None, train: bool):
        """The torchvision dataset; download only into a root the user named, else one-line UserError."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_class)
        root = Path(data_root).expanduser() if data_root is not None else DEFAULT_ROOT
        try:
            return cls(str(root), train=train, download=False)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            pass
        note = ""
        if data_root is not None:
            try:
                return cls(str(root), train=train, download=True)
            except Exception as exc:  # offline machines fail here
                note = f" Download into {root} failed ({_one_line(exc)})."
        raise UserError(
            f"{self.title} not found: looked for torchvision's {self.folder}/ in {root.resolve()}.{note} "
            f"Pass --data-root DIR containing {self.folder}/ (torchvision's layout; download it from "
            f"{CIFAR_URL})."
        )

    def load(self, data_root: Path | None = None) -> LongTailData:
        train = self._open(data_root, train=True)
        test = self._open(data_root, train=False)
        train_labels = np.asarray(train.targets, dtype=np.int64)
        picks = ldam_cifar_indices(train_labels, self.num_classes, rho=self.rho, seed=self.seed)
        n_max = len(train_labels) // self.num_classes
        return LongTailData(
            name=self.registered_name,
            train_images=np.ascontiguousarray(train.data[picks]),
            train_labels=train_labels[picks],
            test_images=np.ascontiguousarray(test.data),
            test_labels=np.asarray(test.targets, dtype=np.int64),
            class_names=list(train.classes),
            construction=f"ldam(n_max={n_max}, rho={self.rho:g}, seed={self.seed}); test: official 10,000",
            source=str(Path(train.root).resolve() / self.folder),
        )


@register_dataset("cifar10_lt")
class Cifar10LT(_CifarLT):
    """CIFAR-10-LT (rho 100): 12,406 images, [5000, 2997, ..., 50]."""

    description = "CIFAR-10, LDAM rho 100 (12,406 train images), official 10,000 test; GPU benchmark of TS / SDCLR"
    citation = "Krizhevsky 2009 (CIFAR-10); long tail: Cao et al. 2019, LDAM-DRW, NeurIPS"
    torchvision_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    title = "CIFAR-10"
    num_classes = 10


@register_dataset("cifar100_lt")
class Cifar100LT(_CifarLT):
    """CIFAR-100-LT (rho 100): 10,847 images, 500 -> 5 per class."""

    description = "CIFAR-100, LDAM rho 100 (10,847 train images), official 10,000 test; GPU benchmark of TS / SDCLR"
    citation = "Krizhevsky 2009 (CIFAR-100); long tail: Cao et al. 2019, LDAM-DRW, NeurIPS"
    torchvision_class = "CIFAR100"
    folder = "cifar-100-python"
    title = "CIFAR-100"
    num_classes = 100
