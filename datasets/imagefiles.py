"""Images that stay on disk: a root folder and relative paths, opened with PIL when needed.

ImageNet-scale sets (ImageNet-LT: 115,846 JPEGs of varying size) cannot live in memory as one uint8
array, so their :class:`~datasets.base.LongTailData` holds an :class:`ImageFiles` instead, and the
trainer and evaluation read it through a DataLoader with workers (bench/data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class ImageFiles:
    """``root / paths[i]`` is image i. Indexing with an array of indices gives a subset."""

    root: Path
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, index: int) -> Path:
        return self.root / self.paths[index]

    def open(self, index: int):
        """Image ``index`` as an RGB PIL image (decoded now, the file closed again)."""
        from PIL import Image

        with Image.open(self.path(index)) as image:
            return image.convert("RGB")

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageFiles":
        return ImageFiles(self.root, [self.paths[int(i)] for i in np.asarray(indices).reshape(-1)])

    def missing(self, limit: int = 3) -> list[Path]:
        """Up to ``limit`` paths that do not exist (a quick check before hours of training)."""
        out = []
        for relative in self.paths:
            if not (self.root / relative).is_file():
                out.append(self.root / relative)
                if len(out) >= limit:
                    break
        return out


def read_image_list(path: Path) -> tuple[list[str], np.ndarray]:
    """Parse a split list: one ``<path relative to the image root> <integer label>`` per line.

    The format of the ImageNet-LT lists (OLTR / classifier-balancing) and of SDCLR's ImageNet100-LT
    lists. Blank lines are skipped; anything else that is not two fields ending in an integer raises
    ``ValueError`` naming the line.
    """
    paths: list[str] = []
    labels: list[int] = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{number}: expected '<relative path> <label>', got {line.strip()!r}")
            paths.append(parts[0])
            labels.append(int(parts[1]))
    return paths, np.asarray(labels, dtype=np.int64)


def decode_all(files: ImageFiles) -> np.ndarray:
    """Decode every image (all the same size) into one uint8 (N, H, W, 3) array: for small images
    such as CIFAR's JPEG copy, which then take the fast in-memory path."""
    if len(files) == 0:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack([np.asarray(files.open(i)) for i in range(len(files))])
