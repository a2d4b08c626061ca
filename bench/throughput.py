"""``python -m bench throughput``: training speed of methods measured side by side, interleaved.

Every variant is timed for ``steps`` training steps per repeat, interleaved step by step: a repeat
is ``steps`` rounds of one step of every variant, and the order rotates every round (A B C, B C A,
C A B, ...), so no variant always runs first or after the same neighbour. Neighbouring steps of
different variants are milliseconds apart, so a change in machine load (another process, the
hypervisor) hits all of them alike: on a 2-core VM, per-repeat ratios of blocks of 10-50 steps
varied by 5-8 %, per-step interleaving brings the same ratios within about 1 %. A ratio is taken
within each repeat and summarised by its median over the repeats with a distribution-free 95 %
confidence interval of that median (order statistics, ``scipy.stats.quantile_test``; at least 6
repeats). Variants:

- each method, built exactly as a run builds it (:func:`bench.runner.build_method`), trained by the
  run's own :class:`bench.trainer.Trainer` (optimiser, learning-rate schedule, epoch hooks, step) on the
  dataset's batch source (on-device batched augmentation for in-memory data);
- ``bare``: the same backbone and lightly projection head, the same batch size and on-device
  augmentation, ``lightly.loss.NTXentLoss(temperature=0.2)`` and a plain ``torch.optim.SGD`` loop --
  nothing of the suite (no hooks, no schedule, no temperature strategy). ``constant / bare`` is the
  suite's overhead;
- ``constant (A/A)``: ``constant`` built and timed a second time, always. Its ratio to ``constant`` is
  the measurement's own noise: a method's ratio means something only where it differs beyond it;
- ``constant@per-image`` (``--data-path lightly|both``): ``constant`` fed by a DataLoader that applies
  lightly's per-image ``SimCLRTransform`` to the same uint8 images (PIL), the path file datasets take.
  ``constant / constant@per-image`` is what the batched fast path buys.

Defaults: every registered method, ``digits_lt`` with its default preset, 20 steps, 10 repeats,
5 warm-up steps per variant (methods: at least one epoch and a step, so that every epoch hook has
run and BCL's strengths are live), data path ``device``, 0 DataLoader workers for the per-image path (in
the timed process: workers would keep prefetching during the other variants' steps), seed 0.

The record (kind ``throughput``, one JSON file in the results directory) holds, besides the usual
``schema_version`` / ``kind`` / ``method`` (``"throughput"``) / ``dataset`` / ``seed`` / ``config`` /
``environment`` / ``command`` / ``started_at`` / ``finished_at`` fields and an empty ``metrics``::

    "throughput": {
      "unit": "source images per second (each gives two views)",
      "variants": {label: {
          "method": str, "data_path": "device" | "per-image" | "bare",
          "images_per_s": {"median", "min", "max", "per_repeat": [...]},
          "ratio_to_constant": {"median", "min", "max", "per_repeat": [...]} | null,
          "images_per_cpu_s", "cpu_ratio_to_constant": the same by the process's CPU seconds,
          "data_seconds": float, "compute_seconds": float,   # summed over the timed repeats
          "data_fraction": float,                            # data / (data + compute)
          "peak_memory": {"bytes", "kind"} | null}},         # CUDA: per variant; CPU: null
      "suite_over_bare": {"median", "min", "max", "per_repeat"} | null,    # constant / bare
      "suite_over_bare_cpu": {...} | null,                  # the same by CPU seconds (CPU devices)
      "fast_over_per_image": {...} | null,                  # constant / constant@per-image
      "process_peak_memory": {"bytes", "kind"}}              # CPU: the process's peak RSS, all variants

``config.interleaving`` is ``"step"``; records without it (older ones) interleaved whole blocks of
``steps`` steps. A ratio is taken pair by pair within a repeat and then summarised (median, min, max
over repeats; the report derives the confidence interval from ``per_repeat``). Records from
different hardware are never compared (:func:`bench.report.throughput.throughput_page`). This module
measures and writes the record; what the record says in words and tables is :mod:`bench.report.throughput`'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from tabulate import tabulate

from bench.augment import BatchedSimCLRAugment
from bench.config import RunConfig
from bench.data import BatchSource, DeviceBatches, LoaderBatches
from bench.environment import environment
from bench.errors import UserError
from bench.keys import BARE, BASELINE, CONTROL, LIMIT, PER_IMAGE_SUFFIX, summarise
from bench.records import command_line, record_header, utc_now, write_record
from bench.report.throughput import summary_lines, variants_table
from bench.trainer import Trainer, hand_sample_strength, peak_memory, place, sync

DATA_PATHS = ("device", "lightly", "both")


def forever(epochs: Callable[[], Iterator]) -> Iterator:
    """Batches across epoch boundaries: a timed block never stops at the end of an epoch."""
    while True:
        yield from epochs()


class ArrayImageFiles:
    """In-memory uint8 images (N, H, W[, C]) posing as image files (``len``, ``open(i)`` -> RGB PIL),
    so the per-image variant reads them through the trainer's file path (:class:`bench.data.LoaderBatches`)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def open(self, index: int):
        from PIL import Image

        array = self.images[index]
        return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).convert("RGB")


@dataclass
class Variant:
    """One timed thing: ``step(batch)`` trains on one batch; ``batches`` yields batches forever."""

    label: str
    method: str
    data_path: str
    batches: Iterator
    step: Callable[[Any], torch.Tensor]
    #: Steps before the variant is in its steady state, run before timing whatever ``--warmup`` says:
    #: one epoch and a step for a method, so every epoch hook has run once (BCL's strengths are 0,
    #: no RandAugment at all, until its first epoch has given every sample a loss).
    settle_steps: int = 0

    def run(self, steps: int, device: torch.device) -> tuple[float, float, float]:
        """Time ``steps`` steps; returns (seconds waiting for data, seconds computing, CPU seconds of
        this process). CPU seconds do not count time the process spent descheduled, so on a shared CPU
        they are steadier than wall time (they do count other processes' cache pressure, and they miss
        DataLoader workers' time, which runs in other processes)."""
        data_seconds = compute_seconds = 0.0
        sync(device)
        cpu_start = time.process_time()
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = next(self.batches)
            sync(device)  # on CUDA the augmentation is asynchronous: count it as data time
            t1 = time.perf_counter()
            self.step(batch)
            sync(device)
            compute_seconds += time.perf_counter() - t1
            data_seconds += t1 - t0
        return data_seconds, compute_seconds, time.process_time() - cpu_start


def suite_variant(
    config: RunConfig, images: np.ndarray, device: torch.device, per_image: bool, num_workers: int, label: Optional[str] = None
) -> Variant:
    """``config.method`` as a run trains it: the runner's construction, the trainer's batch sources,
    epoch-start work and step. ``per_image``: lightly's per-image transform in a DataLoader (the file
    datasets' path) instead of the batched on-device augmentation. ``label`` names the variant
    (default: the method's label, with ``@per-image`` on that path)."""
    from bench.runner import build_method, run_augmentation

    method = build_method(config, num_train_samples=len(images))
    place(method, device)
    spec = run_augmentation(config)
    if per_image:
        source: BatchSource = LoaderBatches(ArrayImageFiles(images), spec, config.batch_size, device, config.seed, num_workers)
    else:
        source = DeviceBatches(images, spec, config.batch_size, device, torch.Generator(device=device).manual_seed(config.seed))
    # The trainer walks through the run's schedule as training would (a scheduled tau moves).
    trainer = Trainer(method, source, config, device)

    def epoch() -> Iterator:
        # The trainer's work before an epoch's first batch, timed as that step's data time: the
        # method's hook (SDCLR re-prunes) and the per-sample strengths (BCL's RandAugment).
        trainer.begin_epoch()
        hand_sample_strength(method, source)
        return source.epoch()

    label = label or config.method_label + (PER_IMAGE_SUFFIX if per_image else "")
    return Variant(
        label,
        config.method_label,
        "per-image" if per_image else "device",
        forever(epoch),
        trainer.train_step,
        settle_steps=trainer.steps_per_epoch + 1,
    )


def bare_step(config: RunConfig, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A plain PyTorch SimCLR step on ``config``'s backbone with lightly's head and
    ``NTXentLoss(temperature=0.2)`` and plain SGD: nothing of the suite. bf16 and channels_last on
    CUDA, as the trainer, so that a ratio measures overhead, not precision."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    from bench.backbones import create_backbone

    torch.manual_seed(config.seed)
    backbone, width = create_backbone(config.backbone)
    model = torch.nn.Sequential(backbone, SimCLRProjectionHead(width, width, 128))
    is_cuda = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last) if is_cuda else model.to(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    criterion = NTXentLoss(temperature=0.2)

    def step(view0: torch.Tensor, view1: torch.Tensor) -> torch.Tensor:
        if is_cuda:
            view0 = view0.contiguous(memory_format=torch.channels_last)
            view1 = view1.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=is_cuda):
            z0, z1 = model(torch.cat([view0, view1])).chunk(2)
            loss = criterion(z0, z1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def bare_variant(config: RunConfig, images: np.ndarray, device: torch.device) -> Variant:
    """The reference loop: :func:`bare_step` on the same on-device augmentation, own permutation."""
    from bench.runner import run_augmentation

    step = bare_step(config, device)
    augment = BatchedSimCLRAugment(run_augmentation(config))
    resident = torch.from_numpy(images).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    batch_size = config.batch_size

    def epochs() -> Iterator:
        order = torch.randperm(len(resident), device=device, generator=generator)
        for start in range(0, len(resident) - batch_size + 1, batch_size):
            yield augment.two_views(resident[order[start : start + batch_size]], generator)

    return Variant(BARE, BARE, "bare", forever(epochs), lambda views: step(*views))


def measure(
    variants: list[Variant],
    steps: int,
    repeats: int,
    warmup: int,
    batch_size: int,
    device: torch.device,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Warm every variant up, then ``repeats`` times ``steps`` rounds of one step of each variant,
    the order rotating every round; per repeat, each variant's images/s over its ``steps`` steps."""
    for variant in variants:
        if max(warmup, variant.settle_steps):
            variant.run(max(warmup, variant.settle_steps), device)
    speeds: dict[str, list[float]] = {v.label: [] for v in variants}
    cpu_speeds: dict[str, list[float]] = {v.label: [] for v in variants}
    split = {v.label: [0.0, 0.0] for v in variants}
    memory: dict[str, Optional[dict]] = {v.label: None for v in variants}
    for repeat in range(repeats):
        seconds = {v.label: [0.0, 0.0, 0.0] for v in variants}  # data, compute, CPU
        for round_index in range(steps):
            # Rotate every round: no variant always runs first, or always after the same one.
            shift = (repeat * steps + round_index) % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                for i, value in enumerate(variant.run(1, device)):
                    seconds[variant.label][i] += value
                if device.type == "cuda":
                    peak = int(torch.cuda.max_memory_allocated(device))
                    previous = memory[variant.label]["bytes"] if memory[variant.label] else 0
                    memory[variant.label] = {"bytes": max(peak, previous), "kind": "cuda max_memory_allocated"}
        for label, (data_s, compute_s, cpu_s) in seconds.items():
            speeds[label].append(steps * batch_size / (data_s + compute_s))
            cpu_speeds[label].append(steps * batch_size / cpu_s)
            split[label][0] += data_s
            split[label][1] += compute_s
        log(f"  repeat {repeat + 1}/{repeats}: " + ", ".join(f"{label} {s[-1]:.0f}" for label, s in speeds.items()) + " images/s")
    base = speeds.get(BASELINE)

    def ratio(numerator: str, denominator: str, of: dict[str, list[float]] = speeds) -> Optional[dict[str, Any]]:
        if numerator not in of or denominator not in of:
            return None
        return summarise([a / b for a, b in zip(of[numerator], of[denominator])])

    out: dict[str, Any] = {"unit": "source images per second (each gives two views)", "variants": {}}
    for variant in variants:
        data_s, compute_s = split[variant.label]
        out["variants"][variant.label] = {
            "method": variant.method,
            "data_path": variant.data_path,
            "images_per_s": summarise(speeds[variant.label]),
            "ratio_to_constant": ratio(variant.label, BASELINE) if base else None,
            "images_per_cpu_s": summarise(cpu_speeds[variant.label]),
            "cpu_ratio_to_constant": ratio(variant.label, BASELINE, cpu_speeds) if base else None,
            "data_seconds": data_s,
            "compute_seconds": compute_s,
            "data_fraction": data_s / (data_s + compute_s),
            "peak_memory": memory[variant.label],
        }
    out["suite_over_bare"] = ratio(BASELINE, BARE)
    out["suite_over_bare_cpu"] = ratio(BASELINE, BARE, cpu_speeds) if device.type == "cpu" else None
    out["fast_over_per_image"] = ratio(BASELINE, BASELINE + PER_IMAGE_SUFFIX)
    out["suite_over_limit"] = ratio(BASELINE, LIMIT)
    memory_now = peak_memory(device)
    if device.type != "cuda":
        memory_now["kind"] += ", whole process: all variants together (CPU memory is not separable per variant)"
    out["process_peak_memory"] = memory_now
    return out


def run_throughput(
    methods: list[str],
    dataset: str,
    preset: Optional[str],
    steps: int,
    repeats: int,
    warmup: int,
    batch_size: Optional[int],
    device: str,
    results_dir: Path,
    data_path: str = "device",
    num_workers: Optional[int] = None,
    seed: int = 0,
    data_root: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure, print a table, write one ``throughput`` record into ``results_dir``; returns the record."""
    from bench import runner

    if steps <= 0:
        raise UserError(f"--steps must be a positive number of steps, got {steps}.")
    if repeats <= 0:
        raise UserError(f"--repeats must be a positive number, got {repeats}.")
    if warmup < 0:
        raise UserError(f"--warmup must be >= 0 steps, got {warmup}.")
    if data_path not in DATA_PATHS:
        raise UserError(f"--data-path must be one of {', '.join(DATA_PATHS)}, got {data_path!r}.")
    if num_workers is not None and num_workers < 0:
        raise UserError(f"--num-workers must be >= 0, got {num_workers}.")
    if BARE in methods:
        raise UserError(f"{BARE!r} is the reference loop, measured always; leave it out of --methods.")
    methods = list(dict.fromkeys([BASELINE, *methods]))  # the ratios need the baseline
    overrides = {"batch_size": batch_size, "data_root": data_root}
    plan = runner.plan(methods, dataset, [seed], preset, overrides, device, results_dir)
    if any(spec.file_based for spec in plan.datasets.values()):
        raise UserError(
            f"{dataset} is a file dataset; `bench throughput` measures in-memory datasets "
            "(digits_lt, fashion_mnist_lt, cifar*_lt)."
        )
    data = runner.load_data(plan)
    torch_device = plan.device
    # Default 0: DataLoader workers run outside the timed process and keep prefetching after their block
    # ends, which slows whichever variant is timed next (seen as a 0.54x "bare" on 2 cores).
    workers = num_workers if num_workers is not None else 0
    configs = {c.method_label: c for c in plan.configs}
    variants: list[Variant] = []
    if data_path in ("device", "both"):
        variants += [suite_variant(c, data.train_images, torch_device, False, workers) for c in configs.values()]
    if data_path == "lightly":
        variants += [suite_variant(c, data.train_images, torch_device, True, workers) for c in configs.values()]
    if data_path in ("device", "both"):
        variants.append(suite_variant(configs[BASELINE], data.train_images, torch_device, False, workers, label=CONTROL))
    if data_path == "both":
        variants.append(suite_variant(configs[BASELINE], data.train_images, torch_device, True, workers))
    variants.append(bare_variant(configs[BASELINE], data.train_images, torch_device))

    base = configs[BASELINE]
    log(
        f"{dataset}: {len(data.train_labels)} training images, {base.backbone}, batch {base.batch_size}, device "
        f"{torch_device}; {repeats} repeats x {steps} steps per variant, interleaved step by step, after {warmup} "
        "warm-up steps"
    )
    # Where and at which commit, taken before the minutes of measuring: a commit made meanwhile must
    # not relabel what ran.
    started, where = utc_now(), environment(torch_device)
    result = measure(variants, steps, repeats, warmup, base.batch_size, torch_device, log)
    log("")
    log(tabulate(variants_table(result), headers="keys", tablefmt="simple"))
    for line in summary_lines(result):
        log(line)
    record = throughput_record(
        dataset,
        seed,
        base,
        methods,
        steps,
        repeats,
        warmup,
        result,
        where,
        started,
        data_path=data_path,
        num_workers=workers if data_path != "device" else None,
    )
    path = write_record(record, results_dir)
    log(f"\nrecord written to {path}")
    record["_path"] = str(path)
    return record


def throughput_record(
    dataset: str,
    seed: int,
    base: RunConfig,
    methods: list[str],
    steps: int,
    repeats: int,
    warmup: int,
    result: dict[str, Any],
    where: dict[str, Any],
    started: str,
    data_path: str = "device",
    num_workers: Optional[int] = None,
) -> dict[str, Any]:
    """The ``throughput`` record of one :func:`measure` (``bench throughput`` and ``bench gpu-check``)."""
    return {
        **record_header("throughput", "throughput", dataset, seed, None),
        # Leaderboard tables key on "protocol"; this one matches no accuracy table.
        "protocol": {"kind": "throughput", "dataset": dataset},
        "config": {
            "methods": methods,
            "preset": base.preset,
            "backbone": base.backbone,
            "batch_size": base.batch_size,
            "steps": steps,
            "repeats": repeats,
            "warmup": warmup,
            "interleaving": "step",
            "data_path": data_path,
            "num_workers": num_workers,
            "device": base.device,
            "augmentation": base.augmentation,
        },
        "metrics": {},
        "throughput": result,
        "environment": where,
        "command": command_line(),
        "started_at": started,
        "finished_at": utc_now(),
    }
