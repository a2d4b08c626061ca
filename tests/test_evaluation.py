"""Tests of bench.evaluation: hand-computed kNN answers and tie rules, agreement with scikit-learn and
lightly, per-class / per-group reporting, the linear probe and feature extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lightly.utils.benchmarking import knn_predict
from sklearn.datasets import make_blobs
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.neighbors import KNeighborsClassifier

from bench.evaluation import (
    PROTOCOLS,
    class_accuracies,
    evaluate,
    extract_features,
    group_report,
    knn_majority_predict,
    knn_majority_predict_many,
    knn_weighted_predict,
    linear_probe_predict,
)


def _normalised(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# Majority-vote kNN (TS)
# ------------------------------------------------------------------------------------------------

# Six training points in the plane, worked by hand below.
TRAIN_2D = np.array([[0, 0], [1, 0], [0, 3], [5, 0], [5, 1], [6, 0]], dtype=np.float64)
LABELS_2D = np.array([0, 0, 1, 1, 2, 2])


def test_knn_hand_made_2d():
    queries = np.array([[0.1, 0.0], [5.2, 0.1]])
    # Query (0.1, 0): distances 0.1 (#0, label 0), 0.9 (#1, label 0), 3.0 (#2, label 1), ...
    #   k=1 -> 0; k=3 -> votes {0: 2, 1: 1} -> 0.
    # Query (5.2, 0.1): distances 0.224 (#3, label 1), 0.806 (#5, label 2), 0.922 (#4, label 2), ...
    #   k=1 -> 1; k=3 -> votes {1: 1, 2: 2} -> 2.
    assert knn_majority_predict(TRAIN_2D, LABELS_2D, queries, k=1).tolist() == [0, 1]
    assert knn_majority_predict(TRAIN_2D, LABELS_2D, queries, k=3).tolist() == [0, 2]
    # Torch input gives the same answer, and chunking one row at a time does not change it.
    out = knn_majority_predict(torch.tensor(TRAIN_2D), torch.tensor(LABELS_2D), torch.tensor(queries), k=3, chunk_size=1)
    assert out.tolist() == [0, 2]
    assert out.dtype == np.int64


def test_knn_tie_rules():
    # Query (0, 0): #0 (0, 1) label 2 and #1 (0, -1) label 1 are both at distance 1; #2 (3, 0)
    # label 0 at distance 3; #3 far away.
    train = np.array([[0, 1], [0, -1], [3, 0], [10, 10]], dtype=np.float64)
    labels = np.array([2, 1, 0, 0])
    query = np.array([[0.0, 0.0]])
    # Equal distances: the lower training index comes first -> #0 -> label 2.
    assert knn_majority_predict(train, labels, query, k=1).tolist() == [2]
    # Vote tie {2: 1, 1: 1}: the smallest of the most-voted labels wins -> 1.
    assert knn_majority_predict(train, labels, query, k=2).tolist() == [1]
    # Three-way tie {2: 1, 1: 1, 0: 1} -> 0, although label 0 is the farthest neighbour.
    assert knn_majority_predict(train, labels, query, k=3).tolist() == [0]
    # Ties at the k-th distance: with #0 and #1 swapped, k=1 picks the new #0 (label 1).
    assert knn_majority_predict(train[[1, 0, 2, 3]], labels[[1, 0, 2, 3]], query, k=1).tolist() == [1]
    # The vote rule is np.argmax(np.bincount(...)).
    assert int(np.argmax(np.bincount([2, 1, 0]))) == 0


def test_knn_many_equal_distances_match_stable_sort_reference():
    # Small-integer points give many exactly equal distances; the neighbour set must be the first k
    # of a stable sort by distance and the vote np.argmax(np.bincount(...)).
    rng = np.random.default_rng(3)
    train = rng.integers(-2, 3, size=(300, 3)).astype(np.float64)
    labels = rng.integers(0, 5, size=300)
    queries = rng.integers(-2, 3, size=(100, 3)).astype(np.float64)
    d2 = ((queries[:, None, :] - train[None, :, :]) ** 2).sum(-1)
    ks = (1, 4, 10, 25)
    together = knn_majority_predict_many(train, labels, queries, ks, chunk_size=17)
    ordered = np.sort(d2, axis=1)
    for k in ks:
        # Both kinds of rows occur: the k-th distance shared with the (k+1)-th (the exact tie rule
        # decides) and not (the topk indices vote).
        tied = ordered[:, k - 1] == ordered[:, k]
        assert 0 < tied.sum() < len(queries)
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        expected = [int(np.argmax(np.bincount(labels[row], minlength=5))) for row in order]
        got = knn_majority_predict(train, labels, queries, k=k, chunk_size=17)
        assert got.tolist() == expected
        assert together[k].tolist() == expected


def test_knn_k_capped_at_train_size():
    # k larger than the set: every training point votes; {0: 2, 1: 2, 2: 2} -> 0.
    query = np.array([[5.5, 0.5]])
    assert knn_majority_predict(TRAIN_2D, LABELS_2D, query, k=50).tolist() == [0]


@pytest.mark.parametrize("k", [1, 10])
def test_knn_majority_matches_sklearn(k):
    rng = np.random.default_rng(k)
    train = _normalised(rng, 400, 16)
    test = _normalised(rng, 300, 16)
    y_train = rng.integers(0, 6, size=400)
    expected = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(train, y_train).predict(test)
    got = knn_majority_predict(train, y_train, test, k=k, chunk_size=37)
    np.testing.assert_array_equal(got, expected)
    # float32 torch input (what extract_features returns) ranks the same here.
    got32 = knn_majority_predict(
        torch.tensor(train, dtype=torch.float32), torch.tensor(y_train), torch.tensor(test, dtype=torch.float32), k=k
    )
    np.testing.assert_array_equal(got32, expected)


# ------------------------------------------------------------------------------------------------
# Weighted kNN (lightly)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_train", [500, 120])  # 120 < 200: k is capped at the train size
def test_knn_weighted_matches_lightly(n_train):
    rng = np.random.default_rng(n_train)
    train = torch.tensor(_normalised(rng, n_train, 32), dtype=torch.float32)
    test = torch.tensor(_normalised(rng, 250, 32), dtype=torch.float32)
    y_train = torch.tensor(rng.integers(0, 7, size=n_train))
    expected = knn_predict(test, train.T, y_train, num_classes=7, knn_k=min(200, n_train), knn_t=0.1)[:, 0]
    got = knn_weighted_predict(train, y_train, test, num_classes=7, chunk_size=33)
    np.testing.assert_array_equal(got, expected.numpy())


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------


def test_class_accuracies_and_overall_match_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 8, size=500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 8, size=500))
    acc = class_accuracies(y_true, y_pred, 8)
    np.testing.assert_allclose(acc, recall_score(y_true, y_pred, average=None))
    report = group_report(acc, ["many"] * 3 + ["medium"] * 3 + ["few"] * 2)
    assert report["overall"] == pytest.approx(balanced_accuracy_score(y_true, y_pred) * 100)


def test_absent_class_is_nan_and_left_out():
    y_true = np.array([0, 0, 1, 1, 3])  # class 2 absent from the test labels
    y_pred = np.array([0, 1, 1, 2, 3])
    acc = class_accuracies(y_true, y_pred, 4)
    assert acc[0] == 0.5 and acc[1] == 0.5 and acc[3] == 1.0 and math.isnan(acc[2])
    report = group_report(acc, ["many", "many", "few", "few"])
    with pytest.warns(UserWarning):  # sklearn: y_pred contains classes not in y_true
        expected = balanced_accuracy_score(y_true, y_pred) * 100
    assert report["overall"] == pytest.approx(expected) == pytest.approx(200 / 3)
    assert report["few"] == pytest.approx(100.0)  # class 2 has no test images, so only class 3
    assert report["medium"] is None
    assert report["per_class"][2] is None


def test_group_report_hand_made():
    acc = np.array([1.0, 0.5, 0.8, 0.2, 0.0, 0.6])
    groups = np.array(["many", "many", "medium", "medium", "few", "few"])
    report = group_report(acc, groups)
    assert report["many"] == pytest.approx(75.0)
    assert report["medium"] == pytest.approx(50.0)
    assert report["few"] == pytest.approx(30.0)
    assert report["overall"] == pytest.approx(310 / 6)
    assert report["per_class"] == pytest.approx([100.0, 50.0, 80.0, 20.0, 0.0, 60.0])
    assert all(type(report[key]) is float for key in ("overall", "many", "medium", "few"))
    assert all(type(v) is float for v in report["per_class"])
    with pytest.raises(ValueError):
        group_report(acc, ["many"] * 5 + ["rare"])
    with pytest.raises(ValueError):
        group_report(acc, ["many"] * 5)


# ------------------------------------------------------------------------------------------------
# Linear probe and evaluate()
# ------------------------------------------------------------------------------------------------


def _blobs(seed: int = 0):
    x, y = make_blobs(n_samples=600, centers=np.eye(4, 8) * 10, cluster_std=0.5, random_state=seed)
    return x[:400], y[:400], x[400:], y[400:]


def test_linear_probe_separable_blobs():
    x_tr, y_tr, x_te, y_te = _blobs()
    pred = linear_probe_predict(x_tr, y_tr, x_te, seed=0)
    assert class_accuracies(y_te, pred, 4).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_evaluate_runs_all_protocols():
    x_tr, y_tr, x_te, y_te = _blobs(1)
    x_tr = x_tr / np.linalg.norm(x_tr, axis=1, keepdims=True)
    x_te = x_te / np.linalg.norm(x_te, axis=1, keepdims=True)
    groups = ["many", "medium", "few", "few"]
    out = evaluate(torch.tensor(x_tr, dtype=torch.float32), y_tr, torch.tensor(x_te, dtype=torch.float32), y_te, 4, groups)
    assert set(out) == {"knn1", "knn10", "wknn", "linear", "timing"}
    assert set(out["timing"]) == {"knn1", "knn10", "wknn", "linear"}
    for name in ("knn1", "knn10", "wknn", "linear"):
        assert out[name]["overall"] == pytest.approx(100.0)
        assert len(out[name]["per_class"]) == 4
        assert out["timing"][name] >= 0
    assert set(PROTOCOLS) == {"knn1", "knn10", "wknn", "linear", "linear_fs", "probe_full", "probe_few"}
    with pytest.raises(ValueError, match="knn5"):
        evaluate(x_tr, y_tr, x_te, y_te, 4, groups, protocols=("knn1", "knn5"))


# ------------------------------------------------------------------------------------------------
# Feature extraction
# ------------------------------------------------------------------------------------------------


def _tiny_backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),  # (B, 8, 1, 1): flattened by extract_features
    )


def _preprocess(batch: torch.Tensor) -> torch.Tensor:
    return batch.permute(0, 3, 1, 2).float().div(255.0)


def test_extract_features_unit_norm_and_modes_restored():
    backbone = _tiny_backbone()
    backbone.train()
    backbone[2].eval()  # a submodule the caller keeps in eval mode: its own flag must come back
    running_mean = backbone[1].running_mean.clone()
    images = torch.randint(0, 256, (20, 10, 10, 3), dtype=torch.uint8)

    feats = extract_features(backbone, images, _preprocess, torch.device("cpu"), batch_size=7)

    assert feats.shape == (20, 8) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(20))
    assert not feats.requires_grad
    # Modes restored per submodule, and BN statistics untouched (it ran in eval mode).
    assert backbone.training and backbone[0].training and backbone[1].training and not backbone[2].training
    torch.testing.assert_close(backbone[1].running_mean, running_mean)
    # Same as one eval-mode forward of the whole set.
    backbone.eval()
    with torch.no_grad():
        direct = torch.nn.functional.normalize(backbone(_preprocess(images)).flatten(1), dim=1)
    torch.testing.assert_close(feats, direct)
    # An eval-mode module stays in eval mode.
    feats2 = extract_features(backbone, images, _preprocess, torch.device("cpu"))
    assert not backbone.training
    torch.testing.assert_close(feats2, direct)


def test_knn_for_several_k_equals_separate_calls_including_ties():
    from bench.evaluation import knn_majority_predict, knn_majority_predict_many

    rng = np.random.default_rng(5)
    # Rounded features give many exactly equal distances, so the tie rule is exercised.
    train = torch.as_tensor(np.round(rng.normal(size=(300, 4)), 1), dtype=torch.float32)
    test = torch.as_tensor(np.round(rng.normal(size=(70, 4)), 1), dtype=torch.float32)
    labels = torch.as_tensor(rng.integers(0, 5, size=300))
    many = knn_majority_predict_many(train, labels, test, (1, 10, 400), num_classes=5, chunk_size=16)
    for k in (1, 10, 400):
        np.testing.assert_array_equal(many[k], knn_majority_predict(train, labels, test, k, num_classes=5, chunk_size=16))
