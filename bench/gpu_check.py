"""``python -m bench gpu-check --out DIR``: one command that, within ``--minutes`` (default 9) on one
GPU, measures how fast the suite trains the paper's CIFAR-10-LT recipe and puts a short TS-protocol
run of it on the leaderboard. Steps, each logged to ``DIR/gpu-check.log``:

1. Throughput of the CIFAR-LT recipe (``cifar10_lt --preset paper``: resnet18_cifar, batch 512, bf16,
   channels_last, batched on-device augmentation) for ``constant`` and ``cosine_tau``, interleaved
   step by step with an A/A copy of ``constant``, the ``bare`` PyTorch loop and ``limit``: forward +
   NT-Xent + backward + SGD of the same network on one fixed pre-augmented batch -- no data work at
   all, the most the GPU can do. Synthetic uint8 images (12,406, the size of CIFAR-10-LT): speed does
   not depend on pixel values. Prints images/s, the ratios, ``constant / limit`` (target >= 0.9) and the
   projected wall time of the 2000-epoch protocol; writes a ``throughput`` record.
2. Packing: the total images/s of 1 and of ``len(splits)`` training processes sharing the GPU (each
   the trainer's step on its own data), measured side by side; runs are packed when that does not
   lose throughput (their start-up, data loading and evaluation then overlap the others' training).
3. From the measured speed, the epochs that fit: every method of ``--methods`` on ``cifar10_jpeg_lt``
   under the TS protocol (``--construction sdclr``, ``--splits``, seed 0), one ordinary ``bench run``
   process per split (:mod:`bench.launch`), with the period T = epochs / 5 (the preset rule for a
   changed epoch count). Each process writes its floors and records into ``DIR/results``.
4. Evaluation inside each run on the GPU: the kNN protocols and SDCLR's linear probes (``--eval``).
5. Resume on CUDA: the first split's process gets SIGTERM in the middle of its first run's training,
   exits 143 after checkpointing, and the same command runs again; the check reports whether that
   run's record says it resumed (``resumed_from``) and what the record says about nondeterminism.

The data is ``--data-root`` (the unpacked CIFAR-10 JPEG copy with ``split/`` and the labels file) or,
when absent, ``--shared-data DIR`` (a folder holding the JPEG archive, the training labels and the SDCLR
split files) unpacked into a temporary folder. One of the two is required: the product never guesses a
data folder outside its checkout.

``--device cpu`` is a dry run of the same code with tiny sizes (small_cnn, batch 16 for step 1, the
``tiny`` preset, one epoch and one split for step 3, no full-shot probe); it checks the script, not
the speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tabulate import tabulate

from bench import runner
from bench.errors import UserError
from bench.launch import Job, bench_command, run_jobs
from bench.records import load_records, utc_now, write_record
from bench.keys import CONTROL, LIMIT
from bench.report.throughput import summary_lines, variants_table
from datasets import create_dataset
from bench.throughput import Variant, bare_step, bare_variant, forever, measure, suite_variant, throughput_record

REPO_ROOT = Path(__file__).resolve().parents[1]
JPEG_ARCHIVE = Path("cifar10_jpeg") / "cifar10_jpeg_q75.tar.gz"
LABELS = Path("cifar_labels") / "cifar10_train_labels.npy"
SPLIT_FOLDERS = ("cifar10", "cifar10_imbSub_with_subsets")  # under splits/ of the shared data
CIFAR10_LT_SIZE = 12406  # LDAM rho 100: the size of the synthetic throughput set
SDCLR_SPLIT_SIZE = 11165  # images of each SDCLR CIFAR-10 split: what the runs train on
PAPER_EPOCHS = 2000
DATASET = "cifar10_jpeg_lt"
GPU_EVAL = ("knn1", "knn10", "wknn", "probe_full", "probe_few")  # all on the GPU (LinearSVC would take minutes of CPU)
DRY_EVAL = ("knn1", "knn10", "wknn", "probe_few")  # the full-shot probe's 45,000 images are too many for a dry run
RESUME_MARKER = "training constant on"  # the runner's line as the first run of a split starts training
#: Seconds a run process spends besides training (start-up, JPEG decoding, floors) and per run
#: (warm-up, evaluation), kept back when the epochs are planned. Estimates set before the first H200
#: run, where they proved safe: the packed processes finished in 355-373 s of the 427 s left for them.
PROCESS_OVERHEAD_S = 45.0
RUN_OVERHEAD_S = 20.0
RESUME_OVERHEAD_S = 30.0


def limit_variant(config, device: torch.device) -> Variant:
    """The network alone: the bare step (:func:`bench.throughput.bare_step`) on one fixed batch of
    two views, so no data work at all."""
    step = bare_step(config, device)
    size = runner.run_augmentation(config).input_size
    views = torch.randn(2 * config.batch_size, 3, size, size, device=device).chunk(2)
    return Variant(LIMIT, LIMIT, "none", forever(lambda: iter([views])), lambda batch: step(*batch))


def _paper_configs(device: torch.device, dry_run: bool, methods: tuple[str, ...] = ("constant", "cosine_tau")):
    """The configs of step 1 and 2: cifar10_lt's paper preset (small_cnn, batch 16 in a dry run)."""
    from bench.config import resolve_config

    spec = create_dataset("cifar10_lt")
    preset = spec.presets["paper"]
    if dry_run:
        preset = replace(preset, backbone="small_cnn", batch_size=16)
    return [resolve_config(preset, name, "cifar10_lt", 0, device.type, spec.augmentation, {}) for name in methods]


def _synthetic_images(dry_run: bool) -> np.ndarray:
    count = 64 if dry_run else CIFAR10_LT_SIZE
    return np.random.default_rng(0).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)


def check_throughput(device: torch.device, dry_run: bool, results_dir: Path, log: Callable[[str], None]) -> dict:
    """Step 1: the paper's recipe (or its tiny dry-run stand-in) against the bare loop and the
    network-only limit; writes a ``throughput`` record into ``results_dir``."""
    from bench.environment import environment

    steps, repeats, warmup = (2, 2, 1) if dry_run else (15, 6, 10)
    images = _synthetic_images(dry_run)
    configs = _paper_configs(device, dry_run)
    base = configs[0]
    variants = [suite_variant(c, images, device, False, 0) for c in configs]
    variants += [
        suite_variant(base, images, device, False, 0, label=CONTROL),
        bare_variant(base, images, device),
        limit_variant(base, device),
    ]
    log(
        f"1. throughput: cifar10_lt paper recipe ({base.backbone}, batch {base.batch_size}"
        f"{', bf16, channels_last' if device.type == 'cuda' else ''}), {len(images)} synthetic images, "
        f"{repeats} repeats x {steps} steps, interleaved step by step"
    )
    started, where = utc_now(), environment(device)
    result = measure(variants, steps, repeats, warmup, base.batch_size, device, log)
    log(tabulate(variants_table(result), headers="keys", tablefmt="simple"))
    for line in summary_lines(result):
        log(line)
    suite = result["variants"]["constant"]["images_per_s"]["median"]
    limit = result["variants"][LIMIT]["images_per_s"]["median"]
    seconds = PAPER_EPOCHS * (SDCLR_SPLIT_SIZE // base.batch_size) * base.batch_size / suite
    log(f"constant / limit (the fraction of the network-only speed the suite reaches): {suite / limit:.3f}")
    log(
        f"projected wall time of the {PAPER_EPOCHS}-epoch protocol per run (constant, {SDCLR_SPLIT_SIZE} images "
        f"of an SDCLR split): {seconds / 3600:.2f} h{' (dry run: meaningless)' if dry_run else ''}"
    )
    record = throughput_record(
        "cifar10_lt", 0, base, [c.method_label for c in configs], steps, repeats, warmup, result, where, started
    )
    record["config"]["images"] = f"{len(images)} synthetic uint8 32x32 images (the size of CIFAR-10-LT)"
    path = write_record(record, results_dir)
    log(f"throughput record: {path}")
    return {
        "throughput": result,
        "constant_over_limit": suite / limit,
        "projected_hours": seconds / 3600,
        "images_per_s": suite,
        "limit_images_per_s": limit,
    }


# --------------------------------------------------------------------------------------------------
# Step 2: packing
# --------------------------------------------------------------------------------------------------


def pack_worker(device_name: str, dry_run: bool) -> None:
    """One process of the packing probe: the trainer's ``constant`` step on synthetic data. Prints
    READY after warming up, waits for ``GO <unix start> <seconds>`` on stdin, trains until then, and
    prints ``{"steps": n, "seconds": s, "batch_size": b}``."""
    device = torch.device(device_name)
    config = _paper_configs(device, dry_run, ("constant",))[0]
    variant = suite_variant(config, _synthetic_images(dry_run), device, False, 0)
    variant.run(max(variant.settle_steps, 5), device)
    print("READY", flush=True)
    _, start, window = sys.stdin.readline().split()
    while time.time() < float(start):
        time.sleep(0.001)
    began, steps = time.perf_counter(), 0
    while time.time() < float(start) + float(window):
        variant.run(1, device)
        steps += 1
    print(json.dumps({"steps": steps, "seconds": time.perf_counter() - began, "batch_size": config.batch_size}), flush=True)


def pack_probe(device: torch.device, dry_run: bool, processes: int, window: float) -> dict:
    """Total images/s of ``processes`` :func:`pack_worker` processes training at the same time."""
    argv = [sys.executable, "-m", "bench.gpu_check", "pack-worker", str(device), "dry" if dry_run else "full"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    workers = [
        subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            line = worker.stdout.readline().strip()
            if line != "READY":
                raise RuntimeError(f"packing probe worker failed before it was ready (exit {worker.wait()})")
        start = time.time() + 0.5
        for worker in workers:
            worker.stdin.write(f"GO {start} {window}\n")
            worker.stdin.flush()
        reports = [json.loads(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    rates = [r["steps"] * r["batch_size"] / r["seconds"] for r in reports]
    return {"processes": processes, "images_per_s": sum(rates), "per_process": rates, "window_s": window}


def choose_packing(device: torch.device, dry_run: bool, candidates: int, log: Callable[[str], None]) -> dict:
    """Step 2: 1 process against ``candidates`` processes; pack when that keeps >= 97 % of the total."""
    window = 1.0 if dry_run else 10.0
    single = pack_probe(device, dry_run, 1, window)
    probes = [single]
    if candidates > 1:
        probes.append(pack_probe(device, dry_run, candidates, window))
    best = probes[-1] if probes[-1]["images_per_s"] >= 0.97 * single["images_per_s"] else single
    for probe in probes:
        log(
            f"2. packing: {probe['processes']} process(es) train {probe['images_per_s']:.0f} images/s in total "
            f"({', '.join(f'{r:.0f}' for r in probe['per_process'])} each; {probe['window_s']:.0f} s side by side)"
        )
    gain = best["images_per_s"] / single["images_per_s"]
    log(f"   -> {best['processes']} run process(es) at a time ({gain:.2f}x the total of one)")
    return {"probes": probes, "parallel": best["processes"], "images_per_s": best["images_per_s"], "gain": gain}


# --------------------------------------------------------------------------------------------------
# Steps 3-5: the runs
# --------------------------------------------------------------------------------------------------


def prepare_data(data_root: Optional[Path], shared: Optional[Path], scratch: Path) -> Path:
    """The data root of ``cifar10_jpeg_lt --construction sdclr``: ``data_root`` as given, or the shared
    data's JPEG archive unpacked into ``scratch`` with the labels file and ``split/`` beside it."""
    if data_root is not None:
        return data_root
    assert shared is not None, "run_gpu_check refuses to start without --data-root or --shared-data"
    archive, labels = shared / JPEG_ARCHIVE, shared / LABELS
    if not archive.is_file() or not labels.is_file():
        raise UserError(
            f"no --data-root and no {archive}: pass --data-root DIR (the unpacked CIFAR-10 JPEG copy with "
            "cifar10_train_labels.npy and split/) or --shared-data DIR."
        )
    with tarfile.open(archive) as opened:
        opened.extractall(scratch, filter="data")
    # The archive may hold one top folder; the dataset wants train/ and test/ directly under the root.
    root = next((p.parent for p in scratch.rglob("train") if p.is_dir()), scratch)
    shutil.copy(labels, root / labels.name)
    for folder in SPLIT_FOLDERS:
        if (shared / "splits" / folder).is_dir():
            shutil.copytree(shared / "splits" / folder, root / "split" / folder, dirs_exist_ok=True)
    return root


def plan_epochs(
    seconds: float, images_per_s_per_process: float, runs_per_process: int, batch_size: int, images: int = SDCLR_SPLIT_SIZE
) -> int:
    """The epochs every run gets so that ``runs_per_process`` runs, one after another at
    ``images_per_s_per_process``, fit into ``seconds`` besides the start-up and evaluation overheads."""
    # 15 % kept back: a run still training at the deadline is stopped there and leaves no record.
    training = 0.85 * (seconds - PROCESS_OVERHEAD_S - RESUME_OVERHEAD_S - runs_per_process * RUN_OVERHEAD_S)
    per_epoch = (images // batch_size) * batch_size / images_per_s_per_process
    return max(1, int(training / (runs_per_process * per_epoch)))


def run_grid(
    methods: list[str],
    splits: list[int],
    epochs: int,
    parallel: int,
    root: Path,
    out: Path,
    device: torch.device,
    dry_run: bool,
    interrupt_after: float,
    deadline: float,
    log: Callable[[str], None],
) -> list[Job]:
    """Step 3-5: one ``bench run`` per split, ``parallel`` at a time; the first is interrupted once."""
    results = out / "results"
    common = [
        "--methods",
        ",".join(methods),
        "--dataset",
        DATASET,
        "--construction",
        "sdclr",
        "--seeds",
        "0",
        "--preset",
        "tiny" if dry_run else "paper",
        "--epochs",
        str(epochs),
        "--eval",
        ",".join(DRY_EVAL if dry_run else GPU_EVAL),
        "--data-root",
        str(root),
        "--results-dir",
        str(results),
        "--device",
        str(device.type),
        "--no-progress",
        "--no-leaderboard",
    ]
    packed = {runner.PACKED_RUNS_ENV: str(min(parallel, len(splits)))}
    jobs = [
        Job(f"split {split}", bench_command("run", *common, "--splits", str(split)), out / f"run-split{split}.log", env=packed)
        for split in splits
    ]
    if "constant" in methods:
        jobs[0].interrupt = (RESUME_MARKER, interrupt_after)
    log(
        f"\n3. runs: {', '.join(methods)} on {DATASET} --construction sdclr, splits {', '.join(map(str, splits))}, "
        f"seed 0, {epochs} epochs (T = epochs / 5), {parallel} process(es) at a time; evaluation "
        f"{'+'.join(DRY_EVAL if dry_run else GPU_EVAL)} on the {device.type.upper()}"
    )
    return run_jobs(jobs, parallel, deadline, REPO_ROOT, log)


def resume_report(records: list[dict], jobs: list[Job]) -> dict:
    """Step 5's verdict: the interrupted job's exit codes and its first run's ``resumed_from``."""
    interrupted = next((job for job in jobs if job.interrupt is not None), None)
    if interrupted is None:
        return {"checked": False, "why": "constant is not among the methods"}
    split = int(interrupted.name.split()[-1])
    record = next((r for r in records if r.get("kind") == "run" and r["method"] == "constant" and r.get("split") == split), None)
    return {
        "checked": interrupted.interrupted_at is not None,
        "exit_codes": interrupted.exit_codes,
        "signal_after_s": interrupted.interrupted_at,
        "record_written": record is not None,
        "resumed_from": record.get("resumed_from") if record else None,
        "nondeterminism": record.get("nondeterminism") if record else None,
    }


def results_table(records: list[dict], protocols: tuple[str, ...]) -> str:
    rows = []
    for r in sorted(records, key=lambda r: (r.get("split") or 0, r["kind"] != "floor", r["method"])):
        if r.get("kind") not in ("run", "floor"):
            continue
        metrics = r.get("metrics", {})
        throughput = r.get("throughput", {}).get("images_per_s")
        memory = r.get("peak_memory", {}).get("bytes")
        rows.append(
            [
                r.get("split"),
                r["method"],
                *(metrics.get(p, {}).get("overall") for p in protocols),
                metrics.get("knn10", {}).get("few"),
                f"{throughput:.0f}" if throughput else "-",
                f"{memory / 2**20:.0f}" if memory else "-",
                r.get("status"),
            ]
        )
    return tabulate(
        rows,
        headers=["split", "method", *protocols, "knn10 few", "images/s", "peak MiB", "status"],
        tablefmt="simple",
        floatfmt=".1f",
    )


def run_gpu_check(
    out: Path,
    device: str = "auto",
    minutes: float = 9.0,
    methods: Optional[list[str]] = None,
    splits: Optional[list[int]] = None,
    data_root: Optional[Path] = None,
    shared: Optional[Path] = None,
    epochs: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
) -> dict:
    """Steps 1-5 into ``out`` (``out/results``: records; ``out/gpu-check.log``; ``out/gpu-check.json``).
    ``device="cpu"`` is the tiny dry run. Returns what was measured."""
    from bench.trainer import select_device

    start = time.monotonic()
    torch_device = select_device(device)
    dry_run = torch_device.type == "cpu"
    methods = methods or ["constant", "cosine_tau"]
    splits = splits or ([1] if dry_run else [1, 2, 3])
    for spec in methods:
        runner.check_method_spec(spec)  # unknown names or options (constant[tau=0.1] is fine): one line, before any work
    if minutes <= 0:
        raise UserError(f"--minutes must be positive, got {minutes:g}.")
    if data_root is None and shared is None:
        raise UserError(
            "gpu-check needs its data: pass --data-root DIR (the unpacked CIFAR-10 JPEG copy with "
            "cifar10_train_labels.npy and split/) or --shared-data DIR (the JPEG archive, labels and splits)."
        )
    if epochs is not None and epochs <= 0:
        raise UserError(f"--epochs must be positive, got {epochs}.")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty; give a new folder (nothing a previous check wrote is overwritten).")
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results"
    results.mkdir()
    log_file = open(out / "gpu-check.log", "a")

    def say(line: str) -> None:
        (log or print)(line)
        log_file.write(line + "\n")
        log_file.flush()

    deadline = start + minutes * 60 - 20  # the last seconds collect the records and write the summary
    summary: dict = {"started_at": utc_now(), "device": str(torch_device), "dry_run": dry_run, "minutes": minutes}
    try:
        say(
            "dry run on CPU: tiny sizes, checks the script only (no GPU)"
            if dry_run
            else f"GPU check on {torch.cuda.get_device_name(torch_device)}"
        )
        with tempfile.TemporaryDirectory() as scratch:
            root = prepare_data(data_root, shared, Path(scratch))
            summary["step1"] = check_throughput(torch_device, dry_run, results, say)
            if torch_device.type == "cuda":
                torch.cuda.empty_cache()  # step 1's networks are gone; give their memory to the run processes
            summary["step2"] = choose_packing(torch_device, dry_run, max(2, len(splits)), say)
            parallel = min(summary["step2"]["parallel"], len(splits))
            per_process = summary["step2"]["images_per_s"] / summary["step2"]["parallel"]
            waves = -(-len(splits) // parallel)
            remaining = deadline - time.monotonic()
            batch = create_dataset(DATASET).presets["tiny" if dry_run else "paper"].batch_size  # what the runs use
            planned = epochs or (1 if dry_run else plan_epochs(remaining / waves, per_process, len(methods), batch))
            run_seconds = planned * (SDCLR_SPLIT_SIZE // batch) * batch / per_process
            summary["plan"] = {
                "epochs": planned,
                "parallel": parallel,
                "waves": waves,
                "seconds_left": remaining,
                "expected_run_training_s": run_seconds,
            }
            jobs = run_grid(
                methods,
                splits,
                planned,
                parallel,
                root,
                out,
                torch_device,
                dry_run,
                0.0 if dry_run else 0.4 * run_seconds,
                deadline,
                say,
            )
            for job in jobs:
                say(f"\n--- {job.name} ({job.status}, exit codes {job.exit_codes}) ---")
                say(job.log_path.read_text(errors="replace") if job.log_path.exists() else "(no log)")
        summary["jobs"] = [{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(job).items()} for job in jobs]
        records = [r for r in load_records(results) if r.get("kind") in ("run", "floor")]
        protocols = DRY_EVAL if dry_run else GPU_EVAL
        say(f"\n4. accuracies (%, class-averaged) and per-run speed (runs packed {parallel} at a time):")
        say(results_table(records, protocols))
        summary["step5"] = resume_report(records, jobs)
        say(f"\n5. resume on {torch_device.type}: {json.dumps(summary['step5'])}")
        summary["records"] = len(records)
    finally:
        summary["seconds"] = time.monotonic() - start
        summary["finished_at"] = utc_now()
        (out / "gpu-check.json").write_text(json.dumps(summary, indent=1, default=str))
        say(f"gpu-check took {summary['seconds']:.0f} s; records in {results}, log {out / 'gpu-check.log'}")
        log_file.close()
    return summary


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "pack-worker":
    pack_worker(sys.argv[2], sys.argv[3] == "dry")
