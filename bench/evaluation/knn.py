"""The kNN predictors on frozen features: TS's majority vote (kNN@k, Euclidean) and lightly's weighted
kNN (cosine similarity, exp(sim / t) weights).

Tie rule of the majority-vote kNN (:func:`knn_majority_predict`), stated once here:

1. Neighbours: the k training points with the smallest Euclidean distance; among training points at
   exactly the same distance the one with the *lower training index* is taken first (the order a
   stable sort gives).
2. Vote: the most-voted label wins; among equally voted labels the *smallest label* wins -- the
   rule of ``np.argmax(np.bincount(...))``, ``scipy.stats.mode`` and therefore of scikit-learn's
   ``KNeighborsClassifier`` (which takes the first maximum over its sorted ``classes_``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from bench.evaluation.arrays import ArrayLike, as_float_tensor, as_label_tensor, check_pair

#: lightly's defaults (from Wu et al. 2018, "instance discrimination"), used by DySTreSS too.
WKNN_K = 200
WKNN_T = 0.1

# Upper bound on the elements of one (test chunk x train) distance block: 2**25 float64 values are
# 256 MiB, so even ImageNet-LT's ~116k training features get chunks of ~290 test rows.
_MAX_BLOCK_ELEMENTS = 2**25


def _knn_inputs(
    train_feats: ArrayLike, train_labels: ArrayLike, test_feats: ArrayLike, k: int, num_classes: Optional[int], device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.device, int]:
    """Validated kNN inputs: train and test features, labels, the class count, the device, and k capped
    at the training set's size (every point votes when k exceeds it)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train = as_float_tensor(train_feats, "train_feats")
    test = as_float_tensor(test_feats, "test_feats")
    check_pair(train, test)
    labels = as_label_tensor(train_labels, train.shape[0], "train_labels")
    n_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if int(labels.max()) >= n_classes:
        raise ValueError(f"train_labels contain {int(labels.max())} >= num_classes {n_classes}")
    dev = torch.device(device) if device is not None else train.device
    return train, test, labels, n_classes, dev, min(k, train.shape[0])


def _chunk_rows(n_train: int, chunk_size: Optional[int]) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return chunk_size
    return max(1, min(4096, _MAX_BLOCK_ELEMENTS // max(1, n_train)))


def knn_majority_predict(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    k: int,
    *,
    num_classes: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> np.ndarray:
    """TS's kNN@k: unweighted majority vote among the k Euclidean-nearest long-tail training features.

    Kukleva et al. (ICLR 2023) evaluate kNN@1 and kNN@10 with the Euclidean distance on
    L2-normalised backbone features against the (long-tail) training set. This computes the true
    squared Euclidean distance ``|a|^2 + |b|^2 - 2 a.b`` (the square root does not change the
    order), in float64 so that near-equal distances are ordered as scikit-learn orders them. For
    unit-norm features this equals ``2 - 2 cos(a, b)`` and ranks exactly like cosine similarity,
    but the formula does not assume normalised input, so it stays TS's Euclidean protocol for any
    features.

    Tie rule (deterministic, see the module docstring): among training points at the same distance
    the lower training index is taken first; among equally voted labels the smallest label wins --
    the rule of ``np.argmax(np.bincount(.))`` / ``scipy.stats.mode`` and of
    ``sklearn.neighbors.KNeighborsClassifier(n_neighbors=k, algorithm='brute')``, which this
    reproduces whenever no two training points are at exactly the same distance.

    Args:
        train_feats: (N, D) training features (the long-tail train set).
        train_labels: (N,) integer class indices.
        test_feats: (M, D) query features.
        k: neighbours per query, >= 1; capped at N (a set smaller than k votes with all its points).
        num_classes: number of classes; default max(train_labels) + 1.
        device: where to compute; default the device of ``train_feats`` if it is a tensor, else CPU.
        chunk_size: test rows per distance block; default keeps a block at ~256 MiB.

    Returns:
        (M,) int64 numpy array of predicted labels.
    """
    return knn_majority_predict_many(
        train_feats, train_labels, test_feats, (k,), num_classes=num_classes, device=device, chunk_size=chunk_size
    )[k]


def knn_majority_predict_many(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    ks: Sequence[int],
    *,
    num_classes: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> dict[int, np.ndarray]:
    """:func:`knn_majority_predict` for several k at once, ``{k: predictions}``: the distance matrix,
    the expensive part, is computed once for all of them (kNN@1 and kNN@10 share it). Each k's
    predictions are exactly those of a separate call."""
    if not ks:
        raise ValueError("ks must name at least one k")
    for k in ks:
        _knn_inputs(train_feats, train_labels, test_feats, k, num_classes, device)  # every k validated
    train, test, labels, n_classes, dev, _ = _knn_inputs(train_feats, train_labels, test_feats, max(ks), num_classes, device)
    capped = {k: min(k, train.shape[0]) for k in ks}

    train = train.to(dev, torch.float64)
    train_sq = (train * train).sum(dim=1)  # (N,)
    # One-hot of the training labels: a vote count is then a matrix product of the neighbour mask.
    onehot = F.one_hot(labels.to(dev), n_classes).to(torch.float64)  # (N, C)
    rows = _chunk_rows(train.shape[0], chunk_size)

    # One topk of the largest k (+1, to see whether the k-th distance is tied with the next) serves every k.
    depth = min(max(capped.values()) + 1, train.shape[0])
    predictions: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for start in range(0, test.shape[0], rows):
        q = test[start : start + rows].to(dev, torch.float64)
        d2 = (q * q).sum(dim=1, keepdim=True) + train_sq.unsqueeze(0) - 2.0 * (q @ train.T)  # (B, N)
        nearest_d2, nearest = torch.topk(d2, depth, dim=1, largest=False)  # (B, depth), ascending
        for k, k_capped in capped.items():
            # The k nearest are a well-defined set unless the k-th distance is shared by a point outside
            # them (topk's choice among equal values is unspecified): those rows, rare for real-valued
            # features, take the exact rule below; every other row votes with its topk indices.
            kth = nearest_d2[:, k_capped - 1 : k_capped]  # (B, 1)
            tied = (nearest_d2[:, k_capped] == kth[:, 0]) if k_capped < depth else torch.zeros_like(kth[:, 0], dtype=torch.bool)
            votes = onehot[nearest[:, :k_capped]].sum(dim=1)  # (B, C), exact small integers
            if tied.any():
                # Everything strictly closer is a neighbour, and of the points exactly at the k-th
                # distance the lowest-indexed fill the remaining places: a stable sort's set.
                rows_d2, rows_kth = d2[tied], kth[tied]
                closer = rows_d2 < rows_kth
                at_kth = rows_d2 == rows_kth
                missing = k_capped - closer.sum(dim=1, keepdim=True)
                chosen = closer | (at_kth & (torch.cumsum(at_kth, dim=1) <= missing))
                votes[tied] = chosen.to(torch.float64) @ onehot
            # torch.argmax returns the first maximal index: the smallest of the most-voted labels.
            predictions[k].append(votes.argmax(dim=1).cpu())
    return {k: torch.cat(p).numpy().astype(np.int64) if p else np.empty(0, dtype=np.int64) for k, p in predictions.items()}


def knn_weighted_predict(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    num_classes: Optional[int] = None,
    k: int = WKNN_K,
    t: float = WKNN_T,
    *,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> np.ndarray:
    """lightly's weighted kNN: ``lightly.utils.benchmarking.knn_predict`` with k = 200, t = 0.1.

    This is the monitoring kNN of lightly's benchmarks (and of DySTreSS): cosine similarity (the dot
    product -- the features must already be L2-normalised, as :func:`extract_features` returns
    them; they are not renormalised here so that the result is exactly lightly's), the k most
    similar training features each vote for their label with weight exp(sim / t), and the label
    with the largest summed weight is the prediction. lightly's function is called as is, on chunks
    of test rows (each row is independent, so chunking only bounds memory); k is capped at the
    number of training features because ``topk`` cannot return more.

    Args:
        train_feats, train_labels, test_feats: as :func:`knn_majority_predict`.
        num_classes: default max(train_labels) + 1.
        k, t: lightly's ``knn_k`` and ``knn_t`` (defaults 200 and 0.1).
        device: default the device of ``train_feats`` if it is a tensor, else CPU.
        chunk_size: test rows per call of ``knn_predict``.

    Returns:
        (M,) int64 numpy array of top-1 predictions (``knn_predict(...)[:, 0]``).
    """
    from lightly.utils.benchmarking import knn_predict

    train, test, labels, n_classes, dev, k = _knn_inputs(train_feats, train_labels, test_feats, k, num_classes, device)

    # lightly expects the bank as (D, N); float32 as in lightly's own benchmarks.
    bank = train.to(dev, torch.float32).T.contiguous()
    bank_labels = labels.to(dev)
    rows = _chunk_rows(train.shape[0], chunk_size)
    predictions = []
    with torch.no_grad():
        for start in range(0, test.shape[0], rows):
            q = test[start : start + rows].to(dev, torch.float32)
            ranked = knn_predict(q, bank, bank_labels, num_classes=n_classes, knn_k=k, knn_t=t)
            predictions.append(ranked[:, 0].cpu())
    if not predictions:
        return np.empty(0, dtype=np.int64)
    return torch.cat(predictions).numpy().astype(np.int64)
