"""sdclr: Self-Damaging Contrastive Learning, Jiang, Chen, Mortazavi and Wang, ICML 2021
(code VITA-Group/SDCLR).

Two branches with shared weights: the dense network, and a copy pruned by global magnitude pruning
over all convolutions (recomputed at the start of every epoch; prune ratio 0.9, 0.3 on ImageNet-sized
images). Each branch has its own BatchNorm (dual BN, backbone and head). NT-Xent contrasts the dense
branch's first view with the pruned branch's second view; tau = 0.2 (0.3 on ImageNet-sized images,
SDCLR's ImageNet100-LT setting). The pruned branch forgets the rare samples first, so their pairs
are hard: SDCLR's implicit emphasis on the tail. Evaluation uses the dense branch.

The gradient is the one of SDCLR's code in one forward per branch (its extra no-grad forward
exists only to run two branches under DistributedDataParallel).

Projection head: SDCLR's dual-BN ``proj_head`` (VITA-Group/SDCLR ``models/resnet_prune_multibn.py``,
default ``twoLayerProj=False``, built by ``train_simCLR.py`` with ``--output_ch 128`` in its
``cmds/shell_scrips/cifar-*-LT.sh``): fc(d, d)-BN-ReLU-fc(d, d, no bias)-BN-ReLU-fc(d, 128, no bias)-BN,
each BN dual. ``sdclr_2layer`` keeps the two-layer head fc(d, d)-BN-ReLU-fc(d, 128, no bias)-BN
(``twoLayerProj=True``), the one of BCL's re-implementation (MediaBrain-SJTU/BCL ``models/sdclr.py``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.func import functional_call

from methods.base import ContrastiveMethod
from methods.pruning import PRUNED, batchnorm_branch, conv_weight_names, convert_to_dual_batchnorm, global_magnitude_masks
from methods.registry import register_method
from methods.temperature import ConstantTemperature, TrainingProgress


def sdclr_projection_head(width: int, output_dim: int, layers: int = 3) -> nn.Sequential:
    """SDCLR's ``proj_head``: ``layers`` (3, or 2 as ``twoLayerProj=True``) fc layers, each followed by
    BatchNorm1d, with ReLU between them; only the first fc has a bias (the others feed a BN)."""
    if layers not in (2, 3):
        raise ValueError(f"SDCLR's projection head has 2 or 3 layers, got {layers}")
    modules: list[nn.Module] = [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
    if layers == 3:
        modules += [nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
    modules += [nn.Linear(width, output_dim, bias=False), nn.BatchNorm1d(output_dim)]
    return nn.Sequential(*modules)


@register_method("sdclr")
class SDCLR(ContrastiveMethod):
    """SimCLR between a dense and a self-pruned branch of one network; SDCLR's three-layer dual-BN head."""

    role = "objective"
    description = "SDCLR: NT-Xent between the dense network and its 90 %-pruned self (dual BN, re-pruned every epoch)"
    citation = "Jiang et al., Self-Damaging Contrastive Learning, ICML 2021"
    temperature = ConstantTemperature(tau=0.2)
    large_image_temperature = ConstantTemperature(tau=0.3)
    prune_ratio: ClassVar[float] = 0.9
    large_image_prune_ratio: ClassVar[float] = 0.3
    #: fc layers of the projection head: 3 (SDCLR's twoLayerProj=False) or 2 (twoLayerProj=True).
    head_layers: ClassVar[int] = 3
    #: 2: SDCLR's own three-layer head (version 1: lightly's two-layer SimCLR head).
    recipe_version = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.projection_head = sdclr_projection_head(self.feature_dim, self.projection_dim, self.head_layers)
        convert_to_dual_batchnorm(self.backbone)
        convert_to_dual_batchnorm(self.projection_head)
        self.active_prune_ratio = self.large_image_prune_ratio if self.large_images else self.prune_ratio
        self.pruned_weights = conv_weight_names(self.backbone)
        # Keep-masks as buffers: checkpoints carry them, so a resumed epoch prunes the same weights.
        for i, name in enumerate(self.pruned_weights):
            self.register_buffer(f"keep_mask_{i}", torch.ones_like(self.backbone.get_parameter(name), dtype=torch.bool))

    def keep_masks(self) -> list[torch.Tensor]:
        return [getattr(self, f"keep_mask_{i}") for i in range(len(self.pruned_weights))]

    def on_epoch_start(self, progress: TrainingProgress) -> None:
        super().on_epoch_start(progress)
        weights = [self.backbone.get_parameter(name) for name in self.pruned_weights]
        for mask, new in zip(self.keep_masks(), global_magnitude_masks(weights, self.active_prune_ratio)):
            mask.copy_(new)

    def pruned_forward(self, images: torch.Tensor) -> torch.Tensor:
        """The pruned branch: the same parameters times the masks (gradients reach the shared weights),
        through the pruned-branch BatchNorms."""
        masked = {name: self.backbone.get_parameter(name) * mask for name, mask in zip(self.pruned_weights, self.keep_masks())}
        with batchnorm_branch(self, PRUNED):
            return self.projection_head(functional_call(self.backbone, masked, (images,), strict=False))

    def training_step(self, view0, view1, indices, progress):
        z_dense = self(view0)
        z_pruned = self.pruned_forward(view1)
        return self.contrastive_loss(z_dense, z_pruned, progress, indices).mean()

    def epoch_log(self) -> dict[str, float]:
        kept = sum(int(m.sum()) for m in self.keep_masks())
        total = sum(m.numel() for m in self.keep_masks())
        return {**super().epoch_log(), "pruned_fraction": 1.0 - kept / total}


@register_method("sdclr_2layer")
class SDCLRTwoLayerHead(SDCLR):
    """SDCLR with the two-layer dual-BN head, as BCL's re-implementation of SDCLR."""

    description = (
        "SDCLR with the two-layer dual-BN head fc-BN-ReLU-fc-BN (twoLayerProj=True), "
        "as BCL's re-implementation (MediaBrain-SJTU/BCL models/sdclr.py)"
    )
    head_layers = 2
