"""isogclr: per-sample temperatures by distributionally robust optimisation, iSogCLR (Qiu, Hu, Yuan,
Zhou, Zhang and Yang, "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with
Automatic Temperature Individualization", ICML 2023; code zhqiu/contrastive-learning-iSogCLR).

Every training sample i owns a temperature tau_i, the dual variable of a KL-constrained DRO over its
negatives: min over w and tau of  tau_i log( (1/|N_i|) sum_{j in N_i} exp((s_ij - s_ip) / tau_i) ) + tau_i rho.
This follows the official ``unimodal_exps/losses.py``, class ``SogCLR_DRO_Loss`` (the one
``main_supcon.py --method SimCLR --DRO_mod`` builds), step by step, for each row r of the (2N, 2N)
cosine similarities (row r is a view of sample i = indices[r mod N]; N_i its 2N - 2 negatives, all
views but itself and its positive):

* g_r = mean over N_i of exp(s_rj / tau_i) (detached); the moving-average estimator of it,
  s_r = (1 - gamma) s_i + gamma g_r (s_r = g_r in the first epoch, as the code's ``epoch == 0``),
  and s_i <- the mean of its two views' s_r;
* the loss of row r: sum_{j in N_i} (exp(s_rj / tau_i) / s_r) s_rj / |N_i| - s_rp, whose gradient
  is the DRO objective's with s_r in place of the batch estimate (the weights are detached);
* the temperature's gradient: log s_r + rho - sum_j (exp(s_rj / tau_i) / s_r)(s_rj / tau_i) / |N_i|,
  averaged over the two views and clipped to [-3, 3]; its momentum u_i <- (1 - beta_u) u_i + beta_u grad;
  tau_i <- clamp(tau_i - eta u_i, tau_min, tau_max).

Defaults: the values of the official CIFAR command (``unimodal_exps/readme.md``: ``--DRO_tau_init 0.1
--DRO_gamma 0.8 --DRO_rho 0.4 --DRO_beta_u 0.5 --DRO_eta_init 0.03 --DRO_eta_sched const``) and the
class's own (``tau_min = 0.05``, ``tau_max = 1.0``, ``grad_clip = 3.0``); ``--tau`` sets tau_init,
``--tau-min`` / ``--tau-max`` the clamp. Where the paper and the code differ, the code is followed:
``main_supcon.py``'s argparse defaults (rho 6.0, beta_u 0.9, eta 0.001 with a cosine eta schedule) are
not what the readme runs, and ``SogCLR_DRO_Loss`` ignores ``eta_sched`` (eta is constant); the paper
writes the gradient with the batch estimate, the code with s. One deliberate difference: the suite
averages every loss over the 2N views, the code sums the two views of each sample (``loss_1 +
loss_2``), so its gradient is twice the suite's at the same learning rate. The DRO loss's gradient is
also about tau_i times NT-Xent's (its rows are tau-scaled log-sum-exps): at the suite's shared preset
learning rate isogclr takes smaller steps than constant, as the official code does against SupCon (the
official CIFAR run: LARS, ``set_optimizer`` in ``unimodal_exps/util.py``, lr 0.8 at batch 128; the suite
trains every method with its preset's SGD).

As a temperature strategy: ``isogclr`` is SimCLR with it; ``bcl+isogclr``, ``sdclr+isogclr`` and
``constant+isogclr`` use the objective's views and branches with iSogCLR's loss over its NT-Xent layout
(BCL's momentum losses are then the DRO rows; SDCLR's rows are the dense and pruned views of the same
samples). Refused: ``moco+isogclr`` -- not implemented: the official code's MoCo form is a different
loss (``unimodal_exps/moco.py``, ``SogCLR_DRO_M_Loss``: one row per query over its positive and the
queue, logit differences to the positive, no first-epoch rule, no view averaging), and running
``SogCLR_DRO_Loss``'s in-batch form on the queue would be neither; ``dcl+isogclr`` -- the DRO rows
already leave the positive out of the negatives, so it would be ``isogclr`` under another name (and
lightly's DCLLoss takes no per-sample loss). s, u and tau are buffers sized to the training set, so
checkpoints carry them and a resumed run is exact; each epoch's log has the quantiles of all N
temperatures (``sample_tau_min``/``_p10``/``_p50``/``_p90``/``_max``) and the run's record the final tau
per class.
"""

from __future__ import annotations

import torch

from bench.errors import UserError
from methods.base import ContrastiveMethod
from methods.losses import fp32
from methods.registry import register_method
from methods.temperature import TemperatureStrategy, TrainingProgress, _check_positive

#: The quantiles of the per-sample temperatures each epoch's log keeps (name suffix, q).
SAMPLE_TAU_QUANTILES = (("min", 0.0), ("p10", 0.1), ("p50", 0.5), ("p90", 0.9), ("max", 1.0))


class IndividualTemperature(TemperatureStrategy):
    """iSogCLR's per-sample temperature (``SogCLR_DRO_Loss``): the strategy computes the DRO rows and
    updates s, u and tau of the batch's samples; see the module docstring for the equations."""

    per_sample = True

    def __init__(
        self,
        tau: float = 0.1,
        tau_min: float = 0.05,
        tau_max: float = 1.0,
        rho: float = 0.4,
        gamma: float = 0.8,
        eta: float = 0.03,
        beta_u: float = 0.5,
        grad_clip: float = 3.0,
    ) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("tau_min", tau_min), ("tau_max", tau_max), ("eta", eta), ("grad_clip", grad_clip)):
            _check_positive(name, value)
        if not tau_min <= tau <= tau_max:
            raise UserError(f"iSogCLR's initial tau must lie inside its clamp: {tau_min} <= {tau} <= {tau_max}.")
        for name, value in (("gamma", gamma), ("beta_u", beta_u)):
            if not 0 < value <= 1:
                raise UserError(f"{name} must be in (0, 1], got {value}: it is a moving-average weight.")
        self.tau, self.tau_min, self.tau_max = float(tau), float(tau_min), float(tau_max)
        self.rho, self.gamma, self.eta = float(rho), float(gamma), float(eta)
        self.beta_u, self.grad_clip = float(beta_u), float(grad_clip)
        # Sized by bind(): the estimator s, the momentum u and tau of every training sample.
        self.register_buffer("s", torch.zeros(0))
        self.register_buffer("u", torch.zeros(0))
        self.register_buffer("sample_tau", torch.zeros(0))

    def bind(self, num_train_samples: int | None) -> None:
        if num_train_samples is None:
            raise ValueError("isogclr keeps a temperature per training sample: pass num_train_samples")
        self.s = torch.zeros(num_train_samples)
        self.u = torch.zeros(num_train_samples)
        self.sample_tau = torch.full((num_train_samples,), self.tau)

    def forward(self, progress: TrainingProgress, similarities: torch.Tensor | None = None) -> torch.Tensor:
        """The current temperature of every training sample (the loss reads them by index)."""
        return self.sample_tau

    def loss(
        self,
        similarities: torch.Tensor,
        positives: torch.Tensor,
        exclude: torch.Tensor | None,
        indices: torch.Tensor,
        progress: TrainingProgress,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The DRO rows (2N,) of ``SogCLR_DRO_Loss.forward`` and the taus they used; updates s, u, tau.

        Row r belongs to sample ``indices[r mod N]`` (the NT-Xent layout: rows r and r + N are the two
        views of one sample); its negatives are the columns neither excluded nor its positive."""
        rows, n = similarities.shape[0], indices.shape[0]
        views = rows // n
        if views * n != rows:
            raise ValueError(f"iSogCLR needs whole views of the batch: {rows} rows for {n} samples")
        row_sample = indices.repeat(views)
        negatives = torch.ones_like(similarities, dtype=torch.bool) if exclude is None else ~exclude
        negatives = negatives.scatter(1, positives[:, None], False)
        num_neg = negatives.sum(dim=1).to(torch.float32)
        with fp32(similarities) as (sim,), torch.no_grad():
            tau = self.sample_tau[row_sample]
            sim_d_tau = sim.detach() / tau[:, None]
            exp_sim = torch.exp(sim_d_tau) * negatives
            g = exp_sim.sum(dim=1) / num_neg
            s_rows = g if progress.epoch == 0 else (1.0 - self.gamma) * self.s[row_sample] + self.gamma * g
            self.s[indices] = s_rows.view(views, n).mean(dim=0)
            weights = exp_sim / s_rows[:, None]
            grad_tau = torch.log(s_rows) + self.rho - (weights * sim_d_tau).sum(dim=1) / num_neg
            grad_tau = grad_tau.view(views, n).mean(dim=0).clamp(-self.grad_clip, self.grad_clip)
            self.u[indices] = (1.0 - self.beta_u) * self.u[indices] + self.beta_u * grad_tau
            self.sample_tau[indices] = (self.sample_tau[indices] - self.eta * self.u[indices]).clamp(self.tau_min, self.tau_max)
        with fp32(similarities) as (sim,):
            positive = sim.gather(1, positives[:, None]).squeeze(1)
            per_row = (weights * sim).sum(dim=1) / num_neg - positive
        return per_row, tau

    def summarize(self, tau: float | torch.Tensor, exclude: torch.Tensor | None = None) -> dict[str, float | torch.Tensor]:
        """The mean tau of the batch's rows (the official ``avg_tau``)."""
        return {"tau": torch.as_tensor(tau).detach().float().mean()}

    def epoch_log(self) -> dict[str, float]:
        """Quantiles of the N per-sample temperatures at the epoch's end (samples not yet drawn keep tau_init)."""
        if self.sample_tau.numel() == 0:
            return {}
        qs = torch.tensor([q for _, q in SAMPLE_TAU_QUANTILES], device=self.sample_tau.device)
        values = torch.quantile(self.sample_tau.float(), qs).tolist()
        return {f"sample_tau_{name}": value for (name, _), value in zip(SAMPLE_TAU_QUANTILES, values)}

    def sample_values(self) -> torch.Tensor:
        return self.sample_tau

    def objective_refusal(self, objective: type) -> str | None:
        from methods.dcl import DecoupledContrastive
        from methods.moco import MoCo

        if issubclass(objective, MoCo):
            return (
                "iSogCLR's MoCo form (SogCLR_DRO_M_Loss in the official moco.py, over a query's positive and queue) "
                "is not implemented, and its in-batch form does not apply to a queue; use isogclr, bcl+isogclr or "
                "sdclr+isogclr."
            )
        if issubclass(objective, DecoupledContrastive):
            return "iSogCLR's DRO loss already leaves the positive out of the negatives: dcl+isogclr is isogclr; use isogclr."
        return None

    def describe(self) -> str:
        return (
            f"per-sample tau by DRO (iSogCLR), init {self.tau:g}, clamped to [{self.tau_min:g}, {self.tau_max:g}], "
            f"rho {self.rho:g}, gamma {self.gamma:g}, eta {self.eta:g}, beta_u {self.beta_u:g}"
        )


@register_method("isogclr")
class ISogCLR(ContrastiveMethod):
    """SimCLR's views with iSogCLR's DRO loss and a learned temperature per training sample."""

    description = "iSogCLR: SimCLR views, DRO loss with a temperature per training sample (init 0.1, rho 0.4)"
    citation = (
        "Qiu et al., Not All Semantics are Created Equal: Contrastive Self-supervised Learning with Automatic "
        "Temperature Individualization, ICML 2023"
    )
    temperature = IndividualTemperature()
