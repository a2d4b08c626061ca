"""gh, sdclr_gh, bcl_gh: Geometric Harmonization as an add-on to an objective (Zhou, Yao, Hong, Zhang, Han
and Wang, "Combating Representation Learning Disparity with Geometric Harmonization", NeurIPS 2023;
code MediaBrain-SJTU/Geometric-Harmonization).

GH adds to the objective's contrastive loss a term that asks for category-level uniformity. Following
the official ``train_cifar.py`` (methods ``simclr_GH`` / ``sdclr_GH``, ``--bcl``) and ``utils.py``:

* Geometric uniform structure: K = 100 fixed unit vectors in the 128-d projection space forming a
  simplex equiangular tight frame, M = sqrt(K / (K - 1)) (I - 11^T / K) U with U the polar factor of a
  Gaussian K x 128 matrix (``target/gen_target.py``; the official ``target/100_128_target.npy`` is one
  draw, here a fixed-seed draw kept as a buffer). K = ``--target_dim 100``, the README's value for
  every method.
* Surrogate labels: each sample's geometric logit t_i = normalize(z_i M^T) of its first view (the dense
  branch for SDCLR), kept as a per-sample moving average (momentum 0.9 before the warm-up ends, 0.999
  after: ``beta`` / ``--beta 0.999``; the first epoch stores t_i). The surrogate prior pi is the share
  of samples whose momentum logit is largest at each of the K directions, refreshed when the warm-up
  ends and every 20 epochs after (``(epoch + 1) % 20 == 0 or epoch + 1 == warm_up``).
* The GH loss (``GHLoss(0.05, 300)``): Sinkhorn-Knopp with epsilon 0.05 and 300 iterations turns each
  view's logits into an assignment q whose class marginal is pi; the loss is the swapped cross-entropy
  -mean sum q(t1) log softmax(t2 / 0.1) - mean sum q(t2) log softmax(t1 / 0.1) (``gamma = 0.1``).
* Schedule: plain objective during the warm-up (``--warm_up 500`` of the 1000 epochs), then
  loss + w GH with w rising linearly to 1 over ``GH_warm_up`` = 10 epochs.

Epoch counts scale with the run as the suite's other epoch counts: the warm-up is 500 / 1000 of the
run's epochs, the ramp 10 / 1000 (at least 1 epoch), the refresh interval 20 / 1000 (at least 1); on
ImageNet-sized inputs those of ``train_imagenet_places.py`` (README ``--warm_up 400``, defaults
``--epochs 500 --GH_warm_up 30``): 400 / 500, 30 / 500 and 20 / 500. K = 100 there as well. The
momenta 0.9 / 0.999 are per visit of a sample and are kept, so in a short run pi moves less after the
warm-up than in the official 1000 epochs. Deviations: pi is refreshed at the start of the epoch after
a refresh epoch (the official code recomputes it at every step of that epoch, so its last steps use a
pi one step fresher); only samples seen so far count towards pi (the official code counts all rows of
an uninitialised ``torch.empty``); before the first refresh pi is uniform (Sinkhorn's ``stat=None``).

Composition: ``gh`` is SimCLR (constant tau 0.2, as the official ``nt_xent(t=0.2)``) + GH; ``sdclr_gh``
and ``bcl_gh`` are SDCLR and BCL-I + GH, each an objective of its own (so ``sdclr_gh+cosine_tau`` takes a
temperature strategy for the contrastive part; GH's own 0.05 / 0.1 stay). BCL's momentum losses stay
the contrastive loss's, as the official ``momentum_loss`` (GH is not in them). The logit momentum, its
seen flags, the frame and pi are buffers: checkpoints carry them and a resumed run is exact.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from bench.distributed import gather
from methods.bcl import BoostedContrastiveLearning
from methods.constant import ConstantTau
from methods.losses import fp32
from methods.registry import register_method
from methods.sdclr import SDCLR
from methods.temperature import TrainingProgress

#: The official runs as (epochs, warm-up, GH ramp, pi refresh interval): CIFAR-100-LT (``train_cifar.py``,
#: README ``--warm_up 500``, default ``--epochs 1000 --GH_warm_up 10``) and ImageNet-LT / Places-LT
#: (``train_imagenet_places.py``, README ``--warm_up 400``, defaults ``--epochs 500 --GH_warm_up 30``); pi
#: is refreshed every 20 epochs in both.
OFFICIAL_SCHEDULE = (1000, 500, 10, 20)
OFFICIAL_LARGE_IMAGE_SCHEDULE = (500, 400, 30, 20)


def simplex_etf(k: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """K unit vectors in R^d with pairwise cosine -1 / (K - 1) (``target/gen_target.py``: the polar
    factor of a Gaussian K x d matrix, centred and scaled)."""
    if k > d + 1:
        raise ValueError(f"a simplex ETF of {k} vectors needs at least {k - 1} dimensions, got {d}")
    a = torch.randn(k, d, generator=generator, dtype=torch.float64)
    left, _, right = torch.linalg.svd(a, full_matrices=False)
    polar = left @ right  # scipy.linalg.polar(A)[0]
    frame = math.sqrt(k / (k - 1)) * (torch.eye(k, dtype=torch.float64) - 1.0 / k) @ polar
    return frame.float()


@torch.no_grad()
def sinkhorn(logits: torch.Tensor, epsilon: float, iterations: int, prior: torch.Tensor | None = None) -> torch.Tensor:
    """``utils.sinkhorn``: an (N, K) assignment of the N rows to K classes with class marginal ``prior``
    (uniform when None) and uniform row marginal, scaled so that each row sums to 1."""
    q = torch.exp(logits / epsilon).t()  # (K, N)
    k, n = q.shape
    c = torch.ones((n, 1), dtype=q.dtype, device=q.device) / n
    if prior is None:
        inv_k = torch.full((k, 1), 1.0 / k, dtype=q.dtype, device=q.device)
    else:
        inv_k = (prior / prior.sum()).reshape(k, 1).to(q.dtype)
    r = torch.ones((k, 1), dtype=q.dtype, device=q.device) / k
    for _ in range(iterations):
        r = inv_k / (q @ c)
        c = (1.0 / n) / (q.t() @ r)
    return (r * q * c.t()).t() * n


def gh_loss(
    t1: torch.Tensor,
    t2: torch.Tensor,
    prior: torch.Tensor | None,
    epsilon: float = 0.05,
    iterations: int = 300,
    gamma: float = 0.1,
) -> torch.Tensor:
    """``GHLoss.loss``: the swapped cross-entropy between each view's Sinkhorn assignment and the other
    view's softmax(logits / gamma)."""
    q1 = sinkhorn(t1, epsilon, iterations, prior)
    q2 = sinkhorn(t2, epsilon, iterations, prior)
    return -(q1 * F.log_softmax(t2 / gamma, dim=1)).sum(dim=1).mean() - (q2 * F.log_softmax(t1 / gamma, dim=1)).sum(dim=1).mean()


class GeometricHarmonization:
    """Mixin: the GH term on top of an objective's :meth:`contrastive_loss` (put it before the objective's
    class in the bases). See the module docstring."""

    target_dim: ClassVar[int] = 100
    sinkhorn_epsilon: ClassVar[float] = 0.05
    sinkhorn_iterations: ClassVar[int] = 300
    gh_gamma: ClassVar[float] = 0.1
    # Named apart from BCL's ``beta`` (its momentum loss's 0.97), which bcl_gh keeps.
    gh_beta_warm_up: ClassVar[float] = 0.9
    gh_beta_after: ClassVar[float] = 0.999
    frame_seed: ClassVar[int] = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_train_samples is None:
            raise ValueError("GH keeps a surrogate logit per training sample: pass num_train_samples")
        frame = simplex_etf(self.target_dim, self.projection_dim, torch.Generator().manual_seed(self.frame_seed))
        self.register_buffer("gh_frame", frame)
        self.register_buffer("gh_momentum", torch.zeros(self.num_train_samples, self.target_dim))
        self.register_buffer("gh_seen", torch.zeros(self.num_train_samples, dtype=torch.bool))
        self.register_buffer("gh_prior", torch.full((self.target_dim,), 1.0 / self.target_dim))
        self._gh_term: torch.Tensor | None = None

    @staticmethod
    def scaled_schedule(total_epochs: int, large_images: bool = False) -> tuple[int, int, int]:
        """(warm-up, ramp, refresh) epochs of a run of ``total_epochs``: the official run's (ImageNet-LT's
        on ImageNet-sized inputs) scaled by ``total_epochs`` over its epochs; ramp and refresh >= 1."""
        epochs, warm_up, ramp, refresh = OFFICIAL_LARGE_IMAGE_SCHEDULE if large_images else OFFICIAL_SCHEDULE
        scale = total_epochs / epochs
        return round(warm_up * scale), max(1, round(ramp * scale)), max(1, round(refresh * scale))

    def schedule(self, total_epochs: int) -> tuple[int, int, int]:
        return self.scaled_schedule(total_epochs, self.large_images)

    def gh_weight(self, progress: TrainingProgress) -> float:
        """w of the epoch: 0 in the warm-up, then (epoch + 1 - warm_up) / ramp up to 1."""
        warm_up, ramp, _ = self.schedule(progress.total_epochs)
        return min(1.0, max(0.0, (progress.epoch + 1 - warm_up) / ramp))

    def gh_beta(self, progress: TrainingProgress) -> float:
        """The logit momentum: 0.9 during the warm-up, 0.999 after (``beta = args.beta`` from epoch warm_up)."""
        return self.gh_beta_after if progress.epoch >= self.schedule(progress.total_epochs)[0] else self.gh_beta_warm_up

    def training_step(self, view0, view1, indices, progress):
        self._gh_term = None
        loss = super().training_step(view0, view1, indices, progress)
        return loss if self._gh_term is None else loss + self._gh_term

    def contrastive_loss(self, z0, z1, progress, indices=None):
        per_view = super().contrastive_loss(z0, z1, progress, indices)
        if indices is None:
            raise ValueError(f"{self.registered_name}: GH needs the batch's sample indices")
        z0, z1, indices = gather(z0), gather(z1), gather(indices)
        with fp32(z0, z1) as (z0, z1):
            t0 = F.normalize(z0 @ self.gh_frame.t(), dim=1)
            t1 = F.normalize(z1 @ self.gh_frame.t(), dim=1)
            weight = self.gh_weight(progress)
            if weight > 0:
                self._gh_term = weight * gh_loss(
                    t0, t1, self.gh_prior, self.sinkhorn_epsilon, self.sinkhorn_iterations, self.gh_gamma
                )
            self.update_logit_momentum(t0.detach(), indices, progress)
        return per_view

    @torch.no_grad()
    def update_logit_momentum(self, logits: torch.Tensor, indices: torch.Tensor, progress: TrainingProgress) -> None:
        """The official per-sample EMA of the first view's geometric logits (stored as is in epoch 0)."""
        if progress.epoch == 0:
            self.gh_momentum[indices] = logits
        else:
            beta = self.gh_beta(progress)
            self.gh_momentum[indices] = beta * self.gh_momentum[indices] + (1.0 - beta) * logits
        self.gh_seen[indices] = True

    def on_epoch_start(self, progress: TrainingProgress) -> None:
        super().on_epoch_start(progress)
        epoch = progress.epoch  # = the 1-based number of the epoch that just ended
        warm_up, _, refresh = self.schedule(progress.total_epochs)
        if epoch >= 1 and epoch >= warm_up and (epoch % refresh == 0 or epoch == warm_up) and self.gh_seen.any():
            labels = self.gh_momentum[self.gh_seen].argmax(dim=1)
            counts = torch.bincount(labels, minlength=self.target_dim).to(self.gh_prior.dtype)
            self.gh_prior.copy_(counts / counts.sum())

    def epoch_log(self) -> dict[str, float]:
        # How concentrated the surrogate prior is: its largest share and how many directions hold samples.
        return {
            **super().epoch_log(),
            "gh_prior_max": float(self.gh_prior.max()),
            "gh_prior_used": float((self.gh_prior > 0).sum()),
        }


@register_method("gh")
class SimCLRWithGH(GeometricHarmonization, ConstantTau):
    """SimCLR (tau 0.2) + Geometric Harmonization (``train_cifar.py --method simclr_GH``)."""

    description = "SimCLR + Geometric Harmonization (K = 100 simplex ETF, Sinkhorn surrogate labels, warm-up half the run)"
    citation = "Zhou et al., Combating Representation Learning Disparity with Geometric Harmonization, NeurIPS 2023"


@register_method("sdclr_gh")
class SDCLRWithGH(GeometricHarmonization, SDCLR):
    """SDCLR + Geometric Harmonization (``train_cifar.py --method sdclr_GH``)."""

    description = "SDCLR + Geometric Harmonization (GH on the dense and pruned branches' projections)"
    citation = SimCLRWithGH.citation
    #: A row of its own from its first record: version 1, not its objective's (recipes are per row).
    recipe_version = 1


@register_method("bcl_gh")
class BCLWithGH(GeometricHarmonization, BoostedContrastiveLearning):
    """BCL-I + Geometric Harmonization (``train_cifar.py --method simclr_GH --bcl``)."""

    description = "BCL-I + Geometric Harmonization (momentum losses from the contrastive part only)"
    citation = SimCLRWithGH.citation
    #: A row of its own from its first record: version 1, not its objective's (recipes are per row).
    recipe_version = 1
