"""folder: any image folder in torchvision's ImageFolder layout as a long-tail benchmark.

``--dataset folder --data-root DIR`` where DIR is ``<class>/<image>`` (one folder per class, any
image format PIL reads), or has ``train/<class>/...`` and ``test/<class>/...`` when the user already
has a test set. Classes are the folder names in sorted order (torchvision's ``ImageFolder`` rule).

Constructions:

- ``native`` (default): the folder's own class counts are the long tail (for data that is already
  long-tailed). Without a ``test/`` folder, a balanced test set of ``t`` images per class is held out
  first, ``t = min(50, rarest class // 2)``, so that every class keeps at least half its images.
- ``exp`` (``--rho``, default 100): the LDAM exponential profile (Cao et al. 2019) imposed on the
  folder: after the balanced hold-out, ``n_max`` = the smallest remaining class count and class c keeps
  ``int(n_max * rho ** (-c / (C - 1)))`` images (class 0 the head), picked as LDAM-DRW picks them.

Hold-out and picks use ``np.random.RandomState(0)``, so the benchmark is the same on every machine.
Groups: thirds of the classes by training count (:func:`datasets.base.groups_by_thirds`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from datasets.base import DatasetSpec, LongTailData, register_dataset
from datasets.imagefiles import ImageFiles
from datasets.longtail import ldam_counts, ldam_indices

TEST_PER_CLASS = 50
DEFAULT_RHO = 100.0
SEED = 0


def scan_image_folder(folder: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths relative to ``folder``, labels, class names) with torchvision's ImageFolder rules."""
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as error:  # no class folders / no valid image files
        raise UserError(
            f"folder dataset: {folder} is not an image folder ({' '.join(str(error).split())[:160]}); "
            f"expected DIR/<class>/<image> (torchvision ImageFolder layout)."
        ) from None
    paths = [str(Path(p).relative_to(folder)) for p, _ in found.samples]
    return paths, np.asarray(found.targets, dtype=np.int64), list(found.classes)


def balanced_holdout(labels: np.ndarray, per_class: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(pool indices, test indices): ``per_class`` random images of each class go to the test set."""
    rng = np.random.RandomState(seed)
    test, pool = [], []
    for c in range(int(labels.max()) + 1):
        idx = np.where(labels == c)[0]
        rng.shuffle(idx)
        test.append(idx[:per_class])
        pool.append(idx[per_class:])
    return np.sort(np.concatenate(pool)), np.concatenate(test)


@register_dataset("folder")
class ImageFolderLT(DatasetSpec):
    """Your images (ImageFolder layout): native long tail, or an imposed exponential profile (--rho)."""

    description = (
        "any ImageFolder directory (--data-root DIR): its own long tail (native) or "
        "--construction exp --rho R; balanced held-out test unless DIR has train/ and test/"
    )
    citation = "your data; exponential profile: Cao et al. 2019, LDAM-DRW, NeurIPS"
    constructions = ("native", "exp")
    takes_rho = True
    file_based = True
    # A middle ground for unknown images: 64x64 crops keep CPU runs possible; crops keep >= 20 % area.
    augmentation = AugmentationSpec(input_size=64, min_scale=0.2, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    presets = {
        "cpu": TrainPreset(
            name="cpu",
            backbone="small_cnn",
            epochs=30,
            batch_size=64,
            lr=0.3,
            weight_decay=5e-4,
            warmup_epochs=2,
            description="CPU, small encoder at 64x64",
        ),
        "gpu": TrainPreset(
            name="gpu",
            backbone="resnet18",
            epochs=500,
            batch_size=256,
            lr=0.5,
            weight_decay=1e-4,
            warmup_epochs=10,
            description="ResNet-18 at 64x64 (GPU)",
        ),
        "tiny": TrainPreset(
            name="tiny", backbone="small_cnn", epochs=2, batch_size=16, warmup_epochs=0, description="smoke test"
        ),
    }
    default_preset = "cpu"

    def __init__(self, construction: Optional[str] = None, split: Optional[int] = None, rho: Optional[float] = None) -> None:
        super().__init__(construction, split, rho)
        if rho is not None and self.construction != "exp":
            raise UserError("--rho imposes an exponential profile: use it with --construction exp.")
        if self.construction == "exp" and self.rho is None:
            self.rho = DEFAULT_RHO

    def protocol_extra(self, data_root: Optional[Path]) -> dict:
        """Different folders are different benchmarks: the folder's resolved path is part of the protocol."""
        extra = super().protocol_extra(data_root)
        if data_root is not None:
            extra["source"] = str(Path(data_root).expanduser().resolve())
        return extra

    def load(self, data_root: Path | None = None, run_seed: int = 0) -> LongTailData:
        if data_root is None:
            raise UserError(
                "--dataset folder needs --data-root DIR, an image folder laid out DIR/<class>/<image> "
                "(or DIR/train/<class>/ and DIR/test/<class>/)."
            )
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise UserError(f"folder dataset: {root} is not a directory.")
        has_test = (root / "train").is_dir() and (root / "test").is_dir()
        train_root = root / "train" if has_test else root
        paths, labels, classes = scan_image_folder(train_root)
        if len(classes) < 2:
            raise UserError(f"folder dataset: {train_root} has {len(classes)} class folder(s); a benchmark needs at least 2.")
        counts = np.bincount(labels, minlength=len(classes))
        if has_test:
            test_paths, test_labels, test_classes = scan_image_folder(root / "test")
            if test_classes != classes:
                raise UserError(
                    f"folder dataset: test/ has classes {test_classes[:5]}..., train/ {classes[:5]}...: they must match."
                )
            pool = np.arange(len(labels))
            test_files = ImageFiles(root / "test", test_paths)
            held_out = "test: the folder's test/"
        else:
            per_class = min(TEST_PER_CLASS, int(counts.min()) // 2)
            if per_class < 1:
                raise UserError(
                    f"folder dataset: class {classes[int(counts.argmin())]!r} has {int(counts.min())} image(s); "
                    f"holding out a balanced test set needs at least 2 per class."
                )
            pool, test_idx = balanced_holdout(labels, per_class)
            test_files = ImageFiles(train_root, [paths[i] for i in test_idx])
            test_labels = labels[test_idx]
            held_out = f"test: balanced hold-out of {per_class}/class (seed {SEED})"
        if self.construction == "exp":
            n_max = int(np.bincount(labels[pool], minlength=len(classes)).min())
            if n_max < self.rho:
                raise UserError(
                    f"--rho {self.rho:g} is larger than n_max {n_max} (the smallest class after the hold-out): "
                    f"the rarest class would keep no image; use --rho <= {n_max}."
                )
            profile = ldam_counts(n_max, len(classes), self.rho)
            picks = pool[ldam_indices(labels[pool], profile, seed=SEED)]
            construction = f"exp(n_max={n_max}, rho={self.rho:g}, seed={SEED}); {held_out}"
        else:
            picks = pool
            construction = f"native class counts; {held_out}"
        return LongTailData(
            name="folder",
            train_images=ImageFiles(train_root, [paths[i] for i in picks]),
            train_labels=labels[picks],
            test_images=test_files,
            test_labels=np.asarray(test_labels, dtype=np.int64),
            class_names=classes,
            construction=construction,
            source=str(root.resolve()),
        )
