"""The linear probes on frozen features: TS's LinearSVC probe (its exact problem, solved by
:mod:`bench.linear_svm`), TS's class-balanced "FS" subsample, and SDCLR's SGD-trained linear layer."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from bench.evaluation.arrays import ArrayLike, as_float_tensor, as_label_tensor, check_pair, smallest_class_count
from bench.linear_svm import fit_linear_svm

#: SDCLR train_cifar.py: ``--batch-size`` default 128 (the LT scripts never set it); fc N(0, 0.01), bias 0.
PROBE_BATCH_SIZE = 128
PROBE_INIT_STD = 0.01


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
    train = as_float_tensor(train_feats, "train_feats")
    test = as_float_tensor(test_feats, "test_feats")
    check_pair(train, test)
    labels = as_label_tensor(train_labels, train.shape[0], "train_labels")
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
    n = smallest_class_count(y)
    rng = np.random.RandomState(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=n, replace=False) for c in np.flatnonzero(np.bincount(y))]
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
    train = as_float_tensor(train_feats, "train_feats").float()
    test = as_float_tensor(test_feats, "test_feats").float()
    check_pair(train, test)
    labels = as_label_tensor(train_labels, train.shape[0], "train_labels")
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
