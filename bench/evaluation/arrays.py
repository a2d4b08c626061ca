"""Input checks shared by every predictor: features as 2-D float tensors, labels as non-negative class
indices of the right count, train and test of the same width. Each predictor accepts torch tensors or
numpy arrays and returns int64 numpy predictions."""

from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]


def as_float_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.float()
    return t


def as_label_tensor(y: ArrayLike, n: int, name: str) -> torch.Tensor:
    t = y.detach().cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    t = t.reshape(-1).long()
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} labels for {n} feature rows")
    if n and int(t.min()) < 0:
        raise ValueError(f"{name} must be non-negative class indices")
    return t


def check_pair(train: torch.Tensor, test: torch.Tensor) -> None:
    if train.shape[0] == 0:
        raise ValueError("the training features are empty")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"feature dimensions differ: train {train.shape[1]}, test {test.shape[1]}")


def smallest_class_count(labels: ArrayLike) -> int:
    """The number of images of the rarest class present in ``labels`` (absent classes are ignored)."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1).astype(np.int64)
    counts = np.bincount(y)
    return int(counts[counts > 0].min())
