"""isogclr against the official iSogCLR code: the loss, its gradient and the s / u / tau updates of
``SogCLR_DRO_Loss`` (transcribed below for testing), through the suite's composition path; where it
composes and where it is refused; the record's per-class summary and the report's two figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.backbones import create_backbone
from bench.errors import UserError
from bench.report.figures import sample_tau_data, tau_by_class_data
from bench.runner import tau_per_class
from methods import create_method, get_method_class
from methods.isogclr import IndividualTemperature
from methods.temperature import TrainingProgress

DATASET_SIZE, BATCH, DIM = 12, 4, 8
# The official CIFAR command's values (unimodal_exps/readme.md) and the class's own clamp and clip.
OFFICIAL = dict(gamma=0.8, tau_init=0.1, tau_min=0.05, tau_max=1.0, rho=0.4, eta_init=0.03, beta_u=0.5)


class OfficialSogCLRDRO:
    """TRANSCRIPTION FOR TESTING ONLY of zhqiu/contrastive-learning-iSogCLR ``unimodal_exps/losses.py``,
    ``SogCLR_DRO_Loss.__init__`` / ``forward``, line by line, with ``.cuda()`` dropped and N, bsz small.
    ``features`` is (bsz, 2, dim) and L2-normalised, as ``SupConResNet`` returns it."""

    def __init__(self, N, gamma, tau_init, tau_min, tau_max, rho, bsz, eta_init, beta_u):
        self.gamma, self.tau_init, self.tau_min, self.tau_max, self.rho = gamma, tau_init, tau_min, tau_max, rho
        self.eta_init, self.beta_u = eta_init, beta_u
        self.s = torch.zeros(N)
        self.tau = torch.ones(N) * self.tau_init
        self.u = torch.zeros(N)
        self.grad_clip = 3.0
        self.mask_neg = (1.0 - torch.eye(bsz)).repeat(2, 2)
        self.num_neg = 2 * bsz - 2

    def forward(self, index, features, epoch):
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        bsz = contrast_feature.shape[0] // 2
        sim = torch.einsum("i d, j d -> i j", contrast_feature, contrast_feature)
        pos_sim = torch.cat([torch.diagonal(sim, offset=bsz), torch.diagonal(sim, offset=-bsz)])[:, None]
        tau = self.tau[index].repeat(2)
        sim_d_temps = (sim / tau[:, None]).clone().detach_()
        exp_sim_d_temps = torch.exp(sim_d_temps) * self.mask_neg
        g = torch.sum(exp_sim_d_temps, dim=1, keepdim=True) / self.num_neg
        if epoch == 0:
            s1 = g.squeeze()[:bsz]
            s2 = g.squeeze()[bsz:]
        else:
            s1 = (1.0 - self.gamma) * self.s[index] + self.gamma * g.squeeze()[:bsz]
            s2 = (1.0 - self.gamma) * self.s[index] + self.gamma * g.squeeze()[bsz:]
        self.s[index] = (s1 + s2) / 2.0
        weights_1 = exp_sim_d_temps[:bsz, :] / s1[:, None]
        loss_1 = torch.sum(weights_1 * sim[:bsz, :], dim=1, keepdim=True) / self.num_neg - pos_sim[:bsz, :]
        weights_2 = exp_sim_d_temps[bsz:, :] / s2[:, None]
        loss_2 = torch.sum(weights_2 * sim[bsz:, :], dim=1, keepdim=True) / self.num_neg - pos_sim[bsz:, :]
        loss = loss_1 + loss_2
        grad_tau_1 = torch.log(s1) + self.rho - torch.sum(weights_1 * sim_d_temps[:bsz, :], dim=1, keepdim=False) / self.num_neg
        grad_tau_2 = torch.log(s2) + self.rho - torch.sum(weights_2 * sim_d_temps[bsz:, :], dim=1, keepdim=False) / self.num_neg
        grad_tau = ((grad_tau_1 + grad_tau_2) / 2.0).clamp_(min=-self.grad_clip, max=self.grad_clip)
        self.u[index] = (1.0 - self.beta_u) * self.u[index] + self.beta_u * grad_tau
        self.tau[index] = (self.tau[index] - self.eta_init * self.u[index]).clamp_(min=self.tau_min, max=self.tau_max)
        return loss.mean(), tau.mean()


def _method(name: str = "isogclr", **overrides):
    torch.manual_seed(0)
    backbone, width = create_backbone("small_cnn")
    return create_method(
        name, backbone=backbone, feature_dim=width, temperature_overrides=overrides, num_train_samples=DATASET_SIZE
    )


def _progress(epoch: int) -> TrainingProgress:
    return TrainingProgress(epoch=epoch, step=epoch * 3, steps_per_epoch=3, total_epochs=4, temperature_period=1)


def test_loss_gradient_and_state_equal_the_official_code_over_steps():
    """Four steps over two epochs (the first epoch's s = g, then the moving average), overlapping
    batches: the suite's mean over 2N views is half the official sum over the two views, its gradient
    half; s, u and tau equal the official buffers after every step."""
    method = _method()
    official = OfficialSogCLRDRO(N=DATASET_SIZE, bsz=BATCH, **OFFICIAL)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.tensor(b) for b in ([0, 3, 5, 7], [1, 2, 4, 6], [3, 8, 9, 0], [11, 10, 5, 2])]
    for step, indices in enumerate(batches):
        epoch = step // 2
        raw = torch.randn(BATCH, 2, DIM, generator=generator)
        ours_input = raw.clone().requires_grad_(True)
        theirs_input = raw.clone().requires_grad_(True)

        ours = method.contrastive_loss(ours_input[:, 0], ours_input[:, 1], _progress(epoch), indices).mean()
        theirs, avg_tau = official.forward(indices, F.normalize(theirs_input, dim=2), epoch)
        (2 * ours).backward()
        theirs.backward()

        assert float(2 * ours) == pytest.approx(float(theirs), rel=1e-5, abs=1e-6)
        torch.testing.assert_close(ours_input.grad, theirs_input.grad, rtol=1e-5, atol=1e-6)
        strategy = method.temperature_strategy
        torch.testing.assert_close(strategy.s, official.s, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(strategy.u, official.u, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(strategy.sample_tau, official.tau, rtol=1e-5, atol=1e-7)
        assert float(method._epoch_tau[-1]["tau"]) == pytest.approx(float(avg_tau))
    assert not torch.allclose(method.temperature_strategy.sample_tau, torch.full((DATASET_SIZE,), 0.1))  # it moved


def test_state_lives_in_buffers_and_the_log_has_the_quantiles():
    method = _method()
    state = method.state_dict()
    assert {"temperature_strategy.s", "temperature_strategy.u", "temperature_strategy.sample_tau"} <= set(state)
    assert state["temperature_strategy.sample_tau"].shape == (DATASET_SIZE,)
    method.temperature_strategy.sample_tau.copy_(torch.linspace(0.05, 0.6, DATASET_SIZE))
    log = method.epoch_log()
    assert log["sample_tau_min"] == pytest.approx(0.05) and log["sample_tau_max"] == pytest.approx(0.6)
    assert log["sample_tau_p50"] == pytest.approx(0.325) and log["sample_tau_p10"] < log["sample_tau_p90"]


def test_composes_with_batch_objectives_and_refuses_the_rest():
    for name in ("isogclr", "constant+isogclr", "bcl+isogclr", "sdclr+isogclr", "sdclr_gh+isogclr"):
        assert type(get_method_class(name).temperature) is IndividualTemperature
    with pytest.raises(UserError, match="moco\\+isogclr.*MoCo form \\(SogCLR_DRO_M_Loss.*is not implemented"):
        get_method_class("moco+isogclr")
    with pytest.raises(UserError, match="dcl\\+isogclr.*already leaves the positive out"):
        get_method_class("dcl+isogclr")


def test_overrides_and_bad_values():
    strategy = _method(tau=0.3, tau_max=0.5).temperature_strategy
    assert (strategy.tau, strategy.tau_max) == (0.3, 0.5) and torch.all(strategy.sample_tau == 0.3)
    with pytest.raises(UserError, match="initial tau must lie inside its clamp: 0.05 <= 2.0 <= 1.0"):
        _method(tau=2.0)
    with pytest.raises(ValueError, match="num_train_samples"):
        get_method_class("isogclr")(backbone=torch.nn.Identity(), feature_dim=4, num_train_samples=None)


def test_record_summary_per_class():
    labels = np.array([0, 0, 0, 1, 2, 2])
    summary = tau_per_class(torch.tensor([0.1, 0.2, 0.3, 0.5, 0.2, 0.4]), labels)
    assert summary == {"class": [0, 1, 2], "count": [3, 1, 2], "mean_tau": pytest.approx([0.2, 0.5, 0.3])}


def _record(method: str, seed: int, history: list[dict], per_class: dict | None = None) -> dict:
    record = {
        "kind": "run",
        "status": "ok",
        "method": method,
        "seed": seed,
        "dataset": "toy",
        "history": history,
        "protocol": {"dataset": "toy"},
        "metrics": {},
        "method_info": {"name": method},
    }
    if per_class:
        record["tau_per_class"] = per_class
    return record


def test_report_figures_only_where_per_sample_records_exist():
    def quantiles(shift: float) -> dict:
        return {
            "sample_tau_min": 0.05 + shift,
            "sample_tau_p10": 0.08,
            "sample_tau_p50": 0.1,
            "sample_tau_p90": 0.2,
            "sample_tau_max": 0.4,
        }

    runs = [
        _record(
            "isogclr",
            0,
            [{"epoch": 1, "tau": 0.1, **quantiles(0.0)}, {"epoch": 2, "tau": 0.12, **quantiles(0.02)}],
            {"class": [0, 1], "count": [50, 5], "mean_tau": [0.2, 0.1]},
        ),
        _record(
            "isogclr",
            1,
            [{"epoch": 1, "tau": 0.1, **quantiles(0.02)}, {"epoch": 2, "tau": 0.12, **quantiles(0.04)}],
            {"class": [0, 1], "count": [50, 5], "mean_tau": [0.3, 0.2]},
        ),
        _record("constant", 0, [{"epoch": 1, "tau": 0.2}, {"epoch": 2, "tau": 0.2}]),
    ]
    data = sample_tau_data(runs)
    assert data["per_sample"]["isogclr"]["min"] == pytest.approx([0.06, 0.08])
    assert data["per_sample"]["isogclr"]["p50"] == pytest.approx([0.1, 0.1])
    assert data["others"] == {"constant": {"epoch": [1, 2], "tau": [0.2, 0.2]}}
    assert tau_by_class_data(runs) == {"methods": {"isogclr": {"count": [5, 50], "tau": pytest.approx([0.15, 0.25])}}}
    assert sample_tau_data(runs[2:]) == {} and tau_by_class_data(runs[2:]) == {}
