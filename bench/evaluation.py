"""Evaluation of frozen backbone features: kNN, weighted kNN and linear probes, reported per class
and per many / medium / few group.

Protocols (``PROTOCOLS``; see leaderboard/PROTOCOL.md, "Evaluation protocols", for sources and deviations):

- ``knn1`` / ``knn10`` -- TS (Kukleva et al., "Temperature Schedules for Self-Supervised Contrastive
  Methods on Long-Tail Data", ICLR 2023): backbone features after global pooling (before the
  projection head), L2-normalised; Euclidean distance to the *long-tail training* features;
  unweighted majority vote among the k nearest; accuracy averaged over classes.
- ``wknn`` -- lightly / DySTreSS monitoring kNN: ``lightly.utils.benchmarking.knn_predict`` with
  k = 200, t = 0.1 (cosine similarity, neighbours weighted by exp(sim / t)).
- ``linear`` -- TS's "LT" linear probe: ``sklearn.svm.LinearSVC``'s problem (C = 1.0, squared hinge,
  L2, one-vs-rest) on the whole long-tail training set's frozen features, solved exactly by
  :mod:`bench.linear_svm` (liblinear itself took 7 minutes on CIFAR's raw pixels).
- ``linear_fs`` -- TS's "FS" linear probe: the same LinearSVC on a class-balanced subsample of the
  long-tail training set, n = the smallest class count per class (:func:`balanced_subsample`), TS's
  rule on CIFAR-LT; where the dataset publishes a few-shot list it supplies it as the probe set
  ``"fs"`` (:data:`FS_PROBE_SET`) and the SVM trains on that list instead, as TS on ImageNet100-LT
  (``imageNet_100_sub_balance_train_0.01.txt``, 12 images per class).
- ``probe_full`` / ``probe_few`` -- SDCLR's full-shot and few-shot linear probes (Jiang et al., ICML
  2021; ``train_cifar.py`` run by ``cmds/shell_scrips/cifar-10-LT.sh``): a linear layer on the raw
  average-pooled backbone features (not L2-normalised), initialised N(0, 0.01) with bias 0
  (``cvt_state_dict``), trained with SGD (lr 30, momentum 0.9, no weight decay, batch 128 -- the
  script's default, which the shell scripts never override; 30 epochs with lr x 0.1 at 10 and 20 /
  100 epochs with decays at 40 and 60) on the dataset's balanced probe set (CIFAR: trainIdxList /
  S_b; ImageNet: the full train folder / the 1 % list). Deviations, said here and in the record: the
  layer is trained on features extracted once from un-augmented images (SDCLR trains the fc through
  the frozen backbone with augmentation) and the last epoch is reported (SDCLR picks the epoch on its
  val list).

Suites for ``--eval`` (:data:`EVAL_SUITES`): ``default`` (knn1, knn10, wknn, linear), ``ts`` (knn1,
knn10, linear_fs, linear), ``sdclr`` (probe_full, probe_few), ``all``.

Every protocol's predictions go through :func:`class_accuracies` and :func:`group_report`, so each
result has the class-averaged ("overall") accuracy, the many / medium / few group means and the
per-class accuracies, all in percent.

Tie rule of the majority-vote kNN (:func:`knn_majority_predict`), stated once here:

1. Neighbours: the k training points with the smallest Euclidean distance; among training points at
   exactly the same distance the one with the *lower training index* is taken first (the order a
   stable sort gives).
2. Vote: the most-voted label wins; among equally voted labels the *smallest label* wins -- the
   rule of ``np.argmax(np.bincount(...))``, ``scipy.stats.mode`` and therefore of scikit-learn's
   ``KNeighborsClassifier`` (which takes the first maximum over its sorted ``classes_``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from bench.keys import GROUPS
from bench.linear_svm import SOLVER, fit_linear_svm

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]

#: Protocol name -> one-line description. The names appear in records and on the leaderboard.
PROTOCOLS: dict[str, str] = {
    "knn1": "kNN@1, Euclidean nearest neighbour among the long-tail train features, class-averaged (TS)",
    "knn10": "kNN@10, Euclidean majority vote against the long-tail train features, class-averaged (TS)",
    "wknn": "weighted kNN, k=200, t=0.1 (lightly.utils.benchmarking.knn_predict), class-averaged",
    "linear": f"linear probe, sklearn LinearSVC(C=1.0)'s problem ({SOLVER}) on the whole long-tail train "
    "features, class-averaged (TS 'LT')",
    "linear_fs": f"linear probe, sklearn LinearSVC(C=1.0)'s problem ({SOLVER}) on a class-balanced subsample of "
    "the long-tail train features, n = smallest class count per class, class-averaged (TS 'FS')",
    "probe_full": "SDCLR full-shot linear probe: nn.Linear (init N(0, 0.01), bias 0), SGD lr 30, batch 128, 30 epochs, "
    "decays at 10/20, on raw (unnormalised) frozen features of the balanced full-shot probe set (extracted once, "
    "no augmentation; last epoch), class-averaged",
    "probe_few": "SDCLR few-shot linear probe: nn.Linear (init N(0, 0.01), bias 0), SGD lr 30, batch 128, 100 epochs, "
    "decays at 40/60, on raw (unnormalised) frozen features of the few-shot probe set (extracted once, "
    "no augmentation; last epoch), class-averaged",
}

#: Named sets of protocols for ``--eval``; "default" is what runs always ran.
EVAL_SUITES: dict[str, tuple[str, ...]] = {
    "default": ("knn1", "knn10", "wknn", "linear"),
    "ts": ("knn1", "knn10", "linear_fs", "linear"),
    "sdclr": ("probe_full", "probe_few"),
    "all": tuple(PROTOCOLS),
}

#: The probe set (:class:`datasets.base.ProbeSet` name) each probe protocol trains on.
PROBE_SET_OF: dict[str, str] = {"probe_full": "full", "probe_few": "few"}

#: The probe set a dataset may supply for ``linear_fs`` (TS's FS list); without it, :func:`balanced_subsample`.
FS_PROBE_SET = "fs"

#: SDCLR's probe schedules: (epochs, lr decay milestones) (cmds/shell_scrips/cifar-10-LT.sh).
_PROBE_SCHEDULE = {"probe_full": (30, (10, 20)), "probe_few": (100, (40, 60))}

#: SDCLR train_cifar.py: ``--batch-size`` default 128 (the LT scripts never set it); fc N(0, 0.01), bias 0.
PROBE_BATCH_SIZE = 128
PROBE_INIT_STD = 0.01

#: k of the majority-vote protocols.
_MAJORITY_K = {"knn1": 1, "knn10": 10}

#: lightly's defaults (from Wu et al. 2018, "instance discrimination"), used by DySTreSS too.
WKNN_K = 200
WKNN_T = 0.1

# Upper bound on the elements of one (test chunk x train) distance block: 2**25 float64 values are
# 256 MiB, so even ImageNet-LT's ~116k training features get chunks of ~290 test rows.
_MAX_BLOCK_ELEMENTS = 2**25


# --------------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------------


def extract_features(
    backbone: torch.nn.Module,
    images: Any,
    preprocess: Callable[[Any], torch.Tensor],
    device: torch.device,
    batch_size: int = 512,
    normalize: bool = True,
) -> torch.Tensor:
    """Frozen backbone features of ``images``, L2-normalised (unless ``normalize=False``: the raw
    pooled features SDCLR's probes train on), as a float32 CPU tensor of shape (N, D).

    As TS (Kukleva et al., ICLR 2023) evaluates: the backbone's output after global pooling and
    before the projection head -- pass the backbone, not the model with its head -- normalised to
    unit length.

    Args:
        backbone: the network mapping a float batch (B, C, H, W) to (B, D) (or (B, D, 1, 1), which is
            flattened). It must already be on ``device``; it is not moved.
        images: anything with ``len()`` and slicing, typically a uint8 tensor (N, H, W, C).
        preprocess: maps one slice ``images[i:i + batch_size]`` to the float network input (e.g.
            permute, scale to [0, 1], normalise with the dataset mean/std) on ``device``. Its output
            is moved to ``device`` if it is not there already.
        device: where the forward passes run. On CUDA they run under bf16 autocast with a
            channels_last input (the fast path of tensor cores); the features are cast back to
            float32 before normalising, so downstream distances are computed in full precision.
        batch_size: images per forward pass (default 512, the CIFAR-LT training batch).

    The module runs in eval mode (BatchNorm uses its running statistics, which are not updated) and
    under ``torch.no_grad``; each submodule's previous train/eval flag is restored afterwards, also
    on error, so calling this in the middle of training is safe.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    if n == 0:
        raise ValueError("extract_features got no images")
    device = torch.device(device)
    on_cuda = device.type == "cuda"

    # Remember every submodule's flag, not just the top-level one: a caller may keep some parts
    # (e.g. frozen BatchNorm layers) in eval mode while training the rest, and module.train(True)
    # would silently flip them back to training mode.
    previous_modes = [(module, module.training) for module in backbone.modules()]
    backbone.eval()
    chunks: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                x = preprocess(images[start : start + batch_size])
                x = x.to(device, non_blocking=True)
                if on_cuda:
                    if x.dim() == 4:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                        out = backbone(x)
                else:
                    out = backbone(x)
                out = out.float().flatten(1)
                chunks.append((F.normalize(out, dim=1) if normalize else out).cpu())
    finally:
        for module, mode in previous_modes:
            module.training = mode
    return torch.cat(chunks, dim=0)


# --------------------------------------------------------------------------------------------------
# Predictors. All accept torch tensors or numpy arrays and return int64 numpy predictions.
# --------------------------------------------------------------------------------------------------


def _as_float_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.float()
    return t


def _as_label_tensor(y: ArrayLike, n: int, name: str) -> torch.Tensor:
    t = y.detach().cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    t = t.reshape(-1).long()
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} labels for {n} feature rows")
    if n and int(t.min()) < 0:
        raise ValueError(f"{name} must be non-negative class indices")
    return t


def _check_pair(train: torch.Tensor, test: torch.Tensor) -> None:
    if train.shape[0] == 0:
        raise ValueError("the training features are empty")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"feature dimensions differ: train {train.shape[1]}, test {test.shape[1]}")


def _knn_inputs(train_feats: ArrayLike, train_labels: ArrayLike, test_feats: ArrayLike, k: int,
                num_classes: Optional[int], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.device, int]:
    """Validated kNN inputs: train and test features, labels, the class count, the device, and k capped
    at the training set's size (every point votes when k exceeds it)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train = _as_float_tensor(train_feats, "train_feats")
    test = _as_float_tensor(test_feats, "test_feats")
    _check_pair(train, test)
    labels = _as_label_tensor(train_labels, train.shape[0], "train_labels")
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
    return knn_majority_predict_many(train_feats, train_labels, test_feats, (k,), num_classes=num_classes,
                                     device=device, chunk_size=chunk_size)[k]


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


def linear_probe_predict(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    seed: int = 0,
    *,
    C: float = 1.0,
) -> np.ndarray:
    """TS's linear probe: ``sklearn.svm.LinearSVC(C=1.0)``'s problem on frozen features, solved exactly.

    Kukleva et al. (ICLR 2023) fit scikit-learn's LinearSVC on frozen features (FS: on a
    class-balanced subsample, LT: on the whole long-tail training set): one-vs-rest, squared hinge,
    L2 penalty, a regularised intercept. That problem has one solution; :mod:`bench.linear_svm`
    finds it with a preconditioned Newton method for all classes at once (float64, threaded BLAS)
    instead of liblinear's one-class-at-a-time solver, which took 7 minutes on CIFAR's raw pixels.
    ``tests/test_linear_svm.py`` checks it against liblinear. Until 2026-12-04 records were scored with
    ``LinearSVC(dual='auto', max_iter=5000, random_state=seed)`` itself; their ``evaluation``
    descriptions say so. ``seed`` is unused (the solver has no random order) and kept so every
    protocol takes one.

    Returns:
        (M,) int64 numpy array of predicted labels.
    """
    train = _as_float_tensor(train_feats, "train_feats")
    test = _as_float_tensor(test_feats, "test_feats")
    _check_pair(train, test)
    labels = _as_label_tensor(train_labels, train.shape[0], "train_labels")
    if labels.unique().numel() < 2:
        # An SVM needs two classes; with one class every prediction is that class anyway.
        return np.full(test.shape[0], int(labels[0]), dtype=np.int64)
    model = fit_linear_svm(train.cpu(), labels, C=C)
    return model.predict(test.cpu()).numpy().astype(np.int64)


def balanced_subsample(labels: ArrayLike, seed: int = 0) -> np.ndarray:
    """Indices of TS's "FS" training set: n = the smallest class count, n random images of every class.

    ``np.random.RandomState(seed)``, classes in label order, each class's indices drawn without
    replacement; returned sorted. Classes absent from ``labels`` are ignored (they have no images).
    """
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1).astype(np.int64)
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    n = int(counts[present].min())
    rng = np.random.RandomState(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=n, replace=False) for c in present]
    return np.sort(np.concatenate(picks))


def sgd_linear_probe_predict(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    num_classes: int,
    epochs: int = 30,
    milestones: Sequence[int] = (10, 20),
    seed: int = 0,
    *,
    lr: float = 30.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = PROBE_BATCH_SIZE,
    device: Optional[Union[str, torch.device]] = None,
) -> np.ndarray:
    """SDCLR's linear evaluation on frozen features: ``nn.Linear`` trained with SGD and cross-entropy.

    Jiang et al. (ICML 2021), ``train_cifar.py`` / ``train_imagenet.py``: only the fc layer is
    trained, initialised N(0, 0.01) with bias 0 (``cvt_state_dict``), SGD lr 30, momentum 0.9, weight
    decay 0, batch 128 (``--batch-size``'s default), 30 epochs with the lr divided by 10 at epochs 10
    and 20 (full shot); the few-shot probe runs 100 epochs with decays at 40 and 60. SDCLR feeds the
    fc the raw average-pooled features, so pass unnormalised ones (``extract_features(...,
    normalize=False)``). Here the features are given (extracted once); the shuffle and the layer's
    initialisation come from ``seed``. Returns (M,) int64 predictions of the last epoch.
    """
    train = _as_float_tensor(train_feats, "train_feats").float()
    test = _as_float_tensor(test_feats, "test_feats").float()
    _check_pair(train, test)
    labels = _as_label_tensor(train_labels, train.shape[0], "train_labels")
    dev = torch.device(device) if device is not None else train.device
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(train.shape[1], num_classes)
    with torch.no_grad():  # SDCLR's init, drawn from the seeded generator for repeatability
        layer.weight.normal_(0.0, PROBE_INIT_STD, generator=generator)
        layer.bias.zero_()
    layer.to(dev)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=0.1)
    x, y = train.to(dev), labels.to(dev)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator).to(dev)
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                loss = F.cross_entropy(layer(x[batch]), y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
    with torch.no_grad():
        return layer(test.to(dev)).argmax(dim=1).cpu().numpy().astype(np.int64)


def parse_eval(text: str) -> tuple[str, ...]:
    """``--eval``: suite names and/or protocol names, comma-separated, in order, without repeats."""
    from bench.errors import UserError

    names: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part in EVAL_SUITES:
            names.extend(EVAL_SUITES[part])
        elif part in PROTOCOLS:
            names.append(part)
        else:
            raise UserError(f"unknown --eval {part!r}; suites: {', '.join(EVAL_SUITES)}; protocols: {', '.join(PROTOCOLS)}.")
    if not names:
        raise UserError("--eval is empty; name a suite (default, ts, sdclr, all) or protocols.")
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def class_accuracies(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Per-class accuracy (recall) as fractions in [0, 1]; NaN for classes absent from ``y_true``.

    Equals ``sklearn.metrics.recall_score(y_true, y_pred, average=None)`` on the classes present
    (scikit-learn reports 0 with a warning for absent ones; NaN here keeps them out of every mean).
    """
    yt = np.asarray(y_true.cpu() if isinstance(y_true, torch.Tensor) else y_true).reshape(-1).astype(np.int64)
    yp = np.asarray(y_pred.cpu() if isinstance(y_pred, torch.Tensor) else y_pred).reshape(-1).astype(np.int64)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.size} labels, y_pred {yp.size}")
    if yt.size and (yt.min() < 0 or yt.max() >= num_classes):
        raise ValueError(f"y_true labels must lie in [0, {num_classes})")
    support = np.bincount(yt, minlength=num_classes).astype(np.float64)
    correct = np.bincount(yt[yt == yp], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = correct / support
    acc[support == 0] = np.nan
    return acc


def _percent(value: float) -> Optional[float]:
    # NaN is not valid JSON; records store "no value" as null.
    return None if math.isnan(value) else float(value) * 100.0


def group_report(per_class_acc: ArrayLike, groups: ArrayLike) -> dict[str, Any]:
    """Class-averaged and many / medium / few accuracies, in percent (0..100), as Python floats.

    Args:
        per_class_acc: (C,) per-class accuracies as fractions (from :func:`class_accuracies`); NaN
            marks a class absent from the test set, which is left out of every mean.
        groups: (C,) strings 'many' / 'medium' / 'few' (the split of leaderboard/PROTOCOL.md, "Many / medium /
            few", made by the dataset from its training counts).

    Returns:
        ``{"overall": ..., "many": ..., "medium": ..., "few": ..., "per_class": [...]}``. "overall" is
        the mean over classes -- the class-averaged accuracy TS reports, equal to
        ``sklearn.metrics.balanced_accuracy_score * 100``; each group value is the mean over that
        group's classes. A mean with no class to average (an empty group) and the per-class entry
        of an absent class are ``None`` rather than NaN, so the report is valid JSON.
    """
    acc = np.asarray(per_class_acc, dtype=np.float64).reshape(-1)
    grp = np.asarray(groups).reshape(-1).astype(str)
    if grp.shape != acc.shape:
        raise ValueError(f"groups has {grp.size} entries for {acc.size} classes")
    unknown = sorted(set(grp.tolist()) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown group names {unknown}; expected {list(GROUPS)}")

    def mean(values: np.ndarray) -> Optional[float]:
        present = values[~np.isnan(values)]
        return _percent(float(present.mean())) if present.size else None

    report: dict[str, Any] = {"overall": mean(acc)}
    for name in GROUPS:
        report[name] = mean(acc[grp == name])
    report["per_class"] = [_percent(float(a)) for a in acc]
    return report


# --------------------------------------------------------------------------------------------------
# All protocols at once
# --------------------------------------------------------------------------------------------------


def evaluate(
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    test_feats: ArrayLike,
    test_labels: ArrayLike,
    num_classes: int,
    groups: ArrayLike,
    protocols: Sequence[str] = ("knn1", "knn10", "wknn", "linear"),
    seed: int = 0,
    *,
    device: Optional[Union[str, torch.device]] = None,
    probe_sets: Optional[dict[str, tuple[ArrayLike, ArrayLike]]] = None,
    probe_test_feats: Optional[ArrayLike] = None,
) -> dict[str, dict[str, Any]]:
    """Run the named protocols on frozen features and report each per class and per group.

    Args:
        train_feats, train_labels: the long-tail training set's features (L2-normalised, from
            :func:`extract_features`) and labels -- all protocols use the long-tail set, as TS.
        test_feats, test_labels: the (balanced) test set.
        num_classes: C.
        groups: (C,) 'many' / 'medium' / 'few' per class.
        protocols: names from :data:`PROTOCOLS`; an unknown name raises ``ValueError`` before any
            work is done.
        seed: random_state of the linear probes and of the FS subsample.
        device: where the kNN protocols compute; default the features' device.
        probe_sets: ``{"full" | "few": (features, labels)}`` for the probe protocols
            (:data:`PROBE_SET_OF`); a probe protocol without its set raises ``ValueError``. SDCLR's
            probes train on raw (unnormalised) features: pass those here, and the test set's raw
            features as ``probe_test_feats`` (default: ``test_feats``). ``"fs"``
            (:data:`FS_PROBE_SET`), where given, is what ``linear_fs`` trains on (L2-normalised, as TS).

    Returns:
        ``{protocol: group_report(...), ..., "timing": {protocol: seconds}}``.
    """
    protocols = list(protocols)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown evaluation protocol(s) {unknown}; known: {sorted(PROTOCOLS)}")
    missing_sets = [p for p in protocols if p in PROBE_SET_OF and PROBE_SET_OF[p] not in (probe_sets or {})]
    if missing_sets:
        raise ValueError(f"protocol(s) {missing_sets} need probe sets {[PROBE_SET_OF[p] for p in missing_sets]}")
    groups_arr = np.asarray(groups).reshape(-1)
    if groups_arr.size != num_classes:
        raise ValueError(f"groups has {groups_arr.size} entries for {num_classes} classes")

    results: dict[str, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    majority: dict[int, np.ndarray] = {}
    for name in protocols:
        start = time.perf_counter()
        if name in _MAJORITY_K:
            if not majority:
                # kNN@1 and kNN@10 share one distance matrix; its time counts for the first of them.
                ks = tuple(sorted({_MAJORITY_K[p] for p in protocols if p in _MAJORITY_K}))
                majority = knn_majority_predict_many(train_feats, train_labels, test_feats, ks,
                                                     num_classes=num_classes, device=device)
            pred = majority[_MAJORITY_K[name]]
        elif name == "wknn":
            pred = knn_weighted_predict(train_feats, train_labels, test_feats, num_classes, device=device)
        elif name == "linear":
            pred = linear_probe_predict(train_feats, train_labels, test_feats, seed)
        elif name == "linear_fs" and FS_PROBE_SET in (probe_sets or {}):
            fs_feats, fs_labels = probe_sets[FS_PROBE_SET]  # type: ignore[index]
            pred = linear_probe_predict(fs_feats, fs_labels, test_feats, seed)
        elif name == "linear_fs":
            subset = torch.as_tensor(balanced_subsample(train_labels, seed))
            feats = train_feats if isinstance(train_feats, torch.Tensor) else torch.as_tensor(np.asarray(train_feats))
            labels = train_labels if isinstance(train_labels, torch.Tensor) else torch.as_tensor(np.asarray(train_labels))
            pred = linear_probe_predict(feats[subset], labels[subset], test_feats, seed)
        elif name in PROBE_SET_OF:
            probe_feats, probe_labels = probe_sets[PROBE_SET_OF[name]]  # type: ignore[index]
            epochs, milestones = _PROBE_SCHEDULE[name]
            pred = sgd_linear_probe_predict(probe_feats, probe_labels,
                                            test_feats if probe_test_feats is None else probe_test_feats,
                                            num_classes, epochs, milestones, seed, device=device)
        else:  # pragma: no cover - PROTOCOLS and this dispatch are kept in step
            raise ValueError(f"protocol {name!r} has no implementation")
        timing[name] = time.perf_counter() - start
        results[name] = group_report(class_accuracies(test_labels, pred, num_classes), groups_arr)
    results["timing"] = timing
    return results


__all__ = [
    "PROTOCOLS",
    "WKNN_K",
    "WKNN_T",
    "extract_features",
    "knn_majority_predict",
    "knn_majority_predict_many",
    "knn_weighted_predict",
    "linear_probe_predict",
    "sgd_linear_probe_predict",
    "balanced_subsample",
    "parse_eval",
    "EVAL_SUITES",
    "PROBE_SET_OF",
    "FS_PROBE_SET",
    "class_accuracies",
    "group_report",
    "evaluate",
]
