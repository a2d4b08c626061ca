"""fashion_mnist_lt: Fashion-MNIST with the LDAM long tail (n_max 6000, rho 100) — the CPU benchmark.

Data: Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
Learning Algorithms" (arXiv:1708.07747); 60,000 train / 10,000 test 28x28 grey images, 10 classes.
Long tail: Cao et al. 2019 (LDAM-DRW) exponential profile -> 14,886 images
[6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60], given to the classes in an order drawn per
seed (datasets/longtail.py, ``class_rank_order``); the test set is the official balanced one.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from bench.config import AugmentationSpec, TrainPreset
from bench.errors import UserError
from datasets.base import DatasetSpec, LongTailData, register_dataset
from datasets.longtail import class_rank_order, counts_in_label_order, ldam_counts, ldam_indices

# Where Debian's ``dataset-fashion-mnist`` package installs the IDX files (tests monkeypatch this).
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_MAX, RHO, SEED = 6000, 100.0, 0

#: SHA-256 of each file's uncompressed IDX bytes (the same whether a mirror gzips it again or not).
SHA256 = {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def read_idx(path: Path, sha256: str | None = None) -> np.ndarray:
    """Parse an IDX file (``.gz`` or not): magic 0x0000 <dtype> <ndim>, ndim big-endian uint32 sizes, data.

    Format of LeCun's MNIST page; Fashion-MNIST files are all unsigned bytes (dtype code 0x08).
    With ``sha256``, the uncompressed bytes must have that checksum (a UserError says which file differs).
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise UserError(f"{path} cannot be read ({error}); download it again.") from None
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise UserError(
            f"{path} has the wrong SHA-256 checksum (corrupted or a different file); replace it with the "
            f"official Fashion-MNIST file (apt-get install --reinstall dataset-fashion-mnist, or download it again)."
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {data.size} bytes (truncated download?)")
    # A copy: frombuffer views are read-only, and torch.from_numpy warns on those.
    return data.reshape(shape).copy()


def _find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (each gzipped or not), or None if any is missing."""
    found = {}
    for key, stem in FILES.items():
        for name in (stem + ".gz", stem):  # torchvision keeps both the .gz and the extracted file
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


def _candidate_dirs(data_root: Path | None) -> list[Path]:
    """Folders to look in, in order: the data root (flat or torchvision's layout), then Debian's."""
    dirs = []
    if data_root is not None:
        dirs += [data_root, data_root / "FashionMNIST" / "raw"]
    dirs.append(DEBIAN_DIR)
    return dirs


def locate_fashion_mnist(data_root: Path | None) -> dict[str, Path]:
    """Paths of the four IDX files; downloads with torchvision only when a data root was given."""
    dirs = _candidate_dirs(data_root)
    for folder in dirs:
        files = _find_files(folder)
        if files:
            return files
    download_note = ""
    if data_root is not None:
        # Only with an explicit data root: never write into a folder the user did not name.
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(data_root), train=True, download=True)
            FashionMNIST(str(data_root), train=False, download=True)
            files = _find_files(data_root / "FashionMNIST" / "raw")
            if files:
                return files
            download_note = " torchvision download finished but the files were not found."
        except Exception as exc:  # offline machines fail here; the message below says what to do
            download_note = f" torchvision download into {data_root} failed ({' '.join(str(exc).split())[:200]})."
    looked = ", ".join(str(d) for d in dirs)
    raise UserError(
        f"Fashion-MNIST not found: looked for {{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz] in "
        f"{looked}.{download_note} Get it with `apt-get install dataset-fashion-mnist` or pass "
        f"--data-root DIR with the four IDX files (from https://github.com/zalandoresearch/fashion-mnist)."
    )


@register_dataset("fashion_mnist_lt")
class FashionMnistLT(DatasetSpec):
    """Fashion-MNIST-LT: LDAM exponential profile over the 60,000 training images, official test set."""

    description = (
        "Fashion-MNIST, LDAM rho 100 (14,886 train images), class ranks drawn per seed, official balanced "
        "10,000 test; CPU benchmark"
    )
    # v2: class ranks drawn per seed; v1 (records before it): label order, T-shirt head, sneaker/bag/ankle boot few.
    ranks_per_seed = True
    data_version = 2
    citation = "Xiao, Rasul & Vollgraf 2017, Fashion-MNIST, arXiv:1708.07747; long tail: Cao et al. 2019, LDAM-DRW, NeurIPS"
    # CPU presets train at 16x16 for speed (28x28 crops are resized down); no blur at this size;
    # brightness and contrast jitter only (hue and saturation do nothing to gray images).
    augmentation = AugmentationSpec(
        input_size=16,
        min_scale=0.2,
        cj_strength=0.5,
        cj_hue=0.0,
        gaussian_blur=0.0,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
    presets = {
        "cpu": TrainPreset(
            name="cpu",
            backbone="small_cnn",
            epochs=40,
            batch_size=128,
            lr=0.3,
            weight_decay=5e-4,
            warmup_epochs=2,
            description="CPU, about 3 minutes per method on 2 cores",
        ),
        "tiny": TrainPreset(
            name="tiny", backbone="small_cnn", epochs=2, batch_size=64, warmup_epochs=0, description="smoke test"
        ),
    }
    default_preset = "cpu"

    def load(self, data_root: Path | None = None, run_seed: int = 0) -> LongTailData:
        files = locate_fashion_mnist(Path(data_root).expanduser() if data_root is not None else None)
        arrays = {key: read_idx(path, SHA256[key]) for key, path in files.items()}
        train_labels = arrays["train_labels"].astype(np.int64)
        order = class_rank_order(len(CLASS_NAMES), run_seed)
        counts = counts_in_label_order(ldam_counts(N_MAX, len(CLASS_NAMES), RHO), order)
        picks = ldam_indices(train_labels, counts, seed=SEED)
        return LongTailData(
            name="fashion_mnist_lt",
            train_images=arrays["train_images"][picks][..., None],
            train_labels=train_labels[picks],
            test_images=arrays["test_images"][..., None],
            test_labels=arrays["test_labels"].astype(np.int64),
            class_names=list(CLASS_NAMES),
            construction=(
                f"ldam(n_max={N_MAX}, rho={RHO:g}, seed={SEED}); class ranks drawn with seed {run_seed}, head to tail "
                f"{order.tolist()}; test: official 10,000"
            ),
            source=str(files["train_images"].parent),
            rank_order=order.tolist(),
            data_version=self.data_version,
        )
