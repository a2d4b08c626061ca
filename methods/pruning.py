"""SDCLR's building blocks (Jiang et al., ICML 2021): BatchNorm with one set of statistics and affine
parameters per branch, and a global magnitude pruning mask over a network's convolutions.

Kept out of methods/sdclr.py so the method file says only what SDCLR does with them.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Iterator

import torch
from torch import nn

DENSE, PRUNED = "dense", "pruned"


class DualBatchNorm(nn.Module):
    """Two copies of a BatchNorm layer, one per branch; ``branch`` says which one the forward uses.

    SDCLR's dual BN: the pruned branch's activations have other statistics than the dense
    branch's, so sharing BatchNorm would blend the two (SDCLR's resnet_prune_multibn).
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.dense = norm
        self.pruned = copy.deepcopy(norm)
        self.branch = DENSE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x) if self.branch == DENSE else self.pruned(x)


def convert_to_dual_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer inside ``module`` (in place) by a :class:`DualBatchNorm`."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, DualBatchNorm(child))
        else:
            convert_to_dual_batchnorm(child)
    return module


@contextlib.contextmanager
def batchnorm_branch(module: nn.Module, branch: str) -> Iterator[None]:
    """Route every :class:`DualBatchNorm` in ``module`` to ``branch`` inside the block (dense after)."""
    layers = [m for m in module.modules() if isinstance(m, DualBatchNorm)]
    for layer in layers:
        layer.branch = branch
    try:
        yield
    finally:
        for layer in layers:
            layer.branch = DENSE


def conv_weight_names(module: nn.Module) -> list[str]:
    """Names of every convolution weight (stem and 1x1 downsample convolutions included)."""
    return [
        f"{name}.weight" if name else "weight" for name, m in module.named_modules() if isinstance(m, nn.modules.conv._ConvNd)
    ]


@torch.no_grad()
def global_magnitude_masks(weights: list[torch.Tensor], prune_ratio: float) -> list[torch.Tensor]:
    """Boolean keep-masks removing the ``ceil(prune_ratio * n)`` smallest-magnitude weights among all
    ``n`` weights of all tensors together (one threshold for the whole network, as SDCLR's
    ``Mask.magnitudePruning``: keep |w| >= the magnitude at that rank, so ties are kept)."""
    if not 0.0 <= prune_ratio < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1), got {prune_ratio}")
    magnitudes = torch.cat([w.detach().abs().flatten().float() for w in weights])
    to_prune = math.ceil(prune_ratio * magnitudes.numel())
    if to_prune == 0:
        return [torch.ones_like(w, dtype=torch.bool) for w in weights]
    threshold = torch.kthvalue(magnitudes, min(to_prune + 1, magnitudes.numel())).values
    return [w.detach().abs() >= threshold for w in weights]
