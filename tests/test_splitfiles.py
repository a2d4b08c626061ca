"""The published split files: checksums, the SDCLR CIFAR construction, the ImageNet lists.

Everything here reads ../shared/data (never copied into the project) and skips without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.errors import UserError
from datasets.base import groups_by_count, groups_by_thirds
from datasets.cifar import sdclr_split, sdclr_split_paths
from datasets.imagefiles import read_image_list
from datasets.splitfiles import SPLIT_FILES, ensure_split_files, sha256_of

CIFAR10_SDCLR_PROFILE = [4500, 2697, 1617, 969, 581, 348, 208, 125, 75, 45]


def _labels(shared_data: Path, name: str) -> np.ndarray:
    return np.load(shared_data / "cifar_labels" / name)


def _split(shared_data: Path, num_classes: int, split: int):
    targets = _labels(shared_data, f"cifar{num_classes}_train_labels.npy")
    files = ensure_split_files(shared_data, sdclr_split_paths(num_classes, split).values(), "test")
    return targets, sdclr_split(targets, num_classes, split, files)


def test_registry_knows_every_shared_split_file_by_checksum(shared_data):
    listed = {}
    for line in (shared_data / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split()
        if path.startswith("./splits/"):
            listed[path[len("./splits/") :]] = digest
    assert len(listed) == 42
    for path, digest in listed.items():
        assert SPLIT_FILES[path].sha256 == digest, path
        assert sha256_of(shared_data / "splits" / path) == digest
    # The one file the store lacks has no checksum: the suite checks its size instead.
    train_lt = SPLIT_FILES["ImageNet_LT/ImageNet_LT_train.txt"]
    assert train_lt.sha256 is None and (train_lt.lines, train_lt.classes) == (115_846, 1000)
    for entry in SPLIT_FILES.values():
        assert entry.url.startswith("https://raw.githubusercontent.com/") and entry.home.startswith("https://github.com/")


def test_the_sdclr_profile_is_floor_4500_times_001_to_the_r_over_9():
    assert [int(np.floor(4500 * 0.01 ** (r / 9))) for r in range(10)] == CIFAR10_SDCLR_PROFILE
    assert sum(CIFAR10_SDCLR_PROFILE) == 11165


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
def test_cifar10_sdclr_splits_have_the_published_sizes(shared_data, split):
    targets, s = _split(shared_data, 10, split)
    assert len(s.pretrain) == 11165 and len(np.unique(s.pretrain)) == 11165
    assert sorted(s.class_counts.tolist(), reverse=True) == CIFAR10_SDCLR_PROFILE
    assert np.bincount(targets[s.few], minlength=10).tolist() == [45] * 10
    assert np.bincount(targets[s.full], minlength=10).tolist() == [4500] * 10
    assert np.bincount(targets[s.val], minlength=10).tolist() == [500] * 10
    assert not set(s.pretrain.tolist()) & set(s.val.tolist())  # SDCLR's model-selection images stay out
    assert set(s.few.tolist()) <= set(s.pretrain.tolist())  # S_b is a prefix of each class's permutation
    # Groups: the thirds rule on this split's own counts.
    assert np.array_equal(s.groups, groups_by_thirds(s.class_counts))
    order = np.argsort(-s.class_counts, kind="stable")
    assert set(s.groups[order[:4]]) == {"many"} and set(s.groups[order[4:7]]) == {"medium"}
    assert set(s.groups[order[7:]]) == {"few"}


def test_cifar10_split1_ranks_classes_as_published(shared_data):
    _, s = _split(shared_data, 10, 1)
    assert np.argsort(-s.class_counts, kind="stable").tolist() == [6, 8, 4, 1, 7, 0, 3, 2, 5, 9]
    assert [int(c) for c in np.flatnonzero(s.groups == "few")] == [2, 5, 9]
    _, s2 = _split(shared_data, 10, 2)
    assert not np.array_equal(s.groups, s2.groups)  # group membership differs per split


@pytest.mark.parametrize("split", [1, 3, 5])
def test_cifar100_sdclr_splits_have_the_published_sizes(shared_data, split):
    targets, s = _split(shared_data, 100, split)
    assert len(s.pretrain) == 9754
    counts = sorted(s.class_counts.tolist(), reverse=True)
    assert counts[0] == 450 and counts[-1] == 4
    assert counts == [int(450 * 0.01 ** (r / 99)) for r in range(100)]
    assert np.bincount(targets[s.few], minlength=100).tolist() == [4] * 100
    assert len(s.full) == 40000 and len(s.val) == 5000
    assert [(s.groups == g).sum() for g in ("few", "medium", "many")] == [33, 33, 34]


def _copy_split_tree(shared_data: Path, root: Path, paths) -> None:
    for path in paths:
        target = root / "split" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "splits" / path, target)


def test_a_split_file_with_a_wrong_checksum_is_refused_in_one_line(shared_data, tmp_path):
    paths = list(sdclr_split_paths(10, 1).values())
    _copy_split_tree(shared_data, tmp_path, paths)
    tampered = tmp_path / "split" / paths[0]
    indices = np.load(tampered)
    indices[0] = indices[1]
    np.save(tampered, indices)
    with pytest.raises(UserError) as info:
        ensure_split_files(tmp_path, paths, "cifar10_lt sdclr split 1")
    message = str(info.value)
    assert "\n" not in message and str(tampered) in message and "SHA-256" in message
    assert "github.com/VITA-Group/SDCLR" in message


def test_missing_split_files_offline_say_which_files_go_where(tmp_path):
    paths = list(sdclr_split_paths(10, 2).values())
    with pytest.raises(UserError) as info:
        ensure_split_files(tmp_path, paths, "cifar10_lt --construction sdclr split 2")
    message = str(info.value)
    assert "\n" not in message and "4 split file(s) missing" in message and "download failed" in message
    assert f"split2_D_i.npy, split2_S_b.npy into {tmp_path}/split/cifar10_imbSub_with_subsets/" in message
    assert f"trainIdxList.npy, valIdxList.npy into {tmp_path}/split/cifar10/" in message
    assert "github.com/VITA-Group/SDCLR" in message


def test_the_upstream_split_folder_name_and_splits_are_both_accepted(shared_data, tmp_path):
    paths = list(sdclr_split_paths(10, 1).values())
    _copy_split_tree(shared_data, tmp_path, paths)
    found = ensure_split_files(tmp_path, paths, "x")
    assert all(p.is_relative_to(tmp_path / "split") for p in found.values())
    assert ensure_split_files(shared_data, paths, "x")[paths[0]] == shared_data / "splits" / paths[0]


def test_a_train_list_without_a_known_checksum_is_checked_by_size(tmp_path):
    target = tmp_path / "split" / "ImageNet_LT" / "ImageNet_LT_train.txt"
    target.parent.mkdir(parents=True)
    target.write_text("train/n01440764/a.JPEG 0\ntrain/n01443537/b.JPEG 1\n")
    with pytest.raises(UserError) as info:
        ensure_split_files(tmp_path, ["ImageNet_LT/ImageNet_LT_train.txt"], "imagenet_lt")
    assert "has 2 lines and 2 classes, expected 115846 and 1000" in str(info.value)
    assert "knows no checksum" in str(info.value)


# --- ImageNet lists -------------------------------------------------------------------------------


def test_imagenet100_lt_lists_parse_to_the_published_sizes(shared_data):
    folder = shared_data / "splits" / "imagenet-100"
    paths, labels = read_image_list(folder / "imageNet_100_LT_train.txt")
    counts = np.bincount(labels)
    assert len(paths) == 12205 and len(counts) == 100 and counts.max() == 1280 and counts.min() == 6
    groups = groups_by_count(counts)
    # many > 100, medium 20..100, few < 20 (OLTR's code, >= 100 / <= 20, would give 40 / 46 / 14).
    assert [(groups == g).sum() for g in ("many", "medium", "few")] == [39, 48, 13]
    test_paths, test_labels = read_image_list(folder / "ImageNet_100_test.txt")
    assert len(test_paths) == 5000 and np.bincount(test_labels).tolist() == [50] * 100
    assert all(p.startswith("val/") for p in test_paths)
    _, few = read_image_list(folder / "imageNet_100_sub_balance_train_0.01.txt")
    assert np.bincount(few).tolist() == [12] * 100


def test_imagenet_lt_lists_parse_to_the_published_sizes(shared_data):
    folder = shared_data / "splits" / "ImageNet_LT"
    _, test = read_image_list(folder / "ImageNet_LT_test.txt")
    _, val = read_image_list(folder / "ImageNet_LT_val.txt")
    _, few = read_image_list(folder / "imageNet_sub_balance_train_0.01.txt")
    assert (len(test), len(val), len(few)) == (50000, 20000, 12000)
    assert np.bincount(test).tolist() == [50] * 1000 and np.bincount(few).tolist() == [12] * 1000


def test_groups_by_count_boundaries():
    groups = groups_by_count(np.array([101, 100, 20, 19, 1280, 5]))
    assert groups.tolist() == ["many", "medium", "medium", "few", "many", "few"]


def test_a_malformed_list_line_is_named(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("train/a/x.JPEG 0\n\ntrain/a/y.JPEG\n")
    with pytest.raises(ValueError, match="list.txt:3"):
        read_image_list(path)
