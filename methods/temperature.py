"""Temperature strategies: small objects that say what tau is at a point of training.

A strategy is separate from the objective so that every strategy combines with every objective
(``sdclr+cosine_tau``). Given the training progress (and, for per-pair strategies, the detached
similarities) it returns tau as a float or a tensor; a learnable strategy owns its parameter.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from bench.errors import UserError


@dataclass(frozen=True)
class TrainingProgress:
    """Where training is. ``epoch`` is the 0-based index of the current epoch, ``step`` the 0-based
    global optimiser step, ``temperature_period`` the run's T (epochs) for periodic schedules."""

    epoch: int
    step: int
    steps_per_epoch: int
    total_epochs: int
    temperature_period: int


class TemperatureStrategy(nn.Module):
    """Base class: ``strategy(progress, similarities=None) -> float | Tensor``.

    A strategy's parameters are its constructor's arguments, each kept as an attribute of the same
    name (``self.tau_min = tau_min``): :meth:`init_args` reads them back to rebuild it, and the command
    line's ``--tau`` / ``--tau-min`` / ``--tau-max`` override the arguments called ``tau`` /
    ``tau_min`` / ``tau_max`` of the strategies that have them -- no table to keep in step."""

    #: True when tau depends on the pair (a (2N, 2N) tensor): the NT-Xent then needs similarities.
    per_pair: bool = False
    #: True when tau belongs to each training sample (iSogCLR): the strategy then computes the loss
    #: itself from the similarities and the batch's dataset indices (:meth:`loss`), keeps per-sample
    #: state sized by :meth:`bind`, and the objective must hand it the indices.
    per_sample: bool = False

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The constructor's argument names, the names overrides use (``tau``, ``tau_min``, ...)."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
        return tuple(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this strategy, read from the same-named attributes."""
        missing = [name for name in self.options() if not hasattr(self, name)]
        if missing:
            raise TypeError(
                f"{type(self).__name__} must keep its constructor arguments as attributes of the same name "
                f"(self.{missing[0]} = {missing[0]}) so that overrides can rebuild it"
            )
        return {name: getattr(self, name) for name in self.options()}

    def with_overrides(self, overrides: dict[str, float]) -> "TemperatureStrategy":
        """A copy with the overrides that name one of its arguments (validated by the constructor)."""
        applicable = {k: v for k, v in overrides.items() if self.accepts(k)}
        if not applicable:
            return copy.deepcopy(self)
        return type(self)(**{**self.init_args(), **applicable})

    def accepts(self, option: str) -> bool:
        return option in self.options()

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None):
        raise NotImplementedError

    def describe(self) -> str:
        """One line with the formula's parameters, for `bench list` and records."""
        raise NotImplementedError

    #: Whether every step's tau is logged; per-pair strategies log the first batch of each epoch only,
    #: since summarising a (2N, 2N) matrix every step would cost time the comparison must not pay.
    log_every_step: bool = True

    def summarize(self, tau: float | torch.Tensor, exclude: torch.Tensor | None = None) -> dict[str, float | torch.Tensor]:
        """What the per-epoch log stores of one tau value (0-d tensors stay on the device: converting
        them every step would synchronise a GPU; the epoch log converts once). ``exclude`` marks the
        entries of a per-pair tau that the loss does not use."""
        return {"tau": tau.detach() if torch.is_tensor(tau) else float(tau)}

    def after_step(self) -> None:
        """Hook after every optimiser step (a learnable strategy clamps its parameter here)."""

    def bind(self, num_train_samples: int | None) -> None:
        """Hook when a method takes its copy: size per-sample state (buffers) to the training set."""

    def epoch_log(self) -> dict[str, float]:
        """Values the strategy adds to each epoch's log, from its state at the epoch's end."""
        return {}

    def sample_values(self) -> torch.Tensor | None:
        """The per-sample temperatures by dataset index (per-sample strategies), else None."""
        return None

    def objective_refusal(self, objective: type) -> str | None:
        """Why this strategy cannot combine with the objective class ``objective`` (one line), or None."""
        return None


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise UserError(f"{name} must be > 0, got {value}: a contrastive temperature divides the similarities.")


class ConstantTemperature(TemperatureStrategy):
    """A fixed tau, the SimCLR baseline. Default 0.2, the baseline of the long-tail papers."""

    def __init__(self, tau: float = 0.2) -> None:
        super().__init__()
        _check_positive("tau", tau)
        self.tau = float(tau)

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None) -> float:
        return self.tau

    def describe(self) -> str:
        return f"constant tau = {self.tau:g}"


class CosineTemperature(TemperatureStrategy):
    """The temperature schedule (TS) of Kukleva et al., ICLR 2023:

        tau(e) = tau_minus + 0.5 (tau_plus - tau_minus) (1 + cos(2 pi e / T))

    computed once per epoch, with tau_minus = ``tau_min`` and tau_plus = ``tau_max``. Paper defaults:
    tau_minus = 0.1, tau_plus = 1.0, T = 400 epochs (5 cycles over 2000 epochs on CIFAR-LT).
    ``period=None`` takes T from the run (its preset or epochs / 5). ``e`` is the 0-based epoch index,
    so the first epoch uses exactly tau_plus; the official code counts epochs from 1, a shift of one
    epoch out of T. Values come from lightly's ``cosine_schedule`` with ``period`` (added to lightly
    for this schedule, lightly issue #1319).
    """

    def __init__(self, tau_min: float = 0.1, tau_max: float = 1.0, period: int | None = None) -> None:
        super().__init__()
        _check_positive("tau_min", tau_min)
        _check_positive("tau_max", tau_max)
        if tau_min > tau_max:
            raise UserError(f"tau_min ({tau_min}) must not exceed tau_max ({tau_max}).")
        if period is not None and period <= 0:
            raise UserError(f"the cosine period T must be a positive number of epochs, got {period}.")
        self.tau_min = float(tau_min)
        self.tau_max = float(tau_max)
        self.period = period

    def value(self, epoch: float, period: int) -> float:
        """tau at (0-based) epoch ``epoch`` for period ``period``."""
        return cosine_schedule(
            step=epoch, max_steps=max(int(epoch), 1), start_value=self.tau_max, end_value=self.tau_min, period=period
        )

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None) -> float:
        return self.value(progress.epoch, self.period or progress.temperature_period)

    def describe(self) -> str:
        period = f"T = {self.period}" if self.period else "T from the run"
        return f"cosine tau from {self.tau_max:g} down to {self.tau_min:g} and back, {period} epochs"


class PairwiseCosineTemperature(TemperatureStrategy):
    """DySTreSS (Manna et al. 2023, IEEE TAI 2025): a temperature for every pair of views from its
    detached cosine similarity s_ij,

        tau_ij = tau_min + 0.5 (tau_max - tau_min) (1 + cos(pi (1 + s_ij)))

    so tau = tau_max at s = +1 and s = -1 and tau_min at s = 0, applied element-wise to the logits
    (positives and negatives alike). Defaults 0.07 / 0.2, the paper's CIFAR values (the dystress
    method uses 0.1 / 0.2 on ImageNet-sized images).
    """

    per_pair = True
    log_every_step = False

    def __init__(self, tau_min: float = 0.07, tau_max: float = 0.2) -> None:
        super().__init__()
        _check_positive("tau_min", tau_min)
        _check_positive("tau_max", tau_max)
        if tau_min > tau_max:
            raise UserError(f"tau_min ({tau_min}) must not exceed tau_max ({tau_max}).")
        self.tau_min = float(tau_min)
        self.tau_max = float(tau_max)

    def value(self, similarities: torch.Tensor) -> torch.Tensor:
        return self.tau_min + 0.5 * (self.tau_max - self.tau_min) * (1 + torch.cos(torch.pi * (1 + similarities)))

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None) -> torch.Tensor:
        if similarities is None:
            raise ValueError("a per-pair temperature needs the similarity matrix")
        return self.value(similarities.detach())

    def summarize(self, tau: float | torch.Tensor, exclude: torch.Tensor | None = None) -> dict[str, float | torch.Tensor]:
        """Median and 10-90 % range of the taus the loss uses (NT-Xent masks the diagonal)."""
        used = tau.detach()[~exclude] if exclude is not None else tau.detach().flatten()
        low, median, high = torch.quantile(used.float(), torch.tensor([0.1, 0.5, 0.9], device=tau.device))
        return {"tau": median, "tau_p10": low, "tau_p90": high}

    def describe(self) -> str:
        return f"per-pair tau from the cosine similarity, {self.tau_min:g} at s = 0 up to {self.tau_max:g} at s = +-1"


class LearnableTemperature(TemperatureStrategy):
    """A learned scalar temperature, CLIP style (Radford et al. 2021): tau = exp(log_tau), log_tau an
    ``nn.Parameter`` optimised with the network (no weight decay), initialised at ``tau`` (the baseline
    0.2) and clamped after every optimiser step to [``tau_min``, ``tau_max``] = [0.01, 1.0] (open_clip
    clamps its logit scale the same way)."""

    def __init__(self, tau: float = 0.2, tau_min: float = 0.01, tau_max: float = 1.0) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("tau_min", tau_min), ("tau_max", tau_max)):
            _check_positive(name, value)
        if not tau_min <= tau <= tau_max:
            raise UserError(f"the learnable tau must start inside its clamp: {tau_min} <= {tau} <= {tau_max}.")
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))

    @property
    def tau(self) -> float:
        """The current tau (the starting value until training moves it)."""
        return float(self.log_tau.detach().exp())

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None) -> torch.Tensor:
        return self.log_tau.exp()

    @torch.no_grad()
    def after_step(self) -> None:
        self.log_tau.clamp_(math.log(self.tau_min), math.log(self.tau_max))

    def describe(self) -> str:
        return f"learned scalar tau, starts at {self.tau:g}, clamped to [{self.tau_min:g}, {self.tau_max:g}]"
