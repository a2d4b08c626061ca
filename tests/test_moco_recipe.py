"""MoCo as lightly's CIFAR-10 MoCo benchmark runs it on one GPU (shuffle BN simulated over 8 groups,
SGD lr 0.06 x batch / 128, wd 5e-4: lightly-ai/lightly docs/source/getting_started/benchmarks/
cifar10_benchmark.py), the method recipe mechanism that carries those values into the record, and
BCL's (wd 5e-4, MediaBrain-SJTU/BCL README) and SDCLR's heads (VITA-Group/SDCLR
models/resnet_prune_multibn.py)."""

import pytest
import torch
from torch import nn

from bench.backbones import create_backbone
from bench.cli import main
from bench.runner import load_data, plan, run_one
from methods import create_method, get_method_class
from methods.moco import SplitBatchNorm2d, convert_to_split_batchnorm, split_groups
from methods.temperature import TrainingProgress


def progress() -> TrainingProgress:
    return TrainingProgress(epoch=0, step=0, steps_per_epoch=1, total_epochs=10, temperature_period=2)


def make(name: str):
    torch.manual_seed(0)
    backbone, dim = create_backbone("small_cnn")
    return create_method(name, backbone=backbone, feature_dim=dim, num_train_samples=64, image_size=16)


# --- split BatchNorm ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch, groups", [(512, 8), (128, 8), (16, 8), (24, 8), (12, 6), (8, 4), (10, 5), (7, 1), (2, 1)])
def test_split_groups_are_8_when_the_batch_allows_else_the_largest_divisor_with_two_images(batch, groups):
    assert split_groups(batch, 8) == groups


def test_split_batchnorm_normalises_each_of_8_groups_with_its_own_statistics():
    torch.manual_seed(0)
    x = torch.randn(32, 4, 3, 3) * 3 + 1
    split = SplitBatchNorm2d(4, num_splits=8).train()
    out = split(x)
    plain = nn.BatchNorm2d(4).train()
    for j in range(8):  # group j: images j, j + 8, j + 16, j + 24
        assert torch.allclose(out[j::8], plain(x[j::8]), atol=1e-5)
    # Running statistics: the mean over groups of one momentum update per group (lightly's average).
    means = torch.stack([x[j::8].mean((0, 2, 3)) for j in range(8)])
    assert torch.allclose(split.running_mean, 0.1 * means.mean(0), atol=1e-6)
    assert split.running_mean.shape == (4,)  # a BatchNorm2d's state_dict
    split.eval()
    assert torch.allclose(
        split(x),
        nn.functional.batch_norm(x, split.running_mean, split.running_var, split.weight, split.bias, False, 0.0, split.eps),
        atol=1e-6,
    )


def test_split_batchnorm_runs_on_batches_not_divisible_by_8():
    split = SplitBatchNorm2d(3, num_splits=8).train()
    for batch in (7, 12, 2):
        out = split(torch.randn(batch, 3, 2, 2))
        assert out.shape == (batch, 3, 2, 2) and torch.isfinite(out).all()
    assert split.last_groups == 1  # batch 2: one group of 2 = plain BatchNorm


def test_split_batchnorm_gradients_reach_the_shared_affine_parameters():
    split = SplitBatchNorm2d(3, num_splits=8).train()
    split(torch.randn(16, 3, 2, 2)).pow(2).sum().backward()
    assert split.weight.grad is not None and split.weight.grad.shape == (3,)


def test_conversion_keeps_parameters_and_only_touches_batchnorm2d():
    backbone, _ = create_backbone("small_cnn")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    convert_to_split_batchnorm(backbone, 8)
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(isinstance(m, SplitBatchNorm2d) and m.num_splits == 8 for m in norms)
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())


# --- MoCo --------------------------------------------------------------------------------------
def test_moco_encoders_use_8_split_batchnorm_groups_and_its_head_has_no_batchnorm():
    method = make("moco")
    for encoder in (method.backbone, method.key_backbone):
        norms = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(isinstance(m, SplitBatchNorm2d) and m.num_splits == 8 for m in norms)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in method.projection_head.modules())
    images = torch.randn(16, 3, 16, 16)
    method.training_step(images, images.flip(-1), torch.arange(16), progress())
    assert method.epoch_log()["split_bn_groups"] == 8


def test_moco_shuffles_the_key_batch_and_restores_its_order():
    method = make("moco")
    images = torch.randn(16, 3, 16, 16)
    torch.manual_seed(5)
    method.training_step(images, images.flip(-1), torch.arange(16), progress())
    keys_shuffled = method.queue.keys[:16].clone()
    # Without the shuffle the keys differ (other BN groups) but each still belongs to its own image:
    # with an identity order the step reproduces the unshuffled key encoder.
    with torch.no_grad():
        unshuffled = nn.functional.normalize(method.key_head(method.key_backbone(images.flip(-1))), dim=1)
    assert not torch.allclose(keys_shuffled, unshuffled, atol=1e-4)
    assert (keys_shuffled * unshuffled).sum(1).min() > 0.5  # the same images, normalised among others


def test_moco_tau_divides_the_positive_and_the_negatives():
    # TS's authors (Annusha/temperature_schedules issue #4): tau in numerator and denominator.
    method = make("moco")
    similarities = torch.tensor([[0.9, 0.1, -0.3]])
    loss = method.tempered_cross_entropy(similarities, torch.zeros(1, dtype=torch.long), None, progress())
    expected = -torch.log(torch.exp(torch.tensor(0.9 / 0.2)) / torch.exp(similarities / 0.2).sum())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


# --- method recipes in the run config and the record ------------------------------------------
def test_moco_recipe_is_lightlys_lr_0_06_per_128_and_wd_5e_4():
    moco = get_method_class("moco")
    assert moco.recipe_for(128) == {"lr": pytest.approx(6e-2), "weight_decay": 5e-4}
    assert moco.recipe_for(512)["lr"] == pytest.approx(6e-2 * 512 / 128)
    assert get_method_class("moco+cosine_tau").recipe_for(256)["lr"] == pytest.approx(0.12)


def test_bcl_recipe_is_weight_decay_5e_4_from_its_readme():
    assert get_method_class("bcl").recipe_for(512) == {"weight_decay": 5e-4}
    assert get_method_class("constant").recipe_for(512) == {}


def test_recipes_replace_the_preset_unless_the_command_line_sets_the_value(tmp_path):
    # digits_lt tiny: batch 64, the preset's SimCLR lr 0.5 and wd 1e-4.
    moco, bcl, constant = plan(["moco", "bcl", "constant"], "digits_lt", [0], "tiny", {}, "cpu", tmp_path).configs
    assert (moco.lr, moco.weight_decay) == (pytest.approx(0.06 * 64 / 128), 5e-4)
    assert moco.method_recipe == {"lr": pytest.approx(0.03), "weight_decay": 5e-4}
    assert (bcl.lr, bcl.weight_decay, bcl.method_recipe) == (0.5, 5e-4, {"weight_decay": 5e-4})
    assert (constant.lr, constant.weight_decay, constant.method_recipe) == (0.5, 1e-4, {})
    overridden = plan(["moco"], "digits_lt", [0], "tiny", {"lr": 0.2}, "cpu", tmp_path).configs[0]
    assert (overridden.lr, overridden.weight_decay, overridden.method_recipe) == (0.2, 5e-4, {"weight_decay": 5e-4})
    both = plan(["moco"], "digits_lt", [0], "tiny", {"lr": 0.2, "weight_decay": 0.0}, "cpu", tmp_path).configs[0]
    assert (both.lr, both.weight_decay, both.method_recipe) == (0.2, 0.0, {})
    batch = plan(["moco"], "digits_lt", [0], "tiny", {"batch_size": 32}, "cpu", tmp_path).configs[0]
    assert batch.lr == pytest.approx(0.06 * 32 / 128)  # scaled with the batch the run uses


def test_a_method_without_a_recipe_keeps_its_run_id(tmp_path):
    config = plan(["constant"], "digits_lt", [0], "quick", {}, "cpu", tmp_path).configs[0]
    legacy = {k: v for k, v in config.to_dict().items() if k != "method_recipe"}
    from bench.config import run_id_of

    assert config.run_id() == run_id_of(legacy)


def test_the_record_shows_the_recipe_and_its_version(tmp_path):
    run_plan = plan(["bcl"], "digits_lt", [0], "tiny", {"epochs": 1}, "cpu", tmp_path / "results")
    record = run_one(run_plan.configs[0], load_data(run_plan), torch.device("cpu"), show_progress=False)
    assert record["config"]["weight_decay"] == 5e-4
    assert record["config"]["method_recipe"] == {"weight_decay": 5e-4}
    assert record["method_info"]["recipe_version"] == 2
    assert "method recipe" in record["method_info"]["recipe"] and "BCL" in record["method_info"]["recipe"]


def test_a_negative_weight_decay_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["run", "--methods", "moco", "--weight-decay", "-1", "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--weight-decay must be >= 0" in err[0]
    assert not (tmp_path / "r").exists()


# --- SDCLR's heads -----------------------------------------------------------------------------
def _layer_list(head: nn.Module) -> list[str]:
    out = []
    for m in head:
        inner = getattr(m, "dense", m)  # dual BN: the dense branch's copy
        if isinstance(inner, nn.Linear):
            out.append(f"fc({inner.in_features},{inner.out_features},{'bias' if inner.bias is not None else 'nobias'})")
        elif isinstance(inner, nn.BatchNorm1d):
            out.append(f"bn{'-dual' if inner is not m else ''}")
        elif isinstance(inner, nn.ReLU):
            out.append("relu")
    return out


def test_sdclr_head_is_sdclrs_three_layer_dual_bn_head():
    # resnet_prune_multibn.py proj_head(ch, 128), twoLayerProj=False: fc1-bn1-relu-fc2-bn2-relu-fc3-bn3.
    assert _layer_list(make("sdclr").projection_head) == [
        "fc(128,128,bias)",
        "bn-dual",
        "relu",
        "fc(128,128,nobias)",
        "bn-dual",
        "relu",
        "fc(128,128,nobias)",
        "bn-dual",
    ]


def test_sdclr_2layer_is_the_two_layer_head_of_bcls_reimplementation():
    # twoLayerProj=True (MediaBrain-SJTU/BCL models/sdclr.py): fc1-bn1-relu-fc2-bn2.
    method = make("sdclr_2layer")
    assert _layer_list(method.projection_head) == ["fc(128,128,bias)", "bn-dual", "relu", "fc(128,128,nobias)", "bn-dual"]
    images = torch.randn(8, 3, 16, 16)
    method.on_epoch_start(progress())
    assert torch.isfinite(method.training_step(images, images.flip(-1), torch.arange(8), progress()))
