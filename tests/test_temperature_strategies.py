"""DySTreSS's per-pair temperature and the learnable temperature: formulas, loss, gradient, clamp."""

import math

import pytest
import torch

from bench.errors import UserError
from methods import create_method, get_method_class
from methods.losses import cosine_similarity_matrix, nt_xent_per_view
from methods.temperature import LearnableTemperature, PairwiseCosineTemperature, TrainingProgress

PROGRESS = TrainingProgress(epoch=0, step=0, steps_per_epoch=1, total_epochs=1, temperature_period=1)


@pytest.mark.parametrize(
    "s, expected", [(-1.0, 0.2), (0.0, 0.07), (1.0, 0.2), (0.5, 0.07 + 0.5 * 0.13 * (1 + math.cos(1.5 * math.pi)))]
)
def test_dystress_tau_at_known_similarities(s, expected):
    tau = PairwiseCosineTemperature(tau_min=0.07, tau_max=0.2)(PROGRESS, torch.tensor([[s]]))
    assert tau.item() == pytest.approx(expected)


def test_dystress_tau_carries_no_gradient():
    s = torch.rand(4, 4, requires_grad=True)
    assert not PairwiseCosineTemperature()(PROGRESS, s).requires_grad


def test_dystress_loss_equals_a_direct_computation():
    torch.manual_seed(0)
    z0, z1 = torch.randn(3, 5), torch.randn(3, 5)
    method = create_method("dystress", backbone=torch.nn.Identity(), feature_dim=5)
    per_view = method.contrastive_loss(z0, z1, PROGRESS)
    s = cosine_similarity_matrix(z0, z1)
    expected = []
    for i in range(6):
        tau = [0.07 + 0.5 * 0.13 * (1 + math.cos(math.pi * (1 + s[i, k].item()))) for k in range(6)]
        denominator = sum(math.exp(s[i, k].item() / tau[k]) for k in range(6) if k != i)
        p = (i + 3) % 6
        expected.append(-math.log(math.exp(s[i, p].item() / tau[p]) / denominator))
    assert per_view.tolist() == pytest.approx(expected, rel=1e-5)
    log = method.epoch_log()
    assert 0.07 <= log["tau_p10"] <= log["tau"] <= log["tau_p90"] <= 0.2


def test_dystress_bounds_are_validated():
    with pytest.raises(UserError, match="tau_min"):
        PairwiseCosineTemperature(tau_min=0.3, tau_max=0.2)


def test_learnable_tau_moves_under_gradient_and_has_no_weight_decay():
    torch.manual_seed(0)
    method = create_method("learnable_tau", backbone=torch.nn.Flatten(), feature_dim=12)
    groups = method.parameter_groups(weight_decay=5e-4)
    assert groups[-1]["weight_decay"] == 0.0 and groups[-1]["params"] == [method.temperature_strategy.log_tau]
    assert all(p is not method.temperature_strategy.log_tau for p in groups[0]["params"])
    optimizer = torch.optim.SGD(groups, lr=0.5)
    before = method.temperature_strategy.log_tau.item()
    loss = method.training_step(torch.randn(8, 3, 2, 2), torch.randn(8, 3, 2, 2), torch.arange(8), PROGRESS)
    loss.backward()
    assert method.temperature_strategy.log_tau.grad.abs().item() > 0
    optimizer.step()
    assert method.temperature_strategy.log_tau.item() != before
    assert method.epoch_log()["tau"] == pytest.approx(0.2)


def test_learnable_tau_is_clamped_after_every_step():
    strategy = LearnableTemperature(init=0.2, low=0.01, high=1.0)
    with torch.no_grad():
        strategy.log_tau.fill_(math.log(5.0))
    strategy.after_step()
    assert strategy(PROGRESS).item() == pytest.approx(1.0)
    with torch.no_grad():
        strategy.log_tau.fill_(math.log(1e-4))
    strategy.after_step()
    assert strategy(PROGRESS).item() == pytest.approx(0.01)
    with pytest.raises(UserError, match="inside its clamp"):
        LearnableTemperature(init=2.0)


def test_strategies_combine_with_the_simclr_objective_by_name():
    composed = get_method_class("constant+dystress")
    assert composed.temperature.per_pair
    method = create_method("constant+learnable_tau", backbone=torch.nn.Flatten(), feature_dim=12)
    assert len(method.parameter_groups(1e-4)) == 2


def test_a_strategy_left_of_the_plus_is_refused_with_one_line(tmp_path, capsys):
    from bench.cli import main

    with pytest.raises(UserError, match="'cosine_tau' is a temperature strategy, not an objective"):
        get_method_class("cosine_tau+learnable_tau")
    assert main(["run", "--methods", "cosine_tau+learnable_tau", "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use <objective>+<temperature strategy>, e.g. constant+learnable_tau" in err
    assert not (tmp_path / "results").exists()


def test_a_per_pair_tau_equal_everywhere_is_the_scalar_loss():
    torch.manual_seed(1)
    z0, z1 = torch.randn(4, 6), torch.randn(4, 6)
    assert nt_xent_per_view(z0, z1, torch.full((8, 8), 0.2)).tolist() == pytest.approx(nt_xent_per_view(z0, z1, 0.2).tolist())
