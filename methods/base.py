"""The shared part of every method: a timm backbone, lightly's SimCLR projection head, a temperature
strategy and the NT-Xent objective. A method file subclasses :class:`ContrastiveMethod` and says only
what differs (solo-learn's base-class pattern). Methods never own a training loop: the trainer
(bench/trainer.py) calls :meth:`training_step` and the epoch hooks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightly.models.modules import SimCLRProjectionHead
from torch import nn

from bench.distributed import gather
from methods.losses import contrastive_cross_entropy, cosine_similarity_matrix, nt_xent_layout
from methods.temperature import ConstantTemperature, TemperatureStrategy, TrainingProgress


#: Training crops of at least this many pixels count as ImageNet-sized (CIFAR is 32, ImageNet 224).
LARGE_IMAGE_SIZE = 64


class ContrastiveMethod(nn.Module):
    """SimCLR (Chen et al. 2020): two augmented views, a projection head fc-BN-ReLU-fc(128), NT-Xent.

    Class attributes a method may override:
      ``temperature``: the strategy (default constant tau = 0.2, the long-tail papers' baseline);
      ``large_image_temperature``: the strategy on ImageNet-sized inputs (>= ``LARGE_IMAGE_SIZE``
      pixels), where a paper gives other defaults; None keeps ``temperature``;
      ``description`` / ``citation``: shown by ``bench list`` and on the leaderboard;
      ``accepts_temperature_strategies``: whether ``<this>+<strategy>`` names make sense;
      ``role``: ``objective`` (a loss / branches of its own: left of ``+``) or ``temperature`` (SimCLR
      with a temperature strategy: right of ``+``); ``bench list`` shows what combines;
      ``recipe``: optimiser values of the method's own published recipe (``lr``, ``weight_decay``) that
      replace the dataset preset's unless the command line sets them (``--lr``, ``--weight-decay``);
      ``recipe_lr_batch``: when set, the recipe's lr is per this many images and scales linearly with
      the batch size (lightly's ``lr_factor = batch_size / 128``); ``recipe_source``: where the recipe
      is published; ``recipe_version``: bumped whenever a change to the method changes its numbers
      (records carry it in ``method_info``; records without it are version 1), so that the leaderboard
      never mixes records of two versions in one row (leaderboard/PROTOCOL.md, "Versions").
    """

    description: ClassVar[str] = "SimCLR with NT-Xent"
    citation: ClassVar[str] = "Chen et al., A Simple Framework for Contrastive Learning of Visual Representations, ICML 2020"
    temperature: ClassVar[TemperatureStrategy] = ConstantTemperature(0.2)
    accepts_temperature_strategies: ClassVar[bool] = True
    role: ClassVar[str] = "temperature"
    projection_dim: ClassVar[int] = 128
    large_image_temperature: ClassVar[TemperatureStrategy | None] = None
    registered_name: ClassVar[str] = "unregistered"
    recipe: ClassVar[dict[str, float]] = {}
    recipe_lr_batch: ClassVar[int | None] = None
    recipe_source: ClassVar[str] = ""
    recipe_version: ClassVar[int] = 1

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        temperature_overrides: dict[str, float] | None = None,
        num_train_samples: int | None = None,
        image_size: int | None = None,
    ) -> None:
        """``num_train_samples`` sizes per-sample state (BCL's losses, MoCo's queue); ``image_size``
        (the training crop) picks the ImageNet-sized defaults of methods that have them."""
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.num_train_samples = num_train_samples
        self.large_images = image_size is not None and image_size >= LARGE_IMAGE_SIZE
        # Hidden width = feature width, output 128, as the CIFAR-LT recipes (leaderboard/PROTOCOL.md).
        self.projection_head = SimCLRProjectionHead(feature_dim, feature_dim, self.projection_dim)
        # Each instance owns a copy (a learnable strategy's parameter must not be shared across runs),
        # with the command line's --tau / --tau-min / --tau-max where they apply.
        cls = type(self)
        default = cls.large_image_temperature if self.large_images and cls.large_image_temperature else cls.temperature
        self.temperature_strategy: TemperatureStrategy = default.with_overrides(temperature_overrides or {})
        self.temperature_strategy.bind(num_train_samples)  # per-sample strategies size their state
        self._epoch_tau: list[dict[str, float]] = []

    # --- what the trainer and the evaluation call -------------------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (pooled, before the head): what the evaluation uses."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.backbone(images))

    def training_step(
        self, view0: torch.Tensor, view1: torch.Tensor, indices: torch.Tensor, progress: TrainingProgress
    ) -> torch.Tensor:
        """The loss of one batch (a scalar tensor). ``indices`` are the samples' dataset indices."""
        # One forward over both views: half the kernel launches, BatchNorm statistics over 2N images.
        z0, z1 = self(torch.cat([view0, view1])).chunk(2)
        return self.contrastive_loss(z0, z1, progress, indices).mean()

    def contrastive_loss(
        self, z0: torch.Tensor, z1: torch.Tensor, progress: TrainingProgress, indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-view NT-Xent (2N,) between the views z0 and z1, with this method's temperature;
        ``indices`` (the samples' dataset indices) reach per-sample strategies (iSogCLR).

        Under torchrun the projections of all ranks are gathered first (with gradient): every rank
        then computes the loss of the whole global batch, equal to the single-process loss."""
        z0, z1 = gather(z0), gather(z1)
        indices = gather(indices) if indices is not None else None
        positives, exclude = nt_xent_layout(z0.shape[0], z0.device)
        return self.tempered_cross_entropy(cosine_similarity_matrix(z0, z1), positives, exclude, progress, indices)

    def tempered_cross_entropy(
        self,
        similarities: torch.Tensor,
        positives: torch.Tensor,
        exclude: torch.Tensor | None,
        progress: TrainingProgress,
        indices: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-row contrastive loss (:func:`methods.losses.contrastive_cross_entropy`) with the tau of
        this method's strategy (per pair: from the detached similarities); logs the tau it used. A
        per-sample strategy computes its own loss from the rows' sample ``indices``."""
        strategy = self.temperature_strategy
        if strategy.per_sample:
            if indices is None:
                raise ValueError(f"{self.registered_name}: a per-sample temperature needs the batch's sample indices")
            per_row, tau = strategy.loss(similarities, positives, exclude, indices, progress)
            self.log_tau(tau, exclude)
            return per_row
        tau = strategy(progress, similarities.detach() if strategy.per_pair else None)
        self.log_tau(tau, exclude)
        return contrastive_cross_entropy(similarities, tau, positives, exclude)

    def log_tau(self, tau: float | torch.Tensor, exclude: torch.Tensor | None = None) -> None:
        """Keep the strategy's summary of the tau a step used, for the epoch's log."""
        if self.temperature_strategy.log_every_step or not self._epoch_tau:
            self._epoch_tau.append(self.temperature_strategy.summarize(tau, exclude))

    def on_epoch_start(self, progress: TrainingProgress) -> None:
        """Hook: called before the first step of every epoch (SDCLR re-prunes here)."""
        self._epoch_tau = []

    def on_after_step(self, progress: TrainingProgress) -> None:
        """Hook: called after every optimiser step (a learnable tau is clamped here, MoCo's EMA updates)."""
        self.temperature_strategy.after_step()

    def augmentation_strength(self) -> torch.Tensor | None:
        """Hook: per-sample augmentation strengths (N,) in [0, 1] by dataset index, read by the trainer
        at every epoch start and handed to the data (BCL); None (every other method): plain SimCLR."""
        return None

    def epoch_log(self) -> dict[str, float]:
        """Values for the per-epoch log: the mean of each tau summary over the epoch's steps."""
        strategy_log = self.temperature_strategy.epoch_log()
        if not self._epoch_tau:
            return strategy_log
        keys = self._epoch_tau[0].keys()
        return {**{k: float(sum(t[k] for t in self._epoch_tau)) / len(self._epoch_tau) for k in keys}, **strategy_log}

    # The taus logged so far in this epoch travel with the state_dict, so a run resumed mid-epoch
    # logs the same epoch mean as an uninterrupted one.
    def get_extra_state(self) -> dict[str, Any]:
        return {"epoch_tau": list(self._epoch_tau)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._epoch_tau = list(state.get("epoch_tau", []))

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups: every parameter decays, except the temperature strategy's own
        (a weight decay on log tau would pull tau towards 1 for no reason)."""
        own = {id(p) for p in self.temperature_strategy.parameters()}
        trained = [p for p in self.parameters() if p.requires_grad and id(p) not in own]
        groups = [{"params": trained, "weight_decay": weight_decay}]
        if own:
            groups.append({"params": list(self.temperature_strategy.parameters()), "weight_decay": 0.0})
        return groups

    @classmethod
    def strategy_refusal(cls, strategy_name: str, temperature: TemperatureStrategy) -> str | None:
        """Why ``<this objective>+<strategy_name>`` cannot be built (one line), or None; an objective
        whose loss cannot take some strategies overrides it (dcl: no per-pair tau)."""
        return temperature.objective_refusal(cls)

    @classmethod
    def recipe_for(cls, batch_size: int) -> dict[str, float]:
        """The method's recipe values at ``batch_size`` (empty for methods that follow the preset)."""
        values = dict(cls.recipe)
        if "lr" in values and cls.recipe_lr_batch:
            values["lr"] = values["lr"] * batch_size / cls.recipe_lr_batch
        return values

    @classmethod
    def info(cls) -> dict[str, Any]:
        """What records and the leaderboard say about the method."""
        info: dict[str, Any] = {
            "name": cls.registered_name,
            "description": cls.description,
            "citation": cls.citation,
            "temperature": cls.temperature.describe(),
            "recipe_version": cls.recipe_version,
        }
        if cls.recipe:
            scaling = f", lr per {cls.recipe_lr_batch} images, scaled with the batch" if cls.recipe_lr_batch else ""
            info["recipe"] = f"method recipe {cls.recipe}{scaling}: {cls.recipe_source}"
        return info
