"""bcl: BCL-I, Boosted Contrastive Learning (Zhou, Yao, Hong, Zhang, Wang, "Contrastive Learning with
Boosted Memorization", ICML 2022; code MediaBrain-SJTU/BCL). SimCLR whose augmentation grows with how
badly the network memorises each sample, which on long-tailed data are mostly the tail's samples.

Defaults (the paper's CIFAR-LT setting): NT-Xent with tau = 0.2 (any temperature strategy composes,
e.g. ``bcl+cosine_tau``), beta = 0.97, RandAugment k = 1 with probability w_i and magnitude
m_i = 10 + 20 w_i out of 30 (bench/randaugment.py: the ops and their ranges).

What differs from SimCLR (:class:`~methods.base.ContrastiveMethod`):

* Every step updates the momentum loss of the batch's samples, l_i = the mean of the sample's two
  view losses (detached, with the temperature strategy's tau): M_i <- beta M_i + (1 - beta) l_i, and
  M_i = l_i the first time sample i is seen.
* At each epoch start the strengths are the standardised momentum losses rescaled to [0, 1]:
  z = (M - mean M) / std M (unbiased std, as ``torch.std`` in the official code), w = z / max|z| / 2 + 1/2.
  In the first epoch, before any loss is known, w = 0 (the official code starts from zeros): p = 0,
  so no RandAugment, plain SimCLR. Statistics run over the samples seen so far; a sample not yet
  seen (drop_last can skip a few per epoch) keeps w = 0; if all seen losses are equal, w = 1/2.
* :meth:`augmentation_strength` hands w to the data pipeline (by sample index); the epoch log
  carries ``bcl_w_mean`` and ``bcl_w_max``.

M, seen and w are buffers, so a checkpoint carries them and a resumed run is exact.

Recipe: weight decay 5e-4, the value of BCL's README commands for both its SimCLR and BCL-I rows
(``train.py ... --weight_decay 5e-4``; SDCLR and BCL-D use 1e-4), as the method's ``recipe``: it
replaces the preset's weight decay unless --weight-decay is given. Not implemented: BCL-D (BCL on
top of SDCLR, k = 2) and BCL's own linear probe (Adam, features extracted once; eval_cifar.py).
"""

from __future__ import annotations

import torch

from bench.distributed import gather
from methods.base import ContrastiveMethod
from methods.losses import per_sample_loss
from methods.registry import register_method
from methods.temperature import ConstantTemperature, TrainingProgress


def momentum_update(momentum: torch.Tensor, seen: torch.Tensor, indices: torch.Tensor, losses: torch.Tensor, beta: float) -> None:
    """In place: M_i <- beta M_i + (1 - beta) l_i for seen samples, M_i = l_i for first-seen ones."""
    losses = losses.to(momentum.dtype)
    momentum[indices] = torch.where(seen[indices], beta * momentum[indices] + (1.0 - beta) * losses, losses)
    seen[indices] = True


def strength_from_momentum(momentum: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """w = z / max|z| / 2 + 1/2 with z the momentum losses standardised over the seen samples;
    0 for unseen samples (and all of them before any loss is known)."""
    w = torch.zeros_like(momentum)
    known = momentum[seen]
    if known.numel() < 2:
        return w
    z = (known - known.mean()) / known.std()
    peak = z.abs().max()
    w[seen] = z / peak / 2 + 0.5 if peak > 0 and torch.isfinite(peak) else torch.full_like(known, 0.5)
    return w


@register_method("bcl")
class BoostedContrastiveLearning(ContrastiveMethod):
    """BCL-I: SimCLR with RandAugment whose strength follows each sample's momentum loss."""

    role = "objective"
    description = "BCL-I: SimCLR + RandAugment with per-sample strength from the momentum loss (beta 0.97, tau 0.2, wd 5e-4)"
    citation = "Zhou et al., Contrastive Learning with Boosted Memorization, ICML 2022"
    temperature = ConstantTemperature(tau=0.2)
    beta: float = 0.97
    recipe = {"weight_decay": 5e-4}
    recipe_source = "MediaBrain-SJTU/BCL README.md, train.py BCL_I ... --weight_decay 5e-4"
    #: 2: BCL's weight decay 5e-4 (version 1: the preset's 1e-4).
    recipe_version = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_train_samples is None:
            raise ValueError("bcl tracks a loss per training sample: pass num_train_samples")
        n = self.num_train_samples
        self.register_buffer("momentum_loss", torch.zeros(n))
        self.register_buffer("seen", torch.zeros(n, dtype=torch.bool))
        self.register_buffer("strength", torch.zeros(n))

    def training_step(
        self, view0: torch.Tensor, view1: torch.Tensor, indices: torch.Tensor, progress: TrainingProgress
    ) -> torch.Tensor:
        z0, z1 = self(torch.cat([view0, view1])).chunk(2)
        per_view = self.contrastive_loss(z0, z1, progress, indices)
        # Under torchrun the loss covers the global batch (all ranks' views, rank order): so do the indices.
        momentum_update(self.momentum_loss, self.seen, gather(indices), per_sample_loss(per_view.detach()), self.beta)
        return per_view.mean()

    def on_epoch_start(self, progress: TrainingProgress) -> None:
        super().on_epoch_start(progress)
        self.strength.copy_(strength_from_momentum(self.momentum_loss, self.seen))

    def augmentation_strength(self) -> torch.Tensor:
        return self.strength

    def epoch_log(self) -> dict[str, float]:
        # The mean of w is 1/2 by construction once every sample is seen; its spread shows it move.
        return {
            **super().epoch_log(),
            "bcl_w_mean": float(self.strength.mean()),
            "bcl_w_std": float(self.strength.std()),
            "bcl_w_max": float(self.strength.max()),
        }
