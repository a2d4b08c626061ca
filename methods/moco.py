"""moco: MoCo v2 (Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning",
2020; He et al., CVPR 2020) as a second contrastive objective.

Differs from SimCLR in three ways: the keys come from a momentum (EMA) copy of the encoder,
m = 0.99 (the CIFAR-scale value); the negatives are a queue of past keys instead of the batch; and
the head is MoCo v2's fc-ReLU-fc (no BatchNorm). InfoNCE with tau = 0.2, the query is the first
view and the key the second, as MoCo v2. Queue: 4096 keys (CIFAR scale), capped at half the
training set so that a sample's own key from the last epoch is never among its negatives. Parts
from lightly: MoCoProjectionHead and update_momentum; the queue is ours because lightly's
MemoryBankModule keeps its bank out of the state_dict (a resumed run would lose it) and reads its
pointer back to the host every step. Every temperature strategy
combines with it (``moco+cosine_tau``, ``moco+dystress``: one tau per query-key pair).
The momentum encoder has ordinary BatchNorm (MoCo's shuffled BN needs several GPUs).
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn.functional as F
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import nn

from bench.distributed import gather
from methods.base import ContrastiveMethod
from methods.losses import queue_similarities
from methods.registry import register_method
from methods.temperature import ConstantTemperature


class KeyQueue(nn.Module):
    """A ring buffer of the last ``size`` L2-normalised keys (random unit vectors at first, as MoCo).
    Buffers, so checkpoints carry it; the pointer stays on the device (no host sync per step)."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries by ``keys`` (N, D), already normalised."""
        size = self.keys.shape[0]
        positions = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.keys.index_copy_(0, positions[-size:], keys[-size:].to(self.keys.dtype))
        self.pointer.copy_((self.pointer + len(keys)) % size)


@register_method("moco")
class MoCo(ContrastiveMethod):
    """MoCo v2: query encoder, EMA key encoder (m = 0.99), a queue of 4096 negatives, tau = 0.2."""

    role = "objective"
    description = "MoCo v2: InfoNCE of queries against EMA-encoder keys and a queue of past keys (m = 0.99, tau = 0.2)"
    citation = "Chen et al., Improved Baselines with Momentum Contrastive Learning (MoCo v2), arXiv 2020"
    temperature = ConstantTemperature(tau=0.2)
    momentum: ClassVar[float] = 0.99
    queue_size: ClassVar[int] = 4096

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.projection_head = MoCoProjectionHead(self.feature_dim, self.feature_dim, self.projection_dim)
        self.key_backbone = copy.deepcopy(self.backbone)
        self.key_head = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.key_backbone)
        deactivate_requires_grad(self.key_head)
        size = self.queue_size
        if self.num_train_samples:
            size = min(size, max(1, self.num_train_samples // 2))
        self.queue = KeyQueue(size, self.projection_dim)

    def training_step(self, view0, view1, indices, progress):
        query = self(view0)
        with torch.no_grad():
            key = self.key_head(self.key_backbone(view1))
        # The negatives are the queue before this batch's keys join it.
        similarities = queue_similarities(query, key, self.queue.keys.clone())  # float32 (losses.fp32)
        # Under torchrun every rank enqueues the keys of the global batch, so the queues stay equal.
        self.queue.push(gather(F.normalize(key.float(), dim=1)))
        positives = torch.zeros(len(query), dtype=torch.long, device=query.device)
        return self.tempered_cross_entropy(similarities, positives, None, progress).mean()

    def on_after_step(self, progress) -> None:
        super().on_after_step(progress)
        update_momentum(self.backbone, self.key_backbone, m=self.momentum)
        update_momentum(self.projection_head, self.key_head, m=self.momentum)

    def parameter_groups(self, weight_decay: float):
        # The key encoder is not optimised: it follows the query encoder by EMA.
        frozen = {id(p) for p in [*self.key_backbone.parameters(), *self.key_head.parameters()]}
        return [{**group, "params": [p for p in group["params"] if id(p) not in frozen]}
                for group in super().parameter_groups(weight_decay)]
