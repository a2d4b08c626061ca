"""Evaluation of frozen backbone features: kNN, weighted kNN and linear probes, reported per class and
per many / medium / few group.

- :mod:`~bench.evaluation.features`: frozen features of a dataset's images (also the kNN monitor's).
- :mod:`~bench.evaluation.knn`, :mod:`~bench.evaluation.linear`: the predictors.
- :mod:`~bench.evaluation.scoring`: per-class and per-group accuracy of predictions.
- :mod:`~bench.evaluation.protocols`: the registered protocols (``@register_protocol``) and
  :func:`evaluate`, which runs a list of them; their sources are in that module's docstring.
- :mod:`~bench.evaluation.suites`: the ``--eval`` suites and parser.
"""

from bench.evaluation.features import extract_features, features_of
from bench.evaluation.knn import WKNN_K, WKNN_T, knn_majority_predict, knn_majority_predict_many, knn_weighted_predict
from bench.evaluation.linear import (
    PROBE_BATCH_SIZE,
    PROBE_INIT_STD,
    balanced_subsample,
    linear_probe_predict,
    sgd_linear_probe_predict,
)
from bench.evaluation.protocols import FS_PROBE_SET, PROTOCOLS, EvaluationProtocol, evaluate, register_protocol
from bench.evaluation.scoring import class_accuracies, group_report
from bench.evaluation.suites import EVAL_SUITES, parse_eval

__all__ = [
    "EVAL_SUITES",
    "FS_PROBE_SET",
    "PROBE_BATCH_SIZE",
    "PROBE_INIT_STD",
    "PROTOCOLS",
    "WKNN_K",
    "WKNN_T",
    "EvaluationProtocol",
    "balanced_subsample",
    "class_accuracies",
    "evaluate",
    "extract_features",
    "features_of",
    "group_report",
    "knn_majority_predict",
    "knn_majority_predict_many",
    "knn_weighted_predict",
    "linear_probe_predict",
    "parse_eval",
    "register_protocol",
    "sgd_linear_probe_predict",
]
