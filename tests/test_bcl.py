"""bcl (BCL-I, Zhou et al. ICML 2022): the momentum loss, the strength formula, the batched RandAugment
ops, the strengths reaching both data paths by sample index, end-to-end runs and an exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps

from bench import randaugment as ra
from bench.backbones import create_backbone
from bench.checkpoint import Checkpointer, TrainingInterrupted
from bench.cli import main
from bench.config import AugmentationSpec
from bench.data import DeviceBatches, LoaderBatches
from bench.records import load_records
from bench.runner import load_data, plan, run_augmentation
from bench.trainer import train
from datasets.imagefiles import ImageFiles
from methods import create_method
from methods.bcl import momentum_update, strength_from_momentum
from methods.losses import nt_xent_per_view, per_sample_loss
from methods.temperature import TrainingProgress


# --- the momentum loss and the strength -----------------------------------------------------------


def test_strength_standardises_the_momentum_loss_into_0_1():
    momentum = torch.tensor([1.0, 2.0, 3.0, 4.0, 9.0])
    seen = torch.tensor([True, True, True, True, False])
    # mean 2.5, unbiased std sqrt(5/3): z = (-1.5, -0.5, 0.5, 1.5) / std, max|z| = 1.5 / std
    w = strength_from_momentum(momentum, seen)
    assert torch.allclose(w, torch.tensor([0.0, 1 / 3, 2 / 3, 1.0, 0.0]), atol=1e-6)
    assert strength_from_momentum(torch.zeros(4), torch.zeros(4, dtype=torch.bool)).tolist() == [0.0] * 4
    assert strength_from_momentum(torch.full((3,), 2.0), torch.ones(3, dtype=torch.bool)).tolist() == [0.5] * 3


def test_momentum_update_uses_beta_097_and_the_first_loss_as_is():
    momentum, seen = torch.zeros(4), torch.zeros(4, dtype=torch.bool)
    momentum_update(momentum, seen, torch.tensor([0, 2]), torch.tensor([2.0, 4.0]), 0.97)
    assert momentum.tolist() == [2.0, 0.0, 4.0, 0.0] and seen.tolist() == [True, False, True, False]
    momentum_update(momentum, seen, torch.tensor([2, 3]), torch.tensor([1.0, 5.0]), 0.97)
    assert torch.allclose(momentum, torch.tensor([2.0, 0.0, 0.97 * 4.0 + 0.03 * 1.0, 5.0]))


def test_training_step_tracks_the_mean_view_loss_with_the_strategys_tau():
    torch.manual_seed(0)
    method = create_method("bcl+cosine_tau", backbone=torch.nn.Flatten(), feature_dim=12, num_train_samples=10)
    method.eval()  # BatchNorm in eval: the recomputed projections below equal the step's
    views = torch.randn(2, 4, 12)
    indices = torch.tensor([7, 1, 3, 0])
    progress = TrainingProgress(epoch=3, step=30, steps_per_epoch=10, total_epochs=20, temperature_period=20)
    method.training_step(views[0], views[1], indices, progress)
    with torch.no_grad():
        z0, z1 = method(torch.cat([views[0], views[1]])).chunk(2)
        tau = method.temperature_strategy(progress, None)
        expected = per_sample_loss(nt_xent_per_view(z0, z1, tau))
    assert not math.isclose(float(tau), 0.2)
    assert torch.allclose(method.momentum_loss[indices], expected)
    assert method.seen.sum() == 4 and method.momentum_loss[[2, 4, 5, 6, 8, 9]].eq(0).all()


def test_bcl_needs_the_number_of_training_samples():
    with pytest.raises(ValueError, match="num_train_samples"):
        create_method("bcl", backbone=torch.nn.Flatten(), feature_dim=12)
    assert create_method("constant", backbone=torch.nn.Flatten(), feature_dim=4).augmentation_strength() is None


# --- the RandAugment ops --------------------------------------------------------------------------


def one_op(x: torch.Tensor, op: str, value: float = 0.0, negate: bool = False, centre=(0.5, 0.5)) -> torch.Tensor:
    """Apply ``op`` with the given value (through the magnitude giving it) to every image of ``x``."""
    n = x.shape[0]
    lo, hi = ra.RANGES.get(op, (0.0, 1.0))
    m = (value - lo) / (hi - lo) * ra.MAX_MAGNITUDE if op in ra.RANGES else 20.0
    params = {
        "op": torch.full((n,), ra.OPS.index(op)),
        "apply": torch.ones(n, dtype=torch.bool),
        "negate": torch.full((n,), negate),
        "centre_x": torch.full((n,), centre[0]),
        "centre_y": torch.full((n,), centre[1]),
        "magnitude": torch.full((n,), float(m)),
    }
    return ra.apply(x, params)


@pytest.fixture
def image() -> torch.Tensor:
    """A (1, 3, 8, 8) image on the uint8 grid."""
    return torch.randint(0, 256, (1, 3, 8, 8), generator=torch.Generator().manual_seed(0)).float() / 255


def as_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x[0].permute(1, 2, 0) * 255).round().byte().numpy())


def from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float().unsqueeze(0) / 255


def test_invert_solarize_posterize(image):
    assert torch.equal(one_op(image, "invert"), 1 - image)
    levels = (image * 255).round()
    solarized = one_op(image, "solarize", 100.0)
    assert torch.equal(solarized, torch.where(levels >= 100, 1 - image, image))
    assert torch.allclose(solarized, from_pil(ImageOps.solarize(as_pil(image), 100)), atol=1e-6)
    posterized = one_op(image, "posterize", 5.0)  # keep 5 bits: levels become multiples of 8
    assert torch.equal(posterized * 255, (levels // 8) * 8)
    assert torch.allclose(posterized, from_pil(ImageOps.posterize(as_pil(image), 5)), atol=1e-6)


def test_equalize_and_autocontrast_match_pil(image):
    assert torch.equal(one_op(image, "equalize"), from_pil(ImageOps.equalize(as_pil(image))))
    # PIL rounds autocontrast to uint8 levels; here the output stays float.
    assert (one_op(image, "autocontrast") - from_pil(ImageOps.autocontrast(as_pil(image)))).abs().max() <= 1 / 255


def test_translate_shifts_by_the_fraction_of_the_width_and_fills_black(image):
    shifted = one_op(image, "translate_x", 0.25)  # 2 of 8 pixels: x_in = x_out + 2, content moves left
    assert torch.equal(shifted[..., :6], image[..., 2:]) and shifted[..., 6:].eq(0).all()
    down = one_op(image, "translate_y", 0.25, negate=True)
    assert torch.equal(down[..., 2:, :], image[..., :6, :]) and down[..., :2, :].eq(0).all()


def test_rotate_90_equals_torchvision_and_shear_equals_pil(image):
    assert torch.equal(one_op(image, "rotate", 90.0), TF.rotate(image, 90.0))
    assert torch.equal(one_op(image, "rotate", 90.0, negate=True), TF.rotate(image, -90.0))
    pil = as_pil(image)
    assert torch.equal(one_op(image, "rotate", 30.0), from_pil(pil.rotate(30)))
    assert torch.equal(one_op(image, "shear_x", 0.3), from_pil(pil.transform(pil.size, Image.AFFINE, (1, 0.3, 0, 0, 1, 0))))


def test_cutout_paints_a_square_of_the_given_side(image):
    x = torch.zeros(1, 3, 20, 20)
    out = one_op(x, "cutout", 0.3, centre=(0.5, 0.5))  # side 6, inside the image
    painted = out[0, 0] > 0
    assert painted.sum() == 36 and painted[7:13, 7:13].all()
    assert torch.allclose(out[0, :, 10, 10], torch.tensor(ra.CUTOUT_FILL))
    # As the official code: the top-left corner is moved into the image, the far sides are clipped.
    assert (one_op(x, "cutout", 0.3, centre=(0.0, 0.0))[0, 0, :6, :6] > 0).all()
    assert (one_op(x, "cutout", 0.3, centre=(1.0, 1.0))[0, 0] > 0).sum() == 9


def test_only_samples_with_the_apply_flag_change(image):
    x = image.repeat(4, 1, 1, 1)
    params = {
        "op": torch.tensor([6, 6, 6, 6]),
        "apply": torch.tensor([True, False, True, False]),
        "negate": torch.zeros(4, dtype=torch.bool),
        "centre_x": torch.zeros(4),
        "centre_y": torch.zeros(4),
        "magnitude": torch.full((4,), 20.0),
    }
    out = ra.apply(x, params)
    assert torch.equal(out[[1, 3]], x[[1, 3]]) and torch.equal(out[[0, 2]], 1 - x[[0, 2]])
    assert ra.magnitude(torch.tensor([0.0, 0.5, 1.0])).tolist() == [10.0, 20.0, 30.0]


# --- the strengths reach the data by sample index ------------------------------------------------


def test_device_batches_boost_only_samples_with_positive_strength():
    images = np.random.RandomState(0).randint(0, 256, (16, 12, 12, 3)).astype(np.uint8)
    spec = AugmentationSpec(input_size=12)
    plain = DeviceBatches(images, spec, 16, torch.device("cpu"), torch.Generator().manual_seed(3))
    boosted = DeviceBatches(images, spec, 16, torch.device("cpu"), torch.Generator().manual_seed(3))
    strength = torch.zeros(16)
    strength[::2] = 1.0
    boosted.set_sample_strength(strength)
    (p0, p1, p_idx), (b0, b1, b_idx) = next(plain.epoch()), next(boosted.epoch())
    assert torch.equal(p_idx, b_idx)
    weak = strength[b_idx] == 0
    assert torch.equal(b0[weak], p0[weak]) and torch.equal(b1[weak], p1[weak])  # bit-identical to SimCLR
    changed = torch.cat([(b0 != p0).flatten(1).any(1)[~weak], (b1 != p1).flatten(1).any(1)[~weak]])
    assert changed.float().mean() > 0.75  # a few ops can be the identity on some images


class _FixedViews:
    """Two identical, unaugmented views (picklable for the workers): only RandAugment changes them."""

    def __call__(self, img):
        view = TF.to_tensor(img)
        return view, view.clone()


def test_loader_workers_read_the_strengths_by_index_and_see_updates(tmp_path):
    rng = np.random.RandomState(0)
    paths = []
    for i in range(24):
        Image.fromarray(rng.randint(40, 200, (10, 10, 3)).astype(np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(f"{i}.png")
    files = ImageFiles(tmp_path, paths)
    spec = AugmentationSpec(input_size=10)
    source = LoaderBatches(files, spec, 8, torch.device("cpu"), seed=0, num_workers=2)
    source.dataset.transform = _FixedViews()
    source.set_sample_strength(torch.zeros(24))
    plain = torch.stack([source.dataset.normalize(TF.to_tensor(files.open(i))) for i in range(24)])

    def changed_by_index() -> dict[int, bool]:
        out = {}
        for view0, view1, indices in source.epoch():
            for v0, v1, i in zip(view0, view1, indices.tolist()):
                out[i] = not (torch.equal(v0, plain[i]) and torch.equal(v1, plain[i]))
        return out

    assert not any(changed_by_index().values())
    strength = torch.zeros(24)
    strength[::2] = 1.0
    source.set_sample_strength(strength)  # in place, the persistent workers keep running
    changed = changed_by_index()
    assert not any(changed[i] for i in changed if i % 2)
    assert sum(changed[i] for i in changed if i % 2 == 0) >= 9  # of 12 always-augmented samples


# --- end to end ----------------------------------------------------------------------------------


def test_bcl_and_bcl_cosine_tau_train_end_to_end(tmp_path):
    results = tmp_path / "results"
    assert (
        main(
            [
                "run",
                "--methods",
                "bcl,bcl+cosine_tau",
                "--dataset",
                "digits_lt",
                "--preset",
                "tiny",
                "--results-dir",
                str(results),
                "--no-progress",
                "--no-leaderboard",
            ]
        )
        == 0
    )
    runs = {r["method"]: r for r in load_records(results) if r["kind"] == "run"}
    assert set(runs) == {"bcl", "bcl+cosine_tau"}
    for record in runs.values():
        first, second = record["history"]
        assert first["bcl_w_mean"] == 0.0 and first["bcl_w_max"] == 0.0  # no loss known yet: plain SimCLR
        assert 0.0 < second["bcl_w_mean"] < second["bcl_w_max"] == 1.0
        assert record["metrics"]
    assert runs["bcl"]["history"][0]["tau"] == pytest.approx(0.2)
    assert runs["bcl+cosine_tau"]["history"][1]["tau"] != pytest.approx(0.2)
    json.dumps(runs["bcl"])


def _trained_bcl(tmp_path, checkpointer=None, stop=None):
    run_plan = plan(["bcl"], "digits_lt", [0], "tiny", {"epochs": 2}, "cpu", tmp_path / "results")
    config = run_plan.configs[0]
    data = load_data(run_plan)
    torch.manual_seed(0)
    backbone, dim = create_backbone(config.backbone)
    method = create_method("bcl", backbone=backbone, feature_dim=dim, num_train_samples=len(data.train_images))
    train(method, data.train_images, run_augmentation(config), config, torch.device("cpu"), False, checkpointer, stop)
    return method


class _StopAfter:
    """A stop request that fires after ``steps`` steps (mid-epoch 2 of the tiny preset)."""

    def __init__(self, steps: int) -> None:
        self.steps, self.signal_name = steps, "test"

    @property
    def requested(self) -> bool:
        self.steps -= 1
        return self.steps < 0


def test_a_resumed_run_ends_with_the_uninterrupted_momentum_losses(tmp_path):
    reference = _trained_bcl(tmp_path)
    checkpointer = Checkpointer(tmp_path / "bcl.pt", every_epochs=1)
    with pytest.raises(TrainingInterrupted):
        _trained_bcl(tmp_path, checkpointer, _StopAfter(10))  # 7 steps per epoch: stops inside epoch 2
    resumed = _trained_bcl(tmp_path, checkpointer)
    assert torch.equal(resumed.seen, reference.seen) and reference.seen.any()
    assert torch.equal(resumed.momentum_loss, reference.momentum_loss)
    assert torch.equal(resumed.strength, reference.strength) and reference.strength.max() == 1.0
    tensors = [(k, v) for k, v in reference.state_dict().items() if isinstance(v, torch.Tensor)]
    assert all(torch.equal(resumed.state_dict()[k], v) for k, v in tensors)
