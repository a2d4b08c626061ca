"""Where a run happened: package versions, device and processor, git commit. Stored in every record;
the leaderboard compares throughput only between records with the same ``hardware`` string.

On CPU the string names the processor's family / model / stepping and the instruction set torch
dispatches to (``torch.backends.cpu.get_cpu_capability()``): virtual machines often report only
"AMD EPYC", and two such machines used here differed 2-2.6x in speed and, by their kernels' float
rounding, in a run's metrics (digits_lt constant seed 0: kNN@10 92.4 on an AVX2 machine, 93.2 in the
committed record from the other, for the same code)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "lightly", "timm", "numpy", "scikit-learn", "pandas")
REPO_ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_identity() -> str:
    """``family 23 model 1 stepping 2`` from /proc/cpuinfo, or "" where it does not say."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break  # the first processor's block is enough
    except OSError:
        return ""
    return " ".join(f"{name.split()[-1]} {fields[name]}" for name in ("cpu family", "model", "stepping") if name in fields)


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels use, e.g. ``AVX2`` or ``AVX512``."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


#: The commit of a copy of the tree sent to another machine (a GPU machine's), set by the command that
#: sent it, e.g. ``BENCH_GIT_COMMIT=$(git rev-parse HEAD)``. It wins over git: such a copy may carry no
#: .git folder, or a stale one (the first H200 records say 18e51c1-dirty for the tree of 2ca1540).
COMMIT_ENV = "BENCH_GIT_COMMIT"


def git_commit() -> str | None:
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware(device: torch.device) -> str:
    """A short string naming what computed the run, e.g.
    ``cpu: AMD EPYC (family 23 model 1 stepping 2, AVX2) x2 threads``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    details = ", ".join(part for part in (cpu_identity(), cpu_capability()) if part)
    return f"cpu: {cpu_model()} ({details}) x{torch.get_num_threads()} threads"


def environment(device: torch.device) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "hardware": hardware(device),
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": git_commit(),
    }
