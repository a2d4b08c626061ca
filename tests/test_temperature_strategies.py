"""DySTreSS's per-pair temperature and the learnable temperature (formulas, loss, gradient, clamp); strategies
as registered objects: overrides from the constructor's signature, roles checked when composing, and the
README's "add a strategy" example run verbatim."""

import math
import re
from pathlib import Path

import pytest
import torch

from bench.errors import UserError
from methods import METHODS, STRATEGIES, create_method, get_method_class
from methods.losses import cosine_similarity_matrix, nt_xent_per_view
from methods.temperature import (
    ConstantTemperature,
    CosineTemperature,
    LearnableTemperature,
    PairwiseCosineTemperature,
    TemperatureStrategy,
    TrainingProgress,
)

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
    strategy = LearnableTemperature(tau=0.2, tau_min=0.01, tau_max=1.0)
    with torch.no_grad():
        strategy.log_tau.fill_(math.log(5.0))
    strategy.after_step()
    assert strategy(PROGRESS).item() == pytest.approx(1.0)
    with torch.no_grad():
        strategy.log_tau.fill_(math.log(1e-4))
    strategy.after_step()
    assert strategy(PROGRESS).item() == pytest.approx(0.01)
    with pytest.raises(UserError, match="inside its clamp"):
        LearnableTemperature(tau=2.0)


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


def test_a_strategys_overridable_parameters_are_its_constructors_arguments():
    assert ConstantTemperature.options() == ("tau",)
    assert CosineTemperature.options() == ("tau_min", "tau_max", "period")
    assert PairwiseCosineTemperature.options() == ("tau_min", "tau_max")
    assert LearnableTemperature.options() == ("tau", "tau_min", "tau_max")
    # Options a strategy lacks are ignored; the arguments not overridden keep their values (period too).
    cosine = CosineTemperature(tau_min=0.1, tau_max=1.0, period=7).with_overrides({"tau": 0.5, "tau_max": 2.0})
    assert (cosine.tau_min, cosine.tau_max, cosine.period) == (0.1, 2.0, 7)
    learnable = LearnableTemperature().with_overrides({"tau": 0.5})
    assert (learnable.tau, learnable.tau_min, learnable.tau_max) == (pytest.approx(0.5), 0.01, 1.0)
    with pytest.raises(UserError, match=r"must start inside its clamp: 0.6 <= 0.5 <= 1.0"):
        LearnableTemperature().with_overrides({"tau": 0.5, "tau_min": 0.6})

    class Forgetful(TemperatureStrategy):
        def __init__(self, tau: float = 0.3) -> None:
            super().__init__()
            self.value = tau

    with pytest.raises(TypeError, match=r"Forgetful must keep its constructor arguments .* \(self.tau = tau\)"):
        Forgetful().with_overrides({"tau": 0.4})


def test_an_objective_right_of_the_plus_is_refused_with_one_line():
    with pytest.raises(
        UserError,
        match="'moco' is an objective, not a temperature strategy; .* one of: constant, "
        "cosine_tau, dystress, isogclr, learnable_tau",
    ):
        get_method_class("sdclr+moco")
    with pytest.raises(UserError, match="unknown temperature strategy 'cosine'"):
        get_method_class("sdclr+cosine")
    assert get_method_class("sdclr+constant").temperature is STRATEGIES.get("constant").temperature
    dystress = get_method_class("moco+dystress")
    assert dystress.large_image_temperature is STRATEGIES.get("dystress").large_image_temperature is not None


def test_the_readmes_add_a_strategy_example_works_verbatim(capsys):
    from bench.cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", readme.split("## Adding a method")[1], flags=re.S)
    assert '@register_method("step_tau")' in example
    try:
        exec(compile(example, "methods/step_tau.py", "exec"), {"__name__": "methods.step_tau"})
        assert main(["list"]) == 0
        listed = capsys.readouterr().out
        assert "step_tau" in listed and "tau 0.5 for the first half of training, then 0.1" in listed
        assert "temperature strategies: constant, cosine_tau, dystress, isogclr, learnable_tau, step_tau" in listed
        method = create_method("sdclr+step_tau", backbone=torch.nn.Flatten(), feature_dim=12)
        early, late = (TrainingProgress(epoch, 10 * epoch, 10, total_epochs=4, temperature_period=1) for epoch in (1, 2))
        assert method.temperature_strategy(early) == 0.5 and method.temperature_strategy(late) == 0.1
        assert method.temperature_strategy.options() == ("high", "low")  # no --tau option applies to it
        loss = method.training_step(torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), torch.arange(4), PROGRESS)
        assert torch.isfinite(loss)
    finally:
        METHODS._entries.pop("step_tau", None)
        STRATEGIES._entries.pop("step_tau", None)
