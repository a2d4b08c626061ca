"""The one training loop of the suite, shared by every method (methods never own a loop).

The paper's recipe (protocol.md): SGD with momentum 0.9, linear warm-up then cosine decay of the
learning rate per iteration (lightly's ``cosine_warmup_schedule``), two SimCLR views per image.
In-memory datasets keep their uint8 images on the training device and are augmented a whole batch
at a time (bench/augment.py), the airbench way: no per-image Python work on the hot path; file
datasets come through a DataLoader with workers. Both are a batch source (bench/data.py).
On CUDA: bf16 autocast and channels_last. Throughput is measured here, in every run.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from lightly.utils.scheduler import cosine_warmup_schedule
from tqdm.auto import tqdm

from bench.config import AugmentationSpec, RunConfig
from bench.data import batch_source
from bench.errors import UserError
from datasets.imagefiles import ImageFiles
from methods.base import ContrastiveMethod
from methods.temperature import TrainingProgress


class TrainingDiverged(RuntimeError):
    """A non-finite loss; carries where it happened."""

    def __init__(self, method: str, epoch: int, step: int, value: float) -> None:
        super().__init__(f"{method} diverged: loss {value} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.value = epoch, step, value


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)
    peak_memory: dict = field(default_factory=dict)


def select_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto.")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise UserError(f"unknown --device {requested!r}; use auto, cpu, cuda or cuda:N.")
    return torch.device(requested)


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches only (drop_last): NT-Xent's negatives depend on the batch size."""
    return num_images // batch_size


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    method: ContrastiveMethod,
    train_images: np.ndarray | ImageFiles,
    augmentation: AugmentationSpec,
    config: RunConfig,
    device: torch.device,
    show_progress: bool = True,
) -> TrainResult:
    """Train ``method`` in place for ``config.epochs`` epochs on uint8 images (N, H, W, C) or image files."""
    is_cuda = device.type == "cuda"
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
        method.to(device, memory_format=torch.channels_last)
    else:
        method.to(device)
    method.train()
    generator = torch.Generator(device=device).manual_seed(config.seed)
    source = batch_source(train_images, augmentation, config.batch_size, device, generator, config.seed,
                          config.num_workers)

    per_epoch = source.steps_per_epoch()
    total_steps = per_epoch * config.epochs
    warmup_steps = config.warmup_epochs * per_epoch
    optimizer = torch.optim.SGD(method.parameter_groups(config.weight_decay), lr=config.lr, momentum=config.momentum)
    # Steady state: the first steps pay for allocator warm-up and lazy initialisation.
    unmeasured_steps = min(10, max(1, total_steps // 10)) if total_steps > 1 else 0

    result = TrainResult()
    log_every = max(1, config.epochs // 10)  # ten log lines per run; every epoch is in the record
    bar = tqdm(total=total_steps, desc=f"{method.registered_name}", unit="step", disable=not show_progress, leave=False)
    step = 0
    augment_seconds = compute_seconds = 0.0
    measure_start = time.perf_counter()
    for epoch in range(config.epochs):
        progress = TrainingProgress(epoch, step, per_epoch, config.epochs, config.temperature_period)
        method.on_epoch_start(progress)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        batches = source.epoch()
        for batch in range(per_epoch):
            if step == unmeasured_steps:
                _sync(device)
                measure_start = time.perf_counter()
                augment_seconds = compute_seconds = 0.0
            lr = cosine_warmup_schedule(step, total_steps, config.lr, 0.0, warmup_steps, 0.0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            view0, view1, indices = next(batches)  # augmentation on the device, or waiting for the loader
            if is_cuda:
                view0 = view0.contiguous(memory_format=torch.channels_last)
                view1 = view1.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            progress = TrainingProgress(epoch, step, per_epoch, config.epochs, config.temperature_period)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=is_cuda):
                loss = method.training_step(view0, view1, indices, progress)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            if not is_cuda and not math.isfinite(loss.item()):
                # On CPU the check is free; on CUDA it would synchronise every step (checked per epoch).
                raise TrainingDiverged(method.registered_name, epoch + 1, step, loss.item())
            augment_seconds += t1 - t0
            compute_seconds += time.perf_counter() - t1
            step += 1
            bar.update(1)
        _sync(device)
        epoch_seconds = time.perf_counter() - epoch_start
        mean_loss = (loss_sum / max(per_epoch, 1)).item()
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(method.registered_name, epoch + 1, step - 1, mean_loss)
        entry = {
            "epoch": epoch + 1,
            "loss": mean_loss,
            "lr": lr,
            **method.epoch_log(),
            "images_per_s": per_epoch * config.batch_size / epoch_seconds,
            "seconds": epoch_seconds,
        }
        result.history.append(entry)
        bar.set_postfix(loss=f"{mean_loss:.3f}", tau=f"{entry.get('tau', float('nan')):.3f}")
        if show_progress and (epoch + 1) % log_every == 0:
            bar.write(
                f"  {method.registered_name} epoch {epoch + 1}/{config.epochs}: loss {mean_loss:.4f}, "
                f"tau {entry.get('tau', float('nan')):.4f}, lr {lr:.4f}, {entry['images_per_s']:.0f} images/s"
            )
    _sync(device)
    measured_seconds = time.perf_counter() - measure_start
    bar.close()

    measured_steps = total_steps - unmeasured_steps
    result.throughput = {
        "images_per_s": measured_steps * config.batch_size / measured_seconds if measured_steps > 0 else None,
        "unit": "source images per second (each gives two views), steady state",
        "measured_steps": measured_steps,
        "excluded_warmup_steps": unmeasured_steps,
        "measured_seconds": measured_seconds,
        # On CUDA the augmentation is launched asynchronously, so only the CPU split is meaningful.
        "augment_seconds": augment_seconds if not is_cuda else None,
        "compute_seconds": compute_seconds if not is_cuda else None,
    }
    result.peak_memory = peak_memory(device)
    return result


def peak_memory(device: torch.device) -> dict:
    """Peak memory: CUDA allocator peak on GPU, the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return {"bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda max_memory_allocated"}
    return {"bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "kind": "process peak RSS"}
