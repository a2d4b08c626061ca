"""Tests of the dataset registry, the LDAM long-tail construction and the dataset entries."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import datasets
from bench.errors import UserError
from datasets import DATASETS, create_dataset, groups_by_thirds, list_datasets
from datasets.cifar import ldam_cifar_indices
from datasets.digits import digits_split
from datasets.longtail import class_rank_order, counts_in_label_order, ldam_counts, ldam_indices

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = SHARED / "cifar_labels"
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")

CIFAR10_RHO100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
FASHION_RHO100 = [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
DIGITS_RHO10 = [124, 96, 74, 57, 44, 34, 26, 20, 16, 12]


def _labels(name: str) -> np.ndarray:
    path = LABELS / name
    if not path.is_file():
        pytest.skip(f"{path} absent: the CIFAR label files live in ../shared/data (not redistributed)")
    return np.load(path)


def _reference_picks(targets: np.ndarray, counts: list[int], seed: int = 0) -> np.ndarray:
    """LDAM-DRW's gen_imbalanced_data verbatim, on the global RNG (state saved and restored)."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        out = []
        for c, n in zip(np.unique(targets), counts):
            idx = np.where(targets == c)[0]
            np.random.shuffle(idx)
            out.append(idx[:n])
        return np.concatenate(out)
    finally:
        np.random.set_state(state)


# --- the LDAM profile -------------------------------------------------------------------------


def test_ldam_counts_cifar10_rho100():
    counts = ldam_counts(5000, 10, 100)
    assert counts == CIFAR10_RHO100
    assert sum(counts) == 12406


def test_ldam_counts_cifar100_rho100():
    counts = ldam_counts(500, 100, 100)
    assert sum(counts) == 10847
    assert counts[0] == 500 and counts[-1] == 5


@pytest.mark.parametrize("rho, total10, total100", [(100, 12406, 10847), (50, 13996, 12608), (10, 20431, 19573)])
def test_ldam_counts_totals(rho, total10, total100):
    assert sum(ldam_counts(5000, 10, rho)) == total10
    assert sum(ldam_counts(500, 100, rho)) == total100


def test_ldam_counts_fashion_mnist():
    counts = ldam_counts(6000, 10, 100)
    assert counts == FASHION_RHO100
    assert sum(counts) == 14886


@pytest.mark.parametrize(
    "file, num_classes, total",
    [
        ("cifar10_train_labels.npy", 10, 12406),
        ("cifar100_train_labels.npy", 100, 10847),
    ],
)
def test_ldam_indices_match_upstream(file, num_classes, total):
    targets = _labels(file)
    state_before = np.random.get_state()
    picks = ldam_cifar_indices(targets, num_classes, rho=100, seed=0)
    # The suite must not disturb the caller's global RNG.
    assert np.array_equal(np.random.get_state()[1], state_before[1])
    counts = ldam_counts(len(targets) // num_classes, num_classes, 100)
    assert len(picks) == total
    assert np.bincount(targets[picks], minlength=num_classes).tolist() == counts
    assert len(np.unique(picks)) == total
    assert np.array_equal(picks, _reference_picks(targets, counts, seed=0))


def test_ldam_indices_known_picks_cifar10():
    targets = _labels("cifar10_train_labels.npy")
    picks = ldam_cifar_indices(targets, 10)
    # Computed once with np.random.seed(0) + np.random.shuffle (checked equal to _reference_picks).
    assert picks[:5].tolist() == [4030, 38518, 48266, 45556, 6312]
    assert picks[:5].tolist() == _reference_picks(targets, CIFAR10_RHO100)[:5].tolist()


def test_ldam_indices_other_seed_differs():
    targets = np.repeat(np.arange(3), 20)
    a, b = ldam_indices(targets, [20, 10, 5], seed=0), ldam_indices(targets, [20, 10, 5], seed=1)
    assert len(a) == len(b) == 35 and not np.array_equal(a, b)
    assert np.array_equal(a, _reference_picks(targets, [20, 10, 5], seed=0))


# --- groups ------------------------------------------------------------------------------------


def test_groups_by_thirds_10():
    groups = groups_by_thirds(np.array(CIFAR10_RHO100))
    assert (groups == "few").sum() == 3 and (groups == "medium").sum() == 3 and (groups == "many").sum() == 4
    assert groups[7:].tolist() == ["few"] * 3 and groups[:4].tolist() == ["many"] * 4


def test_groups_by_thirds_100():
    counts = np.array(ldam_counts(500, 100, 100))
    groups = groups_by_thirds(counts)
    assert [(groups == g).sum() for g in ("few", "medium", "many")] == [33, 33, 34]
    assert set(groups[np.argsort(counts, kind="stable")[:33]]) == {"few"}


# --- registry ----------------------------------------------------------------------------------


def test_registry_lists_datasets():
    assert {"digits_lt", "fashion_mnist_lt", "cifar10_lt", "cifar100_lt"} <= set(list_datasets())
    assert datasets.DATASETS is DATASETS
    spec = create_dataset("digits_lt")
    assert spec.registered_name == "digits_lt"
    for name in list_datasets():
        cls = DATASETS.get(name)
        assert cls.default_preset in cls.presets and cls.description and cls.citation


def test_unknown_dataset_is_user_error():
    with pytest.raises(UserError) as info:
        create_dataset("cifar10")
    message = str(info.value)
    assert "\n" not in message
    for name in list_datasets():
        assert name in message


# --- digits_lt ---------------------------------------------------------------------------------


def test_digits_lt():
    from sklearn.datasets import load_digits

    data = create_dataset("digits_lt").load()
    assert data.train_images.dtype == np.uint8 and data.image_shape == (8, 8, 1)
    assert data.train_images.max() == 255
    assert np.bincount(data.test_labels, minlength=10).tolist() == [50] * 10
    counts = data.class_counts.tolist()
    profile = sorted(counts, reverse=True)
    assert profile == ldam_counts(profile[0], 10, 10) == DIGITS_RHO10
    assert min(counts) >= 10
    # Seed 0's draw (pinned: class_rank_order's stream is NumPy's frozen legacy one): 3 head, 2 tail.
    assert counts == [96, 26, 12, 124, 44, 16, 74, 34, 20, 57]
    assert [int(c) for c in np.flatnonzero(data.groups == "few")] == [2, 5, 8]

    targets = load_digits().target
    train_idx, test_idx, _ = digits_split(targets, order=class_rank_order(10, 0))
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    assert np.array_equal(targets[train_idx], data.train_labels)
    assert np.array_equal(targets[test_idx], data.test_labels)


# --- class ranks drawn per seed (digits_lt, fashion_mnist_lt) ---------------------------------


def test_class_rank_order_is_a_permutation_fixed_per_seed_and_new_per_seed():
    orders = [class_rank_order(10, seed).tolist() for seed in range(5)]
    assert orders[0] == [3, 0, 6, 9, 4, 7, 1, 8, 5, 2]  # NumPy's frozen legacy stream: the same on every machine
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert len({tuple(order) for order in orders}) == 5
    assert [class_rank_order(10, seed).tolist() for seed in range(5)] == orders


def test_counts_in_label_order():
    assert counts_in_label_order([30, 20, 10], [2, 0, 1]) == [20, 10, 30]
    with pytest.raises(ValueError, match="not a permutation"):
        counts_in_label_order([30, 20, 10], [0, 0, 1])


def test_digits_lt_tail_differs_across_seeds_is_fixed_per_seed_and_recorded():
    spec = create_dataset("digits_lt")
    loaded = [spec.load(run_seed=seed) for seed in range(5)]
    few = [frozenset(np.flatnonzero(data.groups == "few").tolist()) for data in loaded]
    assert len(set(few)) == 5  # every repeat has other rare classes
    for seed, data in enumerate(loaded):
        counts = data.class_counts
        assert sorted(counts.tolist(), reverse=True) == DIGITS_RHO10
        # The groups follow this run's counts: the three rarest classes are few, the four largest many.
        assert few[seed] == set(np.argsort(counts)[:3].tolist())
        assert set(np.flatnonzero(data.groups == "many").tolist()) == set(np.argsort(counts)[-4:].tolist())
        summary = data.summary()
        assert summary["rank_order"] == [str(c) for c in class_rank_order(10, seed)]
        assert [summary["class_counts"][int(name)] for name in summary["rank_order"]] == DIGITS_RHO10
        assert summary["data_version"] == 2 and f"class ranks drawn with seed {seed}" in summary["construction"]
        np.testing.assert_array_equal(data.test_images, loaded[0].test_images)  # one balanced test set for all
        np.testing.assert_array_equal(data.test_labels, loaded[0].test_labels)
    again = spec.load(run_seed=3)
    np.testing.assert_array_equal(again.train_labels, loaded[3].train_labels)
    np.testing.assert_array_equal(again.train_images, loaded[3].train_images)


def test_ranks_per_seed_separate_the_protocol_only_where_drawn():
    assert create_dataset("digits_lt").protocol_extra(None) == {"class_ranks": "per seed"}
    assert create_dataset("fashion_mnist_lt").protocol_extra(None) == {"class_ranks": "per seed"}
    # CIFAR's LDAM construction and SDCLR's split files keep their published class order.
    assert create_dataset("cifar10_lt").protocol_extra(None) == {}
    assert create_dataset("cifar10_lt", construction="sdclr").protocol_extra(None) == {"construction": "sdclr"}


def test_a_class_keeps_nested_picks_whatever_its_rank():
    targets = np.repeat(np.arange(3), 50)
    full = ldam_indices(targets, [40, 40, 40], seed=0)
    ranked = ldam_indices(targets, [40, 10, 25], seed=0)
    for c, n in enumerate([40, 10, 25]):
        assert ranked[targets[ranked] == c].tolist() == full[targets[full] == c][:n].tolist()


# --- fashion_mnist_lt --------------------------------------------------------------------------


def test_fashion_mnist_lt():
    if not (FASHION_DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed at {FASHION_DEBIAN} (apt-get install dataset-fashion-mnist)")
    data = create_dataset("fashion_mnist_lt").load()
    assert sorted(data.class_counts.tolist(), reverse=True) == FASHION_RHO100
    assert data.class_counts.tolist() == counts_in_label_order(FASHION_RHO100, class_rank_order(10, 0))
    assert len(data.train_labels) == 14886
    assert data.train_images.shape == (14886, 28, 28, 1) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28, 1)
    assert np.bincount(data.test_labels, minlength=10).tolist() == [1000] * 10


def test_fashion_mnist_reads_data_root(tmp_path, monkeypatch):
    """A data root holding the IDX files (here tiny generated ones) wins over the Debian location."""
    import gzip

    import datasets.fashion_mnist as fm

    rng = np.random.RandomState(0)
    train_labels = np.repeat(np.arange(10), 6000).astype(np.uint8)

    def write(name: str, array: np.ndarray) -> None:
        header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))

    write("train-labels-idx1-ubyte", train_labels)
    write("train-images-idx3-ubyte", np.zeros((60000, 2, 2), dtype=np.uint8))
    write("t10k-labels-idx1-ubyte", np.repeat(np.arange(10), 3).astype(np.uint8))
    write("t10k-images-idx3-ubyte", rng.randint(0, 256, (30, 2, 2)).astype(np.uint8))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(fm, "SHA256", dict.fromkeys(fm.SHA256))  # stand-in files: no checksums
    data = create_dataset("fashion_mnist_lt").load(tmp_path)
    assert data.class_counts.tolist() == counts_in_label_order(FASHION_RHO100, class_rank_order(10, 0))
    other = create_dataset("fashion_mnist_lt").load(tmp_path, run_seed=1)
    assert other.class_counts.tolist() == counts_in_label_order(FASHION_RHO100, class_rank_order(10, 1))
    assert other.summary()["rank_order"] == [fm.CLASS_NAMES[c] for c in class_rank_order(10, 1)]
    assert data.test_images.shape == (30, 2, 2, 1)
    assert data.source == str(tmp_path)


def test_fashion_mnist_missing_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    import datasets.fashion_mnist as fm

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    root = tmp_path / "does-not-exist"
    with pytest.raises(UserError) as info:
        create_dataset("fashion_mnist_lt").load(root)
    message = str(info.value)
    assert "\n" not in message
    assert str(root) in message and str(tmp_path / "no-debian") in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-root" in message


# --- cifar10_lt / cifar100_lt ------------------------------------------------------------------


def _offline_cifar(monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)  # CIFAR100 inherits it


@pytest.mark.parametrize("name", ["cifar10_lt", "cifar100_lt"])
def test_cifar_missing_is_one_line(name, tmp_path, monkeypatch):
    _offline_cifar(monkeypatch)
    with pytest.raises(UserError) as info:
        create_dataset(name).load(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message and "--data-root" in message and "cs.toronto.edu" in message


def test_cifar_load_on_generated_batches(tmp_path, monkeypatch):
    """The loading path on tiny generated batches in torchvision's layout (checksums bypassed)."""
    import torchvision.datasets

    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)  # meta file
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.RandomState(0)
    labels = rng.permutation(np.repeat(np.arange(10), 100))
    for name, part in [("data_batch_1", labels[:500]), ("data_batch_2", labels[500:]), ("test_batch", labels[:20])]:
        entry = {"data": rng.randint(0, 256, (len(part), 3072)).astype(np.uint8), "labels": part.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    for name in ("data_batch_3", "data_batch_4", "data_batch_5"):
        (folder / name).write_bytes(pickle.dumps({"data": np.zeros((0, 3072), np.uint8), "labels": []}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))

    data = create_dataset("cifar10_lt").load(tmp_path)
    assert data.class_counts.tolist() == ldam_counts(100, 10, 100)
    assert data.class_names == names
    assert data.train_images.shape[1:] == (32, 32, 3) and data.test_images.shape == (20, 32, 32, 3)
    assert data.construction.startswith("ldam(n_max=100, rho=100, seed=0)")
