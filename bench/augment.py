"""SimCLR augmentations for whole batches on the training device, and the per-image reference path.

lightly's ``SimCLRTransform`` works on one PIL image at a time (about 0.9 ms per image pair on a
2-core CPU, and on a GPU the CPU workers cannot keep up at 32x32). In-memory datasets therefore keep
their uint8 images on the training device and augment a whole batch at once with
:class:`BatchedSimCLRAugment`: every sample gets its own random parameters, drawn from the same
distributions as lightly's ``SimCLRViewTransform``::

    RandomResizedCrop(S, scale=(min_scale, 1), ratio=(3/4, 4/3))   # bilinear, antialias
    RandomHorizontalFlip(hf_prob)
    RandomApply([ColorJitter(0.8 s, 0.8 s, 0.8 s, cj_hue s)], p=cj_prob)   # s = cj_strength
    RandomGrayscale(random_gray_scale)
    GaussianBlur(prob=gaussian_blur, sigmas=(0.1, 2))   # PIL ImageFilter.GaussianBlur(radius=sigma)
    ToTensor(); Normalize(mean, std)

File datasets use the per-image reference (:func:`lightly_transform`, :func:`lightly_eval_transform`;
the latter resizes and centre-crops as ImageNet evaluation does, where :class:`EvalPreprocess` of
in-memory datasets resizes the whole image).

Differences from the per-image torchvision / PIL path (all deliberate, none changes a distribution):

* Everything is computed in float32; PIL rounds to uint8 after every operation.
* Random numbers come from one ``torch.Generator`` in a different order, so a batch is not
  bit-identical to what lightly would produce for the same seed.
* Resized crop: with ``resample="auto"`` (default), crops are resampled exactly like torchvision's
  ``resized_crop(..., BILINEAR, antialias=True)`` (PIL's triangle filter, widened when a crop is
  shrunk) through per-sample separable interpolation matrices whenever the input is larger than
  ``S`` (so a crop can be shrunk); when the input is no larger than ``S`` every crop is enlarged,
  where antialiasing does nothing and ``F.affine_grid`` + ``F.grid_sample`` (bilinear,
  ``align_corners=False``, sampling points clamped to the crop) gives the same result more cheaply.
* Colour jitter: as torchvision, brightness / contrast / saturation / hue are applied in a random
  order drawn per sample, with clamping to [0, 1] after each op.
* Grayscale uses the ITU-R 601-2 weights 0.299 / 0.587 / 0.114 (PIL's ``convert("L")``); the
  torchvision tensor kernels use 0.2989 (a difference below 1e-4).
* Gaussian blur: PIL approximates a Gaussian of standard deviation ``sigma`` by three box blurs
  with edge-pixel extension; here it is a true separable Gaussian of the same ``sigma`` truncated at
  ``ceil(3 * sigma_max)`` pixels (13 taps for sigma up to 2), with replicate padding. lightly's
  ``GaussianBlur`` has no kernel size (the old ``kernel_size`` argument is gone).
* Single-channel inputs are repeated to three channels (lightly would keep one channel).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from bench.config import AugmentationSpec

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
BLUR_SIGMAS = (0.1, 2.0)
CROP_TRIES = 10
# Colour-jitter op indices, as in torchvision's ColorJitter (fn_idx).
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


# --------------------------------------------------------------------------------------------------
# Batched colour ops on float images (B, 3, H, W) in [0, 1], one factor per sample (shape (B,)).
# Each matches torchvision.transforms.functional's op of the same name applied per image.


def _per_sample(factor: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    f = torch.as_tensor(factor, dtype=x.dtype, device=x.device)
    if f.ndim == 0:
        f = f.expand(x.shape[0])
    return f.view(-1, 1, 1, 1)


def rgb_to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma with the ITU-R 601-2 weights."""
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    # torchvision's _blend: ratio * img1 + (1 - ratio) * img2, clamped to [0, 1].
    return (ratio * x + (1.0 - ratio) * other).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Per-sample ``F.adjust_brightness``: blend with black, i.e. ``clamp(x * factor)``."""
    return (x * _per_sample(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Per-sample ``F.adjust_contrast``: blend with the image's mean grayscale value."""
    mean = rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, _per_sample(factor, x))


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Per-sample ``F.adjust_saturation``: blend with the grayscale image."""
    return _blend(x, rgb_to_grayscale(x), _per_sample(factor, x))


def adjust_hue(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Per-sample ``F.adjust_hue`` (factor in [-0.5, 0.5]): RGB -> HSV, shift H, HSV -> RGB.

    The forward conversion is torchvision's ``_rgb2hsv``; the inverse uses the closed form
    ``channel_n = V - V S clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 H) mod 6`` (n = 5, 3, 1 for
    R, G, B), equal to torchvision's sector table but without materialising it. ``V S`` is the
    chroma ``max - min``, so S is never formed.
    """
    r, g, b = x.unbind(1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    cr = maxc - minc
    eqc = cr == 0
    crd = torch.where(eqc, torch.ones_like(cr), cr)
    rc = (maxc - r) / crd
    gc = (maxc - g) / crd
    bc = (maxc - b) / crd
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~(is_r | is_g)
    h = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    h = torch.fmod(h / 6.0 + 1.0, 1.0)
    h6 = torch.remainder(h + _per_sample(factor, x).view(-1, 1, 1), 1.0) * 6.0
    n = torch.tensor((5.0, 3.0, 1.0), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = torch.remainder(h6.unsqueeze(1) + n, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return (maxc.unsqueeze(1) - cr.unsqueeze(1) * ramp).clamp_(0.0, 1.0)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: Optional[int] = None) -> torch.Tensor:
    """Separable Gaussian blur with one ``sigma`` per sample (grouped conv), replicate padding.

    ``radius`` defaults to ``ceil(3 * max(sigma))``; the kernel has ``2 * radius + 1`` taps.
    """
    bsz, ch, height, width = x.shape
    sigma = sigma.to(dtype=x.dtype, device=x.device).reshape(bsz)
    if radius is None:
        radius = max(1, int(math.ceil(3.0 * float(BLUR_SIGMAS[1]))))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps.view(1, -1) / sigma.view(-1, 1)) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, K)
    kernel = kernel.repeat_interleave(ch, dim=0)  # (B * C, K)
    size = 2 * radius + 1
    y = x.reshape(1, bsz * ch, height, width)
    y = F.pad(y, (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel.view(bsz * ch, 1, 1, size), groups=bsz * ch)
    y = F.conv2d(y, kernel.view(bsz * ch, 1, size, 1), groups=bsz * ch)
    return y.view(bsz, ch, height, width)


# --------------------------------------------------------------------------------------------------
# Resized crop


def _resample_matrix(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, flip: Optional[torch.Tensor], dtype: torch.dtype
) -> torch.Tensor:
    """(B, out, in) interpolation weights of torchvision's bilinear ``resized_crop`` with antialias.

    PIL / torchvision AA: output pixel k samples the crop [start, start + length) at centre
    ``start + (k + 0.5) * scale`` (scale = length / out) with a triangle filter of half-width
    ``max(scale, 1)``, restricted to the crop and renormalised.
    """
    dev = start.device
    start = start.to(dtype).view(-1, 1, 1)
    length = length.to(dtype).view(-1, 1, 1)
    k = torch.arange(out_size, dtype=dtype, device=dev).view(1, -1, 1)
    if flip is not None:
        k = torch.where(flip.view(-1, 1, 1), out_size - 1 - k, k)
    scale = length / out_size
    support = scale.clamp(min=1.0)
    centre = start + (k + 0.5) * scale
    p = torch.arange(in_size, dtype=dtype, device=dev).view(1, 1, -1)
    w = (1.0 - (p + 0.5 - centre).abs() / support).clamp_(min=0.0)
    inside = (p >= start) & (p < start + length)
    w = w * inside
    return w / w.sum(dim=2, keepdim=True).clamp(min=1e-12)


def resized_crop(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
    size: int,
    flip: Optional[torch.Tensor] = None,
    method: str = "matrix",
) -> torch.Tensor:
    """Per-sample crop ``[top, top + height) x [left, left + width)`` resized to ``size`` x ``size``
    (then mirrored left-right where ``flip``), for float images (B, C, H, W).

    ``method="matrix"``: torchvision's bilinear antialiased ``resized_crop`` exactly (separable
    per-sample weight matrices, two batched matmuls). ``method="grid_sample"``: ``F.affine_grid`` +
    bilinear ``F.grid_sample`` (``align_corners=False``), with the flip folded into the affine and
    the sampling points clamped to the crop; identical to the former when no crop is shrunk, and
    aliased when one is.
    """
    bsz, ch, in_h, in_w = x.shape
    if method == "matrix":
        wy = _resample_matrix(top, height, in_h, size, None, x.dtype)  # (B, S, H)
        wx = _resample_matrix(left, width, in_w, size, flip, x.dtype)  # (B, S, W)
        y = torch.matmul(wy.unsqueeze(1), x)  # (B, C, S, W)
        return torch.matmul(y, wx.transpose(1, 2).unsqueeze(1))  # (B, C, S, S)
    if method != "grid_sample":
        raise ValueError(f"unknown resize method {method!r}")
    dt = x.dtype
    sx = width.to(dt) / in_w
    sy = height.to(dt) / in_h
    cx = (2.0 * left.to(dt) + width.to(dt)) / in_w - 1.0
    cy = (2.0 * top.to(dt) + height.to(dt)) / in_h - 1.0
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack((torch.stack((sx, zero, cx), 1), torch.stack((zero, sy, cy), 1)), 1)
    grid = F.affine_grid(theta, [bsz, ch, size, size], align_corners=False)
    # torchvision crops first, so bilinear taps never reach outside the crop: clamp the sampling
    # points to the centres of the crop's first and last pixels (border padding would clamp to the
    # image instead).
    lo = torch.stack(((2.0 * left.to(dt) + 1.0) / in_w, (2.0 * top.to(dt) + 1.0) / in_h), 1) - 1.0
    hi = torch.stack(((2.0 * (left + width).to(dt) - 1.0) / in_w, (2.0 * (top + height).to(dt) - 1.0) / in_h), 1) - 1.0
    grid = torch.maximum(torch.minimum(grid, hi.view(bsz, 1, 1, 2)), lo.view(bsz, 1, 1, 2))
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _to_float_nchw(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) uint8 in [0, 255] (or float already in [0, 1]) -> (B, C, H, W) float32 in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images of shape (B, H, W, C) with C in {{1, 3}}, got {tuple(images.shape)}")
    x = images.permute(0, 3, 1, 2)
    if images.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
    else:
        x = x.to(torch.float32)
    return x.contiguous()


def _normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


# --------------------------------------------------------------------------------------------------


class BatchedSimCLRAugment:
    """SimCLR view augmentation of a whole uint8 batch (B, H, W, C) on its own device.

    ``aug(images, generator)`` returns one view (B, 3, S, S) float32, normalised with the spec's
    mean / std; ``aug.two_views(images, generator)`` returns two independent views. Every random
    number comes from ``generator`` (which must live on the images' device), so a seed reproduces
    the output. See the module docstring for the differences from the per-image path.
    """

    def __init__(self, spec: AugmentationSpec, resample: str = "auto"):
        if resample not in ("auto", "matrix", "grid_sample"):
            raise ValueError("resample must be 'auto', 'matrix' or 'grid_sample'")
        self.spec = spec
        self.resample = resample
        # Hue on a row subset (None: on the CPU only, see _color_jitter); settable for tests.
        self.hue_on_rows: Optional[bool] = None
        s = spec.cj_strength
        self.brightness = 0.8 * s
        self.contrast = 0.8 * s
        self.saturation = 0.8 * s
        self.hue = spec.cj_hue * s
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue jitter cj_hue * cj_strength must be in [0, 0.5], got {self.hue}")
        self.scale = (spec.min_scale, 1.0)

    def __repr__(self) -> str:
        return f"BatchedSimCLRAugment({self.spec}, resample={self.resample!r})"

    # -- parameters ---------------------------------------------------------------------------------

    def sample_params(
        self,
        batch_size: int,
        height: int,
        width: int,
        generator: Optional[torch.Generator] = None,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw every sample's parameters. Keys (all tensors with leading dim ``batch_size``):

        ``crop_top, crop_left, crop_height, crop_width`` (int64, torchvision's i, j, h, w),
        ``flip`` (bool), ``jitter`` (bool: colour jitter applied), ``brightness, contrast,
        saturation, hue`` (float factors, drawn for every sample), ``jitter_order`` (int64 (B, 4):
        op indices BRIGHTNESS=0, CONTRAST=1, SATURATION=2, HUE=3 in order of application, a uniform
        random permutation per sample as torchvision's ``randperm(4)``), ``gray`` (bool), ``blur``
        (bool), ``sigma`` (float).
        """
        if device is None:
            device = generator.device if generator is not None else torch.device("cpu")
        dev = torch.device(device)
        B = int(batch_size)

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device=dev)

        # RandomResizedCrop.get_params, vectorised: CROP_TRIES candidates per sample, first valid one.
        area = float(height * width)
        lo, hi = self.scale
        log_lo, log_hi = math.log(RATIO[0]), math.log(RATIO[1])
        target = area * (lo + (hi - lo) * rand(B, CROP_TRIES))
        aspect = torch.exp(log_lo + (log_hi - log_lo) * rand(B, CROP_TRIES))
        w = torch.round(torch.sqrt(target * aspect)).long()
        h = torch.round(torch.sqrt(target / aspect)).long()
        valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)
        found = valid.any(dim=1)
        in_ratio = float(width) / float(height)
        if in_ratio < min(RATIO):
            fw, fh = width, int(round(width / min(RATIO)))
        elif in_ratio > max(RATIO):
            fw, fh = int(round(height * max(RATIO))), height
        else:
            fw, fh = width, height
        w = torch.where(found, w.gather(1, first).squeeze(1), fw)
        h = torch.where(found, h.gather(1, first).squeeze(1), fh)
        u_top, u_left = rand(B), rand(B)
        top = torch.minimum((u_top * (height - h + 1)).long(), height - h)
        left = torch.minimum((u_left * (width - w + 1)).long(), width - w)
        top = torch.where(found, top, (height - h) // 2)
        left = torch.where(found, left, (width - w) // 2)

        flip = rand(B) < self.spec.hf_prob

        jitter = rand(B) < self.spec.cj_prob

        def uniform(a: float, b: float) -> torch.Tensor:
            return a + (b - a) * rand(B)

        brightness = uniform(max(0.0, 1.0 - self.brightness), 1.0 + self.brightness)
        contrast = uniform(max(0.0, 1.0 - self.contrast), 1.0 + self.contrast)
        saturation = uniform(max(0.0, 1.0 - self.saturation), 1.0 + self.saturation)
        hue = uniform(-self.hue, self.hue)
        order = torch.argsort(rand(B, 4), dim=1)

        gray = rand(B) < self.spec.random_gray_scale
        blur = rand(B) < self.spec.gaussian_blur
        sigma = uniform(*BLUR_SIGMAS)
        return {
            "crop_top": top,
            "crop_left": left,
            "crop_height": h,
            "crop_width": w,
            "flip": flip,
            "jitter": jitter,
            "brightness": brightness,
            "contrast": contrast,
            "saturation": saturation,
            "hue": hue,
            "jitter_order": order,
            "gray": gray,
            "blur": blur,
            "sigma": sigma,
        }

    # -- application --------------------------------------------------------------------------------

    def _resample_method(self, height: int, width: int) -> str:
        if self.resample != "auto":
            return self.resample
        size = self.spec.input_size
        return "grid_sample" if (height <= size and width <= size) else "matrix"

    def _color_jitter(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """ColorJitter with each sample's factors, in each sample's order.

        Brightness, contrast and saturation are all ``clamp(a * x + (1 - a) * ref)`` with ``ref``
        black, the mean gray level or the gray image, so each of the four steps is one fused blend
        over the batch (``a = 1`` where the sample's op at that step is hue, or jitter is off).
        Hue runs at each step on the samples whose op it is: a row subset on the CPU; on other
        devices the whole batch, kept with ``torch.where`` (no data-dependent shapes, so no
        host-device synchronisation).
        """
        apply = p["jitter"]
        order = p["jitter_order"]
        one = torch.ones_like(p["brightness"])
        use_hue = self.hue > 0
        on_rows = self.hue_on_rows if self.hue_on_rows is not None else x.device.type == "cpu"
        for k in range(4):
            op = order[:, k]
            is_b = apply & (op == BRIGHTNESS)
            is_c = apply & (op == CONTRAST)
            is_s = apply & (op == SATURATION)
            a = torch.where(is_b, p["brightness"], torch.where(is_c, p["contrast"], torch.where(is_s, p["saturation"], one)))
            gray = rgb_to_grayscale(x)
            mean = gray.mean(dim=(1, 2, 3), keepdim=True)
            # ref = black (brightness, hue, off), mean gray (contrast) or the gray image (saturation).
            ref = gray * is_s.to(x.dtype).view(-1, 1, 1, 1) + mean * is_c.to(x.dtype).view(-1, 1, 1, 1)
            x = _blend(x, ref, a.view(-1, 1, 1, 1))
            if not use_hue:
                continue
            is_h = apply & (op == HUE)
            if on_rows:
                rows = is_h.nonzero().squeeze(1)
                if rows.numel():
                    x = x.index_copy(0, rows, adjust_hue(x.index_select(0, rows), p["hue"][rows]))
            else:
                x = torch.where(is_h.view(-1, 1, 1, 1), adjust_hue(x, p["hue"]), x)
        return x

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor], normalize: bool = True) -> torch.Tensor:
        """Augment ``images`` (B, H, W, C) uint8 with given parameters (from :meth:`sample_params`);
        ``normalize=False`` stops before the normalisation (floats in [0, 1], for BCL's RandAugment)."""
        x = _to_float_nchw(images)
        _, _, height, width = x.shape
        size = self.spec.input_size
        x = resized_crop(
            x,
            params["crop_top"],
            params["crop_left"],
            params["crop_height"],
            params["crop_width"],
            size,
            flip=params["flip"],
            method=self._resample_method(height, width),
        )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.spec.cj_prob > 0:
            x = self._color_jitter(x, params)
        if self.spec.random_gray_scale > 0:
            x = torch.where(params["gray"].view(-1, 1, 1, 1), rgb_to_grayscale(x).expand_as(x), x)
        if self.spec.gaussian_blur > 0:
            x = torch.where(params["blur"].view(-1, 1, 1, 1), gaussian_blur(x, params["sigma"]), x)
        return self.normalize(x) if normalize else x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The last step of :meth:`apply`: normalise with the spec's mean / std."""
        return _normalize(x, self.spec.mean, self.spec.std)

    def __call__(
        self, images_uint8: torch.Tensor, generator: Optional[torch.Generator] = None, normalize: bool = True
    ) -> torch.Tensor:
        """One augmented view (B, 3, S, S) float32 of a uint8 batch (B, H, W, C)."""
        B, H, W = images_uint8.shape[:3]
        params = self.sample_params(B, H, W, generator=generator, device=images_uint8.device)
        return self.apply(images_uint8, params, normalize)

    def two_views(
        self, images: torch.Tensor, generator: Optional[torch.Generator] = None, normalize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of the same batch (one pass over a doubled batch)."""
        out = self(torch.cat((images, images), dim=0), generator, normalize)
        return out[: images.shape[0]], out[images.shape[0] :]


class EvalPreprocess:
    """Deterministic evaluation transform: uint8 (B, H, W, C) -> (B, 3, S, S) float32, resized
    (bilinear, antialias) to S x S when needed, grayscale repeated to 3 channels, normalised."""

    def __init__(self, spec: AugmentationSpec):
        self.spec = spec

    def __call__(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = _to_float_nchw(images_uint8)
        size = self.spec.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp_(0.0, 1.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return _normalize(x, self.spec.mean, self.spec.std)


# --------------------------------------------------------------------------------------------------
# Per-image reference path (file datasets)


def lightly_transform(spec: AugmentationSpec, normalize: bool = True):
    """lightly's ``SimCLRTransform`` (two views per PIL image) configured from ``spec``; without
    ``normalize`` it ends at ``ToTensor`` (floats in [0, 1], for BCL's RandAugment)."""
    from lightly.transforms import SimCLRTransform

    return SimCLRTransform(
        input_size=spec.input_size,
        cj_prob=spec.cj_prob,
        cj_strength=spec.cj_strength,
        cj_bright=0.8,
        cj_contrast=0.8,
        cj_sat=0.8,
        cj_hue=spec.cj_hue,
        min_scale=spec.min_scale,
        random_gray_scale=spec.random_gray_scale,
        gaussian_blur=spec.gaussian_blur,
        sigmas=BLUR_SIGMAS,
        vf_prob=0.0,
        hf_prob=spec.hf_prob,
        rr_prob=0.0,
        normalize={"mean": list(spec.mean), "std": list(spec.std)} if normalize else None,
    )


class _ToRGB:
    """PIL image -> RGB (a picklable callable, so DataLoader workers can use the transform)."""

    def __call__(self, image):
        return image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image

    def __repr__(self) -> str:
        return "ToRGB()"


#: Evaluation images are resized to S / EVAL_CROP_FRACTION (shorter side) and centre-cropped to S:
#: 256 -> 224 on ImageNet, as TS (Annusha/temperature_schedules train_simCLR.py and
#: notebooks/simclr_tau_imagenet100.ipynb: Resize(256), CenterCrop(224)) and SDCLR evaluate.
EVAL_CROP_FRACTION = 224 / 256


def eval_resize_size(input_size: int) -> int:
    """The shorter side evaluation images are resized to before the centre crop (256 for 224)."""
    return int(round(input_size / EVAL_CROP_FRACTION))


def lightly_eval_transform(spec: AugmentationSpec):
    """Per-image evaluation transform of file datasets: RGB, Resize(shorter side to S / 0.875, aspect
    kept), CenterCrop(S), ToTensor, Normalize(mean, std) -- Resize(256) + CenterCrop(224) on ImageNet."""
    from torchvision import transforms as T

    size = spec.input_size
    return T.Compose(
        [
            _ToRGB(),
            T.Resize(eval_resize_size(size)),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(mean=list(spec.mean), std=list(spec.std)),
        ]
    )
