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
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.func import functional_call

from methods.base import ContrastiveMethod
from methods.pruning import PRUNED, batchnorm_branch, conv_weight_names, convert_to_dual_batchnorm, global_magnitude_masks
from methods.registry import register_method
from methods.temperature import ConstantTemperature, TrainingProgress


@register_method("sdclr")
class SDCLR(ContrastiveMethod):
    """SimCLR between a dense and a self-pruned branch of one network."""

    role = "objective"
    description = "SDCLR: NT-Xent between the dense network and its 90 %-pruned self (dual BN, re-pruned every epoch)"
    citation = "Jiang et al., Self-Damaging Contrastive Learning, ICML 2021"
    temperature = ConstantTemperature(tau=0.2)
    large_image_temperature = ConstantTemperature(tau=0.3)
    prune_ratio: ClassVar[float] = 0.9
    large_image_prune_ratio: ClassVar[float] = 0.3

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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
        masked = {name: self.backbone.get_parameter(name) * mask
                  for name, mask in zip(self.pruned_weights, self.keep_masks())}
        with batchnorm_branch(self, PRUNED):
            return self.projection_head(functional_call(self.backbone, masked, (images,), strict=False))

    def training_step(self, view0, view1, indices, progress):
        z_dense = self(view0)
        z_pruned = self.pruned_forward(view1)
        return self.contrastive_loss(z_dense, z_pruned, progress).mean()

    def epoch_log(self) -> dict[str, float]:
        kept = sum(int(m.sum()) for m in self.keep_masks())
        total = sum(m.numel() for m in self.keep_masks())
        return {**super().epoch_log(), "pruned_fraction": 1.0 - kept / total}
