"""bench.augment: the batched SimCLR augmentation against torchvision's per-image definitions."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter
from scipy.stats import ks_2samp
from torchvision.transforms import RandomResizedCrop

from bench.augment import (
    BLUR_SIGMAS,
    BRIGHTNESS,
    CONTRAST,
    HUE,
    RATIO,
    SATURATION,
    BatchedSimCLRAugment,
    EvalPreprocess,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    eval_resize_size,
    gaussian_blur,
    lightly_eval_transform,
    lightly_transform,
    resized_crop,
    rgb_to_grayscale,
)
from bench.config import AugmentationSpec


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small tensors: one intra-op thread is as fast, and immune to a busy machine's thread stalls.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SPEC = AugmentationSpec()  # CIFAR recipe: 32x32, scale 0.1..1, jitter 0.4/0.4/0.4/0.1 p 0.8, gray 0.2
PLAIN = replace(SPEC, min_scale=1.0, hf_prob=0.0, cj_prob=0.0, random_gray_scale=0.0, gaussian_blur=0.0)


def _images(b: int, h: int, w: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, h, w, c), generator=g, dtype=torch.uint8)


def _smooth_images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Natural-ish images (smooth colour fields plus noise), so colour ops see varied hues."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(b, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    x = (x + 0.1 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _float(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float() / 255.0


def _unnormalize(x: torch.Tensor, spec: AugmentationSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return x * std + mean


# ------------------------------------------------------------------------------------------------
# Parameter distributions


def _torchvision_crops(n: int, h: int, w: int, scale, seed: int = 0) -> np.ndarray:
    torch.manual_seed(seed)
    img = torch.empty(1, h, w)
    return np.array(
        [RandomResizedCrop.get_params(img, list(scale), list(RATIO)) for _ in range(n)], dtype=np.float64
    )  # rows (i, j, h, w)


def _crop_stats(top, left, ch, cw, h, w):
    return {
        "area": ch * cw / (h * w),
        "log_ratio": np.log(cw / ch),
        "centre_y": (top + ch / 2) / h,
        "centre_x": (left + cw / 2) / w,
    }


@pytest.mark.parametrize("h,w,min_scale", [(32, 32, 0.1), (28, 28, 0.2), (20, 40, 0.5)])
def test_crop_distribution_matches_torchvision(h, w, min_scale):
    n = 3000
    aug = BatchedSimCLRAugment(replace(SPEC, min_scale=min_scale))
    p = aug.sample_params(n, h, w, torch.Generator().manual_seed(1))
    ours = _crop_stats(*(p[k].numpy().astype(np.float64) for k in ("crop_top", "crop_left", "crop_height", "crop_width")), h, w)
    tv = _torchvision_crops(n, h, w, (min_scale, 1.0))
    ref = _crop_stats(tv[:, 0], tv[:, 1], tv[:, 2], tv[:, 3], h, w)
    for key in ours:
        assert ks_2samp(ours[key], ref[key]).pvalue > 1e-3, key
        assert abs(ours[key].mean() - ref[key].mean()) < 0.03, key
    # Valid boxes, inside the image.
    assert (p["crop_height"] >= 1).all() and (p["crop_width"] >= 1).all()
    assert (p["crop_top"] >= 0).all() and (p["crop_top"] + p["crop_height"] <= h).all()
    assert (p["crop_left"] >= 0).all() and (p["crop_left"] + p["crop_width"] <= w).all()


def test_crop_fallback_is_torchvision_central_crop():
    # Scale (1, 1) on a 10x40 image: no candidate fits, so the fallback (h, round(h * 4/3)) centred.
    aug = BatchedSimCLRAugment(replace(SPEC, min_scale=1.0))
    p = aug.sample_params(50, 10, 40, torch.Generator().manual_seed(0))
    i, j, ch, cw = RandomResizedCrop.get_params(torch.empty(1, 10, 40), [1.0, 1.0], list(RATIO))
    assert (p["crop_top"] == i).all() and (p["crop_left"] == j).all()
    assert (p["crop_height"] == ch).all() and (p["crop_width"] == cw).all()


def test_rates_and_factor_ranges():
    n = 20000
    spec = replace(SPEC, gaussian_blur=0.5)
    aug = BatchedSimCLRAugment(spec)
    p = aug.sample_params(n, 32, 32, torch.Generator().manual_seed(2))
    tol = 4 * math.sqrt(0.25 / n)
    assert abs(p["flip"].float().mean().item() - spec.hf_prob) < tol
    assert abs(p["jitter"].float().mean().item() - spec.cj_prob) < tol
    assert abs(p["gray"].float().mean().item() - spec.random_gray_scale) < tol
    assert abs(p["blur"].float().mean().item() - spec.gaussian_blur) < tol
    strength = 0.8 * spec.cj_strength  # 0.4 for the CIFAR recipe
    hue = spec.cj_hue * spec.cj_strength  # 0.1
    for key, lo, hi in [
        ("brightness", 1 - strength, 1 + strength),
        ("contrast", 1 - strength, 1 + strength),
        ("saturation", 1 - strength, 1 + strength),
        ("hue", -hue, hue),
        ("sigma", *BLUR_SIGMAS),
    ]:
        v = p[key].numpy()
        assert v.min() >= lo - 1e-6 and v.max() <= hi + 1e-6, key
        assert v.min() < lo + 0.01 * (hi - lo) and v.max() > hi - 0.01 * (hi - lo), key
        assert abs(v.mean() - (lo + hi) / 2) < 0.01 * (hi - lo), key
        assert ks_2samp(v, np.random.default_rng(0).uniform(lo, hi, n)).pvalue > 1e-3, key
    # Orders: one permutation of the four ops per sample, every op equally often at every step.
    order = p["jitter_order"]
    assert (order.sort(dim=1).values == torch.arange(4)).all()
    for k in range(4):
        freq = torch.bincount(order[:, k], minlength=4).float() / n
        assert (freq - 0.25).abs().max() < 4 * math.sqrt(0.1875 / n)


def test_brightness_lower_bound_clipped_at_zero():
    aug = BatchedSimCLRAugment(replace(SPEC, cj_strength=1.5))  # 0.8 * 1.5 = 1.2 -> [0, 2.2]
    p = aug.sample_params(5000, 32, 32, torch.Generator().manual_seed(0))
    assert p["brightness"].min() >= 0 and p["brightness"].min() < 0.05
    assert p["brightness"].max() <= 2.2 + 1e-6


def test_parameters_differ_within_a_batch():
    aug = BatchedSimCLRAugment(SPEC)
    images = _images(1, 32, 32).expand(64, -1, -1, -1).contiguous()
    out = aug(images, torch.Generator().manual_seed(0))
    p = aug.sample_params(64, 32, 32, torch.Generator().manual_seed(0))
    boxes = torch.stack([p[k] for k in ("crop_top", "crop_left", "crop_height", "crop_width")], 1)
    assert len({tuple(b.tolist()) for b in boxes}) > 50
    assert not torch.allclose(out[0], out[1])
    assert (out.flatten(1) - out[0].flatten()).abs().amax(dim=1)[1:].min() > 1e-3


# ------------------------------------------------------------------------------------------------
# Output


@pytest.mark.parametrize("h,c,size", [(32, 3, 32), (16, 3, 16), (28, 1, 16), (8, 1, 16)])
def test_output_shape_dtype_range(h, c, size):
    spec = replace(SPEC, input_size=size, gaussian_blur=0.5)
    out = BatchedSimCLRAugment(spec)(_images(17, h, h, c), torch.Generator().manual_seed(0))
    assert out.shape == (17, 3, size, size) and out.dtype == torch.float32
    x = _unnormalize(out, spec)
    assert x.min() >= -1e-5 and x.max() <= 1 + 1e-5
    assert torch.isfinite(out).all()
    if c == 1:  # grayscale input stays gray through every op
        assert torch.allclose(x[:, 0], x[:, 1], atol=1e-5) and torch.allclose(x[:, 1], x[:, 2], atol=1e-5)


def test_reproducible_with_a_seed():
    aug = BatchedSimCLRAugment(replace(SPEC, gaussian_blur=0.5))
    images = _images(32, 32, 32)
    a = aug(images, torch.Generator().manual_seed(7))
    b = aug(images, torch.Generator().manual_seed(7))
    c = aug(images, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_two_views():
    aug = BatchedSimCLRAugment(SPEC)
    images = _images(8, 32, 32)
    v0, v1 = aug.two_views(images, torch.Generator().manual_seed(0))
    assert v0.shape == v1.shape == (8, 3, 32, 32)
    assert not torch.allclose(v0, v1)
    w0, w1 = aug.two_views(images, torch.Generator().manual_seed(0))
    assert torch.equal(v0, w0) and torch.equal(v1, w1)


@pytest.mark.parametrize("resample", ["auto", "matrix", "grid_sample"])
def test_full_image_crop_equals_eval_preprocess(resample):
    images = _images(16, 32, 32)
    out = BatchedSimCLRAugment(PLAIN, resample=resample)(images, torch.Generator().manual_seed(0))
    ref = EvalPreprocess(PLAIN)(images)
    assert (out - ref).abs().max() < 1e-4
    flipped = BatchedSimCLRAugment(replace(PLAIN, hf_prob=1.0), resample=resample)(images)
    assert (flipped - ref.flip(-1)).abs().max() < 1e-4


@pytest.mark.parametrize(
    "h,w,size,method",
    [
        (32, 32, 32, "grid_sample"),
        (32, 32, 32, "matrix"),
        (28, 28, 16, "matrix"),
        (20, 36, 24, "matrix"),
        (12, 12, 16, "grid_sample"),
    ],
)
def test_resized_crop_matches_torchvision(h, w, size, method):
    """Each sample equals torchvision's resized_crop (bilinear, antialias) then hflip."""
    aug = BatchedSimCLRAugment(replace(SPEC, input_size=size, min_scale=0.08))
    p = aug.sample_params(24, h, w, torch.Generator().manual_seed(3))
    x = _float(_images(24, h, w))
    out = resized_crop(x, p["crop_top"], p["crop_left"], p["crop_height"], p["crop_width"], size, flip=p["flip"], method=method)
    for b in range(24):
        ref = TF.resized_crop(
            x[b],
            int(p["crop_top"][b]),
            int(p["crop_left"][b]),
            int(p["crop_height"][b]),
            int(p["crop_width"][b]),
            [size, size],
            interpolation=TF.InterpolationMode.BILINEAR,
            antialias=True,
        )
        if p["flip"][b]:
            ref = TF.hflip(ref)
        assert (out[b] - ref).abs().max() < 1e-4, b


def test_eval_preprocess():
    spec = replace(SPEC, input_size=16)
    images = _images(4, 28, 28, 1)
    out = EvalPreprocess(spec)(images)
    assert out.shape == (4, 3, 16, 16)
    ref = TF.resize(_float(images), [16, 16], antialias=True)
    assert (_unnormalize(out, spec) - ref).abs().max() < 1e-5


def test_file_eval_transform_resizes_to_256_then_centre_crops_224():
    # TS (train_simCLR.py, notebooks/simclr_tau_imagenet100.ipynb) and SDCLR: Resize(256), CenterCrop(224).
    spec = replace(SPEC, input_size=224, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert eval_resize_size(224) == 256
    pixels = np.zeros((256, 320, 3), np.uint8)  # a red frame 16 px wide around a green centre
    pixels[:, :, 0] = 255
    pixels[16:-16, 16 + 32 : -16 - 32] = (0, 255, 0)
    out = lightly_eval_transform(spec)(Image.fromarray(pixels))
    assert out.shape == (3, 224, 224)
    # The shorter side is already 256: no resampling, the crop takes exactly the green centre.
    assert torch.equal(out[1], torch.ones(224, 224)) and out[0].abs().max() == 0
    squashed = TF.resize(TF.to_tensor(Image.fromarray(pixels)), [224, 224], antialias=True)
    assert squashed[0].max() > 0.9  # a direct resize to 224 x 224 would have kept the red frame
    small = Image.fromarray(pixels[:40, :60])
    reference = TF.to_tensor(TF.center_crop(TF.resize(small, eval_resize_size(32)), [32, 32]))
    assert torch.equal(lightly_eval_transform(replace(spec, input_size=32))(small), reference)


# ------------------------------------------------------------------------------------------------
# Colour ops against torchvision.transforms.functional


@pytest.mark.parametrize(
    "batched,tv,factors",
    [
        (adjust_brightness, TF.adjust_brightness, [0.0, 0.6, 1.0, 1.4, 2.2]),
        (adjust_contrast, TF.adjust_contrast, [0.0, 0.6, 1.0, 1.4, 2.2]),
        (adjust_saturation, TF.adjust_saturation, [0.0, 0.6, 1.0, 1.4, 2.2]),
        (adjust_hue, TF.adjust_hue, [-0.5, -0.1, 0.0, 0.05, 0.1, 0.33, 0.5]),
    ],
)
def test_colour_ops_match_torchvision(batched, tv, factors):
    x = torch.cat([_float(_smooth_images(len(factors), 16, 16)), _float(_images(len(factors), 16, 16))])
    x[0, :, :4] = 0.5  # gray pixels (hue undefined)
    x[1, :, :4] = 1.0
    f = torch.tensor(factors * 2)
    out = batched(x, f)
    for b in range(len(f)):
        assert (out[b] - tv(x[b], float(f[b]))).abs().max() < 1e-3, (b, float(f[b]))


def test_grayscale_matches_torchvision():
    x = _float(_images(4, 16, 16))
    assert (rgb_to_grayscale(x) - TF.rgb_to_grayscale(x)).abs().max() < 1e-3


def test_gaussian_blur():
    x = _float(_smooth_images(6, 32, 32))
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.7])
    out = gaussian_blur(x, sigma)
    for b in range(6):
        ref = TF.gaussian_blur(x[b], kernel_size=[13, 13], sigma=[float(sigma[b])] * 2)
        # torchvision pads by reflection, we replicate: compare away from the border.
        assert (out[b, :, 6:-6, 6:-6] - ref[:, 6:-6, 6:-6]).abs().max() < 1e-5
        # lightly's blur is PIL's GaussianBlur(radius=sigma) (box-blur approximation, uint8).
        pil = Image.fromarray((x[b].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        pil = TF.to_tensor(pil.filter(ImageFilter.GaussianBlur(radius=float(sigma[b]))))
        assert (out[b] - pil).abs().mean() < 2.0 / 255, b


def _reference_view(x: torch.Tensor, p: dict, b: int, aug: BatchedSimCLRAugment) -> torch.Tensor:
    """One sample through torchvision's functional ops, in lightly's order, with sample b's params."""
    spec = aug.spec
    img = TF.resized_crop(
        x[b],
        int(p["crop_top"][b]),
        int(p["crop_left"][b]),
        int(p["crop_height"][b]),
        int(p["crop_width"][b]),
        [spec.input_size] * 2,
        interpolation=TF.InterpolationMode.BILINEAR,
        antialias=True,
    )
    if p["flip"][b]:
        img = TF.hflip(img)
    if p["jitter"][b]:
        ops = {
            BRIGHTNESS: (TF.adjust_brightness, "brightness"),
            CONTRAST: (TF.adjust_contrast, "contrast"),
            SATURATION: (TF.adjust_saturation, "saturation"),
            HUE: (TF.adjust_hue, "hue"),
        }
        for op in p["jitter_order"][b].tolist():
            fn, key = ops[op]
            img = fn(img, float(p[key][b]))
    if p["gray"][b]:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return TF.normalize(img, list(spec.mean), list(spec.std))


@pytest.mark.parametrize("hue_on_rows", [True, False])
def test_pipeline_matches_torchvision_per_sample(hue_on_rows):
    """The whole view (crop, flip, jitter in each sample's order, grayscale) equals torchvision's
    functional ops applied image by image with the same parameters."""
    spec = replace(SPEC, cj_strength=1.0)  # stronger jitter, so clamping matters
    aug = BatchedSimCLRAugment(spec)
    aug.hue_on_rows = hue_on_rows
    images = _smooth_images(48, 32, 32, seed=4)
    p = aug.sample_params(48, 32, 32, torch.Generator().manual_seed(5))
    out = aug.apply(images, p)
    x = _float(images)
    for b in range(48):
        ref = _reference_view(x, p, b, aug)
        assert (out[b] - ref).abs().max() < 2e-3 / min(spec.std), b


def test_blur_applied_only_where_sampled():
    spec = replace(PLAIN, gaussian_blur=0.5)
    aug = BatchedSimCLRAugment(spec)
    images = _images(32, 32, 32)
    p = aug.sample_params(32, 32, 32, torch.Generator().manual_seed(0))
    out = _unnormalize(aug.apply(images, p), spec)
    x = _float(images)
    blurred = gaussian_blur(x, p["sigma"])
    mask = p["blur"].view(-1, 1, 1, 1)
    assert 0 < p["blur"].sum() < 32
    assert (out - torch.where(mask, blurred, x)).abs().max() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    spec = replace(SPEC, gaussian_blur=0.5)
    aug = BatchedSimCLRAugment(spec)
    images = _smooth_images(64, 32, 32)
    p = aug.sample_params(64, 32, 32, torch.Generator().manual_seed(0))
    cpu = aug.apply(images, p)
    gpu = aug.apply(images.cuda(), {k: v.cuda() for k, v in p.items()})
    assert (gpu.cpu() - cpu).abs().max() < 1e-3
    g = torch.Generator(device="cuda").manual_seed(1)
    out = aug(images.cuda(), g)
    assert out.device.type == "cuda" and out.shape == (64, 3, 32, 32)
    assert torch.equal(out, aug(images.cuda(), torch.Generator(device="cuda").manual_seed(1)))


# ------------------------------------------------------------------------------------------------
# Reference path


def test_lightly_transform_configured_from_spec():
    spec = replace(SPEC, input_size=16, gaussian_blur=0.3)
    t = lightly_transform(spec)
    views = t(Image.fromarray(_images(1, 24, 24)[0].numpy()))
    assert len(views) == 2 and views[0].shape == (3, 16, 16)
    text = repr(t.transforms[0].transform)
    assert "scale=(0.1, 1.0)" in text
    assert "brightness=(0.6, 1.4)" in text and "hue=(-0.1, 0.1)" in text
    assert t.transforms[0].transform.transforms[-1].mean == list(spec.mean)


def _views_per_second(aug, images, g, repeats=10):
    aug(images, g)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        aug(images, g)
        times.append(time.perf_counter() - t0)
    return images.shape[0] / min(times)


def test_speed_report():
    """Printed, not asserted: batched vs lightly per-image, 16x16 inputs, batch 256.

    Measured on one intra-op thread (as the per-image PIL path): on a busy 2-core machine torch's
    2-thread pool can stall hundreds of times over, which would measure the neighbours, not this.
    """
    spec = replace(SPEC, input_size=16)
    images = _images(256, 16, 16)
    aug = BatchedSimCLRAugment(spec)
    g = torch.Generator().manual_seed(0)
    batched = _views_per_second(aug, images, g)  # one thread (module fixture)
    pil = [Image.fromarray(a) for a in images.numpy()]
    reference = lightly_transform(spec)
    t0 = time.perf_counter()
    for img in pil:
        reference(img)  # two views
    per_image = 2 * 256 / (time.perf_counter() - t0)
    print(
        f"\nBatchedSimCLRAugment: {batched:,.0f} views/s; lightly SimCLRTransform: {per_image:,.0f} views/s "
        f"(16x16 -> 16x16, batch 256, one thread)"
    )
