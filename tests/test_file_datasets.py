"""File datasets: ImageNet100-LT / ImageNet-LT on a generated image tree, any image folder end to end,
CIFAR-10 from its JPEG copy, the DataLoader batch source, and their one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from bench.config import AugmentationSpec
from bench.data import LoaderBatches
from bench.evaluation import features_of
from bench.errors import UserError
from datasets import create_dataset
from datasets.cifar import CIFAR10_CLASSES, jpeg_train_paths
from datasets.imagefiles import ImageFiles, read_image_list
from datasets.longtail import ldam_counts

REPO = Path(__file__).resolve().parents[1]


def write_image_tree(root: Path, counts: list[int], size: int = 20) -> None:
    """A small ImageFolder: class k has counts[k] noisy images of its own colour."""
    rng = np.random.RandomState(0)
    for label, count in enumerate(counts):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(count):
            base = np.array([60 * label % 256, 255 - 50 * label, 128], dtype=float)
            pixels = (base + rng.rand(size, size, 3) * 60).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")


# --- ImageNet100-LT -------------------------------------------------------------------------------


@pytest.fixture
def imagenet100_root(shared_data, tmp_path) -> Path:
    """An ImageNet root holding the real lists and, for every listed image, a link to one small
    generated JPEG (the images are stand-ins; the lists and their checksums are real)."""
    lists = shared_data / "splits" / "imagenet-100"
    root = tmp_path / "imagenet"
    shutil.copytree(lists, root / "split" / "imagenet-100")
    stand_in = tmp_path / "stand_in.jpg"
    Image.fromarray(np.full((12, 12, 3), 90, np.uint8)).save(stand_in)
    for name in ("imageNet_100_LT_train.txt", "ImageNet_100_test.txt"):
        for relative in read_image_list(lists / name)[0]:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(stand_in, target)
    return root


def test_imagenet100_lt_loads_from_an_imagenet_root(imagenet100_root):
    data = create_dataset("imagenet100_lt").load(imagenet100_root)
    counts = data.class_counts
    assert len(data.train_labels) == 12205 and counts.max() == 1280 and counts.min() == 6
    assert isinstance(data.train_images, ImageFiles) and len(data.train_images) == 12205
    assert len(data.test_labels) == 5000 and np.bincount(data.test_labels).tolist() == [50] * 100
    assert [(data.groups == g).sum() for g in ("many", "medium", "few")] == [39, 48, 13]
    assert "many > 100" in data.summary()["groups_rule"]
    assert data.class_names[0] == "n02869837" and len(set(data.class_names)) == 100
    assert data.train_images.open(0).size == (12, 12)
    few_images, few_labels = data.probe_sets["few"].load()
    assert len(few_images) == 1200 and np.bincount(few_labels).tolist() == [12] * 100


def test_imagenet100_lt_fs_probe_is_ts_list_of_12_per_class(imagenet100_root):
    # TS (notebooks/simclr_tau_imagenet100.ipynb, txt_train_fs): imageNet_100_sub_balance_train_0.01.txt.
    from bench import runner
    from bench.config import RunConfig

    data = create_dataset("imagenet100_lt").load(imagenet100_root)
    assert data.probe_sets["fs"] is data.probe_sets["few"]
    assert "imageNet_100_sub_balance_train_0.01.txt" in data.probe_sets["fs"].description
    fs_images, fs_labels = data.probe_sets["fs"].load()
    assert len(fs_images) == 1200 and np.bincount(fs_labels).tolist() == [12] * 100
    config = RunConfig(
        method="constant",
        dataset="imagenet100_lt",
        seed=0,
        preset="tiny",
        backbone="small_cnn",
        epochs=1,
        batch_size=8,
        lr=0.5,
        momentum=0.9,
        weight_decay=1e-4,
        warmup_epochs=0,
        temperature_period=1,
        temperature_period_rule="",
        device="cpu",
        eval_protocols=("knn1", "linear_fs"),
    )
    assert runner._probe_sets_needed(config, data) == {"fs"}
    assert "sub_balance_train_0.01" in runner._evaluation_descriptions(config, data)["linear_fs"]


def test_imagenet_without_images_says_what_to_download(shared_data, tmp_path):
    root = tmp_path / "imagenet"
    shutil.copytree(shared_data / "splits" / "imagenet-100", root / "split" / "imagenet-100")
    with pytest.raises(UserError) as info:
        create_dataset("imagenet100_lt").load(root)
    message = str(info.value)
    assert "\n" not in message and "not found" in message and "image-net.org" in message
    assert "train/<wnid>/" in message and "val/<wnid>/" in message


def test_imagenet_lt_without_lists_says_which_files_go_where(tmp_path, capsys):
    code = main(
        [
            "run",
            "--dataset",
            "imagenet_lt",
            "--data-root",
            str(tmp_path / "in"),
            "--methods",
            "constant",
            "--results-dir",
            str(tmp_path / "results"),
            "--no-progress",
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "ImageNet_LT_train.txt" in lines[0] and f"{tmp_path / 'in'}/split/ImageNet_LT/" in lines[0]
    assert "classifier-balancing" in lines[0] and not (tmp_path / "results").exists()


def test_imagenet_without_data_root_is_one_line(tmp_path, capsys):
    code = main(["run", "--dataset", "imagenet100_lt", "--methods", "constant", "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--data-root" in err[0] and "image-net.org" in err[0]


# --- folder ---------------------------------------------------------------------------------------


def test_folder_runs_end_to_end_with_the_ts_protocol(tmp_path):
    images = tmp_path / "images"
    write_image_tree(images, [24, 14, 8, 6])
    results = tmp_path / "board" / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--dataset",
            "folder",
            "--data-root",
            str(images),
            "--preset",
            "tiny",
            "--methods",
            "constant,cosine_tau",
            "--epochs",
            "1",
            "--eval",
            "ts",
            "--num-workers",
            "0",
            "--results-dir",
            str(results),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    runs = [r for r in records if r["kind"] == "run"]
    assert len(runs) == 2 and len(records) == 4  # 2 methods, and the 2 floors
    for record in runs:
        # 3 per class held out (min(50, 6 // 2)); the rest is the folder's own long tail.
        assert record["data"]["class_counts"] == [21, 11, 5, 3]
        assert record["data"]["num_test"] == 12
        assert record["data"]["construction"].startswith("native class counts")
        assert set(record["metrics"]) == {"knn1", "knn10", "linear_fs", "linear"}
        assert record["protocol"]["source"] == str(images.resolve())
        assert record["config"]["construction"] == "native"
    board = (tmp_path / "board" / "README.md").read_text()
    assert "| Δ kNN@10 " in board and "| cosine_tau " in board  # the paired difference stands inline


def test_folder_imposes_an_exponential_profile(tmp_path):
    write_image_tree(tmp_path, [30, 30, 30, 30], size=8)
    data = create_dataset("folder", construction="exp", rho=10).load(tmp_path)
    # 15 per class held out (min(50, 30 // 2)), then LDAM on n_max = 15.
    assert data.class_counts.tolist() == ldam_counts(15, 4, 10) == [15, 6, 3, 1]
    assert np.bincount(data.test_labels).tolist() == [15] * 4
    assert not set(data.train_images.paths) & set(data.test_images.paths)
    with pytest.raises(UserError, match="--rho 20 is larger than n_max 15"):
        create_dataset("folder", construction="exp", rho=20).load(tmp_path)
    with pytest.raises(UserError, match="--construction exp"):
        create_dataset("folder", rho=10)


def test_folder_with_train_and_test_uses_both_as_they_are(tmp_path):
    write_image_tree(tmp_path / "train", [9, 4, 2], size=8)
    write_image_tree(tmp_path / "test", [2, 2, 2], size=8)
    data = create_dataset("folder").load(tmp_path)
    assert data.class_counts.tolist() == [9, 4, 2] and len(data.test_labels) == 6


def test_folder_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="needs --data-root"):
        create_dataset("folder").load(None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not an image folder"):
        create_dataset("folder").load(tmp_path / "empty")


# --- the DataLoader path --------------------------------------------------------------------------


def test_loader_batches_yield_two_views_and_indices(tmp_path):
    write_image_tree(tmp_path, [5, 5], size=10)
    paths = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png"))
    files = ImageFiles(tmp_path, paths)
    spec = AugmentationSpec(input_size=16)
    source = LoaderBatches(files, spec, batch_size=4, device=torch.device("cpu"), seed=0)
    batches = list(source.epoch())
    assert source.steps_per_epoch() == 2 and len(batches) == 2  # drop_last: 10 // 4
    view0, view1, indices = batches[0]
    assert view0.shape == view1.shape == (4, 3, 16, 16) and not torch.equal(view0, view1)
    again = [b[2].tolist() for b in LoaderBatches(files, spec, 4, torch.device("cpu"), seed=0).epoch()]
    assert again == [b[2].tolist() for b in batches]  # the shuffle follows the seed
    features = features_of(torch.nn.Flatten(), files, spec, torch.device("cpu"), batch_size=3)
    assert features.shape == (10, 3 * 16 * 16)
    assert torch.allclose(features.norm(dim=1), torch.ones(10))


# --- CIFAR-10 from the JPEG copy ------------------------------------------------------------------


def test_jpeg_paths_follow_the_per_class_rank():
    targets = np.array([6, 9, 9, 4, 6])
    assert jpeg_train_paths(targets, CIFAR10_CLASSES) == [
        "train/frog/0000.jpg",
        "train/truck/0000.jpg",
        "train/truck/0001.jpg",
        "train/deer/0000.jpg",
        "train/frog/0001.jpg",
    ]


def test_cifar10_jpeg_sdclr_split_loads_the_published_counts(shared_data, tmp_path):
    # Unpack only what split 1 reads (its D_i and the test set): a third of the archive's 60,000 files.
    targets = np.load(shared_data / "cifar_labels" / "cifar10_train_labels.npy")
    d_i = np.load(shared_data / "splits" / "cifar10_imbSub_with_subsets" / "split1_D_i.npy")
    all_paths = jpeg_train_paths(targets, CIFAR10_CLASSES)
    wanted = {all_paths[i] for i in d_i}
    with tarfile.open(shared_data / "cifar10_jpeg" / "cifar10_jpeg_q75.tar.gz") as archive:
        members = [m for m in archive if m.isdir() or m.name.startswith("test/") or m.name in wanted]
        archive.extractall(tmp_path, members=members, filter="data")
    os.symlink(shared_data / "cifar_labels" / "cifar10_train_labels.npy", tmp_path / "cifar10_train_labels.npy")
    os.symlink(shared_data / "splits", tmp_path / "split")
    data = create_dataset("cifar10_jpeg_lt", construction="sdclr", split=1).load(tmp_path)
    assert data.train_images.shape == (11165, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert sorted(data.class_counts.tolist(), reverse=True) == [4500, 2697, 1617, 969, 581, 348, 208, 125, 75, 45]
    assert data.test_images.shape == (10000, 32, 32, 3) and np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.split == 1 and data.construction.startswith("sdclr(split=1")
    assert data.name == "cifar10_jpeg_lt"
    # The first D_i image is the JPEG of its torchvision index.
    index = int(np.load(shared_data / "splits" / "cifar10_imbSub_with_subsets" / "split1_D_i.npy")[0])
    expected = np.asarray(
        Image.open(tmp_path / jpeg_train_paths(np.load(tmp_path / "cifar10_train_labels.npy"), CIFAR10_CLASSES)[index]).convert(
            "RGB"
        )
    )
    assert np.array_equal(data.train_images[0], expected)
    # cifar10_lt refuses the JPEG copy and names the right dataset.
    with pytest.raises(UserError, match="use --dataset cifar10_jpeg_lt"):
        create_dataset("cifar10_lt").load(tmp_path)
