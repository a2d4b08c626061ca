"""gh / sdclr_gh / bcl_gh against the official Geometric Harmonization code: the simplex ETF, Sinkhorn and
the GH loss (transcribed below for testing), the warm-up schedule scaled from the official run, the
surrogate prior, and the loss of a step before and after the warm-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from bench.backbones import create_backbone
from methods import create_method, get_method_class
from methods.bcl import BoostedContrastiveLearning
from methods.gh import GeometricHarmonization, gh_loss, simplex_etf, sinkhorn
from methods.temperature import TrainingProgress

N_SAMPLES = 16


# --- TRANSCRIPTION FOR TESTING ONLY of MediaBrain-SJTU/Geometric-Harmonization: utils.py (sinkhorn,
# GHLoss.loss) with .cuda() dropped, target/gen_target.py (simplex_equiangular_tight_frame) with its
# random matrix passed in, and train_cifar.py's GH weight w. -------------------------------------------
@torch.no_grad()
def official_sinkhorn(out, l, sinkhorn_iterations, stat=None):  # noqa: E741 (the official names)
    Q = torch.exp(out / l).t()
    N = Q.shape[1]
    K = Q.shape[0]
    r = torch.ones((K, 1)) / K
    c = torch.ones((N, 1)) / N
    if stat is None:
        inv_K = 1.0 / K
    else:
        inv_K = stat.clone().detach().reshape(K, 1).float()
        inv_K = inv_K / torch.sum(inv_K)
    inv_N = 1.0 / N
    for _ in range(sinkhorn_iterations):
        r = inv_K / (Q @ c)
        c = inv_N / (Q.T @ r)
    Q = r * Q * c.t()
    Q = Q.t()
    Q *= N
    return Q


def official_gh_loss(x, y, stat, l=0.05, sinkhorn_iterations=300):  # noqa: E741
    gamma = 0.1
    q_x = official_sinkhorn(x, l, sinkhorn_iterations, stat)
    q_y = official_sinkhorn(y, l, sinkhorn_iterations, stat)
    return -torch.mean(torch.sum(q_x * F.log_softmax(y / gamma, dim=1), dim=1)) - torch.mean(
        torch.sum(q_y * F.log_softmax(x / gamma, dim=1), dim=1)
    )


def official_etf(A, k):
    U, _ = linalg.polar(A)
    return np.sqrt(k / (k - 1)) * (np.eye(k) - np.ones(k) / k) @ U


def official_w(epoch, warm_up, gh_warm_up):
    if epoch + 1 <= warm_up:
        return 0.0  # plain objective (the GH branch is not taken)
    return 1 * (epoch + 1 - warm_up) / gh_warm_up if epoch + 1 <= warm_up + gh_warm_up else 1


# --- end of transcription ---------------------------------------------------------------------------


def _logits(seed: int, n: int = 12, k: int = 10) -> torch.Tensor:
    return F.normalize(torch.randn(n, k, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_simplex_etf_equals_the_official_construction():
    frame = simplex_etf(100, 128, torch.Generator().manual_seed(0))
    a = torch.randn(100, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    np.testing.assert_allclose(frame.numpy(), official_etf(a, 100), atol=1e-6)
    gram = frame.double() @ frame.double().T
    np.testing.assert_allclose(torch.diagonal(gram).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(gram[~torch.eye(100, dtype=torch.bool)].numpy(), -1 / 99, atol=1e-6)


@pytest.mark.parametrize("prior", [None, torch.tensor([0.3, 0.2, 0.0, 0.1, 0.1, 0.05, 0.05, 0.1, 0.05, 0.05])])
def test_sinkhorn_and_gh_loss_equal_the_official_code(prior):
    t1, t2 = _logits(1), _logits(2)
    torch.testing.assert_close(sinkhorn(t1, 0.05, 300, prior), official_sinkhorn(t1, 0.05, 300, prior))
    ours_1, ours_2 = t1.clone().requires_grad_(True), t2.clone().requires_grad_(True)
    theirs_1, theirs_2 = t1.clone().requires_grad_(True), t2.clone().requires_grad_(True)
    ours, theirs = gh_loss(ours_1, ours_2, prior), official_gh_loss(theirs_1, theirs_2, prior)
    ours.backward()
    theirs.backward()
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    torch.testing.assert_close(ours_1.grad, theirs_1.grad)
    torch.testing.assert_close(ours_2.grad, theirs_2.grad)
    if prior is not None:  # the assignment's class marginal is the prior (rows sum to 1, N rows)
        torch.testing.assert_close(sinkhorn(t1, 0.05, 300, prior).mean(dim=0), prior, atol=1e-4, rtol=0)


def test_schedule_scales_the_official_epochs_and_the_weight_follows_train_cifar():
    assert GeometricHarmonization.scaled_schedule(1000) == (500, 10, 20)  # the official CIFAR run
    assert GeometricHarmonization.scaled_schedule(200) == (100, 2, 4)
    assert GeometricHarmonization.scaled_schedule(40) == (20, 1, 1)
    assert GeometricHarmonization.scaled_schedule(500, large_images=True) == (400, 30, 20)  # ImageNet-LT's
    assert GeometricHarmonization.scaled_schedule(800, large_images=True) == (640, 48, 32)
    method = _method("gh")
    for total in (1000, 200, 40):
        warm_up, ramp, _ = GeometricHarmonization.scaled_schedule(total)
        for epoch in range(total):
            progress = TrainingProgress(epoch, 0, 1, total, 1)
            assert method.gh_weight(progress) == pytest.approx(official_w(epoch, warm_up, ramp))
            assert method.gh_beta(progress) == (0.999 if epoch >= warm_up else 0.9)


def _method(name: str):
    torch.manual_seed(0)
    backbone, width = create_backbone("small_cnn")
    return create_method(name, backbone=backbone, feature_dim=width, temperature_overrides={}, num_train_samples=N_SAMPLES)


def test_prior_is_refreshed_from_the_momentum_logits_at_the_official_epochs():
    method = _method("gh")
    total = 200  # warm-up 100, refresh every 4 epochs
    method.gh_momentum[:, :] = 0
    method.gh_momentum[torch.arange(N_SAMPLES), torch.tensor([0] * 10 + [1] * 4 + [2] * 2)] = 1.0
    method.gh_seen[:] = True
    method.on_epoch_start(TrainingProgress(99, 0, 1, total, 1))  # still in the warm-up: stays uniform
    torch.testing.assert_close(method.gh_prior, torch.full((100,), 0.01))
    method.on_epoch_start(TrainingProgress(100, 0, 1, total, 1))  # the warm-up's last epoch ended
    expected = torch.zeros(100)
    expected[:3] = torch.tensor([10, 4, 2]) / 16
    torch.testing.assert_close(method.gh_prior, expected)
    method.gh_momentum[:, :] = 0
    method.gh_momentum[:, 5] = 1.0
    method.on_epoch_start(TrainingProgress(101, 0, 1, total, 1))  # not a refresh epoch
    torch.testing.assert_close(method.gh_prior, expected)
    method.on_epoch_start(TrainingProgress(104, 0, 1, total, 1))  # (epoch + 1) % 4 == 0 ended
    assert float(method.gh_prior[5]) == 1.0
    assert method.epoch_log()["gh_prior_used"] == 1.0


@pytest.mark.parametrize("name, plain", [("gh", "constant"), ("sdclr_gh", "sdclr"), ("bcl_gh", "bcl")])
def test_step_is_the_objective_in_the_warm_up_and_adds_gh_after(name, plain):
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    indices = torch.arange(8)
    warm = TrainingProgress(0, 0, 1, 4, 1)  # warm-up = 2 of 4 epochs
    after = TrainingProgress(2, 2, 1, 4, 1)  # w = 1
    ours, reference = _method(name), _method(plain)
    torch.testing.assert_close(
        ours.training_step(images, images.flip(3), indices, warm), reference.training_step(images, images.flip(3), indices, warm)
    )
    torch.testing.assert_close(ours.gh_momentum[:8].norm(dim=1), torch.ones(8))  # epoch 0 stores the logits
    ours, reference = _method(name), _method(plain)
    loss = ours.training_step(images, images.flip(3), indices, after)
    cl = reference.training_step(images, images.flip(3), indices, after)
    assert ours._gh_term is not None and float(ours._gh_term) > 0
    torch.testing.assert_close(loss, cl + ours._gh_term)


def test_compositions():
    assert get_method_class("sdclr_gh+cosine_tau").temperature.describe().startswith("cosine tau")
    assert get_method_class("bcl_gh").beta == BoostedContrastiveLearning.beta == 0.97  # BCL's momentum loss keeps its beta
    method = _method("bcl_gh")
    assert {"gh_frame", "gh_momentum", "gh_seen", "gh_prior", "momentum_loss"} <= set(method.state_dict())
