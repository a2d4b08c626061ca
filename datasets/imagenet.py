"""imagenet100_lt / imagenet_lt: ILSVRC-2012 images selected by the published long-tail lists.

Data: Russakovsky et al. 2015, ImageNet Large Scale Visual Recognition Challenge (ILSVRC-2012), which
users download themselves (https://image-net.org/download.php) and lay out as ``<root>/train/<wnid>/``
and ``<root>/val/<wnid>/`` (the validation images sorted into class folders, as torchvision's
ImageNet and every list below expect). The lists are ``<path relative to the root> <label>`` lines:

- ``imagenet100_lt``: SDCLR's ImageNet100-LT (Jiang et al., ICML 2021; the CMC ImageNet-100 classes):
  pretraining ``imageNet_100_LT_train.txt`` (12,205 images, 1280 -> 6), test ``ImageNet_100_test.txt``
  (the 50 ILSVRC-2012 validation images of each class), few-shot probe
  ``imageNet_100_sub_balance_train_0.01.txt`` (12 per class), which is also the training set of TS's
  FS SVM (probe set ``fs``: Annusha/temperature_schedules notebooks/simclr_tau_imagenet100.ipynb, ``txt_train_fs``).
  Upstream: VITA-Group/SDCLR ``split/``.
- ``imagenet_lt``: ImageNet-LT (Liu et al., OLTR, CVPR 2019): pretraining ``ImageNet_LT_train.txt``
  (115,846 images, 1280 -> 5), test ``ImageNet_LT_test.txt`` (the 50,000 ILSVRC-2012 validation
  images), few-shot probe ``imageNet_sub_balance_train_0.01.txt`` (SDCLR). Upstream:
  facebookresearch/classifier-balancing ``data/ImageNet_LT/`` and VITA-Group/SDCLR ``split/ImageNet_LT/``.

Full-shot probe set: SDCLR's ``--fullset`` is every training image of the dataset's classes; the suite
lists ``<root>/train/<wnid>/`` for them (leaving out the images of the val list, which SDCLR keeps
for model selection), because that list is not published.

Groups: ImageNet-style by absolute training count (:func:`datasets.base.groups_by_count`): many > 100,
medium 20..100, few < 20 -- on ImageNet100-LT 39 / 48 / 13 classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from datasets.base import GROUPS_BY_COUNT_RULE, DatasetSpec, LongTailData, ProbeSet, groups_by_count, register_dataset
from datasets.imagefiles import ImageFiles, read_image_list
from datasets.splitfiles import SPLIT_FILES, ensure_split_files

IMAGENET_URL = "https://image-net.org/download.php"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")

#: ImageNet normalisation (torchvision / timm), used by SDCLR and TS on ImageNet.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ListSet:
    """The published lists of one ImageNet long-tail benchmark (paths under ``split/``)."""

    pretrain: str
    test: str
    val: str
    few: str


@dataclass
class ParsedList:
    files: ImageFiles
    labels: np.ndarray


def parse_list(path: Path, image_root: Path) -> ParsedList:
    """A list file as image files under ``image_root`` and their labels (one-line error if malformed)."""
    try:
        paths, labels = read_image_list(path)
    except ValueError as error:
        raise UserError(f"{error}") from None
    return ParsedList(ImageFiles(image_root, paths), labels)


def class_wnids(parsed: ParsedList, num_classes: int) -> list[str]:
    """The WordNet id of each label, read from the paths (``train/<wnid>/...``); one per label."""
    wnids: dict[int, str] = {}
    for relative, label in zip(parsed.files.paths, parsed.labels.tolist()):
        wnid = Path(relative).parent.name
        if wnids.setdefault(label, wnid) != wnid:
            raise UserError(f"label {label} names two class folders ({wnids[label]}, {wnid}) in the list: not an ImageNet list.")
    missing = sorted(set(range(num_classes)) - set(wnids))
    if missing:
        raise UserError(f"the pretraining list has no image of label(s) {missing[:5]}: expected labels 0..{num_classes - 1}.")
    return [wnids[c] for c in range(num_classes)]


def full_train_listing(image_root: Path, wnids: list[str], exclude: set[str]) -> tuple[ImageFiles, np.ndarray]:
    """Every image in ``<root>/train/<wnid>/`` of the given classes (label = position), minus ``exclude``."""
    paths: list[str] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        folder = image_root / "train" / wnid
        if not folder.is_dir():
            raise UserError(f"full-shot probe set: {folder} does not exist; the ImageNet root needs train/<wnid>/ folders.")
        names = sorted(e.name for e in os.scandir(folder) if e.name.lower().endswith(IMAGE_SUFFIXES))
        for name in names:
            relative = f"train/{wnid}/{name}"
            if relative not in exclude:
                paths.append(relative)
                labels.append(label)
    return ImageFiles(image_root, paths), np.asarray(labels, dtype=np.int64)


class _ImageNetLT(DatasetSpec):
    """Shared loader: an ImageNet root plus the published lists under ``<root>/split/<folder>/``."""

    lists: ClassVar[ListSet]
    num_classes: ClassVar[int]
    title: ClassVar[str]

    constructions = ("lists",)
    file_based = True
    probe_sets = {"lists": ("full", "few")}
    # The ImageNet SimCLR recipe of SDCLR / TS: RandomResizedCrop(224, 0.08..1), flip, ColorJitter(0.4,
    # 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2, Gaussian blur p 0.5, ImageNet normalisation.
    augmentation = AugmentationSpec(input_size=224, min_scale=0.08, gaussian_blur=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    default_preset = "paper"

    def _where_to_get(self, root: Optional[Path]) -> str:
        home = SPLIT_FILES[self.lists.pretrain].home
        place = root.resolve() if root else "DIR"
        return (
            f"pass --data-root DIR with ILSVRC-2012 train/<wnid>/ and val/<wnid>/ (from {IMAGENET_URL}) and the "
            f"lists under {place}/split/{Path(self.lists.pretrain).parent}/ (from {home})"
        )

    def load(self, data_root: Path | None = None, run_seed: int = 0) -> LongTailData:
        if data_root is None:
            raise UserError(f"{self.title} needs ImageNet: {self._where_to_get(None)}.")
        root = Path(data_root).expanduser()
        names = [self.lists.pretrain, self.lists.test, self.lists.val, self.lists.few]
        found = ensure_split_files(root, names, self.registered_name)
        train = parse_list(found[self.lists.pretrain], root)
        test = parse_list(found[self.lists.test], root)
        wnids = class_wnids(train, self.num_classes)
        for parsed in (train, test):
            absent = parsed.files.missing(limit=1)
            if absent:
                raise UserError(f"{self.title}: image {absent[0]} not found; {self._where_to_get(root)}.")
        counts = np.bincount(train.labels, minlength=self.num_classes)
        val_paths = set(read_image_list(found[self.lists.val])[0])

        def few() -> tuple[ImageFiles, np.ndarray]:
            parsed = parse_list(found[self.lists.few], root)
            return parsed.files, parsed.labels

        probes = {
            "full": ProbeSet(
                "every train/<wnid>/ image of the classes minus the val list (SDCLR --fullset)",
                lambda: full_train_listing(root, wnids, val_paths),
            ),
            "few": ProbeSet(f"few-shot probe list {self.lists.few}", few),
        }
        # TS's FS SVM trains on the same list (12 images per class on ImageNet100-LT), not on a balanced
        # subsample of the LT set (bench.evaluation.FS_PROBE_SET); one object, so it is extracted once.
        probes["fs"] = probes["few"]
        return LongTailData(
            name=self.registered_name,
            train_images=train.files,
            train_labels=train.labels,
            test_images=test.files,
            test_labels=test.labels,
            class_names=wnids,
            construction=f"lists(pretrain={self.lists.pretrain}, test={self.lists.test})",
            source=str(root.resolve()),
            groups=groups_by_count(counts),
            groups_rule=GROUPS_BY_COUNT_RULE,
            probe_sets=probes,
        )


@register_dataset("imagenet100_lt")
class ImageNet100LT(_ImageNetLT):
    """ImageNet100-LT (SDCLR): 12,205 training images of 100 classes, 1280 -> 6; test 5,000."""

    description = "ImageNet100-LT, SDCLR lists (12,205 train images, 1280 -> 6), 5,000 test (ILSVRC val); GPU"
    citation = "Russakovsky et al. 2015 (ILSVRC-2012); long tail: Jiang et al. 2021, SDCLR, ICML"
    title = "ImageNet100-LT"
    num_classes = 100
    lists = ListSet(
        pretrain="imagenet-100/imageNet_100_LT_train.txt",
        test="imagenet-100/ImageNet_100_test.txt",
        val="imagenet-100/ImageNet_100_val.txt",
        few="imagenet-100/imageNet_100_sub_balance_train_0.01.txt",
    )
    presets = {
        "paper": TrainPreset(
            name="paper",
            backbone="resnet50",
            epochs=800,
            batch_size=256,
            lr=0.5,
            weight_decay=1e-4,
            warmup_epochs=10,
            temperature_period=400,
            description="TS recipe (GPU; SDCLR trains 500 epochs)",
        ),
        "tiny": TrainPreset(name="tiny", backbone="small_cnn", epochs=1, batch_size=8, warmup_epochs=0, description="smoke test"),
    }


@register_dataset("imagenet_lt")
class ImageNetLT(_ImageNetLT):
    """ImageNet-LT (OLTR): 115,846 training images of 1000 classes, 1280 -> 5; test 50,000."""

    description = "ImageNet-LT, OLTR lists (115,846 train images, 1280 -> 5), 50,000 test (ILSVRC val); GPU"
    citation = "Russakovsky et al. 2015 (ILSVRC-2012); long tail: Liu et al. 2019, OLTR, CVPR"
    title = "ImageNet-LT"
    num_classes = 1000
    lists = ListSet(
        pretrain="ImageNet_LT/ImageNet_LT_train.txt",
        test="ImageNet_LT/ImageNet_LT_test.txt",
        val="ImageNet_LT/ImageNet_LT_val.txt",
        few="ImageNet_LT/imageNet_sub_balance_train_0.01.txt",
    )
    presets = {
        "paper": TrainPreset(
            name="paper",
            backbone="resnet50",
            epochs=500,
            batch_size=256,
            lr=0.5,
            weight_decay=1e-4,
            warmup_epochs=10,
            description="SDCLR recipe (GPU); T = epochs / 5",
        ),
        "tiny": TrainPreset(name="tiny", backbone="small_cnn", epochs=1, batch_size=8, warmup_epochs=0, description="smoke test"),
    }
