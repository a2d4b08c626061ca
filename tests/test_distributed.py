"""torchrun-style data parallelism: two gloo processes on CPU give the single-process loss and
gradients of the global batch; each rank gets its slice of a shared permutation.

PyTorch's SyncBatchNorm has no CPU kernel, so the equivalence test runs BatchNorm in eval mode
(running statistics: per-sample arithmetic, the same on every rank). With batch statistics each rank
would normalise with its own shard's -- which is what SyncBatchNorm fixes on CUDA.
"""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench import distributed
from bench.backbones import create_backbone
from bench.config import AugmentationSpec
from bench.data import DeviceBatches
from methods import get_method_class
from methods.temperature import TrainingProgress

GLOBAL_BATCH = 8
PROGRESS = TrainingProgress(epoch=0, step=0, steps_per_epoch=1, total_epochs=1, temperature_period=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _views() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_BATCH, 3, 16, 16, generator=generator), torch.randn(GLOBAL_BATCH, 3, 16, 16, generator=generator)


def _loss_and_gradients(method_name: str, view0: torch.Tensor, view1: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    torch.manual_seed(0)  # the same initial weights in every process
    backbone, width = create_backbone("small_cnn")
    method = get_method_class(method_name)(backbone=backbone, feature_dim=width)
    method.train()
    for module in method.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    loss = method.training_step(view0, view1, torch.arange(len(view0)), PROGRESS)
    loss.backward()
    distributed.average_gradients(method)
    return float(loss), [p.grad.clone() for p in method.parameters() if p.grad is not None]


METHODS = ("constant", "dystress")  # a scalar tau and a per-pair tau over the gathered similarities


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    try:
        view0, view1 = _views()
        local = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
        for name in METHODS:
            loss, grads = _loss_and_gradients(name, view0[local], view1[local])
            torch.save({"loss": loss, "grads": grads}, os.path.join(out_dir, f"{name}-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for method_name, rank in [(m, r) for m in METHODS for r in range(2)]:
        expected_loss, expected_grads = _loss_and_gradients(method_name, *_views())
        got = torch.load(tmp_path / f"{method_name}-rank{rank}.pt")
        assert got["loss"] == pytest.approx(expected_loss, rel=1e-5)
        assert len(got["grads"]) == len(expected_grads)
        for grad, want in zip(got["grads"], expected_grads):
            torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-6)


def test_ranks_take_disjoint_slices_of_one_shared_permutation():
    images = np.random.default_rng(0).integers(0, 255, size=(40, 8, 8, 3), dtype=np.uint8)
    spec = AugmentationSpec(input_size=8)
    shards = [
        DeviceBatches(images, spec, 8, torch.device("cpu"), torch.Generator().manual_seed(3), shard=(r, 2)) for r in range(2)
    ]
    epochs = [list(s.epoch()) for s in shards]
    assert all(len(e) == 5 for e in epochs)  # steps per epoch count global batches
    assert torch.equal(shards[0].order, shards[1].order)
    for step in range(5):
        first, second = epochs[0][step][2], epochs[1][step][2]
        torch.testing.assert_close(torch.cat([first, second]), shards[0].order[step * 8 : (step + 1) * 8])
        assert epochs[0][step][0].shape[0] == 4
        # Each rank augments with its own generator.
        assert not torch.equal(epochs[0][step][0], epochs[1][step][0])


def test_one_process_is_untouched():
    x = torch.randn(3, 2)
    assert distributed.gather(x) is x and distributed.world_size() == 1 and distributed.is_main()
