"""The protocol choices: the (split, seed, method) grid, --construction / --splits / --eval / --rho and
their one-line errors, the published presets, and the TS FS and SDCLR probe protocols."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bench import runner
from bench.cli import main
from bench.errors import UserError
from bench.evaluation import EVAL_SUITES, balanced_subsample, evaluate, parse_eval, sgd_linear_probe_predict
from datasets import DATASETS, create_dataset
from datasets.cifar import sdclr_split_paths


def test_the_grid_is_splits_by_seeds_by_methods(tmp_path):
    plan = runner.plan(
        ["constant", "cosine_tau"],
        "cifar10_lt",
        [0, 1],
        "tiny",
        {"construction": "sdclr"},
        "cpu",
        tmp_path / "results",
        splits=[1, 2, 3],
    )
    assert len(plan.configs) == 12 and plan.splits == [1, 2, 3]
    assert sorted({(c.split, c.seed) for c in plan.configs}) == [(s, seed) for s in (1, 2, 3) for seed in (0, 1)]
    assert {plan.datasets[s].split for s in (1, 2, 3)} == {1, 2, 3}
    key = plan.configs[0].protocol_key()
    assert key["construction"] == "sdclr" and "split" not in key  # splits are repeats, like seeds
    assert plan.configs[0].construction == "sdclr"
    assert not (tmp_path / "results").exists()


def test_sdclr_without_splits_runs_split_1(tmp_path):
    plan = runner.plan(["constant"], "cifar100_lt", [0], "tiny", {"construction": "sdclr"}, "cpu", tmp_path)
    assert plan.splits == [1] and plan.configs[0].split == 1


def test_default_constructions_keep_the_protocol_key_of_existing_records(tmp_path):
    plan = runner.plan(["constant"], "digits_lt", [0], "tiny", {}, "cpu", tmp_path)
    # digits_lt's ranks drawn per seed (data version 2) are new data: their key says so, apart from v1 records.
    assert set(plan.configs[0].protocol_key()) == {"dataset", "backbone", "epochs", "batch_size", "evaluation", "class_ranks"}
    assert plan.configs[0].protocol_key()["evaluation"] == "knn1+knn10+wknn+linear"
    assert plan.configs[0].split is None and plan.configs[0].construction == "ldam"
    cifar = runner.plan(["constant"], "cifar10_lt", [0], "tiny", {}, "cpu", tmp_path)
    assert set(cifar.configs[0].protocol_key()) == {"dataset", "backbone", "epochs", "batch_size", "evaluation"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--splits", "1-5"], "digits_lt --construction ldam has no published splits"),
        (["--dataset", "cifar10_lt", "--splits", "1-5"], "use --construction sdclr"),
        (["--dataset", "cifar10_lt", "--construction", "sdclr", "--splits", "7"], "has splits 1..5, not 7"),
        (["--dataset", "cifar10_lt", "--construction", "lt"], "its constructions are: ldam, sdclr"),
        (["--eval", "sdclr"], "needs the dataset's balanced probe sets"),
        (["--eval", "knn3"], "unknown --eval 'knn3'"),
        (["--dataset", "cifar10_lt", "--rho", "10"], "--rho: cifar10_lt has a fixed long tail"),
        (["--splits", "a"], "--splits 'a' is not a list of integers"),
        (["--dataset", "cifar10_lt", "--construction", "sdclr"], "pass --data-root DIR"),
        (["--dataset", "folder", "--preset", "paper"], "unknown preset 'paper' for folder"),
    ],
)
def test_protocol_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    code = main(["run", "--methods", "constant", *args, "--results-dir", str(tmp_path / "results"), "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_a_tampered_split_file_stops_the_cli_before_anything_is_written(shared_data, tmp_path, capsys):
    root = tmp_path / "cifar"
    for path in sdclr_split_paths(10, 3).values():
        (root / "split" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "splits" / path, root / "split" / path)
    (root / "split" / sdclr_split_paths(10, 3)["few"]).write_bytes(b"not the published file")
    code = main(
        [
            "run",
            "--dataset",
            "cifar10_lt",
            "--construction",
            "sdclr",
            "--splits",
            "3",
            "--data-root",
            str(root),
            "--methods",
            "constant",
            "--results-dir",
            str(tmp_path / "results"),
            "--no-progress",
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "split3_S_b.npy has SHA-256" in lines[0]
    assert not (tmp_path / "results").exists()


def test_paper_presets_are_the_published_recipes():
    for name in ("cifar10_lt", "cifar100_lt"):
        paper = DATASETS.get(name).presets["paper"]
        assert (
            paper.backbone,
            paper.epochs,
            paper.batch_size,
            paper.lr,
            paper.weight_decay,
            paper.warmup_epochs,
            paper.temperature_period,
        ) == ("resnet18_cifar", 2000, 512, 0.5, 1e-4, 10, 400)
        assert "cpu" in DATASETS.get(name).presets
    paper = DATASETS.get("imagenet100_lt").presets["paper"]
    assert (paper.backbone, paper.epochs, paper.batch_size, paper.temperature_period) == ("resnet50", 800, 256, 400)
    augmentation = DATASETS.get("imagenet100_lt").augmentation
    assert (augmentation.input_size, augmentation.min_scale, augmentation.gaussian_blur) == (224, 0.08, 0.5)


def test_list_presets_prints_every_preset(capsys):
    assert main(["list", "--presets"]) == 0
    out = capsys.readouterr().out
    for name, cls in DATASETS.items():
        for preset in cls.presets:
            assert any(line.split()[:2] == [name, preset] for line in out.splitlines()), (name, preset)


# --- evaluation protocols ---------------------------------------------------------------------------


def test_parse_eval_expands_suites_in_order():
    assert parse_eval("ts") == ("knn1", "knn10", "linear_fs", "linear")
    assert parse_eval("default,probe_few") == (*EVAL_SUITES["default"], "probe_few")
    assert parse_eval("knn10,ts") == ("knn10", "knn1", "linear_fs", "linear")
    with pytest.raises(UserError):
        parse_eval(",")


def test_the_fs_subsample_takes_the_smallest_class_count_from_every_class():
    labels = np.repeat([0, 1, 2], [50, 9, 4])
    picks = balanced_subsample(labels, seed=0)
    assert np.bincount(labels[picks]).tolist() == [4, 4, 4]
    assert np.array_equal(picks, balanced_subsample(labels, seed=0)) and len(np.unique(picks)) == 12
    assert not np.array_equal(picks, balanced_subsample(labels, seed=1))


def _blobs(n_per_class, seed=0):
    rng = np.random.RandomState(seed)
    centres = np.eye(4, 8) * 3
    x = np.concatenate([centres[c] + rng.randn(n, 8) * 0.3 for c, n in enumerate(n_per_class)])
    y = np.repeat(np.arange(4), n_per_class)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_sgd_probe_separates_separable_features_and_is_seeded():
    x, y = _blobs([30, 30, 30, 30])
    xt, yt = _blobs([10, 10, 10, 10], seed=1)
    pred = sgd_linear_probe_predict(x, y, xt, 4, epochs=30, milestones=(10, 20), seed=0)
    assert (pred == yt.numpy()).mean() == 1.0
    assert np.array_equal(pred, sgd_linear_probe_predict(x, y, xt, 4, epochs=30, milestones=(10, 20), seed=0))


def test_evaluate_runs_the_ts_and_sdclr_protocols_per_group():
    x, y = _blobs([40, 20, 14, 12])  # >= 10 per class, so kNN@10 can vote for the rarest
    xt, yt = _blobs([10, 10, 10, 10], seed=1)
    probe_x, probe_y = _blobs([12, 12, 12, 12], seed=2)
    groups = np.array(["many", "many", "medium", "few"])
    protocols = ("knn1", "knn10", "linear_fs", "linear", "probe_full", "probe_few")
    out = evaluate(
        x, y, xt, yt, 4, groups, protocols=protocols, probe_sets={"full": (probe_x, probe_y), "few": (probe_x[::3], probe_y[::3])}
    )
    for name in protocols:
        assert out[name]["overall"] == pytest.approx(100.0) and out[name]["few"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="probe sets"):
        evaluate(x, y, xt, yt, 4, groups, protocols=("probe_full",))


def test_sgd_probe_follows_sdclr_train_cifar(monkeypatch):
    """SDCLR train_cifar.py: batch 128 (its default; cifar-10-LT.sh never sets it), fc N(0, 0.01), bias 0."""
    from bench import evaluation

    assert evaluation.PROBE_BATCH_SIZE == 128 and evaluation.PROBE_INIT_STD == 0.01
    x, y = _blobs([100, 100, 50, 50])  # 300 rows: 3 steps of 128 per epoch
    steps = []
    original = torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: (steps.append(1), original(self, *a, **k))[1])
    sgd_linear_probe_predict(x, y, x, 4, epochs=2, milestones=(1,), seed=0)
    assert len(steps) == 2 * 3
    # With no epoch of training the predictions are those of the initial layer: W ~ N(0, 0.01), b = 0.
    weight = torch.empty(4, 8).normal_(0.0, 0.01, generator=torch.Generator().manual_seed(5))
    expected = (x @ weight.T).argmax(dim=1).numpy()
    assert np.array_equal(sgd_linear_probe_predict(x, y, x, 4, epochs=0, milestones=(), seed=5), expected)


def test_runs_probe_on_raw_features_and_vote_on_normalised_ones(monkeypatch):
    """kNN / LinearSVC see L2-normalised features (TS); SDCLR's probes the raw pooled ones."""
    from bench import runner
    from bench.config import AugmentationSpec, TrainPreset, resolve_config
    from datasets.base import LongTailData, ProbeSet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 8, 8, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 12)
    data = LongTailData(
        name="toy",
        train_images=images,
        train_labels=labels,
        test_images=images,
        test_labels=labels,
        class_names=["a", "b"],
        groups=np.array(["many", "few"]),
        construction="toy",
        source="test",
        probe_sets={"full": ProbeSet("toy", lambda: (images, labels))},
    )
    spec = AugmentationSpec(input_size=8)
    config = resolve_config(
        TrainPreset("t", "small_cnn", 1, 4), "constant", "toy", 0, "cpu", spec, {"eval_protocols": ("knn1", "probe_full")}
    )
    seen = {}
    monkeypatch.setattr(runner, "evaluate", lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs) or {})
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 16))
    runner.evaluate_encoder(encoder, data, config, torch.device("cpu"))
    train, test = seen["args"][0], seen["args"][2]
    assert torch.allclose(train.norm(dim=1), torch.ones(24)) and torch.allclose(test.norm(dim=1), torch.ones(24))
    probe = seen["kwargs"]["probe_sets"]["full"][0]
    assert not torch.allclose(probe.norm(dim=1), torch.ones(24))
    assert torch.allclose(torch.nn.functional.normalize(probe, dim=1), train, atol=1e-6)
    assert torch.allclose(seen["kwargs"]["probe_test_feats"], probe)


def test_linear_fs_trains_on_the_datasets_fs_list_where_it_supplies_one():
    # TS on ImageNet100-LT: the FS SVM trains on imageNet_100_sub_balance_train_0.01.txt, not on a
    # balanced subsample of the LT set. Here the LT set's labels are shuffled (nothing to learn) and
    # the FS list is clean: only the list can give a perfect probe.
    x, y = _blobs([40, 20, 14, 12])
    y_noise = torch.from_numpy(np.random.RandomState(0).permutation(y.numpy()))
    xt, yt = _blobs([10, 10, 10, 10], seed=1)
    fs_x, fs_y = _blobs([12, 12, 12, 12], seed=2)
    groups = np.array(["many", "many", "medium", "few"])
    with_list = evaluate(x, y_noise, xt, yt, 4, groups, protocols=("linear_fs",), probe_sets={"fs": (fs_x, fs_y)})
    without = evaluate(x, y_noise, xt, yt, 4, groups, protocols=("linear_fs",))
    assert with_list["linear_fs"]["overall"] == pytest.approx(100.0)
    assert without["linear_fs"]["overall"] < 90.0  # CIFAR's rule: the subsample of the (noisy) LT set


def test_cifar_keeps_the_balanced_subsample_rule_for_fs(tmp_path):
    run_plan = runner.plan(["constant"], "digits_lt", [0], "tiny", {"eval_protocols": ("linear_fs",)}, "cpu", tmp_path)
    data = runner.load_data(run_plan)
    assert "fs" not in data.probe_sets
    assert runner._probe_sets_needed(run_plan.configs[0], data) == set()


def test_a_registered_protocol_is_one_class_that_eval_evaluate_and_records_pick_up(capsys):
    """A new protocol is one @register_protocol class: --eval parses its name, evaluate() runs it, and
    the record's description is its own; unknown names list every registered one."""
    from bench.evaluation import PROTOCOLS, EvaluationProtocol, register_protocol

    @register_protocol("test_majority_class")
    class MajorityClass(EvaluationProtocol):
        description = "the most frequent training label for every test image"

        def predict(self, inputs, shared):
            return np.full(len(inputs.test_feats), int(np.bincount(np.asarray(inputs.train_labels)).argmax()))

    try:
        assert parse_eval("knn1,test_majority_class") == ("knn1", "test_majority_class")
        y = np.array([0, 0, 0, 1])
        out = evaluate(np.eye(4), y, np.eye(4), y, 2, np.array(["many", "few"]), protocols=("test_majority_class",))
        assert out["test_majority_class"]["overall"] == 50.0 and out["test_majority_class"]["few"] == 0.0
        assert runner._evaluation_descriptions(
            type("C", (), {"eval_protocols": ("test_majority_class",)})(), type("D", (), {"probe_sets": {}})()
        ) == {"test_majority_class": "the most frequent training label for every test image"}
        with pytest.raises(
            UserError, match="protocols: knn1, knn10, wknn, linear, linear_fs, probe_full, probe_few, test_majority_class"
        ):
            parse_eval("nope")
    finally:
        PROTOCOLS._entries.pop("test_majority_class")
    assert "test_majority_class" not in EVAL_SUITES["all"]  # suites are fixed when the package loads


def test_weighted_knn_k_is_200_or_the_rarest_class_whichever_is_smaller():
    """Issue 15: k = min(200, training images of the rarest class), stated in the record. Here 300
    images of class 0 lie at cosine 0.9 to the queries and 5 of class 1 at 1.0: lightly's k = 200 lets
    class 0 out-vote the tail (195 e^9 > 5 e^10); k = 5 sees the five tail neighbours."""
    from types import SimpleNamespace

    from bench.evaluation import knn_weighted_predict

    query = np.array([[1.0, 0.0]])
    near = np.array([[0.9, np.sqrt(1 - 0.81)]])
    train = np.vstack([np.repeat(near, 300, axis=0), np.repeat(query, 5, axis=0)])
    labels = np.repeat([0, 1], [300, 5])
    assert knn_weighted_predict(train, labels, query, 2, k=200)[0] == 0
    out = evaluate(train, labels, query, np.array([1]), 2, np.array(["many", "few"]), protocols=("wknn",))
    assert out["wknn"]["few"] == 100.0  # k = 5: the tail class wins

    described = runner._evaluation_descriptions(
        SimpleNamespace(eval_protocols=("wknn",)), SimpleNamespace(probe_sets={}, train_labels=labels)
    )
    assert described == {
        "wknn": "weighted kNN, k=min(200, rarest class)=5, t=0.1 (lightly.utils.benchmarking.knn_predict), class-averaged"
    }
    many = SimpleNamespace(probe_sets={}, train_labels=np.repeat([0, 1, 2], [900, 400, 250]))
    assert (
        "k=min(200, rarest class)=200, t=0.1"
        in runner._evaluation_descriptions(SimpleNamespace(eval_protocols=("wknn",)), many)["wknn"]
    )
    digits = create_dataset("digits_lt").load()  # the case issue 15 names: 503 training images, 12 in the rarest class
    assert (len(digits.train_labels), np.bincount(digits.train_labels).min()) == (503, 12)
    assert (
        "k=min(200, rarest class)=12,"
        in runner._evaluation_descriptions(SimpleNamespace(eval_protocols=("wknn",)), digits)["wknn"]
    )
