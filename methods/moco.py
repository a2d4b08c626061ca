"""moco: MoCo v2 (Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning",
2020; He et al., CVPR 2020) as a second contrastive objective, run as its authors and lightly run it
on one GPU.

Differs from SimCLR in these ways: the keys come from a momentum (EMA) copy of the encoder,
m = 0.99 (the CIFAR-scale value); the negatives are a queue of past keys instead of the batch; and
the head is MoCo v2's fc-ReLU-fc (no BatchNorm). InfoNCE with tau = 0.2, the query is the first
view and the key the second, as MoCo v2; the temperature divides every logit, the positive's as
well as the negatives' (tau in numerator and denominator, as TS's authors say of their MoCo runs in
Annusha/temperature_schedules issue #4). Queue: 4096 keys (CIFAR scale), capped at half the
training set so that a sample's own key from the last epoch is never among its negatives. Parts
from lightly: MoCoProjectionHead and update_momentum; the queue is ours because lightly's
MemoryBankModule keeps its bank out of the state_dict (a resumed run would lose it) and reads its
pointer back to the host every step. Every temperature strategy combines with it
(``moco+cosine_tau``, ``moco+dystress``: one tau per query-key pair).

Shuffle BN, simulated on one device as lightly's CIFAR-10 MoCo benchmark does
(lightly-ai/lightly ``docs/source/getting_started/benchmarks/cifar10_benchmark.py``, ``MocoModel``:
``ResNetGenerator("resnet-18", num_splits=8)`` and ``batch_shuffle`` / ``batch_unshuffle`` around the
key encoder): every BatchNorm2d of both encoders normalises each of 8 groups of the batch with that
group's own statistics (:class:`SplitBatchNorm2d`, as 8 GPUs would), and the key encoder sees the
batch in a random order, so a key is normalised among other images than its query (MoCo's remedy
for the BN "cheating" of He et al. 2020, section 3.3). Batches not divisible into 8 groups of at
least 2 images take the largest divisor below 8 that is (1: plain BatchNorm); the record's
method_info says so. Under torchrun on CUDA the suite's SyncBatchNorm replaces it (lightly: no
splits with sync_batchnorm).

Recipe (``recipe``, replacing the preset's SimCLR values unless --lr / --weight-decay are given):
SGD lr 0.06 per 128 images, scaled linearly with the batch (lightly's ``lr=6e-2 * lr_factor``,
``lr_factor = batch_size / 128``), weight decay 5e-4, momentum 0.9, from the same lightly file.
Remaining deviations (leaderboard/PROTOCOL.md): lightly's benchmark uses tau 0.1 and a symmetrised
loss, and TS's authors' MoCo head is one linear layer (issue #4); this row keeps MoCo v2's
two-layer head, tau 0.2 and the one-directional loss; the suite's warm-up + cosine schedule replaces
lightly's plain cosine annealing.
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
from bench.errors import UserError
from methods.base import ContrastiveMethod
from methods.losses import queue_similarities
from methods.registry import register_method
from methods.temperature import ConstantTemperature


def split_groups(batch_size: int, num_splits: int) -> int:
    """The number of BatchNorm groups a batch of ``batch_size`` images is cut into: ``num_splits``
    when it divides the batch into groups of at least 2 images, else the largest such divisor below
    it (1 = plain BatchNorm, e.g. for a prime batch size)."""
    for groups in range(min(num_splits, batch_size // 2), 1, -1):
        if batch_size % groups == 0:
            return groups
    return 1


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in training, normalises ``num_splits`` groups of the batch separately
    (the per-GPU statistics of MoCo's multi-GPU training, simulated on one device, as lightly's
    ``SplitBatchNorm``). Group j holds images j, j + g, j + 2g, ... of the batch (a random batch, so
    any fixed assignment is as good as another). The running statistics are the plain BatchNorm's,
    updated with the mean of the groups' statistics: the same as averaging one running estimate per
    group (lightly), since the update is linear. Evaluation is plain BatchNorm, and the state_dict is
    a BatchNorm2d's."""

    def __init__(self, num_features: int, num_splits: int = 8, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if num_splits < 1:
            raise UserError(f"split BatchNorm needs at least 1 group, got {num_splits}.")
        self.num_splits = num_splits
        self.last_groups = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        groups = split_groups(n, self.num_splits) if self.training else 1
        if self.training:
            self.last_groups = groups
        if groups == 1:
            return super().forward(x)
        factor = 0.0
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        mean = var = None
        if self.track_running_stats:
            mean, var = self.running_mean.repeat(groups), self.running_var.repeat(groups)
        out = F.batch_norm(
            x.reshape(n // groups, groups * c, h, w),
            mean,
            var,
            self.weight.repeat(groups) if self.weight is not None else None,
            self.bias.repeat(groups) if self.bias is not None else None,
            True,
            factor,
            self.eps,
        )
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.copy_(mean.view(groups, c).mean(0))
                self.running_var.copy_(var.view(groups, c).mean(0))
        return out.reshape(n, c, h, w)


def convert_to_split_batchnorm(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every plain BatchNorm2d inside ``module`` (in place) by a :class:`SplitBatchNorm2d`
    with the same parameters and statistics."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            split = SplitBatchNorm2d(
                child.num_features,
                num_splits,
                eps=child.eps,
                momentum=child.momentum,
                affine=child.affine,
                track_running_stats=child.track_running_stats,
            )
            split.load_state_dict(child.state_dict())
            setattr(module, name, split.to(next(child.buffers(), torch.empty(0)).device))
        else:
            convert_to_split_batchnorm(child, num_splits)
    return module


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
    """MoCo v2: query encoder, EMA key encoder (m = 0.99), a queue of 4096 negatives, tau = 0.2,
    shuffle BN simulated over 8 groups, lightly's CIFAR-10 MoCo recipe (lr 0.06 per 128, wd 5e-4)."""

    role = "objective"
    description = (
        "MoCo v2: InfoNCE of queries against EMA-encoder keys and a queue of past keys (m = 0.99, tau = 0.2), "
        "shuffle BN over 8 groups, lr 0.06 x batch/128, wd 5e-4"
    )
    citation = "Chen et al., Improved Baselines with Momentum Contrastive Learning (MoCo v2), arXiv 2020"
    temperature = ConstantTemperature(tau=0.2)
    momentum: ClassVar[float] = 0.99
    queue_size: ClassVar[int] = 4096
    #: lightly's CIFAR-10 MoCo benchmark: ResNetGenerator("resnet-18", num_splits=8).
    num_splits: ClassVar[int] = 8
    recipe = {"lr": 0.06, "weight_decay": 5e-4}
    recipe_lr_batch = 128
    recipe_source = (
        "lightly-ai/lightly docs/source/getting_started/benchmarks/cifar10_benchmark.py, MocoModel."
        "configure_optimizers: SGD lr=6e-2 * batch_size / 128, momentum 0.9, weight_decay=5e-4"
    )
    #: 2: split BN + batch shuffle and the MoCo recipe (version 1: plain BN, the preset's SimCLR lr / wd).
    recipe_version = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        convert_to_split_batchnorm(self.backbone, self.num_splits)
        self.projection_head = MoCoProjectionHead(self.feature_dim, self.feature_dim, self.projection_dim)
        self.key_backbone = copy.deepcopy(self.backbone)
        self.key_head = copy.deepcopy(self.projection_head)
        # Not optimised (the EMA moves them): ContrastiveMethod.parameter_groups skips frozen parameters.
        deactivate_requires_grad(self.key_backbone)
        deactivate_requires_grad(self.key_head)
        size = self.queue_size
        if self.num_train_samples:
            size = min(size, max(1, self.num_train_samples // 2))
        self.queue = KeyQueue(size, self.projection_dim)

    def training_step(self, view0, view1, indices, progress):
        query = self(view0)
        with torch.no_grad():
            # Shuffle BN: the key encoder sees the batch in a random order (its BN groups differ from the
            # query's), and the keys are put back in the batch's order.
            order = torch.randperm(len(view1), device=view1.device)
            key = self.key_head(self.key_backbone(view1[order]))[torch.argsort(order)]
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

    def epoch_log(self) -> dict[str, float]:
        # How many BatchNorm groups the last batch had (8 unless the batch size does not allow it).
        groups = [m.last_groups for m in self.backbone.modules() if isinstance(m, SplitBatchNorm2d)]
        return {**super().epoch_log(), **({"split_bn_groups": float(max(groups))} if groups else {})}
