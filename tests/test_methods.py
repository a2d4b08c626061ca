"""Methods: the registry, the temperature strategies' formulas, and NT-Xent against lightly's."""

import math

import pytest
import torch
from lightly.loss import NTXentLoss

from bench.errors import UserError
from methods import METHODS, create_method, get_method_class, list_methods, register_method
from methods.base import ContrastiveMethod
from methods.losses import nt_xent, nt_xent_per_view, per_sample_loss
from methods.temperature import ConstantTemperature, CosineTemperature, TrainingProgress


def progress(epoch: int, period: int = 400) -> TrainingProgress:
    return TrainingProgress(epoch=epoch, step=0, steps_per_epoch=1, total_epochs=2000, temperature_period=period)


# --- the cosine schedule (Kukleva et al. 2023) -----------------------------------------------
@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 1.0), (100, 0.55), (200, 0.1), (300, 0.55), (400, 1.0), (600, 0.1), (2000, 1.0)],
)
def test_cosine_schedule_values_at_quarter_periods(epoch, expected):
    assert CosineTemperature(tau_min=0.1, tau_max=1.0)(progress(epoch, period=400)) == pytest.approx(expected)


def test_cosine_schedule_matches_the_papers_formula_everywhere():
    strategy = CosineTemperature(tau_min=0.1, tau_max=1.0, period=400)
    for epoch in range(0, 801, 7):
        formula = 0.1 + 0.5 * (1.0 - 0.1) * (1 + math.cos(2 * math.pi * epoch / 400))
        assert strategy(progress(epoch, period=10)) == pytest.approx(formula)  # its own T wins over the run's


def test_cosine_schedule_matches_the_official_half_period_form():
    # Official code: tau_min + 0.5 (tau_max - tau_min)(1 + cos(pi e / t_max)) with t_max = T / 2.
    strategy = CosineTemperature(0.1, 1.0)
    for epoch in range(1, 401):
        official = 0.1 + 0.5 * 0.9 * (1 + math.cos(math.pi * epoch / 200))
        assert strategy(progress(epoch)) == pytest.approx(official)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tau_min": 0.0}, "tau_min must be > 0"),
        ({"tau_max": -1}, "tau_max must be > 0"),
        ({"tau_min": 0.5, "tau_max": 0.2}, "must not exceed"),
        ({"period": 0}, "positive number of epochs"),
    ],
)
def test_cosine_schedule_refuses_bad_parameters(kwargs, message):
    with pytest.raises(UserError, match=message):
        CosineTemperature(**kwargs)


def test_constant_temperature_and_its_validation():
    assert ConstantTemperature(0.2)(progress(123)) == 0.2
    with pytest.raises(UserError, match="tau must be > 0"):
        ConstantTemperature(0.0)


# --- NT-Xent ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.07, 0.2, 0.5, 1.0])
def test_nt_xent_equals_lightly_for_a_scalar_tau(tau):
    torch.manual_seed(0)
    z0, z1 = torch.randn(32, 16), torch.randn(32, 16)
    assert nt_xent(z0, z1, tau).item() == pytest.approx(NTXentLoss(temperature=tau)(z0, z1).item(), rel=1e-5)


def test_nt_xent_gradients_equal_lightly():
    torch.manual_seed(1)
    a = torch.randn(8, 4, requires_grad=True)
    b = torch.randn(8, 4, requires_grad=True)
    nt_xent(a, b, 0.2).backward()
    ours = (a.grad.clone(), b.grad.clone())
    a.grad = b.grad = None
    NTXentLoss(temperature=0.2)(a, b).backward()
    assert torch.allclose(ours[0], a.grad, atol=1e-6) and torch.allclose(ours[1], b.grad, atol=1e-6)


def test_nt_xent_per_view_equals_a_direct_computation():
    torch.manual_seed(2)
    z0, z1 = torch.randn(3, 5), torch.randn(3, 5)
    z = torch.nn.functional.normalize(torch.cat([z0, z1]), dim=1)
    s = z @ z.T
    tau = 0.3
    expected = []
    for i in range(6):
        p = (i + 3) % 6
        denominator = sum(math.exp(s[i, k] / tau) for k in range(6) if k != i)
        expected.append(-math.log(math.exp(s[i, p] / tau) / denominator))
    per_view = nt_xent_per_view(z0, z1, tau)
    assert per_view.tolist() == pytest.approx(expected, rel=1e-5)
    assert per_sample_loss(per_view).tolist() == pytest.approx([(expected[i] + expected[i + 3]) / 2 for i in range(3)], rel=1e-5)


def test_a_pairwise_tensor_of_equal_temperatures_equals_the_scalar():
    torch.manual_seed(3)
    z0, z1 = torch.randn(6, 8), torch.randn(6, 8)
    assert nt_xent(z0, z1, torch.full((12, 12), 0.25)).item() == pytest.approx(nt_xent(z0, z1, 0.25).item(), rel=1e-6)


# --- the registry ------------------------------------------------------------------------------
def test_registry_lists_the_built_in_methods():
    assert {"constant", "cosine_tau"} <= set(list_methods())


def test_register_create_and_list_a_new_method():
    @register_method("test_only_tau")
    class TestOnlyTau(ContrastiveMethod):
        description = "a test method"
        temperature = ConstantTemperature(0.33)

    try:
        assert "test_only_tau" in list_methods()
        method = create_method("test_only_tau", backbone=torch.nn.Flatten(), feature_dim=12)
        assert isinstance(method, TestOnlyTau)
        assert method.temperature_strategy(progress(0)) == 0.33
        assert method.info()["name"] == "test_only_tau"
    finally:
        METHODS._entries.pop("test_only_tau")


def test_unknown_method_names_the_known_ones_and_the_closest():
    with pytest.raises(UserError) as error:
        get_method_class("cosine_ta")
    message = str(error.value)
    assert "\n" not in message
    assert "Did you mean 'cosine_tau'?" in message
    assert "constant" in message and "cosine_tau" in message


def test_composed_name_takes_the_objective_and_the_strategy():
    composed = get_method_class("constant+cosine_tau")
    assert issubclass(composed, get_method_class("constant"))
    assert isinstance(composed.temperature, CosineTemperature)
    assert composed.registered_name == "constant+cosine_tau"


def test_each_instance_owns_its_temperature_strategy():
    first = create_method("cosine_tau", backbone=torch.nn.Flatten(), feature_dim=4)
    second = create_method("cosine_tau", backbone=torch.nn.Flatten(), feature_dim=4)
    assert first.temperature_strategy is not second.temperature_strategy


def test_training_step_logs_the_tau_it_used():
    torch.manual_seed(0)
    method = create_method("cosine_tau", backbone=torch.nn.Flatten(), feature_dim=12)
    method.on_epoch_start(progress(100, period=400))
    loss = method.training_step(torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), torch.arange(4), progress(100, period=400))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert method.epoch_log()["tau"] == pytest.approx(0.55)
