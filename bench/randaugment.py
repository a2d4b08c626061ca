"""RandAugment with a per-sample probability and magnitude, batched on float images, for BCL.

BCL (Zhou et al., "Contrastive Learning with Boosted Memorization", ICML 2022) follows the SimCLR
view augmentation with RandAugment (Cubuk et al. 2020), k = 1 op, applied with probability w_i and
magnitude m_i = 10 + 20 w_i (out of 30), where w_i in [0, 1] is the sample's augmentation strength.
Every sample (and every view: a doubled batch is two independent rows) draws its own op uniformly
from the 15 below, its own apply flag, sign and cutout centre; all random numbers come from one
``torch.Generator`` (the trainer's on the device path; None = torch's default, as in loader workers).

Ranges are those of the official code (MediaBrain-SJTU/BCL, ``data/randaug.py``): the value is
``lo + (m / 30) (hi - lo)``, so at the BCL-I magnitudes (m / 30 in [1/3, 1]):

============  ============  =========================================================================
op            [lo, hi]      what the value v does here (images are float (B, 3, S, S) in [0, 1])
============  ============  =========================================================================
ShearX/Y      [0, 0.6]      x_in = x_out + (+-v) y_out (Y: y_in = y_out + (+-v) x_out), origin at the
                            top-left corner as PIL's AFFINE transform; sign +-1 with p 1/2
TranslateX/Y  [0, 0.66]     shift by (+-v) x image width (height): x_in = x_out + (+-v) W
Rotate        [0, 60]       (+-v) degrees counter-clockwise about the centre (PIL ``rotate``)
AutoContrast  --            per channel, min -> 0 and max -> 1 (PIL ``autocontrast``, cutoff 0)
Invert        --            1 - x
Equalize      --            PIL's per-channel histogram equalisation on the 256 uint8 levels
Solarize      [0, 110]      pixels >= v / 255 (on the uint8 grid) become 1 - x; a higher m lowers
                            the threshold, so inverts more
Posterize     [4, 8]        keep int(v) bits of each uint8 level (as the official code, a higher m
                            keeps more bits, i.e. posterizes less)
Contrast      [0.1, 1.9]    blend with the mean grey level, factor v (v > 1 enhances)
Color         [0.1, 1.9]    blend with the grey image, factor v (PIL ``Color`` = saturation)
Brightness    [0.1, 1.9]    blend with black, factor v
Sharpness     [0.1, 1.9]    blend with PIL's SMOOTH-filtered image (border pixels kept), factor v
Cutout        [0, 0.4]      a square of side round(v W) pixels, centre uniform in the image; as the
                            official code, its top-left corner is clamped into the image and its far
                            sides clipped; filled with (125, 123, 114) / 255
============  ============  =========================================================================

Affine ops resample with nearest neighbour and fill black outside the image, as PIL's defaults.
Samples are grouped by op (one resampling for the five affine ops); finding each group's rows is a
host-device synchronisation per group on CUDA, a small cost next to a training step.
Differences from the official per-image PIL code: float arithmetic (no rounding to uint8 between
ops, except inside Equalize / Posterize / Solarize, which are defined on uint8 levels); the cutout
square has side round(v W) (PIL's inclusive rectangle paints one pixel more).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from bench.augment import adjust_brightness, adjust_contrast, adjust_saturation

OPS = (
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "autocontrast",
    "invert",
    "equalize",
    "solarize",
    "posterize",
    "contrast",
    "color",
    "brightness",
    "sharpness",
    "cutout",
)
# (lo, hi) of the value at magnitude m: lo + m / 30 (hi - lo); official BCL ranges.
RANGES = {
    "shear_x": (0.0, 0.6),
    "shear_y": (0.0, 0.6),
    "translate_x": (0.0, 0.66),
    "translate_y": (0.0, 0.66),
    "rotate": (0.0, 60.0),
    "solarize": (0.0, 110.0),
    "posterize": (4.0, 8.0),
    "contrast": (0.1, 1.9),
    "color": (0.1, 1.9),
    "brightness": (0.1, 1.9),
    "sharpness": (0.1, 1.9),
    "cutout": (0.0, 0.4),
}
AFFINE = OPS[:5]
MAX_MAGNITUDE = 30.0
MIN_MAGNITUDE = 10.0  # BCL-I: m = 10 + 20 w
CUTOUT_FILL = (125 / 255, 123 / 255, 114 / 255)
_SMOOTH = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0


def magnitude(strength: torch.Tensor) -> torch.Tensor:
    """BCL-I's magnitude m = 10 + 20 w (out of 30) of each sample's strength w."""
    return MIN_MAGNITUDE + (MAX_MAGNITUDE - MIN_MAGNITUDE) * strength


def op_value(op: str, m: torch.Tensor) -> torch.Tensor:
    """The op's value at magnitude ``m`` (out of 30): lo + m / 30 (hi - lo)."""
    lo, hi = RANGES[op]
    return lo + (m / MAX_MAGNITUDE) * (hi - lo)


def sample_params(strength: torch.Tensor, generator: Optional[torch.Generator] = None) -> dict[str, torch.Tensor]:
    """Each sample's op index, apply flag (p = w), value sign, cutout centre and magnitude.

    The draws do not depend on the strengths' values, so the generator advances the same way for
    any w (a resumed or compared run stays in step).
    """
    n, dev = strength.shape[0], strength.device
    op = torch.randint(len(OPS), (n,), generator=generator, device=dev)
    u = torch.rand((4, n), generator=generator, device=dev)
    return {
        "op": op,
        "apply": u[0] < strength,
        "negate": u[1] < 0.5,
        "centre_x": u[2],
        "centre_y": u[3],
        "magnitude": magnitude(strength.to(torch.float32)),
    }


def rand_augment(x: torch.Tensor, strength: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """BCL-I's RandAugment of float images ``x`` (B, 3, H, W) in [0, 1] with strengths ``strength`` (B,)."""
    return apply(x, sample_params(strength.to(x.device), generator))


def apply(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply each sample's op where its apply flag is set; other samples are returned untouched."""
    op, active = params["op"], params["apply"]
    out = x.clone()
    # Group the samples by op: each op runs once on its rows (the 5 affine ops share one resampling).
    groups = [("affine", (op < len(AFFINE)) & active)]
    groups += [(name, (op == k) & active) for k, name in enumerate(OPS) if name not in AFFINE]
    for name, selected in groups:
        rows = selected.nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        sub = {k: v[rows] for k, v in params.items()}
        out[rows] = _OP_FUNCTIONS[name](x[rows], sub)
    return out


# --- the ops, each on a group of rows ------------------------------------------------------------


def _signed(name: str, p: dict[str, torch.Tensor]) -> torch.Tensor:
    v = op_value(name, p["magnitude"])
    return torch.where(p["negate"], -v, v)


def _affine(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Shear / translate / rotate through one per-sample affine map of pixel coordinates
    (pixel centres at i + 1/2), output -> input as PIL's AFFINE, converted to grid_sample's [-1, 1]."""
    n, _, height, width = x.shape
    op = p["op"]
    dt, dev = x.dtype, x.device
    a = torch.eye(3, dtype=dt, device=dev).repeat(n, 1, 1)
    shear = torch.where(op == 0, _signed("shear_x", p), _signed("shear_y", p)).to(dt)
    a[:, 0, 1] = torch.where(op == 0, shear, 0.0)
    a[:, 1, 0] = torch.where(op == 1, shear, 0.0)
    shift = torch.where(op == 2, _signed("translate_x", p), _signed("translate_y", p)).to(dt)
    a[:, 0, 2] = torch.where(op == 2, shift * width, 0.0)
    a[:, 1, 2] = torch.where(op == 3, shift * height, 0.0)
    # Counter-clockwise on screen (y down): input = R(theta) about the centre applied to the output.
    theta = _signed("rotate", p).to(dt) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    cx, cy = width / 2.0, height / 2.0
    rot = op == 4
    a[rot, 0, 0], a[rot, 0, 1] = cos[rot], -sin[rot]
    a[rot, 1, 0], a[rot, 1, 1] = sin[rot], cos[rot]
    a[rot, 0, 2] = cx - cos[rot] * cx + sin[rot] * cy
    a[rot, 1, 2] = cy - sin[rot] * cx - cos[rot] * cy
    to_unit = torch.tensor([[2.0 / width, 0.0, -1.0], [0.0, 2.0 / height, -1.0], [0.0, 0.0, 1.0]], dtype=dt, device=dev)
    theta_unit = to_unit @ a @ torch.linalg.inv(to_unit)
    grid = F.affine_grid(theta_unit[:, :2], [n, x.shape[1], height, width], align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _autocontrast(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    flat = hi <= lo  # a constant channel is left as it is (PIL)
    scale = torch.where(flat, torch.ones_like(hi), 1.0 / (hi - lo).clamp(min=1e-12))
    return ((x - torch.where(flat, torch.zeros_like(lo), lo)) * scale).clamp(0.0, 1.0)


def _invert(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return 1.0 - x


def _levels(x: torch.Tensor) -> torch.Tensor:
    """The uint8 level (as float) of each value, for the ops PIL defines on uint8 images."""
    return (x * 255.0).round().clamp(0.0, 255.0)


def _equalize(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` per channel: lut[i] = (cum_before(i) + step // 2) // step with
    step = (pixels - count of the highest level present) // 255; identity where step is 0."""
    n, c, h, w = x.shape
    q = _levels(x).long().view(n * c, h * w)
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, q, torch.ones_like(q))
    levels = torch.arange(256, device=x.device)
    top = torch.where(hist > 0, levels, -1).amax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, top)) // 255
    before = hist.cumsum(1) - hist
    lut = ((before + step // 2) // step.clamp(min=1)).clamp(max=255)
    lut = torch.where(step > 0, lut, levels)
    return (lut.gather(1, q).to(x.dtype) / 255.0).view(n, c, h, w)


def _solarize(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    threshold = op_value("solarize", p["magnitude"]).to(x.dtype).view(-1, 1, 1, 1)
    return torch.where(_levels(x) >= threshold, 1.0 - x, x)


def _posterize(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    bits = op_value("posterize", p["magnitude"]).floor().clamp(min=1.0)
    step = torch.pow(2.0, 8.0 - bits).to(x.dtype).view(-1, 1, 1, 1)
    q = _levels(x)
    return (q - torch.remainder(q, step)) / 255.0


def _enhance(name: str):
    blend = {"contrast": adjust_contrast, "color": adjust_saturation, "brightness": adjust_brightness}[name]

    def run(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return blend(x, op_value(name, p["magnitude"]))

    return run


def _sharpness(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    n, c, h, w = x.shape
    kernel = _SMOOTH.to(x.dtype).to(x.device).view(1, 1, 3, 3).repeat(c, 1, 1, 1)
    smooth = x.clone()
    smooth[:, :, 1:-1, 1:-1] = F.conv2d(x, kernel, groups=c).clamp(0.0, 1.0)
    factor = op_value("sharpness", p["magnitude"]).to(x.dtype).view(-1, 1, 1, 1)
    return (factor * x + (1.0 - factor) * smooth).clamp(0.0, 1.0)


def _cutout(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    n, c, h, w = x.shape
    side = (op_value("cutout", p["magnitude"]) * w).round()
    x0 = (p["centre_x"] * w - side / 2).clamp(min=0).floor().view(-1, 1, 1)
    y0 = (p["centre_y"] * h - side / 2).clamp(min=0).floor().view(-1, 1, 1)
    side = side.view(-1, 1, 1)
    cols = torch.arange(w, device=x.device, dtype=side.dtype).view(1, 1, w)
    rows = torch.arange(h, device=x.device, dtype=side.dtype).view(1, h, 1)
    inside = ((cols >= x0) & (cols < x0 + side) & (rows >= y0) & (rows < y0 + side)).unsqueeze(1)
    fill = torch.tensor(CUTOUT_FILL, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return torch.where(inside, fill, x)


_OP_FUNCTIONS = {
    "affine": _affine,
    "autocontrast": _autocontrast,
    "invert": _invert,
    "equalize": _equalize,
    "solarize": _solarize,
    "posterize": _posterize,
    "contrast": _enhance("contrast"),
    "color": _enhance("color"),
    "brightness": _enhance("brightness"),
    "sharpness": _sharpness,
    "cutout": _cutout,
}
