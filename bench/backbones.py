"""Backbones by name, through timm's ``create_model`` (``--backbone``).

Two CIFAR-scale networks are registered into timm's model registry here, so every backbone — ours
or timm's own (``resnet50``, ``convnext_tiny``, ...) — is made by the same call:

- ``resnet18_cifar``: timm's resnet18 with the CIFAR stem (3x3 stride-1 conv1, no max-pool), as
  SDCLR, BCL, TS and solo-learn use for 32x32 images (timm has no keyword for it), initialised as
  TS / SDCLR's ``models/resnet.py`` (see :func:`resnet18_cifar`).
- ``small_cnn``: a 4-block conv-BN-ReLU-maxpool encoder for the CPU presets (16x16 inputs).
"""

from __future__ import annotations

import difflib

import timm
import torch
from timm.models import register_model
from torch import nn

from bench.errors import UserError

# timm's register_model appends to __all__; list the public API first so it is kept.
__all__ = ["SmallCNN", "create_backbone", "check_backbone"]


class SmallCNN(nn.Module):
    """Four conv3x3-BN-ReLU-maxpool2 blocks and global average pooling: a CPU-sized encoder.

    Default widths (16, 32, 64, 128) give 128-dimensional features; on digits_lt at 16x16 they
    train 4x faster on 2 CPU cores than (32, 64, 128, 256) and reach the same kNN accuracy.
    """

    def __init__(self, in_chans: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128), **_: object) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_chans
        for width in widths:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@register_model
def small_cnn(pretrained: bool = False, **kwargs: object) -> SmallCNN:
    """timm entry point of :class:`SmallCNN` (no pretrained weights exist)."""
    kwargs.pop("num_classes", None)  # a feature extractor: no classifier
    return SmallCNN(**kwargs)  # type: ignore[arg-type]


@register_model
def small_cnn_wide(pretrained: bool = False, **kwargs: object) -> SmallCNN:
    """:class:`SmallCNN` at twice the width, (32, 64, 128, 256): a candidate of the CIFAR CPU preset."""
    kwargs.pop("num_classes", None)
    return SmallCNN(widths=(32, 64, 128, 256), **kwargs)  # type: ignore[arg-type]


@register_model
def small_cnn_deep(pretrained: bool = False, **kwargs: object) -> SmallCNN:
    """:class:`SmallCNN` with a fifth block, (16, 32, 64, 128, 256): a candidate of the CIFAR CPU preset."""
    kwargs.pop("num_classes", None)
    return SmallCNN(widths=(16, 32, 64, 128, 256), **kwargs)  # type: ignore[arg-type]


@register_model
def resnet18_cifar(pretrained: bool = False, **kwargs: object) -> nn.Module:
    """timm's resnet18 with the CIFAR stem: conv1 3x3 stride 1 padding 1, max-pool removed.

    Initialisation as TS and SDCLR (``models/resnet.py`` of Annusha/temperature_schedules and
    VITA-Group/SDCLR, ``ResNet.__init__``): every conv Kaiming-normal with ``mode='fan_out'``, every
    BN gamma 1 and beta 0, ``zero_init_residual=False``. Two things differ from timm's default and are
    undone here: timm zeroes the last BN gamma of every block (``zero_init_last=True``), and the
    swapped-in stem conv would keep PyTorch's default (Kaiming-uniform, a = sqrt(5)) init.
    """
    kwargs.setdefault("zero_init_last", False)
    model = timm.create_model("resnet18", pretrained=False, **kwargs)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def create_backbone(name: str) -> tuple[nn.Module, int]:
    """A backbone returning pooled features (no classifier) and its feature width."""
    check_backbone(name)
    model = timm.create_model(name, pretrained=False, num_classes=0)
    return model, int(model.num_features)


def check_backbone(name: str) -> None:
    """Raise one line when ``name`` is not a timm model (ours are registered into timm above)."""
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UserError(
            f"unknown backbone {name!r}.{hint} Use small_cnn, resnet18_cifar, resnet50 or any name from timm.list_models()."
        )
