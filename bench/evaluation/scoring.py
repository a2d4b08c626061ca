"""From predictions to a record's numbers: per-class accuracy, the class-averaged ("overall") accuracy
and the many / medium / few group means, all in percent."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from bench.evaluation.arrays import ArrayLike
from bench.keys import GROUPS


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
