"""dcl: the decoupled contrastive loss (Yeh, Hong, Hsu, Liu, Chen and LeCun, "Decoupled Contrastive
Learning", ECCV 2022): NT-Xent without the positive pair in the denominator,

    l_i = -s_ip / tau + log sum_{j != i, p} exp(s_ij / tau),

computed by lightly's ``lightly.loss.DCLLoss`` (Equation 6 of the paper, both views, mean over the
batch; lightly-ai/lightly ``lightly/loss/dcl_loss.py``), not rewritten here. DCLW (the von Mises-Fisher
weighting, ``weight_fn``) is not this row.

How a temperature strategy's tau reaches it: ``DCLLoss`` keeps a fixed ``temperature`` and divides the
similarities by it (``sim / self.temperature``), so every step builds a ``DCLLoss(temperature=tau)``
with the tau the strategy gives at that step: a float (constant, cosine_tau) or a 0-d tensor
(learnable_tau, whose gradient then flows through lightly's division). Per-pair strategies
(``dcl+dystress``) are refused: DCLLoss divides both of a view's similarity blocks (to its own view
and to the other) by one ``temperature``, so a (2N, 2N) tau cannot reach it without rewriting its
``_loss``. ``dcl+isogclr`` is refused by iSogCLR (its DRO rows are already decoupled; see
methods/isogclr.py). Default tau 0.2, the suite's long-tail baseline, so that ``dcl`` against
``constant`` differs in the loss only (lightly's default is 0.1).
"""

from __future__ import annotations

import torch
from lightly.loss import DCLLoss

from bench.distributed import gather
from methods.base import ContrastiveMethod
from methods.losses import fp32
from methods.registry import register_method
from methods.temperature import ConstantTemperature, TemperatureStrategy, TrainingProgress


@register_method("dcl")
class DecoupledContrastive(ContrastiveMethod):
    """SimCLR's views and head with lightly's decoupled contrastive loss at the strategy's tau."""

    role = "objective"
    description = "DCL: NT-Xent without the positive in the denominator (lightly's DCLLoss), tau 0.2"
    citation = "Yeh et al., Decoupled Contrastive Learning, ECCV 2022"
    temperature = ConstantTemperature(tau=0.2)

    def training_step(
        self, view0: torch.Tensor, view1: torch.Tensor, indices: torch.Tensor, progress: TrainingProgress
    ) -> torch.Tensor:
        z0, z1 = self(torch.cat([view0, view1])).chunk(2)
        return self.decoupled_loss(gather(z0), gather(z1), progress)

    def decoupled_loss(self, z0: torch.Tensor, z1: torch.Tensor, progress: TrainingProgress) -> torch.Tensor:
        """lightly's DCLLoss of the views at this step's tau (float32, as every loss of the suite)."""
        tau = self.temperature_strategy(progress, None)
        self.log_tau(tau)
        with fp32(z0, z1) as (z0, z1):
            return DCLLoss(temperature=tau.float() if torch.is_tensor(tau) else tau)(z0, z1)

    @classmethod
    def strategy_refusal(cls, strategy_name: str, temperature: TemperatureStrategy) -> str | None:
        if temperature.per_pair:
            return (
                f"{strategy_name} gives one tau per pair, and lightly's DCLLoss divides a view's similarities by "
                "one temperature; use a scalar strategy (constant, cosine_tau, learnable_tau)."
            )
        return super().strategy_refusal(strategy_name, temperature)
