"""bench/linear_svm.py solves scikit-learn's LinearSVC problem: same weights as liblinear solved to a
tight tolerance, same predictions as LinearSVC as the TS protocol calls it."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.svm import LinearSVC

from bench.evaluation import linear_probe_predict
from bench.linear_svm import fit_linear_svm


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True), y  # L2-normalised, as the protocol's features


def _objective(weight, bias, classes, x, y, C=1.0):
    """LinearSVC's primal per class, written out: 1/2 (|w|^2 + b^2) + C sum max(0, 1 - t (x.w + b))^2."""
    values = []
    for w, b, c in zip(weight, bias, classes):
        t = np.where(y == c, 1.0, -1.0)
        values.append(0.5 * (w @ w + b * b) + C * np.sum(np.maximum(0.0, 1.0 - t * (x @ w + b)) ** 2))
    return np.array(values)


@pytest.mark.parametrize("rows", [slice(None), slice(0, 40)], ids=["n>d", "n<d"])
def test_weights_equal_liblinear_at_tight_tolerance(digits, rows):
    x, y = digits[0][rows], digits[1][rows]
    ours = fit_linear_svm(torch.from_numpy(x), torch.from_numpy(y), tol=1e-10)
    reference = LinearSVC(C=1.0, dual=False, tol=1e-12, max_iter=100_000).fit(x, y)
    assert ours.converged
    np.testing.assert_array_equal(ours.classes.numpy(), reference.classes_)
    np.testing.assert_allclose(ours.weight.numpy(), reference.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.bias.numpy(), reference.intercept_, atol=1e-5)
    ours_obj = _objective(ours.weight.numpy(), ours.bias.numpy(), reference.classes_, x, y)
    np.testing.assert_allclose(ours_obj, _objective(reference.coef_, reference.intercept_, reference.classes_, x, y), rtol=1e-9)


def test_predictions_equal_linearsvc_as_the_protocol_called_it(digits):
    x, y = digits
    train, test = np.arange(len(y)) % 3 != 0, np.arange(len(y)) % 3 == 0
    ours = linear_probe_predict(torch.from_numpy(x[train]).float(), torch.from_numpy(y[train]), torch.from_numpy(x[test]).float())
    # The call the TS probe made until this solver replaced it (bench/evaluation.py, now bench/evaluation/linear.py, history).
    sklearn = LinearSVC(C=1.0, dual="auto", max_iter=5000, random_state=0).fit(x[train].astype(np.float32), y[train])
    np.testing.assert_array_equal(ours, sklearn.predict(x[test].astype(np.float32)))


def test_two_classes_predict_as_the_binary_svm(digits):
    x, y = digits
    keep = y < 2
    ours = fit_linear_svm(torch.from_numpy(x[keep]), torch.from_numpy(y[keep]))
    reference = LinearSVC(C=1.0, dual=False, tol=1e-12).fit(x[keep], y[keep])
    np.testing.assert_array_equal(ours.predict(torch.from_numpy(x)).numpy(), reference.predict(x))


def test_one_class_is_refused_and_the_probe_predicts_it():
    x = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least two classes"):
        fit_linear_svm(x, torch.zeros(5, dtype=torch.int64))
    assert linear_probe_predict(x, torch.full((5,), 7), x).tolist() == [7] * 5
