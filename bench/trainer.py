"""The one training loop of the suite, shared by every method (methods never own a loop).

The paper's recipe (leaderboard/PROTOCOL.md): SGD with momentum 0.9, linear warm-up then cosine decay of the
learning rate per iteration (lightly's ``cosine_warmup_schedule``), two SimCLR views per image.
In-memory datasets keep their uint8 images on the training device and are augmented a whole batch
at a time (bench/augment.py), the airbench way: no per-image Python work on the hot path.
On CUDA: bf16 autocast and channels_last. Throughput is measured here, in every run.

:class:`Trainer` is the loop's parts (set-up, an epoch's start, one step, state and restore), which
``bench throughput`` and ``bench gpu-check`` time as they are; :func:`train` is the whole run around it
(resume, checkpoints, timing, logging, divergence checks).
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from lightly.utils.scheduler import cosine_warmup_schedule
from tqdm.auto import tqdm

from bench import distributed
from bench.checkpoint import Checkpointer, StopRequest, TrainingInterrupted, random_state, restore_random_state
from bench.config import AugmentationSpec, RunConfig
from bench.data import BatchSource, batch_source
from bench.errors import UserError
from datasets.imagefiles import ImageFiles
from methods.base import ContrastiveMethod
from methods.temperature import TrainingProgress


class TrainingDiverged(RuntimeError):
    """A non-finite loss or tau; carries where it happened and the history up to then."""

    def __init__(self, method: str, epoch: int, step: int, value: float, history: list[dict], what: str = "loss") -> None:
        super().__init__(f"{method} diverged: {what} is {value} in epoch {epoch} at step {step}")
        self.epoch, self.step, self.value, self.history = epoch, step, value, history


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)
    peak_memory: dict = field(default_factory=dict)
    resumed_from: dict | None = None


def select_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto.")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise UserError(f"unknown --device {requested!r}; use auto, cpu, cuda or cuda:N.")
    return torch.device(requested)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously): timings end here, not at launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _is_finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def make_optimizer(method: ContrastiveMethod, config: RunConfig) -> torch.optim.Optimizer:
    """SGD with momentum over the method's parameter groups (the learning rate is set every step)."""
    return torch.optim.SGD(method.parameter_groups(config.weight_decay), lr=config.lr, momentum=config.momentum)


def lr_schedule(config: RunConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate of each step: linear warm-up, then cosine decay to 0 (lightly's schedule)."""
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = config.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        return cosine_warmup_schedule(step, total_steps, config.lr, 0.0, warmup_steps, 0.0)

    return lr_at


def train_step(
    method: ContrastiveMethod,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, ...],
    progress: TrainingProgress,
    lr: float,
    is_cuda: bool,
) -> torch.Tensor:
    """One optimiser step on ``(view0, view1, indices)``; returns the loss (not synchronised).

    The body every training step of the suite runs -- ``bench throughput`` times this same function.
    On CUDA: channels_last views and bf16 autocast.
    """
    view0, view1, indices = batch
    for group in optimizer.param_groups:
        group["lr"] = lr
    if is_cuda:
        view0 = view0.contiguous(memory_format=torch.channels_last)
        view1 = view1.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=is_cuda):
        loss = method.training_step(view0, view1, indices, progress)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(method)  # under torchrun; a no-op in one process
    optimizer.step()
    method.on_after_step(progress)
    return loss


def hand_sample_strength(method: ContrastiveMethod, source: BatchSource) -> None:
    """Before an epoch's first batch: the method's per-sample augmentation strengths (BCL), if it has
    any, reach the batch source by dataset index."""
    strength = method.augmentation_strength()
    if strength is not None:
        source.set_sample_strength(strength)


class Trainer:
    """One method's training on one batch source: the optimiser, the learning-rate schedule, the step
    counter and the schedule's progress; an epoch's start, one step, and the state a checkpoint holds.

    ``bench run`` (:func:`train`, which adds resume, timing, logging and divergence checks around it),
    ``bench throughput`` and ``bench gpu-check`` (:func:`bench.throughput.suite_variant`) all train
    through this object, so what is timed is what a run does. ``generator`` is the batch source's
    random generator (saved and restored with the state).
    """

    def __init__(
        self,
        method: ContrastiveMethod,
        source: BatchSource,
        config: RunConfig,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> None:
        self.method, self.source, self.config, self.device, self.generator = method, source, config, device, generator
        self.is_cuda = device.type == "cuda"
        self.steps_per_epoch = source.steps_per_epoch()
        self.total_steps = self.steps_per_epoch * config.epochs
        self.optimizer = make_optimizer(method, config)
        self.lr_at = lr_schedule(config, self.steps_per_epoch)
        self.step = 0

    def progress(self, epoch: int | None = None) -> TrainingProgress:
        """Where training is: ``epoch`` (default: the step's own epoch, which may run past the last
        one when ``bench throughput`` keeps stepping), the step, and the schedule's lengths."""
        epoch = self.step // self.steps_per_epoch if epoch is None else epoch
        return TrainingProgress(epoch, self.step, self.steps_per_epoch, self.config.epochs, self.config.temperature_period)

    def begin_epoch(self, epoch: int | None = None) -> None:
        """The method's work before an epoch's first batch (SDCLR re-prunes, BCL updates its memory);
        the strengths it then hands to the data are :func:`hand_sample_strength`'s."""
        self.method.on_epoch_start(self.progress(epoch))

    def train_step(self, batch: tuple[torch.Tensor, ...], epoch: int | None = None) -> torch.Tensor:
        """One optimiser step at the current step's learning rate (the schedule restarts after its
        last step, for ``bench throughput``'s endless stepping); returns the loss, not synchronised."""
        lr = self.lr_at(self.step % self.total_steps)
        loss = train_step(self.method, self.optimizer, batch, self.progress(epoch), lr, self.is_cuda)
        self.step += 1
        return loss

    def state(self) -> dict[str, Any]:
        """Weights, optimiser, random generators, step and the source's position (checkpoint keys)."""
        assert self.generator is not None, "a Trainer without its source's generator cannot be checkpointed"
        return {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **random_state(self.generator, self.device),
            "step": self.step,
            "source": self.source.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`'s content exactly (on CPU: the same weights as without a stop)."""
        assert self.generator is not None, "a Trainer without its source's generator cannot be restored"
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_random_state(state, self.generator, self.device)
        self.step = state["step"]
        self.source.load_state_dict(state["source"])


def place(method: ContrastiveMethod, device: torch.device) -> None:
    """``method`` on ``device`` in training mode; channels_last on CUDA (the trainer's layout)."""
    if device.type == "cuda":
        method.to(device, memory_format=torch.channels_last)
    else:
        method.to(device)
    method.train()


def train(
    method: ContrastiveMethod,
    train_images: np.ndarray | ImageFiles,
    augmentation: AugmentationSpec,
    config: RunConfig,
    device: torch.device,
    show_progress: bool = True,
    checkpointer: Checkpointer | None = None,
    stop: StopRequest | None = None,
    monitor: Callable[[ContrastiveMethod], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``method`` in place for ``config.epochs`` epochs on uint8 images (N, H, W, C) or image files.

    With ``monitor`` and ``config.monitor_every`` = N, every N epochs and after the last one the
    monitor's values (the runner's kNN@10 on the test set, overall and per group) join that epoch's
    history entry; the time it takes is left out of the throughput.

    With a ``checkpointer``, a checkpoint is written every ``checkpointer.every_epochs`` epochs and
    when ``stop`` is requested (SIGTERM / SIGINT), and an existing checkpoint is resumed exactly: on
    CPU a resumed run ends with the same weights as an uninterrupted one.
    """
    is_cuda = device.type == "cuda"
    method = distributed.sync_batchnorm(method, device)
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    place(method, device)
    if config.compile:
        # In place (nn.Module.compile): the state_dict keeps its keys, so checkpoints stay interchangeable.
        method.compile()
    generator = torch.Generator(device=device).manual_seed(config.seed)
    # Under torchrun: the same permutation on every rank, each its slice of the global batch.
    shard = (distributed.rank(), distributed.world_size()) if distributed.is_distributed() else None
    source = batch_source(
        train_images, augmentation, config.batch_size, device, generator, config.seed, config.num_workers, shard=shard
    )

    trainer = Trainer(method, source, config, device, generator)
    per_epoch, total_steps, lr_at = trainer.steps_per_epoch, trainer.total_steps, trainer.lr_at

    result = TrainResult()
    start_epoch, start_batch = 0, 0
    loss_sum = torch.zeros((), device=device)
    state = checkpointer.load() if checkpointer else None
    if state is not None:
        trainer.restore(state)
        start_epoch, start_batch = state["epoch"], state["batch"]
        loss_sum = state["loss_sum"].to(device)
        result.history = state["history"]
        result.resumed_from = {"epoch": start_epoch, "batch": start_batch, "step": trainer.step}

    def snapshot(epoch: int, batch: int) -> dict[str, Any]:
        # The trainer's state, where in the epoch it stopped, and this loop's own running sums.
        return {
            "run_id": config.run_id(),
            **trainer.state(),
            "epoch": epoch,
            "epochs": config.epochs,
            "batch": batch,
            "loss_sum": loss_sum.detach().cpu(),
            "history": result.history,
        }

    # Steady state: the first steps (of this process) pay for allocator warm-up and lazy initialisation.
    step = trainer.step
    remaining_steps = total_steps - step
    unmeasured_steps = min(10, max(1, remaining_steps // 10)) if remaining_steps > 1 else 0
    segment_start_step = step
    log_every = max(1, config.epochs // 10)  # ten log lines per run; every epoch is in the record
    bar = tqdm(total=total_steps, initial=step, desc=method.registered_name, unit="step", disable=not show_progress, leave=False)
    augment_seconds = compute_seconds = monitor_seconds = 0.0
    measure_start = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        resuming_this_epoch = epoch == start_epoch and start_batch > 0
        if not resuming_this_epoch:
            trainer.begin_epoch(epoch)
            loss_sum = torch.zeros((), device=device)
        hand_sample_strength(method, source)  # also after a resume
        epoch_start = time.perf_counter()
        first_batch = start_batch if resuming_this_epoch else 0
        batches = source.epoch(resume=resuming_this_epoch, skip=first_batch)
        for batch in range(first_batch, per_epoch):
            if step - segment_start_step == unmeasured_steps:
                sync(device)
                measure_start = time.perf_counter()
                augment_seconds = compute_seconds = monitor_seconds = 0.0
            t0 = time.perf_counter()
            batch_views = next(batches)  # augmentation on the device, or waiting for the loader
            t1 = time.perf_counter()
            loss = trainer.train_step(batch_views, epoch)
            loss_sum += loss.detach()
            if not is_cuda and not math.isfinite(loss.item()):
                # On CPU the check is free; on CUDA it would synchronise every step (checked per epoch).
                raise TrainingDiverged(method.registered_name, epoch + 1, step, loss.item(), result.history)
            augment_seconds += t1 - t0
            compute_seconds += time.perf_counter() - t1
            step = trainer.step
            bar.update(1)
            if stop is not None and stop.requested:
                path = None
                if checkpointer is not None:
                    checkpointer.save(snapshot(epoch, batch + 1))
                    path = checkpointer.path
                bar.close()
                raise TrainingInterrupted(stop.signal_name or "signal", epoch + 1, step, path)
        sync(device)
        epoch_seconds = time.perf_counter() - epoch_start
        mean_loss = (loss_sum / max(per_epoch, 1)).item()
        entry = {
            "epoch": epoch + 1,
            "loss": mean_loss,
            "lr": lr_at(max(step - 1, 0)),
            **method.epoch_log(),
            "images_per_s": (per_epoch - first_batch) * config.batch_size / epoch_seconds,
            "seconds": epoch_seconds,
        }
        bad = [k for k, v in entry.items() if not _is_finite(v)]
        if bad:
            raise TrainingDiverged(method.registered_name, epoch + 1, step - 1, entry[bad[0]], result.history, what=bad[0])
        if (
            monitor is not None
            and config.monitor_every
            and ((epoch + 1) % config.monitor_every == 0 or epoch + 1 == config.epochs)
        ):
            monitor_start = time.perf_counter()
            entry.update(monitor(method))
            monitor_seconds += time.perf_counter() - monitor_start
        result.history.append(entry)
        bar.set_postfix(loss=f"{mean_loss:.3f}", tau=f"{entry.get('tau', float('nan')):.3f}")
        if show_progress and (epoch + 1) % log_every == 0:
            bar.write(
                f"  {method.registered_name} epoch {epoch + 1}/{config.epochs}: loss {mean_loss:.4f}, "
                f"tau {entry.get('tau', float('nan')):.4f}, lr {entry['lr']:.4f}, {entry['images_per_s']:.0f} images/s"
            )
        if checkpointer is not None and ((epoch + 1) % checkpointer.every_epochs == 0 or epoch + 1 == config.epochs):
            checkpointer.save(snapshot(epoch + 1, 0))
    sync(device)
    measured_seconds = time.perf_counter() - measure_start - monitor_seconds
    bar.close()

    measured_steps = total_steps - segment_start_step - unmeasured_steps
    result.throughput = {
        "images_per_s": measured_steps * config.batch_size / measured_seconds if measured_steps > 0 else None,
        "unit": "source images per second (each gives two views), steady state",
        "measured_steps": measured_steps,
        "excluded_warmup_steps": unmeasured_steps,
        "measured_seconds": measured_seconds,
        "monitor_seconds": monitor_seconds,  # accuracy during training (--monitor-every), not counted above
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
