"""SDCLR and MoCo: the papers' mechanisms on known inputs (pruning masks, dual BN, shared weights,
the queue, the momentum update) and MoCo's loss against lightly's NTXentLoss with a memory bank."""

import copy
import math

import pytest
import torch
from lightly.loss import NTXentLoss

from bench.backbones import create_backbone
from methods import create_method
from methods.losses import info_nce_per_query, queue_similarities
from methods.pruning import DualBatchNorm, global_magnitude_masks
from methods.temperature import TrainingProgress


def progress(epoch: int = 0) -> TrainingProgress:
    return TrainingProgress(epoch=epoch, step=0, steps_per_epoch=1, total_epochs=10, temperature_period=2)


def make(name: str, image_size: int = 16, num_train_samples: int = 1000):
    torch.manual_seed(0)
    backbone, dim = create_backbone("small_cnn")
    return create_method(name, backbone=backbone, feature_dim=dim, num_train_samples=num_train_samples, image_size=image_size)


def train_steps(method, steps: int, lr: float = 0.5, epoch: int = 0) -> None:
    optimizer = torch.optim.SGD(method.parameter_groups(0.0), lr=lr)
    for _ in range(steps):
        images = torch.randn(16, 3, 16, 16)
        loss = method.training_step(images, images.flip(-1), torch.arange(16), progress(epoch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.on_after_step(progress(epoch))


# --- SDCLR -----------------------------------------------------------------------------------
def test_global_magnitude_masks_prune_the_smallest_weights_over_all_tensors():
    a = torch.tensor([[0.1, -5.0], [0.3, 0.2]])
    b = torch.tensor([4.0, -0.05, 3.0, 0.4, -2.0, 0.01])
    keep_a, keep_b = global_magnitude_masks([a, b], prune_ratio=0.5)  # 10 weights: prune the 5 smallest
    assert keep_a.tolist() == [[False, True], [False, False]]  # 0.01 0.05 0.1 0.2 0.3 go
    assert keep_b.tolist() == [True, False, True, True, True, False]


@pytest.mark.parametrize("image_size, ratio", [(16, 0.9), (224, 0.3)])
def test_sdclr_prunes_the_stated_fraction_of_all_conv_weights(image_size, ratio):
    method = make("sdclr", image_size=image_size)
    method.on_epoch_start(progress())
    masks = method.keep_masks()
    convs = [m for m in method.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(masks) == len(convs) == 4  # every convolution, stem included
    total = sum(m.numel() for m in masks)
    pruned = total - sum(int(m.sum()) for m in masks)
    assert pruned == math.ceil(ratio * total)
    assert method.epoch_log()["pruned_fraction"] == pytest.approx(ratio, abs=1e-4)
    assert method.temperature_strategy.tau == (0.2 if image_size == 16 else 0.3)


def test_sdclr_mask_changes_between_epochs_as_the_weights_move():
    method = make("sdclr")
    method.on_epoch_start(progress(0))
    before = [m.clone() for m in method.keep_masks()]
    train_steps(method, 5)
    method.on_epoch_start(progress(1))
    changed = sum(int((b != m).sum()) for b, m in zip(before, method.keep_masks()))
    assert changed > 0


def test_sdclr_pruned_branch_uses_the_dense_weights_masked_and_its_own_batchnorm():
    method = make("sdclr")
    method.on_epoch_start(progress())
    images = torch.randn(8, 3, 16, 16)
    dense_bn = [m for m in method.modules() if isinstance(m, DualBatchNorm)]
    assert dense_bn and all(m.branch == "dense" for m in dense_bn)
    dense_stats = [m.dense.running_mean.clone() for m in dense_bn]

    z = method.pruned_forward(images)
    # Only the pruned branch's BatchNorm statistics moved; the routing is back to dense afterwards.
    assert all(torch.equal(s, m.dense.running_mean) for s, m in zip(dense_stats, dense_bn))
    assert any(not torch.equal(m.pruned.running_mean, torch.zeros_like(m.pruned.running_mean)) for m in dense_bn)
    assert all(m.branch == "dense" for m in dense_bn)

    # The gradient of the pruned branch lands on the shared (dense) weights, zero where pruned.
    z.sum().backward()
    first_conv = method.backbone.features[0].weight
    mask = method.keep_masks()[0]
    assert first_conv.grad is not None
    assert torch.all(first_conv.grad[~mask] == 0) and first_conv.grad[mask].abs().sum() > 0

    # Same output as copying the masked weights into a copy of the network, routed to pruned BN.
    reference = copy.deepcopy(method)
    with torch.no_grad():
        for name, keep in zip(reference.pruned_weights, reference.keep_masks()):
            reference.backbone.get_parameter(name).mul_(keep)
    for m in reference.modules():
        if isinstance(m, DualBatchNorm):
            m.branch = "pruned"
    method.eval(), reference.eval()
    with torch.no_grad():
        assert torch.allclose(method.pruned_forward(images), reference(images), atol=1e-5)


def test_sdclr_combines_with_a_temperature_strategy():
    method = make("sdclr+cosine_tau")
    method.on_epoch_start(progress(1))
    train_steps(method, 1, epoch=1)
    assert method.epoch_log()["tau"] == pytest.approx(0.1)  # T = 2: epoch 1 is the schedule's minimum


# --- MoCo ------------------------------------------------------------------------------------
def test_moco_loss_equals_lightlys_ntxent_with_a_memory_bank():
    torch.manual_seed(1)
    queries, keys = torch.randn(6, 8), torch.randn(6, 8)
    bank = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    ours = info_nce_per_query(queue_similarities(queries, keys, bank), 0.2).mean()
    theirs_module = NTXentLoss(temperature=0.2, memory_bank_size=(20, 8))
    theirs_module.memory_bank.bank.copy_(bank.T if theirs_module.memory_bank.bank.shape[0] == 8 else bank)
    theirs = theirs_module(queries.requires_grad_(), keys)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_moco_queue_is_first_in_first_out_and_wraps():
    method = make("moco", num_train_samples=20)  # queue capped at half the training set: 10 keys
    queue = method.queue
    assert queue.keys.shape == (10, 128)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(10))
    first, second = torch.full((6, 128), 1.0), torch.full((6, 128), 2.0)
    queue.push(first)
    queue.push(second)
    # 12 keys into 10 slots: slots 0-1 hold the newest two, 2-5 the rest of the second batch... in order.
    assert queue.keys[:, 0].tolist() == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert int(queue.pointer) == 2
    assert "queue.keys" in method.state_dict() and "queue.pointer" in method.state_dict()


def test_moco_step_uses_the_queue_before_its_own_keys_then_enqueues_them():
    method = make("moco", num_train_samples=64)
    before = method.queue.keys.clone()
    images = torch.randn(8, 3, 16, 16)
    state = torch.get_rng_state()
    loss = method.training_step(images, images.flip(-1), torch.arange(8), progress())
    torch.set_rng_state(state)  # replay the step's batch shuffle of the keys
    order = torch.randperm(8)
    with torch.no_grad():
        query = method(images)
        key = method.key_head(method.key_backbone(images.flip(-1)[order]))[torch.argsort(order)]
    expected = info_nce_per_query(queue_similarities(query, key, before), 0.2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(method.queue.keys[:8], torch.nn.functional.normalize(key, dim=1))
    assert torch.equal(method.queue.keys[8:], before[8:])


def test_moco_key_encoder_follows_the_query_encoder_by_momentum_099():
    method = make("moco")
    key_before = [p.clone() for p in method.key_backbone.parameters()]
    assert all(torch.equal(k, q) for k, q in zip(key_before, method.backbone.parameters()))
    train_steps(method, 1)
    for k_old, k_new, q in zip(key_before, method.key_backbone.parameters(), method.backbone.parameters()):
        assert torch.allclose(k_new, 0.99 * k_old + 0.01 * q, atol=1e-6)
        assert not k_new.requires_grad
    optimised = {id(p) for group in method.parameter_groups(1e-4) for p in group["params"]}
    assert not optimised & {id(p) for p in method.key_backbone.parameters()}


def test_moco_with_a_per_pair_temperature_uses_one_tau_per_query_key_pair():
    method = make("moco+dystress", num_train_samples=64)
    images = torch.randn(8, 3, 16, 16)
    method.on_epoch_start(progress())
    loss = method.training_step(images, images.flip(-1), torch.arange(8), progress())
    assert torch.isfinite(loss)
    log = method.epoch_log()
    assert 0.07 <= log["tau_p10"] <= log["tau"] <= log["tau_p90"] <= 0.2
