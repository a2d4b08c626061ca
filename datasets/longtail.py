"""The LDAM exponential long-tail profile, its picks (Cao et al. 2019), and the classes' frequency ranks.

Reference: K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, "Learning Imbalanced Datasets with
Label-Distribution-Aware Margin Loss", NeurIPS 2019; code kaidic/LDAM-DRW, ``imbalance_cifar.py``
(``get_img_num_per_cls`` with ``imb_type="exp"`` and ``gen_imbalanced_data``). The same construction
is used by GH and most supervised long-tail work (CIFAR-10-LT 12,406 / CIFAR-100-LT 10,847 at rho 100).

LDAM gives class c the c-th largest count, so the tail is always the same classes. The small CPU
benchmarks (digits_lt, fashion_mnist_lt) instead draw which class gets which rank per repeat
(:func:`class_rank_order`), as the SDCLR split files do on CIFAR (VITA-Group/SDCLR ``split/``: each
split assigns classes to frequency ranks by its own permutation); leaderboard/PROTOCOL.md, "Datasets".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ldam_counts(n_max: int, num_classes: int, rho: float) -> list[int]:
    """Images kept per class: ``n_c = int(n_max * rho ** (-c / (C - 1)))`` for c = 0..C-1.

    Class 0 is the head (``n_max``), class C-1 the tail (``n_max / rho``), as in LDAM-DRW's
    ``get_img_num_per_cls`` (which writes ``n_max * (1 / rho) ** (c / (C - 1))``; the two forms give
    the same integers for every setting in leaderboard/PROTOCOL.md). E.g. ``ldam_counts(5000, 10, 100)`` is
    ``[5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]`` (12,406 images).
    """
    if num_classes < 2:
        raise ValueError(f"the LDAM profile needs at least 2 classes, got {num_classes}")
    if rho < 1:
        raise ValueError(f"the imbalance ratio rho must be >= 1, got {rho}")
    # int() truncates, exactly as upstream does; rounding would change the published sizes.
    return [int(n_max * rho ** (-c / (num_classes - 1))) for c in range(num_classes)]


#: Mixed into the run's seed for the rank draw, so that the class order is not the stream the same seed
#: gives anything else (the LDAM picks, the network's initialisation).
RANK_SALT = 0x7A11


def class_rank_order(num_classes: int, seed: int) -> np.ndarray:
    """The classes from head to tail (``order[r]`` gets the r-th largest count) for the repeat ``seed``.

    A permutation per seed, so that repeats vary which classes are rare (SDCLR's five CIFAR splits each
    rank the classes by their own permutation). Drawn with the legacy ``np.random.RandomState``
    seeded with ``[seed, RANK_SALT]``: NumPy keeps that stream fixed across versions (NEP 19), so a
    seed names the same order on every machine; records store the order anyway.
    """
    if seed < 0:
        raise ValueError(f"the rank draw needs a non-negative seed, got {seed}")
    return np.random.RandomState([seed, RANK_SALT]).permutation(num_classes).astype(np.int64)


def counts_in_label_order(rank_counts: Sequence[int], order: Sequence[int]) -> list[int]:
    """Per class (label order) the count of its rank: class ``order[r]`` gets ``rank_counts[r]``."""
    if sorted(int(c) for c in order) != list(range(len(rank_counts))):
        raise ValueError(f"the rank order {list(order)} is not a permutation of the {len(rank_counts)} classes")
    counts = [0] * len(rank_counts)
    for rank, cls in enumerate(order):
        counts[int(cls)] = int(rank_counts[rank])
    return counts


def ldam_indices(targets: np.ndarray, counts: Sequence[int], seed: int = 0) -> np.ndarray:
    """Indices into ``targets`` of the long-tail subset, exactly as LDAM-DRW's ``gen_imbalanced_data``.

    ``counts[c]`` is the number kept of class c (label order; LDAM's profile puts the head first).

    Upstream calls ``np.random.seed(seed)`` once, then for each class in label order shuffles the
    indices of that class and keeps the first ``n_c``; the result is concatenated in class order.
    A legacy ``np.random.RandomState(seed)`` draws the same stream as the seeded global generator
    (and NumPy keeps it stable across versions) without touching the caller's global random state.
    How many images each shuffle consumes depends on the class sizes only, not on ``counts``, so with
    the same ``seed`` a class's picks under one rank are a prefix of its picks under a larger rank.
    """
    targets = np.asarray(targets)
    rng = np.random.RandomState(seed)
    picks = []
    for c, n_c in enumerate(counts):
        idx = np.where(targets == c)[0]
        if len(idx) < n_c:
            raise ValueError(f"class {c} has {len(idx)} images, fewer than the {n_c} the profile asks for")
        rng.shuffle(idx)
        picks.append(idx[:n_c])
    return np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, dtype=np.int64)
