"""Evaluation protocols as registered objects: ``@register_protocol("knn10")`` on a small class that says
what the protocol is (``description``, written into every record that uses it), what it needs (the
long-tail training features, or one of the dataset's probe sets: ``probe_set``) and how it predicts
(:meth:`EvaluationProtocol.predict`). A new protocol is one such class; ``--eval``, the suites
(:mod:`bench.evaluation.suites`), :func:`evaluate` and the records pick it up from :data:`PROTOCOLS`.

Sources and deviations of each protocol are in leaderboard/PROTOCOL.md, "Evaluation protocols":

- ``knn1`` / ``knn10`` -- TS (Kukleva et al., "Temperature Schedules for Self-Supervised Contrastive
  Methods on Long-Tail Data", ICLR 2023): backbone features after global pooling (before the
  projection head), L2-normalised; Euclidean distance to the *long-tail training* features;
  unweighted majority vote among the k nearest; accuracy averaged over classes.
- ``wknn`` -- lightly / DySTreSS monitoring kNN: ``lightly.utils.benchmarking.knn_predict`` with
  t = 0.1 (cosine similarity, neighbours weighted by exp(sim / t)) and k = min(200, the training
  images of the rarest class): lightly's k = 200 scales with the data, because on digits_lt's 503
  training images (12 in the rarest class) 200 neighbours out-vote every tail class.
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

Every protocol's predictions go through :func:`~bench.evaluation.scoring.class_accuracies` and
:func:`~bench.evaluation.scoring.group_report`, so each result has the class-averaged ("overall")
accuracy, the many / medium / few group means and the per-class accuracies, all in percent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Collection, Optional, Sequence, Union

import numpy as np
import torch

from bench.evaluation.arrays import ArrayLike, smallest_class_count
from bench.evaluation.knn import WKNN_K, WKNN_T, knn_majority_predict_many, knn_weighted_predict
from bench.evaluation.linear import balanced_subsample, linear_probe_predict, sgd_linear_probe_predict
from bench.evaluation.scoring import class_accuracies, group_report
from bench.linear_svm import SOLVER
from bench.registry import Registry

#: The probe set a dataset may supply for ``linear_fs`` (TS's FS list); without it, :func:`balanced_subsample`.
FS_PROBE_SET = "fs"


@dataclass(frozen=True)
class FrozenFeatures:
    """Everything a protocol may predict from: the long-tail training features and labels, the test
    features, the dataset's probe sets ``{name: (features, labels)}`` and the raw test features the
    SDCLR probes score, plus the run's seed, device and the protocols asked for together."""

    train_feats: ArrayLike
    train_labels: ArrayLike
    test_feats: ArrayLike
    num_classes: int
    seed: int
    device: Optional[Union[str, torch.device]]
    probe_sets: dict[str, tuple[ArrayLike, ArrayLike]]
    probe_test_feats: Optional[ArrayLike]
    protocols: tuple[str, ...]


class EvaluationProtocol:
    """One way of scoring frozen features. Subclasses set ``description`` and implement :meth:`predict`."""

    registered_name: ClassVar[str] = "unregistered"
    #: One line for records and the leaderboard: what was computed, on what, after whom.
    description: ClassVar[str] = ""
    #: The dataset probe set (:class:`datasets.base.ProbeSet` name) the protocol cannot run without.
    probe_set: ClassVar[Optional[str]] = None

    def describe(self, data: Any) -> str:
        """The record's description of this protocol on ``data`` (a :class:`datasets.base.LongTailData`)."""
        return self.description

    def probe_sets_used(self, available: Collection[str]) -> set[str]:
        """The probe sets to extract features of, given the names the dataset has."""
        return {self.probe_set} if self.probe_set else set()

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        """(M,) int64 predictions of the test set. ``shared`` lives for one :func:`evaluate` call, so
        protocols that share work (kNN@1 and kNN@10: one distance matrix) compute it once."""
        raise NotImplementedError


PROTOCOLS: Registry[type[EvaluationProtocol]] = Registry("evaluation protocol")


def register_protocol(name: str):
    """Class decorator registering an :class:`EvaluationProtocol` subclass under ``name`` (the name in
    ``--eval``, in records and on the leaderboard)."""
    return PROTOCOLS.register(name)


class MajorityVote(EvaluationProtocol):
    """TS's kNN@k (:func:`~bench.evaluation.knn.knn_majority_predict`)."""

    k: ClassVar[int]

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        if "majority" not in shared:
            # kNN@1 and kNN@10 share one distance matrix; its time counts for the first of them.
            voters = [PROTOCOLS.get(p) for p in inputs.protocols]
            ks = tuple(sorted({v.k for v in voters if issubclass(v, MajorityVote)}))
            shared["majority"] = knn_majority_predict_many(
                inputs.train_feats,
                inputs.train_labels,
                inputs.test_feats,
                ks,
                num_classes=inputs.num_classes,
                device=inputs.device,
            )
        return shared["majority"][self.k]


@register_protocol("knn1")
class KNN1(MajorityVote):
    k = 1
    description = "kNN@1, Euclidean nearest neighbour among the long-tail train features, class-averaged (TS)"


@register_protocol("knn10")
class KNN10(MajorityVote):
    k = 10
    description = "kNN@10, Euclidean majority vote against the long-tail train features, class-averaged (TS)"


def _wknn_description(k_used: str) -> str:
    return (
        f"weighted kNN, k=min({WKNN_K}, rarest class){k_used}, t={WKNN_T:g} (lightly.utils.benchmarking.knn_predict), "
        "class-averaged"
    )


@register_protocol("wknn")
class WeightedKNN(EvaluationProtocol):
    """lightly's weighted kNN (:func:`~bench.evaluation.knn.knn_weighted_predict`), k = min(200, the
    rarest class's training images) so that k never exceeds what the tail can contribute (issue 15:
    k = 200 on digits_lt, whose rarest class has 12 images, cannot see the tail)."""

    description = _wknn_description("")

    @staticmethod
    def k_for(train_labels: ArrayLike) -> int:
        """min(200, the number of training images of the rarest class of this training set)."""
        return min(WKNN_K, smallest_class_count(train_labels))

    def describe(self, data: Any) -> str:
        return _wknn_description(f"={self.k_for(data.train_labels)}")

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        return knn_weighted_predict(
            inputs.train_feats,
            inputs.train_labels,
            inputs.test_feats,
            inputs.num_classes,
            k=self.k_for(inputs.train_labels),
            device=inputs.device,
        )


@register_protocol("linear")
class LinearLT(EvaluationProtocol):
    """TS's "LT" probe: LinearSVC's problem on the whole long-tail training set."""

    description = (
        f"linear probe, sklearn LinearSVC(C=1.0)'s problem ({SOLVER}) on the whole long-tail train "
        "features, class-averaged (TS 'LT')"
    )

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        return linear_probe_predict(inputs.train_feats, inputs.train_labels, inputs.test_feats, inputs.seed)


@register_protocol("linear_fs")
class LinearFS(EvaluationProtocol):
    """TS's "FS" probe: LinearSVC on the dataset's few-shot list where it publishes one (the probe set
    ``"fs"``), else on a class-balanced subsample of the long-tail training set."""

    description = (
        f"linear probe, sklearn LinearSVC(C=1.0)'s problem ({SOLVER}) on a class-balanced subsample of "
        "the long-tail train features, n = smallest class count per class, class-averaged (TS 'FS')"
    )

    def describe(self, data: Any) -> str:
        if FS_PROBE_SET not in data.probe_sets:
            return self.description
        return (
            f"linear probe, sklearn LinearSVC(C=1.0)'s problem ({SOLVER}) on the features of the dataset's few-shot "
            f"list ({data.probe_sets[FS_PROBE_SET].description}), class-averaged (TS 'FS')"
        )

    def probe_sets_used(self, available: Collection[str]) -> set[str]:
        return {FS_PROBE_SET} & set(available)

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        if FS_PROBE_SET in inputs.probe_sets:
            fs_feats, fs_labels = inputs.probe_sets[FS_PROBE_SET]
            return linear_probe_predict(fs_feats, fs_labels, inputs.test_feats, inputs.seed)
        subset = torch.as_tensor(balanced_subsample(inputs.train_labels, inputs.seed))
        feats, labels = (
            x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
            for x in (inputs.train_feats, inputs.train_labels)
        )
        return linear_probe_predict(feats[subset], labels[subset], inputs.test_feats, inputs.seed)


class SDCLRProbe(EvaluationProtocol):
    """SDCLR's linear layer trained with SGD on a balanced probe set's raw features
    (:func:`~bench.evaluation.linear.sgd_linear_probe_predict`), with the schedule of
    cmds/shell_scrips/cifar-10-LT.sh: ``epochs`` and the lr decay ``milestones``."""

    epochs: ClassVar[int]
    milestones: ClassVar[tuple[int, ...]]

    def predict(self, inputs: FrozenFeatures, shared: dict[str, Any]) -> np.ndarray:
        probe_feats, probe_labels = inputs.probe_sets[self.probe_set]  # type: ignore[index]
        test = inputs.test_feats if inputs.probe_test_feats is None else inputs.probe_test_feats
        return sgd_linear_probe_predict(
            probe_feats, probe_labels, test, inputs.num_classes, self.epochs, self.milestones, inputs.seed, device=inputs.device
        )


def _sdclr_probe_description(shot: str, trained_on: str, epochs: int, milestones: tuple[int, ...]) -> str:
    return (
        f"SDCLR {shot} linear probe: nn.Linear (init N(0, 0.01), bias 0), SGD lr 30, batch 128, {epochs} epochs, "
        f"decays at {'/'.join(map(str, milestones))}, on raw (unnormalised) frozen features of {trained_on} "
        "(extracted once, no augmentation; last epoch), class-averaged"
    )


@register_protocol("probe_full")
class ProbeFull(SDCLRProbe):
    probe_set, epochs, milestones = "full", 30, (10, 20)
    description = _sdclr_probe_description("full-shot", "the balanced full-shot probe set", epochs, milestones)


@register_protocol("probe_few")
class ProbeFew(SDCLRProbe):
    probe_set, epochs, milestones = "few", 100, (40, 60)
    description = _sdclr_probe_description("few-shot", "the few-shot probe set", epochs, milestones)


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
            :func:`~bench.evaluation.features.extract_features`) and labels -- all protocols use the
            long-tail set, as TS.
        test_feats, test_labels: the (balanced) test set.
        num_classes: C.
        groups: (C,) 'many' / 'medium' / 'few' per class.
        protocols: names from :data:`PROTOCOLS`; an unknown name raises ``ValueError`` before any
            work is done.
        seed: random_state of the linear probes and of the FS subsample.
        device: where the kNN protocols compute; default the features' device.
        probe_sets: ``{"full" | "few": (features, labels)}`` for the probe protocols (their
            ``probe_set``); a probe protocol without its set raises ``ValueError``. SDCLR's
            probes train on raw (unnormalised) features: pass those here, and the test set's raw
            features as ``probe_test_feats`` (default: ``test_feats``). ``"fs"``
            (:data:`FS_PROBE_SET`), where given, is what ``linear_fs`` trains on (L2-normalised, as TS).

    Returns:
        ``{protocol: group_report(...), ..., "timing": {protocol: seconds}}``.
    """
    protocols = tuple(protocols)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown evaluation protocol(s) {unknown}; known: {PROTOCOLS.names()}")
    chosen = {name: PROTOCOLS.create(name) for name in protocols}
    missing_sets = [p for p, protocol in chosen.items() if protocol.probe_set and protocol.probe_set not in (probe_sets or {})]
    if missing_sets:
        raise ValueError(f"protocol(s) {missing_sets} need probe sets {[chosen[p].probe_set for p in missing_sets]}")
    groups_arr = np.asarray(groups).reshape(-1)
    if groups_arr.size != num_classes:
        raise ValueError(f"groups has {groups_arr.size} entries for {num_classes} classes")

    inputs = FrozenFeatures(
        train_feats, train_labels, test_feats, num_classes, seed, device, dict(probe_sets or {}), probe_test_feats, protocols
    )
    results: dict[str, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    shared: dict[str, Any] = {}
    for name, protocol in chosen.items():
        start = time.perf_counter()
        pred = protocol.predict(inputs, shared)
        timing[name] = time.perf_counter() - start
        results[name] = group_report(class_accuracies(test_labels, pred, num_classes), groups_arr)
    results["timing"] = timing
    return results
