"""dcl: the suite's composition path (objective + temperature strategy) against lightly's DCLLoss called
directly -- equal values and gradients, for a constant, a scheduled and a learnable tau -- and the
refusal of per-pair strategies."""

from __future__ import annotations

import pytest
import torch
from lightly.loss import DCLLoss

from bench.backbones import create_backbone
from bench.errors import UserError
from methods import create_method, get_method_class
from methods.temperature import TrainingProgress

PROGRESS = TrainingProgress(epoch=3, step=30, steps_per_epoch=10, total_epochs=20, temperature_period=8)


def _method(name: str):
    torch.manual_seed(0)
    backbone, width = create_backbone("small_cnn")
    return create_method(name, backbone=backbone, feature_dim=width, temperature_overrides={}, num_train_samples=32)


def _views(requires_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(6, 16, generator=generator).requires_grad_(requires_grad) for _ in range(2))


# cosine_tau at epoch 3 of period 8: 0.1 + 0.45 (1 + cos(3 pi / 4)) = 0.232.
@pytest.mark.parametrize("name, tau", [("dcl", 0.2), ("dcl+constant", 0.2), ("dcl+cosine_tau", None)])
def test_equals_lightly_dcl_loss_with_the_strategys_tau(name, tau):
    method = _method(name)
    expected_tau = tau if tau is not None else method.temperature_strategy(PROGRESS)
    assert expected_tau == pytest.approx(0.2 if tau else 0.1 + 0.45 * (1 - 2**-0.5))
    assert expected_tau != 0.1  # not lightly's default: the strategy's tau must have reached the loss
    ours_z = _views()
    theirs_z = tuple(z.detach().clone().requires_grad_(True) for z in ours_z)
    ours = method.decoupled_loss(*ours_z, PROGRESS)
    theirs = DCLLoss(temperature=expected_tau)(*theirs_z)
    ours.backward()
    theirs.backward()
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    for a, b in zip(ours_z, theirs_z):
        torch.testing.assert_close(a.grad, b.grad)
    assert method.epoch_log()["tau"] == pytest.approx(expected_tau)


def test_learnable_tau_gets_lightlys_gradient():
    method = _method("dcl+learnable_tau")
    z0, z1 = _views(requires_grad=False)
    log_tau = torch.tensor(method.temperature_strategy.log_tau.item(), requires_grad=True)
    method.decoupled_loss(z0, z1, PROGRESS).backward()
    DCLLoss(temperature=log_tau.exp())(z0, z1).backward()
    torch.testing.assert_close(method.temperature_strategy.log_tau.grad, log_tau.grad)
    assert float(log_tau.grad) != 0.0


def test_decoupled_differs_from_nt_xent():
    """The positive leaves the denominator: dcl's loss is NT-Xent's minus -log(1 - p_positive) > 0."""
    z0, z1 = _views(requires_grad=False)
    dcl = _method("dcl").decoupled_loss(z0, z1, PROGRESS)
    nt_xent = _method("constant").contrastive_loss(z0, z1, PROGRESS).mean()
    assert float(dcl) < float(nt_xent)


def test_training_step_and_refusals():
    method = _method("dcl+cosine_tau")
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loss = method.training_step(images, images.flip(3), torch.arange(4), PROGRESS)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in method.backbone.parameters())
    with pytest.raises(UserError, match="'dcl\\+dystress' is not available: dystress gives one tau per pair"):
        get_method_class("dcl+dystress")
