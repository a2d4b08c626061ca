"""Data-parallel training under ``torchrun``: process group, shards, gathered negatives, gradients.

``torchrun --nproc_per_node N -m bench run ...`` starts N processes with ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` set. With ``WORLD_SIZE`` > 1 the suite:

- initialises ``torch.distributed`` from the environment (NCCL on CUDA, gloo on CPU), one GPU per
  process (``cuda:LOCAL_RANK``);
- keeps ``--batch-size`` the *global* batch: every rank draws the same seeded permutation and takes
  its contiguous slice of each global batch, with its own augmentation generator
  (:class:`bench.data.DeviceBatches`);
- gathers the projections of all ranks (with gradient) before the NT-Xent, so every rank computes the
  loss of the whole global batch -- the single-process loss -- and the negatives span all ranks;
- averages gradients over ranks after the backward pass (:func:`average_gradients`), which with the
  gather's summed backward gives exactly the single-process gradient of the global batch;
- converts BatchNorm to SyncBatchNorm on CUDA (PyTorch's SyncBatchNorm has no CPU kernel, so on CPU
  each rank normalises with its own shard's statistics: CPU multi-process runs are for testing);
- lets only rank 0 write records, checkpoints and the leaderboard.

With one process every function here is the identity or a no-op.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from bench.errors import UserError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return rank() == 0


def is_distributed() -> bool:
    return world_size() > 1


def init_from_env(device: str = "auto") -> None:
    """Join the process group torchrun describes when ``WORLD_SIZE`` > 1 (a no-op otherwise or when
    already joined). ``device`` is the ``--device`` option: NCCL for CUDA, gloo for CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise UserError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed.")
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=60))


def local_device(device: torch.device) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` under torchrun on CUDA, else ``device``."""
    if is_distributed() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_size(batch_size: int) -> int:
    """This rank's share of a global batch; the global batch must split evenly."""
    if batch_size % world_size():
        raise UserError(f"--batch-size {batch_size} does not split evenly over {world_size()} processes.")
    return batch_size // world_size()


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """The tensors of all ranks concatenated along dim 0, rank order, differentiable (the backward
    pass sums each rank's gradient into the slice it contributed)."""
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def average_gradients(module: torch.nn.Module) -> None:
    """Mean of every parameter's gradient over ranks (in place), in one flat all-reduce."""
    if not is_distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """SyncBatchNorm across ranks on CUDA (no CPU kernel exists: CPU keeps per-rank BatchNorm)."""
    if is_distributed() and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module
