"""``python -m bench gpu-check``: one command (under 10 minutes on one GPU) that says how fast the
suite trains the paper's CIFAR-LT setting and whether a short run learns.

1. Throughput of the CIFAR-LT recipe (``cifar10_lt --preset paper``: resnet18_cifar, batch 512, bf16,
   channels_last, batched on-device augmentation) for ``constant`` and ``cosine_tau``, interleaved
   with ``limit``: forward + NT-Xent + backward + SGD of the same network on one fixed pre-augmented
   batch -- no data work at all, the most the GPU can do. Images are synthetic uint8 (12,406, the size
   of CIFAR-10-LT): speed does not depend on pixel values. Prints images/s, the ratios, and the
   projected wall time of the 2000-epoch protocol.
2. A short ``constant`` vs ``cosine_tau`` run on ``cifar10_jpeg_lt`` (``--epochs``, default 15, with
   the quick preset's recipe), printing accuracies next to the two floors, and peak memory. The data
   is ``--data-root`` (the unpacked JPEG copy) or, when absent,
   ``../shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz`` unpacked into a temporary folder. Records
   go to a temporary folder unless ``--results-dir``. Evaluation: the kNN protocols only (kNN@1,
   kNN@10, weighted kNN), which run on the GPU; scikit-learn's LinearSVC runs on the CPU and alone
   would take longer than the whole check (the raw-pixel floor's, on 3072-dimensional CIFAR pixels,
   took 7 minutes on a 2-core CPU).

``--device cpu`` is a dry run of the same code with tiny sizes (small_cnn, batch 16, a few steps,
digits_lt for the run) that finishes in seconds; it checks the script, not the speed.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tabulate import tabulate

from bench import runner
from bench.errors import UserError
from bench.throughput import Variant, bare_step, forever, measure, summary_lines, suite_variant, variants_table

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_JPEG = REPO_ROOT.parent / "shared" / "data" / "cifar10_jpeg" / "cifar10_jpeg_q75.tar.gz"
SHARED_LABELS = REPO_ROOT.parent / "shared" / "data" / "cifar_labels" / "cifar10_train_labels.npy"
CIFAR10_LT_SIZE = 12406  # LDAM rho 100
PAPER_EPOCHS = 2000
KNN_PROTOCOLS = ("knn1", "knn10", "wknn")  # the short run's evaluation: all on the GPU


def limit_variant(config, device: torch.device) -> Variant:
    """The network alone: the bare step (:func:`bench.throughput.bare_step`) on one fixed batch of
    two views, so no data work at all."""
    step = bare_step(config, device)
    size = runner.run_augmentation(config).input_size
    views = torch.randn(2 * config.batch_size, 3, size, size, device=device).chunk(2)
    return Variant("limit", "limit", "none", forever(lambda: iter([views])), lambda batch: step(*batch))


def check_throughput(device: torch.device, dry_run: bool, log: Callable[[str], None]) -> dict:
    """Step 1: the paper's setting (or its tiny dry-run stand-in) against the network-only limit."""
    from bench.config import resolve_config
    from datasets import create_dataset

    spec = create_dataset("cifar10_lt")
    preset = spec.presets["paper"]
    images_count, steps, repeats, warmup = CIFAR10_LT_SIZE, 20, 3, 10
    if dry_run:
        preset = replace(preset, backbone="small_cnn", batch_size=16)
        images_count, steps, repeats, warmup = 64, 2, 2, 1
    images = np.random.default_rng(0).integers(0, 256, size=(images_count, 32, 32, 3), dtype=np.uint8)
    configs = [resolve_config(preset, name, "cifar10_lt", 0, device.type, spec.augmentation, {})
               for name in ("constant", "cosine_tau")]
    variants = [suite_variant(c, images, device, False, 0) for c in configs] + [limit_variant(configs[0], device)]
    log(f"1. throughput: cifar10_lt paper recipe ({preset.backbone}, batch {preset.batch_size}"
        f"{', bf16, channels_last' if device.type == 'cuda' else ''}), synthetic images, {repeats} x {steps} steps")
    result = measure(variants, steps, repeats, warmup, preset.batch_size, device, log)
    log(tabulate(variants_table(result), headers="keys", tablefmt="simple"))
    for line in summary_lines(result):
        log(line)
    suite = result["variants"]["constant"]["images_per_s"]["median"]
    limit = result["variants"]["limit"]["images_per_s"]["median"]
    log(f"constant / limit (the fraction of the network-only speed the suite reaches): {suite / limit:.3f}")
    seconds = PAPER_EPOCHS * (CIFAR10_LT_SIZE // 512) * 512 / suite
    log(f"projected wall time of the {PAPER_EPOCHS}-epoch protocol per run (constant, {CIFAR10_LT_SIZE} images): "
        f"{seconds / 3600:.1f} h{' (dry run: meaningless)' if dry_run else ''}")
    return {"throughput": result, "projected_hours": seconds / 3600}


def _jpeg_root(data_root: Optional[Path], scratch: Path) -> Path:
    if data_root is not None:
        return data_root
    if not SHARED_JPEG.exists() or not SHARED_LABELS.exists():
        raise UserError(f"no --data-root and no {SHARED_JPEG}: pass --data-root DIR with the unpacked CIFAR-10 JPEG copy.")
    with tarfile.open(SHARED_JPEG) as archive:
        archive.extractall(scratch, filter="data")
    # The archive may hold one top folder; the dataset wants train/ and test/ directly under the root.
    root = next((p.parent for p in scratch.rglob("train") if p.is_dir()), scratch)
    shutil.copy(SHARED_LABELS, root / SHARED_LABELS.name)
    return root


def check_short_run(device: torch.device, dry_run: bool, epochs: int, data_root: Optional[Path],
                    results_dir: Path, log: Callable[[str], None]) -> list[dict]:
    """Step 2: constant vs cosine_tau, a few epochs, accuracies and peak memory."""
    with tempfile.TemporaryDirectory() as scratch:
        if dry_run:
            dataset, preset, overrides = "digits_lt", "tiny", {"epochs": 1, "eval_protocols": KNN_PROTOCOLS}
        else:
            root = _jpeg_root(data_root, Path(scratch))
            dataset, preset, overrides = "cifar10_jpeg_lt", "quick", {"epochs": epochs, "data_root": str(root),
                                                                       "eval_protocols": KNN_PROTOCOLS}
        plan = runner.plan(["constant", "cosine_tau"], dataset, [0], preset, overrides, device.type, results_dir)
        data = runner.load_data(plan)
        log(f"\n2. short run: constant vs cosine_tau on {dataset}, {plan.configs[0].epochs} epochs, "
            f"{plan.configs[0].backbone}, batch {plan.configs[0].batch_size}, evaluation "
            f"{'+'.join(plan.configs[0].eval_protocols)}")
        start = time.perf_counter()
        written = runner.execute(plan, data, show_progress=False, log=log)
    records = [r for r in written if r["kind"] == "run"]
    rows = [[r["method"], *(r["metrics"].get(m, {}).get("overall") for m in KNN_PROTOCOLS),
             f"{r['throughput']['images_per_s']:.0f}", f"{r['peak_memory']['bytes'] / 2**20:.0f} ({r['peak_memory']['kind']})",
             f"{r['timing']['train_seconds']:.0f}"] for r in records]
    rows += [[r["method"], *(r["metrics"].get(m, {}).get("overall") for m in KNN_PROTOCOLS), "-", "-", "-"]
             for r in written if r["kind"] == "floor"]
    log(tabulate(rows, headers=["method", "kNN@1", "kNN@10", "wkNN", "images/s", "peak memory MiB", "train s"],
                 tablefmt="simple", floatfmt=".1f"))
    log(f"short run total {time.perf_counter() - start:.0f} s; records in {results_dir}")
    return records


def run_gpu_check(device: str = "auto", epochs: int = 15, data_root: Optional[Path] = None,
                  results_dir: Optional[Path] = None, log: Callable[[str], None] = print) -> dict:
    """Both steps; ``device="cpu"`` is the tiny dry run. Returns what was measured."""
    from bench.trainer import select_device

    torch_device = select_device(device)
    dry_run = torch_device.type == "cpu"
    if epochs <= 0:
        raise UserError(f"--epochs must be positive, got {epochs}.")
    if dry_run:
        log("dry run on CPU: tiny sizes, checks the script only (no GPU)")
    else:
        log(f"GPU check on {torch.cuda.get_device_name(torch_device)}")
    measured = check_throughput(torch_device, dry_run, log)
    with tempfile.TemporaryDirectory() as scratch:
        target = results_dir or Path(scratch) / "results"
        measured["records"] = check_short_run(torch_device, dry_run, epochs, data_root, target, log)
    return measured
